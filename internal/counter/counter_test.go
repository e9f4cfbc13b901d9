package counter

import (
	"sync"
	"testing"
)

func TestShardedSumsEveryAdd(t *testing.T) {
	var c Sharded
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				c.Add(g*7+i, 2) // every slot, and shards past the slot count
			}
		}()
	}
	wg.Wait()
	c.Add(-5, 1) // a negative shard is a slot too
	if got := c.Load(); got != 8*1000*2+1 {
		t.Fatalf("Load = %d, want %d", got, 8*1000*2+1)
	}
}

func BenchmarkShardedParallel(b *testing.B) {
	var c Sharded
	var next int
	var mu sync.Mutex
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		shard := next
		next++
		mu.Unlock()
		for pb.Next() {
			c.Add(shard, 1)
		}
	})
}

func TestPairSumsBothCounters(t *testing.T) {
	var c Pair
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				c.Add(g*5+i, 1, int64(i%3))
			}
		}()
	}
	wg.Wait()
	a, b := c.Load()
	if a != 8000 || b != 8*999 {
		t.Fatalf("Load = %d, %d; want 8000, %d", a, b, 8*999)
	}
}
