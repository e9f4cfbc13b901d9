package channel

import (
	"sync/atomic"
	"testing"
)

// close runs what is queued, including work that queued work submits (a
// mailbox yielding its worker), and nothing is lost.
func TestPoolCloseRunsEverything(t *testing.T) {
	p := newPool(2)
	var ran atomic.Int64
	var resubmit func(n int)
	resubmit = func(n int) {
		ran.Add(1)
		if n > 0 {
			p.submit(func() { resubmit(n - 1) })
		}
	}
	for i := 0; i < 100; i++ {
		p.submit(func() { resubmit(5) })
	}
	p.close()
	if got := ran.Load(); got != 600 {
		t.Fatalf("ran %d of 600 tasks", got)
	}
	p.submit(func() { ran.Add(1) })
	if ran.Load() != 600 {
		t.Fatal("a task submitted after close ran")
	}
}
