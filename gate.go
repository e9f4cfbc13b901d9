package pondsocket

import "sync"

// gate bounds how many workers one handler (an event handler of a channel
// pattern, a pattern's join or leave handler) may occupy at once, so a slow
// handler cannot take the whole pool from unrelated work. A client whose
// next message needs a full gate is parked on it: it gives its worker back
// and waits in the gate's FIFO; the call that frees a slot hands the slot
// straight to the first parked client and submits it to the pool.
//
// A parked client is marked by Client.parked (set and cleared only under
// g.mu); Disconnect unparks a client by clearing the mark, leaving a stale
// entry that release skips.
type gate struct {
	mu      sync.Mutex
	running int
	waiters []*Client
	head    int
}

// acquire takes a slot or parks c. It reports whether c may run now.
func (g *gate) acquire(c *Client, limit int) bool {
	g.mu.Lock()
	if g.running < limit {
		g.running++
		g.mu.Unlock()
		return true
	}
	c.parked.Store(g)
	if g.head > 256 && g.head*2 > len(g.waiters) {
		n := copy(g.waiters, g.waiters[g.head:])
		clear(g.waiters[n:])
		g.waiters, g.head = g.waiters[:n], 0
	}
	g.waiters = append(g.waiters, c)
	g.mu.Unlock()
	return false
}

// release frees a slot: to the first client still parked, or back to the
// gate.
func (g *gate) release(p *pool) {
	g.mu.Lock()
	for g.head < len(g.waiters) {
		w := g.waiters[g.head]
		g.waiters[g.head] = nil
		g.head++
		if g.head == len(g.waiters) {
			g.waiters, g.head = g.waiters[:0], 0
		}
		if w.parked.Load() == g {
			w.parked.Store(nil)
			w.held = g
			g.mu.Unlock()
			p.submit(w)
			return
		}
	}
	g.running--
	g.mu.Unlock()
}

// unpark takes c off g (its connection closed) and reports whether it was
// still parked there; the caller then owns c and must submit it.
func (g *gate) unpark(c *Client) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return c.parked.CompareAndSwap(g, nil)
}
