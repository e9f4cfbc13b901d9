// Package hist is the latency histogram of the load generator: log-linear
// buckets in the style of HdrHistogram, so that histograms recorded by
// different event loops and different worker processes merge exactly (a
// merge adds bucket counts; nothing is resampled).
//
// Values are non-negative int64 (nanoseconds in practice). Values below 256
// are exact; above, each power of two is split into 128 buckets, so a value
// is known to within 1/128 (0.78 %) of itself. Min, max, count and sum are
// exact.
//
// A Histogram is not safe for concurrent use: record into one histogram per
// event loop and merge them when the loops are quiet.
package hist

import (
	"fmt"
	"math"
	"math/bits"
	"sort"
)

const (
	subBits    = 7
	halfCount  = 1 << subBits  // 128 buckets per power of two
	linearTop  = 2 * halfCount // values below are exact
	maxShift   = 63 - subBits  // v>>maxShift fits in [128,256) for v < 2^63
	numBuckets = (maxShift+1)*halfCount + halfCount
)

// Histogram counts values in log-linear buckets.
type Histogram struct {
	counts []uint64
	count  uint64
	sum    float64
	min    int64
	max    int64
}

// New returns an empty histogram.
func New() *Histogram {
	return &Histogram{counts: make([]uint64, numBuckets), min: math.MaxInt64}
}

// bucketOf returns the bucket index of v (v >= 0).
func bucketOf(v int64) int {
	if v < linearTop {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - (subBits + 1)
	return shift*halfCount + int(v>>uint(shift))
}

// bucketRange returns the smallest value of bucket i and the bucket's width.
func bucketRange(i int) (lo, width int64) {
	if i < linearTop {
		return int64(i), 1
	}
	shift := i/halfCount - 1
	sub := i - shift*halfCount
	return int64(sub) << uint(shift), int64(1) << uint(shift)
}

// Record adds one value. Negative values are recorded as 0; callers that
// care (latency from a shared clock) count them separately.
func (h *Histogram) Record(v int64) { h.RecordN(v, 1) }

// RecordN adds n copies of v.
func (h *Histogram) RecordN(v int64, n uint64) {
	if n == 0 {
		return
	}
	if v < 0 {
		v = 0
	}
	h.counts[bucketOf(v)] += n
	h.count += n
	h.sum += float64(v) * float64(n)
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

// Merge adds every count of o into h. It is exact: merging then asking for a
// percentile gives the same answer as recording every value into one
// histogram.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.count == 0 {
		return
	}
	for i, c := range o.counts {
		if c != 0 {
			h.counts[i] += c
		}
	}
	h.count += o.count
	h.sum += o.sum
	if o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
}

// Reset empties the histogram.
func (h *Histogram) Reset() {
	clear(h.counts)
	h.count, h.sum, h.min, h.max = 0, 0, math.MaxInt64, 0
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.count }

// Min is the smallest recorded value (0 when empty).
func (h *Histogram) Min() int64 {
	if h.count == 0 {
		return 0
	}
	return h.min
}

// Max is the largest recorded value.
func (h *Histogram) Max() int64 { return h.max }

// Mean is the exact mean of the recorded values.
func (h *Histogram) Mean() float64 {
	if h.count == 0 {
		return 0
	}
	return h.sum / float64(h.count)
}

// Quantile returns the value at quantile q in [0,1]: the smallest recorded
// value v such that at least q of all values are <= v, to within the bucket
// resolution. The answer is the upper edge of the bucket holding that rank
// (never an underestimate), clamped to the exact min and max.
func (h *Histogram) Quantile(q float64) int64 {
	if h.count == 0 {
		return 0
	}
	if q <= 0 {
		return h.min
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(math.Ceil(q * float64(h.count)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		if c == 0 {
			continue
		}
		seen += c
		if seen >= rank {
			lo, w := bucketRange(i)
			v := lo + w - 1
			if v > h.max {
				v = h.max
			}
			if v < h.min {
				v = h.min
			}
			return v
		}
	}
	return h.max
}

// Percentile is Quantile(p/100).
func (h *Histogram) Percentile(p float64) int64 { return h.Quantile(p / 100) }

// Bucket is one non-empty bucket: values in [Lo, Lo+Width) were seen Count times.
type Bucket struct {
	Lo, Width int64
	Count     uint64
}

// Buckets lists the non-empty buckets in increasing order.
func (h *Histogram) Buckets() []Bucket {
	var out []Bucket
	for i, c := range h.counts {
		if c != 0 {
			lo, w := bucketRange(i)
			out = append(out, Bucket{Lo: lo, Width: w, Count: c})
		}
	}
	return out
}

// Snapshot is the serialisable form of a histogram (sparse bucket indexes),
// used to ship histograms from worker processes to the parent.
type Snapshot struct {
	Index []int    `json:"i,omitempty"`
	Count []uint64 `json:"c,omitempty"`
	Total uint64   `json:"n"`
	Sum   float64  `json:"sum"`
	Min   int64    `json:"min"`
	Max   int64    `json:"max"`
}

// Snapshot returns a copy of h in serialisable form.
func (h *Histogram) Snapshot() Snapshot {
	s := Snapshot{Total: h.count, Sum: h.sum, Min: h.Min(), Max: h.max}
	for i, c := range h.counts {
		if c != 0 {
			s.Index = append(s.Index, i)
			s.Count = append(s.Count, c)
		}
	}
	return s
}

// FromSnapshot rebuilds a histogram; it fails on a malformed snapshot so a
// corrupted worker report cannot silently skew a result.
func FromSnapshot(s Snapshot) (*Histogram, error) {
	h := New()
	if len(s.Index) != len(s.Count) {
		return nil, fmt.Errorf("hist: snapshot has %d indexes and %d counts", len(s.Index), len(s.Count))
	}
	var n uint64
	for k, i := range s.Index {
		if i < 0 || i >= numBuckets {
			return nil, fmt.Errorf("hist: snapshot bucket %d out of range", i)
		}
		h.counts[i] += s.Count[k]
		n += s.Count[k]
	}
	if n != s.Total {
		return nil, fmt.Errorf("hist: snapshot counts sum to %d, total says %d", n, s.Total)
	}
	h.count, h.sum = n, s.Sum
	if n > 0 {
		h.min, h.max = s.Min, s.Max
	}
	return h, nil
}

// Summary is the usual set of figures for a latency distribution, in
// nanoseconds.
type Summary struct {
	Count uint64  `json:"count"`
	Min   int64   `json:"min_ns"`
	Mean  float64 `json:"mean_ns"`
	P50   int64   `json:"p50_ns"`
	P90   int64   `json:"p90_ns"`
	P99   int64   `json:"p99_ns"`
	P999  int64   `json:"p999_ns"`
	Max   int64   `json:"max_ns"`
}

// Summarize computes the Summary of h.
func (h *Histogram) Summarize() Summary {
	return Summary{
		Count: h.count,
		Min:   h.Min(),
		Mean:  h.Mean(),
		P50:   h.Quantile(0.50),
		P90:   h.Quantile(0.90),
		P99:   h.Quantile(0.99),
		P999:  h.Quantile(0.999),
		Max:   h.max,
	}
}

// ExactQuantile is the reference the histogram approximates: the smallest
// v in values such that at least q of values are <= v. It sorts values in
// place. Tests and small samples use it.
func ExactQuantile(values []int64, q float64) int64 {
	if len(values) == 0 {
		return 0
	}
	sort.Slice(values, func(i, j int) bool { return values[i] < values[j] })
	if q <= 0 {
		return values[0]
	}
	rank := int(math.Ceil(q * float64(len(values))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(values) {
		rank = len(values)
	}
	return values[rank-1]
}
