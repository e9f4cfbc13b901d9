package counter

import (
	"fmt"
	"sync"
	"testing"
	"unsafe"
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

// No two slots' values, and nothing outside the counter, share a cache
// line, wherever the counter starts (Go aligns it to 8 bytes only).
func TestSlotsNeverShareALine(t *testing.T) {
	type around struct {
		before int64
		c      Sharded
		p      Pair
		after  int64
	}
	for base := uintptr(0); base < 64; base += 8 {
		var x around
		line := func(p unsafe.Pointer, size uintptr) [2]uintptr {
			off := uintptr(p) - uintptr(unsafe.Pointer(&x)) + base
			return [2]uintptr{off / 64, (off + size - 1) / 64}
		}
		seen := map[uintptr]string{}
		claim := func(name string, l [2]uintptr) {
			for i := l[0]; i <= l[1]; i++ {
				if other, ok := seen[i]; ok && other != name {
					t.Fatalf("base %d: %s and %s share line %d", base, name, other, i)
				}
				seen[i] = name
			}
		}
		claim("before", line(unsafe.Pointer(&x.before), 8))
		claim("after", line(unsafe.Pointer(&x.after), 8))
		for i := range x.c.s {
			claim(fmt.Sprint("sharded ", i), line(unsafe.Pointer(&x.c.s[i].v), 8))
		}
		for i := range x.p.s {
			claim(fmt.Sprint("pair ", i), line(unsafe.Pointer(&x.p.s[i].a), 16))
		}
	}
}
