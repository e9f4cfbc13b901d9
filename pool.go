package pondsocket

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// task is what the pool runs: in the server, a client whose mailbox has
// work (client.go). A task runs on one worker at a time because whoever
// submits it owns it until it is submitted again.
type task interface{ serve() }

// pool runs tasks on a bounded set of worker goroutines, started lazily.
// It exists so user handlers (which may block on a database) never run on
// an event loop, while the number of goroutines stays bounded however many
// connections there are. Ordering per connection is the mailbox's job and
// the share of workers one handler may hold is the gates' (client.go,
// gate.go); the pool only supplies workers.
//
// Hand-off cost: a worker that finishes a task takes the next one from the
// queue without sleeping, and submit wakes a sleeping worker only when the
// queue holds more tasks than workers already on their way to it, so under
// load most submits cost an append under the lock and no wake-up.
type pool struct {
	mu       sync.Mutex
	cond     sync.Cond
	q        []task
	head     int
	idle     int // workers waiting on cond
	waking   int // workers signalled or started, not yet looking at the queue
	workers  int
	busy     int // workers inside a task
	max      int
	quitting bool          // shutdown started: idle workers leave once the queue is empty
	exited   chan struct{} // a worker left during shutdown (capacity 1)

	// Idle workers leave: every poolIdleReap, as many workers as stayed
	// idle through the whole period exit, so that a burst (a few hundred
	// disconnects, a storm of slow calls) does not leave its goroutines
	// behind for the life of the process.
	lowIdle   int // the fewest idle workers since the last sweep
	reap      int // workers asked to leave
	timer     *time.Timer
	idleAfter time.Duration // poolIdleReap; shorter in tests

	// stopped is set when shutdown gave up waiting: submit drops, and a
	// task that comes back from an abandoned handler runs nothing more.
	stopped atomic.Bool
}

func newPool(max int) *pool {
	if max < 1 {
		max = 1
	}
	p := &pool{max: max, exited: make(chan struct{}, 1), idleAfter: poolIdleReap}
	p.cond.L = &p.mu
	return p
}

// submit queues t; it never blocks. Work submitted during shutdown (a
// mailbox yielding its worker, a client handed a handler slot) still runs
// until shutdown gives up.
func (p *pool) submit(t task) {
	p.mu.Lock()
	if p.stopped.Load() {
		p.mu.Unlock()
		return
	}
	p.q = append(p.q, t)
	if len(p.q)-p.head > p.waking {
		switch {
		case p.idle > 0:
			p.idle--
			p.lowIdle = min(p.lowIdle, p.idle)
			p.waking++
			p.cond.Signal()
		case p.workers < p.max:
			p.workers++
			p.waking++
			go p.work()
			if p.timer == nil {
				p.timer = time.AfterFunc(p.idleAfter, p.sweepIdle)
			}
		}
	}
	p.mu.Unlock()
}

func (p *pool) pop() task {
	if p.head == len(p.q) {
		return nil
	}
	t := p.q[p.head]
	p.q[p.head] = nil
	p.head++
	if p.head == len(p.q) {
		p.q, p.head = p.q[:0], 0
	}
	return t
}

func (p *pool) work() {
	p.mu.Lock()
	p.waking--
	for {
		t := p.pop()
		if t == nil && p.reap > 0 {
			p.reap--
			p.workers--
			p.mu.Unlock()
			return
		}
		if t == nil {
			if p.quitting {
				p.workers--
				p.mu.Unlock()
				select {
				case p.exited <- struct{}{}:
				default:
				}
				return
			}
			p.idle++
			p.cond.Wait()
			p.waking--
			continue
		}
		p.busy++
		p.mu.Unlock()
		t.serve()
		p.mu.Lock()
		p.busy--
	}
}

// poolIdleReap is how long a worker may stay idle before it leaves.
const poolIdleReap = 10 * time.Second

// sweepIdle asks the workers that were idle for a whole period to leave.
func (p *pool) sweepIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.quitting {
		p.timer = nil
		return
	}
	n := min(p.lowIdle, p.idle)
	for range n {
		p.idle--
		p.waking++
		p.reap++
		p.cond.Signal()
	}
	p.lowIdle = p.idle
	if p.workers-n > 0 {
		p.timer.Reset(p.idleAfter)
	} else {
		p.timer = nil
	}
}

// shutdown runs what is queued (and whatever that work submits) and waits
// for the workers to leave, until ctx ends. Then it stops: nothing queued
// runs any more, and it returns how many workers were still inside a task
// (handlers abandoned to finish on their own; their goroutines leave when
// the handler returns).
func (p *pool) shutdown(ctx context.Context) int {
	p.mu.Lock()
	if !p.quitting {
		p.quitting = true
		if p.timer != nil {
			p.timer.Stop()
			p.timer = nil
		}
		p.waking += p.idle
		p.idle = 0
		p.cond.Broadcast()
	}
	p.mu.Unlock()
	for {
		p.mu.Lock()
		if p.workers == 0 && p.head == len(p.q) {
			p.stopped.Store(true)
			p.mu.Unlock()
			return 0
		}
		if p.workers == 0 {
			// queued while the last worker was leaving
			p.workers++
			p.waking++
			go p.work()
		}
		p.mu.Unlock()
		select {
		case <-p.exited:
		case <-ctx.Done():
			p.mu.Lock()
			p.stopped.Store(true)
			n := p.busy
			for p.pop() != nil {
			}
			p.mu.Unlock()
			return n
		}
	}
}
