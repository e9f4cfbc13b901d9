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
	mu      sync.Mutex
	q       []func()
	head    int
	idle    int
	workers int
	max     int
	wake    chan struct{}
	quit    chan struct{}
	wg      sync.WaitGroup
	closed  bool
}

func newPool(max int) *pool {
	if max < 1 {
		max = 1
	}
	return &pool{max: max, wake: make(chan struct{}, max), quit: make(chan struct{})}
}

// submit queues fn; it never blocks.
func (p *pool) submit(fn func()) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.q = append(p.q, fn)
	switch {
	case p.idle > 0:
		p.idle--
		p.wake <- struct{}{} // buffered to max: never blocks under p.mu
	case p.workers < p.max:
		p.workers++
		p.wg.Add(1)
		go p.work()
	}
	p.mu.Unlock()
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
			if p.closed {
				p.workers--
				p.mu.Unlock()
				return
			}
			p.idle++
			p.mu.Unlock()
			select {
			case <-p.wake:
			case <-p.quit:
				p.mu.Lock()
				p.workers--
				p.mu.Unlock()
				return
			}
			continue
		}
		p.mu.Unlock()
		fn()
	}
}

// close stops the workers after the queued tasks ran.
func (p *pool) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	// let workers drain what is queued, then stop idle ones
	for {
		p.mu.Lock()
		empty := p.head >= len(p.q)
		p.mu.Unlock()
		if empty {
			break
		}
		runOne := func() bool {
			p.mu.Lock()
			fn, ok := p.next()
			p.mu.Unlock()
			if ok {
				fn()
			}
			return ok
		}
		if !runOne() {
			break
		}
	}
	close(p.quit)
	p.wg.Wait()
}
