package pondsocket

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket/internal/testenv"
)

type fnTask func()

func (f fnTask) serve() { f() }

// shutdown runs what is queued, including work that queued work submits (a
// mailbox yielding its worker), and nothing is lost.
func TestPoolShutdownRunsEverything(t *testing.T) {
	p := newPool(2)
	var ran atomic.Int64
	var resubmit func(n int)
	resubmit = func(n int) {
		ran.Add(1)
		if n > 0 {
			p.submit(fnTask(func() { resubmit(n - 1) }))
		}
	}
	for i := 0; i < 100; i++ {
		p.submit(fnTask(func() { resubmit(5) }))
	}
	if n := p.shutdown(context.Background()); n != 0 {
		t.Fatalf("abandoned %d", n)
	}
	if got := ran.Load(); got != 600 {
		t.Fatalf("ran %d of 600 tasks", got)
	}
	p.submit(fnTask(func() { ran.Add(1) }))
	if ran.Load() != 600 {
		t.Fatal("a task submitted after shutdown ran")
	}
}

// At its deadline shutdown gives up on running tasks, reports them, and
// drops what is queued; the workers leave once their tasks return.
func TestPoolShutdownDeadline(t *testing.T) {
	p := newPool(2)
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	var ran atomic.Int64
	for i := 0; i < 2; i++ {
		p.submit(fnTask(func() { started <- struct{}{}; <-release; ran.Add(1) }))
	}
	for i := 0; i < 10; i++ {
		p.submit(fnTask(func() { ran.Add(1) }))
	}
	<-started
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if n := p.shutdown(ctx); n != 2 {
		t.Fatalf("abandoned %d, want 2", n)
	}
	close(release)
	testenv.Eventually(t, 5*time.Second, "no worker left after their tasks returned", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.workers == 0
	})
	if got := ran.Load(); got != 2 {
		t.Fatalf("ran %d tasks, want only the 2 running ones", got)
	}
	if !errors.Is(&AbandonedError{Count: 2}, ErrHandlersAbandoned) {
		t.Fatal("AbandonedError is not ErrHandlersAbandoned")
	}
}

// Workers started by a burst leave once they have been idle for a while:
// after 50 blocking tasks ran at once, the pool shrinks back to nothing,
// and still serves what comes afterwards. (Attacks left ~150–340 idle
// workers behind for good before.)
func TestPoolIdleWorkersLeave(t *testing.T) {
	p := newPool(64)
	p.idleAfter = 20 * time.Millisecond
	release := make(chan struct{})
	var started atomic.Int64
	for range 50 {
		p.submit(fnTask(func() { started.Add(1); <-release }))
	}
	testenv.Eventually(t, 5*time.Second, "50 tasks running at once", func() bool { return started.Load() == 50 })
	close(release)
	workers := func() int {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.workers
	}
	testenv.Eventually(t, 5*time.Second, "idle workers leave", func() bool { return workers() == 0 })
	done := make(chan struct{})
	p.submit(fnTask(func() { close(done) }))
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a task after the workers left did not run")
	}
	if n := p.shutdown(context.Background()); n != 0 {
		t.Fatalf("abandoned %d", n)
	}
}
