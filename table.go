package pondsocket

import (
	"sync"

	"github.com/cespare/xxhash/v2"
)

// table is a string-keyed map split into xxhash-selected shards, each with
// its own lock, so that joins, leaves and lookups on different channels or
// users rarely contend. A shard lock is held only for the map operation
// itself — never while calling out — so it sits at the bottom of the lock
// order (see doc.go).
type table[V any] struct {
	shards [tableShards]tableShard[V]
}

const tableShards = 64

type tableShard[V any] struct {
	mu sync.RWMutex
	m  map[string]V
	_  [40]byte // keep shards on separate cache lines
}

func newTable[V any]() *table[V] {
	t := &table[V]{}
	for i := range t.shards {
		t.shards[i].m = make(map[string]V)
	}
	return t
}

func (t *table[V]) shard(key string) *tableShard[V] {
	return &t.shards[xxhash.Sum64String(key)&(tableShards-1)]
}

func (t *table[V]) get(key string) (V, bool) {
	s := t.shard(key)
	s.mu.RLock()
	v, ok := s.m[key]
	s.mu.RUnlock()
	return v, ok
}

// getOrCreate returns the value under key, creating it with mk when absent
// or when stale reports the present value unusable.
func (t *table[V]) getOrCreate(key string, mk func() V, stale func(V) bool) V {
	s := t.shard(key)
	s.mu.RLock()
	v, ok := s.m[key]
	s.mu.RUnlock()
	if ok && !stale(v) {
		return v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok = s.m[key]; ok && !stale(v) {
		return v
	}
	v = mk()
	s.m[key] = v
	return v
}

// update replaces the value under key with fn's answer (ok: whether there
// was one), or deletes it when fn says keep is false. fn runs under the
// shard lock: it must call nothing that locks.
func (t *table[V]) update(key string, fn func(old V, ok bool) (v V, keep bool)) {
	s := t.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.m[key]
	if v, keep := fn(old, ok); keep {
		s.m[key] = v
	} else if ok {
		delete(s.m, key)
	}
}

// deleteIf removes key when match approves the present value.
func (t *table[V]) deleteIf(key string, match func(V) bool) bool {
	s := t.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m[key]; ok && match(v) {
		delete(s.m, key)
		return true
	}
	return false
}

func (t *table[V]) len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// each calls fn for every value, one shard snapshot at a time (fn runs
// without any shard lock held).
func (t *table[V]) each(fn func(key string, v V) bool) {
	var keys []string
	var vals []V
	for i := range t.shards {
		s := &t.shards[i]
		keys, vals = keys[:0], vals[:0]
		s.mu.RLock()
		for k, v := range s.m {
			keys = append(keys, k)
			vals = append(vals, v)
		}
		s.mu.RUnlock()
		for j := range keys {
			if !fn(keys[j], vals[j]) {
				return
			}
		}
	}
}
