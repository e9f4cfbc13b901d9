// Package counter has a statistics counter that several goroutines add to
// at once without sharing a cache line: each adds to a slot chosen by the
// caller (an event loop's index, a hash of the object counted), and Load
// sums the slots. With one atomic counter two event loops counting every
// message move its cache line between their cores for each add.
package counter

import "sync/atomic"

const slots = 16

// Sharded is a cumulative counter; the zero value is ready.
type Sharded struct {
	s [slots]struct {
		v atomic.Int64
		_ [56]byte // a cache line per slot
	}
}

// Add adds n to the slot for shard (any int; slots repeat).
func (c *Sharded) Add(shard int, n int64) { c.s[uint(shard)%slots].v.Add(n) }

// Load is the sum of the slots.
func (c *Sharded) Load() int64 {
	var t int64
	for i := range c.s {
		t += c.s[i].v.Load()
	}
	return t
}
