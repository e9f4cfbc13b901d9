package pondsocket

import "time"

// bucket is a token bucket: rate tokens per second, at most burst stored.
// A rate ≤ 0 disables it. Not safe for concurrent use: a client's buckets
// are only used by its serial handler execution. It is 8 bytes: the last
// refill is kept as wrapping milliseconds, so a client idle for more than
// 49 days is refilled as if idle for the remainder (harmless).
type bucket struct {
	tokens float32
	last   uint32 // wrapping milliseconds; 0 = never used
}

func (b *bucket) allow(rate float64, burst int, now time.Time) bool {
	if rate <= 0 {
		return true
	}
	ms := uint32(now.UnixMilli()) | 1 // never 0, which means "unused"
	if b.last == 0 {
		b.tokens = float32(burst)
	} else {
		b.tokens += float32(float64(ms-b.last) / 1e3 * rate)
		if b.tokens > float32(burst) {
			b.tokens = float32(burst)
		}
	}
	b.last = ms
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
