package channel

import (
	"sync"
	"time"
)

// bucket is a token bucket: rate tokens per second, at most burst stored.
// The zero rate disables it.
type bucket struct {
	mu     sync.Mutex
	tokens float64
	last   int64 // unix nanos
}

func (b *bucket) allow(rate float64, burst int, now time.Time) bool {
	if rate <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t := now.UnixNano()
	if b.last == 0 {
		b.tokens = float64(burst)
	} else {
		b.tokens += float64(t-b.last) / 1e9 * rate
		if b.tokens > float64(burst) {
			b.tokens = float64(burst)
		}
	}
	b.last = t
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
