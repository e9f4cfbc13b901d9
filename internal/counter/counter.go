// Package counter has a statistics counter that several goroutines add to
// at once without sharing a cache line: each adds to a slot chosen by the
// caller (an event loop's index, a hash of the object counted), and Load
// sums the slots. With one atomic counter two event loops counting every
// message move its cache line between their cores for each add.
package counter

import "sync/atomic"

const slots = 16

// Go aligns these structs to 8 bytes only, so a slot of exactly one cache
// line would straddle two lines shared with its neighbours. Slots are two
// lines apart instead, after a line of padding: whatever the alignment,
// no two slots' values share a line, and no field around the counter
// shares one with a slot.
const stride = 128

// Sharded is a cumulative counter; the zero value is ready.
type Sharded struct {
	_ [64]byte
	s [slots]struct {
		v atomic.Int64
		_ [stride - 8]byte
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

// Pair is two cumulative counters that are always added to together: both
// of a slot share its cache line, so one add of both costs one line.
type Pair struct {
	_ [64]byte
	s [slots]struct {
		a, b atomic.Int64
		_    [stride - 16]byte
	}
}

// Add adds a and b to the slot for shard.
func (c *Pair) Add(shard int, a, b int64) {
	s := &c.s[uint(shard)%slots]
	s.a.Add(a)
	s.b.Add(b)
}

// Load is the sums of the slots' first and second counters.
func (c *Pair) Load() (a, b int64) {
	for i := range c.s {
		a += c.s[i].a.Load()
		b += c.s[i].b.Load()
	}
	return a, b
}
