package report

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pondsocket/pondsocket/bench/hist"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median(nil) should be NaN")
	}
}

func fake(scenario, label string, conns int, deliveries float64) *Result {
	h := hist.New()
	for i := int64(1); i <= 1000; i++ {
		h.Record(i * 1000)
	}
	r := &Result{Scenario: scenario, Label: label, Machine: ThisMachine(), Latency: NewLatency(h), Command: "pondbench " + scenario}
	r.Conns.Requested = conns
	r.Traffic = &Traffic{Delivered: 100, Expected: 100}
	r.Series = []Point{{T: 0.5, Delivered: deliveries, GenCPU: 50}, {T: 1, Delivered: deliveries, GenCPU: 60}}
	r.MeasureFrom, r.MeasureTo = 0.2, 0.9
	r.Add("deliveries/s", deliveries, "msg/s")
	r.Add("latency p99", 1.5, "ms")
	r.Add("generator CPU", 40, "%")
	return r
}

func TestGroupsMediansAndCeiling(t *testing.T) {
	rs := []*Result{
		fake("fanout", "fanout n=100", 100, 300),
		fake("ceiling", "ceiling n=100", 100, 1000),
		fake("fanout", "fanout n=100", 100, 100),
		fake("fanout", "fanout n=100", 100, 200),
		fake("ceiling", "ceiling n=100", 100, 800),
	}
	gs := Groups(rs)
	if len(gs) != 2 || len(gs[0].Runs) != 3 || len(gs[1].Runs) != 2 {
		t.Fatalf("groups %+v", gs)
	}
	if m, _ := gs[0].Median("deliveries/s"); m != 200 {
		t.Errorf("fanout median %v, want 200", m)
	}
	if r := gs[0].MedianRun(); r != rs[3] {
		t.Errorf("median run is not the 200 one")
	}
	cr := CeilingRatios(gs)
	if len(cr) != 1 || cr[0].Deliveries != 200 || cr[0].Ceiling != 900 {
		t.Fatalf("ceiling ratios %+v", cr)
	}
	var md bytes.Buffer
	WriteSummaryMarkdown(&md, gs)
	WriteSuiteMarkdown(&md, gs)
	out := md.String()
	for _, want := range []string{"fanout n=100", "| **200 msg/s** |", "22 %", "run 3", "Against the ceiling"} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	var h bytes.Buffer
	if err := WriteHTML(&h, "t<1>", rs, []string{"note & more"}); err != nil {
		t.Fatal(err)
	}
	page := h.String()
	// two groups, each: latency, throughput, connections, CPU (no server)
	if n := strings.Count(page, "<svg"); n != 8 {
		t.Errorf("page has %d plots, want 8", n)
	}
	if !strings.Contains(page, "t&lt;1&gt;") || !strings.Contains(page, "note &amp; more") || strings.Contains(page, "<script") || strings.Contains(page, "http://cdn") {
		t.Errorf("page escaping or self-containment broken")
	}
}

func TestJSONRoundTrip(t *testing.T) {
	dir := t.TempDir()
	r := fake("fanout", "fanout n=1", 1, 5)
	p := filepath.Join(dir, "r.json")
	if err := r.Write(p); err != nil {
		t.Fatal(err)
	}
	arr := filepath.Join(dir, "a.json")
	if err := os.WriteFile(arr, []byte("["+mustRead(t, p)+","+mustRead(t, p)+"]"), 0o644); err != nil {
		t.Fatal(err)
	}
	rs, err := Read(p, arr)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 3 || rs[2].Label != r.Label || rs[0].Latency.P99 != r.Latency.P99 || len(rs[1].Latency.Buckets) != len(r.Latency.Buckets) {
		t.Fatalf("round trip lost data: %d results", len(rs))
	}
}

func mustRead(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFormatValue(t *testing.T) {
	for _, c := range []struct {
		v    float64
		unit string
		want string
	}{
		{1234567, "msg/s", "1.23M msg/s"}, {45678, "msg/s", "45.7k msg/s"}, {0.1234, "ms", "0.123 ms"},
		{12.34, "ms", "12.3 ms"}, {7, "", "7"}, {math.NaN(), "ms", "–"},
	} {
		if got := FormatValue(c.v, c.unit); got != c.want {
			t.Errorf("FormatValue(%v, %q) = %q, want %q", c.v, c.unit, got, c.want)
		}
	}
}
