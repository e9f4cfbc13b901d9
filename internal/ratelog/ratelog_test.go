package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestBurstThenSuppressedCount(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&buf, nil)), 3, time.Hour)
	for range 10 {
		l.Warn("bad upgrade", "n", 1)
	}
	l.Warn("other line")
	if got := strings.Count(buf.String(), "bad upgrade"); got != 3 {
		t.Fatalf("got %d lines of the limited message, want 3:\n%s", got, buf.String())
	}
	if !strings.Contains(buf.String(), "other line") {
		t.Fatal("a different message shares the budget")
	}
	if n := Suppressed(l); n != 7 {
		t.Fatalf("Suppressed = %d, want 7", n)
	}
}

func TestWindowResetsAndReportsDropped(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewTextHandler(&buf, nil))
	l := New(base, 1, time.Second)
	h := l.Handler().(*handler)
	t0 := time.Now()
	if ok, _ := h.st.allow("m", t0); !ok {
		t.Fatal("first line refused")
	}
	for range 4 {
		if ok, _ := h.st.allow("m", t0.Add(time.Millisecond)); ok {
			t.Fatal("line over the burst allowed")
		}
	}
	ok, dropped := h.st.allow("m", t0.Add(2*time.Second))
	if !ok || dropped != 4 {
		t.Fatalf("after the window: ok=%v dropped=%d, want true 4", ok, dropped)
	}
}
