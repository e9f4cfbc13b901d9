package channel

import (
	"sync"
)

// pool runs tasks on a bounded set of worker goroutines, started lazily.
// It exists so user handlers (which may block on a database) never run on
// an event loop, while the number of goroutines stays bounded however many
// connections there are. Ordering per connection is the mailbox's job
// (client.go); the pool only supplies workers.
type pool struct {
	mu       sync.Mutex
	q        []func()
	head     int
	idle     int
	workers  int
	max      int
	wake     chan struct{}
	wg       sync.WaitGroup
	quitting bool // close started: no new workers, idle ones leave
	closed   bool // close finished: submit drops
}

func newPool(max int) *pool {
	if max < 1 {
		max = 1
	}
	return &pool{max: max, wake: make(chan struct{}, max)}
}

// submit queues fn; it never blocks. Work submitted while the pool closes
// (a handler that yields and resubmits) still runs.
func (p *pool) submit(fn func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.q = append(p.q, fn)
	switch {
	case p.idle > 0:
		p.idle--
		p.wake <- struct{}{} // buffered to max: never blocks under p.mu
	case p.workers < p.max && !p.quitting:
		p.workers++
		p.wg.Add(1)
		go p.work()
	}
}

func (p *pool) next() (func(), bool) {
	if p.head < len(p.q) {
		fn := p.q[p.head]
		p.q[p.head] = nil
		p.head++
		if p.head == len(p.q) {
			p.q, p.head = p.q[:0], 0
		}
		return fn, true
	}
	return nil, false
}

func (p *pool) work() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		fn, ok := p.next()
		if !ok {
			if p.quitting {
				p.workers--
				p.mu.Unlock()
				return
			}
			p.idle++
			p.mu.Unlock()
			<-p.wake
			continue
		}
		p.mu.Unlock()
		fn()
	}
}

// close runs everything queued (and whatever that work submits), then
// stops the workers; submit drops work after it returns.
func (p *pool) close() {
	p.mu.Lock()
	if p.quitting {
		p.mu.Unlock()
		return
	}
	p.quitting = true
	for ; p.idle > 0; p.idle-- {
		p.wake <- struct{}{}
	}
	p.mu.Unlock()
	p.wg.Wait()
	for {
		p.mu.Lock()
		fn, ok := p.next()
		if !ok {
			p.closed = true
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		fn()
	}
}
