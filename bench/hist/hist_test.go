package hist

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
)

func TestBucketsAreContiguous(t *testing.T) {
	// Every bucket starts where the previous one ended, and bucketOf maps
	// both edges of each bucket back to it.
	var next int64
	for i := 0; i < numBuckets; i++ {
		lo, w := bucketRange(i)
		if lo < 0 || lo+w < 0 { // past int64
			break
		}
		if i > 0 && lo != next {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, next)
		}
		if got := bucketOf(lo); got != i {
			t.Fatalf("bucketOf(%d) = %d, want %d", lo, got, i)
		}
		if got := bucketOf(lo + w - 1); got != i {
			t.Fatalf("bucketOf(%d) = %d, want %d", lo+w-1, got, i)
		}
		next = lo + w
	}
	if b := bucketOf(math.MaxInt64); b >= numBuckets {
		t.Fatalf("bucketOf(MaxInt64) = %d, beyond %d buckets", b, numBuckets)
	}
}

func TestExactBelow256(t *testing.T) {
	h := New()
	for v := int64(1); v <= 200; v++ {
		h.Record(v)
	}
	for _, c := range []struct {
		q    float64
		want int64
	}{{0, 1}, {0.5, 100}, {0.99, 198}, {0.995, 199}, {1, 200}, {0.001, 1}} {
		if got := h.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%v) = %d, want %d", c.q, got, c.want)
		}
	}
	if h.Mean() != 100.5 {
		t.Errorf("mean = %v, want 100.5", h.Mean())
	}
}

func TestQuantileWithinResolution(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, dist := range []struct {
		name string
		gen  func() int64
	}{
		{"uniform-us", func() int64 { return r.Int64N(1_000_000) }},
		{"lognormal", func() int64 { return int64(math.Exp(r.NormFloat64()*1.5 + 12)) }},
		{"bimodal", func() int64 {
			if r.IntN(100) == 0 {
				return 50_000_000 + r.Int64N(1000)
			}
			return 20_000 + r.Int64N(100)
		}},
	} {
		t.Run(dist.name, func(t *testing.T) {
			h := New()
			vals := make([]int64, 100_000)
			for i := range vals {
				vals[i] = dist.gen()
				h.Record(vals[i])
			}
			for _, q := range []float64{0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999} {
				exact := ExactQuantile(vals, q)
				got := h.Quantile(q)
				if got < exact {
					t.Errorf("q=%v: histogram %d below exact %d", q, got, exact)
				}
				if float64(got-exact) > float64(exact)/128+1 {
					t.Errorf("q=%v: histogram %d, exact %d: error beyond 1/128", q, got, exact)
				}
			}
			if h.Min() != ExactQuantile(vals, 0) || h.Max() != vals[len(vals)-1] {
				t.Errorf("min/max %d/%d, want %d/%d", h.Min(), h.Max(), vals[0], vals[len(vals)-1])
			}
		})
	}
}

func TestMergeIsExact(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	all := New()
	parts := []*Histogram{New(), New(), New()}
	for i := 0; i < 30_000; i++ {
		v := int64(math.Exp(r.NormFloat64()*2 + 10))
		all.Record(v)
		parts[i%3].Record(v)
	}
	merged := New()
	for _, p := range parts {
		// through the wire format, as worker processes do
		b, err := json.Marshal(p.Snapshot())
		if err != nil {
			t.Fatal(err)
		}
		var s Snapshot
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		h, err := FromSnapshot(s)
		if err != nil {
			t.Fatal(err)
		}
		merged.Merge(h)
	}
	if merged.Count() != all.Count() || merged.Min() != all.Min() || merged.Max() != all.Max() {
		t.Fatalf("merged count/min/max %d/%d/%d, want %d/%d/%d", merged.Count(), merged.Min(), merged.Max(), all.Count(), all.Min(), all.Max())
	}
	if math.Abs(merged.Mean()-all.Mean()) > 1e-6*all.Mean() {
		t.Fatalf("merged mean %v, want %v", merged.Mean(), all.Mean())
	}
	for q := 0.0; q <= 1.0; q += 0.001 {
		if a, b := merged.Quantile(q), all.Quantile(q); a != b {
			t.Fatalf("q=%v: merged %d, single %d", q, a, b)
		}
	}
}

func TestEmptyAndNegative(t *testing.T) {
	h := New()
	if h.Quantile(0.5) != 0 || h.Min() != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram must report zeros")
	}
	h.Record(-5)
	if h.Min() != 0 || h.Count() != 1 {
		t.Fatalf("negative value: min %d count %d, want 0 and 1", h.Min(), h.Count())
	}
	s := h.Summarize()
	if s.P50 != 0 || s.Max != 0 {
		t.Fatalf("summary %+v", s)
	}
}

func TestFromSnapshotRejectsCorruption(t *testing.T) {
	for _, s := range []Snapshot{
		{Index: []int{1, 2}, Count: []uint64{1}, Total: 1},
		{Index: []int{numBuckets}, Count: []uint64{1}, Total: 1},
		{Index: []int{3}, Count: []uint64{2}, Total: 3},
	} {
		if _, err := FromSnapshot(s); err == nil {
			t.Errorf("FromSnapshot(%+v) accepted", s)
		}
	}
}

func TestExactQuantile(t *testing.T) {
	v := []int64{5, 1, 4, 2, 3}
	for _, c := range []struct {
		q    float64
		want int64
	}{{0, 1}, {0.2, 1}, {0.21, 2}, {0.5, 3}, {0.8, 4}, {0.81, 5}, {1, 5}} {
		if got := ExactQuantile(v, c.q); got != c.want {
			t.Errorf("ExactQuantile(%v) = %d, want %d", c.q, got, c.want)
		}
	}
}

func BenchmarkRecord(b *testing.B) {
	h := New()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h.Record(int64(i&0xfffff) * 37)
	}
}
