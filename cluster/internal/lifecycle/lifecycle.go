// Package lifecycle is the life every cluster.PubSub backend (MemoryBus's
// connections, cluster/redis, cluster/kafka) goes through — new, started by
// a successful Start, closed for good by the first Close — and the error
// each method of the PubSub contract returns at each stage. The errors are
// cluster's ErrClosed, ErrNotStarted and ErrStarted: package cluster
// re-exports them, so that its own MemoryBus can use this package too.
//
// A State holds no lock: a backend keeps it under the mutex that guards
// what Start opens and Close releases, so the state and those connections
// change together.
package lifecycle

import "errors"

// The errors of the stages, exported by package cluster under the same
// names.
var (
	ErrClosed     = errors.New("cluster: closed")
	ErrNotStarted = errors.New("cluster: not started")
	ErrStarted    = errors.New("cluster: already started")
)

// State is where a backend is in its life. The zero value is new.
type State struct {
	started, closed bool
}

// CanStart is nil while Start may go ahead: ErrStarted after a successful
// Start, ErrClosed after Close.
func (s *State) CanStart() error {
	switch {
	case s.closed:
		return ErrClosed
	case s.started:
		return ErrStarted
	}
	return nil
}

// SetStarted records a successful Start.
func (s *State) SetStarted() { s.started = true }

// CanUse is nil between a successful Start and Close, when a message can
// be published: ErrNotStarted before, ErrClosed after.
func (s *State) CanUse() error {
	switch {
	case s.closed:
		return ErrClosed
	case !s.started:
		return ErrNotStarted
	}
	return nil
}

// Closed reports whether Close has been called.
func (s *State) Closed() bool { return s.closed }

// Close records Close and reports whether this call is the one that must
// release what Start acquired: the first Close after a successful Start.
// Every later Close, and a Close before any Start, has nothing to do.
func (s *State) Close() (release bool) {
	release = s.started && !s.closed
	s.closed = true
	return release
}
