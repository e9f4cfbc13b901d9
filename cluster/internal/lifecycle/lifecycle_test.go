package lifecycle

import (
	"errors"
	"testing"
)

// Each stage answers CanStart, CanUse and Close as the PubSub contract
// says (cluster/pubsub.go).
func TestState(t *testing.T) {
	check := func(stage string, s *State, canStart, canUse error, closed bool) {
		t.Helper()
		if err := s.CanStart(); !errors.Is(err, canStart) || (canStart == nil) != (err == nil) {
			t.Errorf("%s: CanStart %v, want %v", stage, err, canStart)
		}
		if err := s.CanUse(); !errors.Is(err, canUse) || (canUse == nil) != (err == nil) {
			t.Errorf("%s: CanUse %v, want %v", stage, err, canUse)
		}
		if s.Closed() != closed {
			t.Errorf("%s: Closed %v, want %v", stage, s.Closed(), closed)
		}
	}

	var s State
	check("new", &s, nil, ErrNotStarted, false)
	s.SetStarted()
	check("started", &s, ErrStarted, nil, false)
	if !s.Close() {
		t.Error("first Close after Start: nothing to release")
	}
	check("closed", &s, ErrClosed, ErrClosed, true)
	if s.Close() {
		t.Error("second Close: asked to release again")
	}

	var never State
	if never.Close() {
		t.Error("Close before Start: asked to release")
	}
	check("closed before start", &never, ErrClosed, ErrClosed, true)
}
