//go:build linux

package attack_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/bench/attack"
	"github.com/pondsocket/pondsocket/internal/demochat"
)

// startDemo starts the demo chat with its test events in this process, with
// /healthz and a /metrics that reports go_goroutines, on 127.0.0.1:0.
func startDemo(t *testing.T, tune func(*pondsocket.Options)) string {
	t.Helper()
	opts := pondsocket.DefaultOptions()
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if tune != nil {
		tune(opts)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "# TYPE go_goroutines gauge\ngo_goroutines %d\n", runtime.NumGoroutine())
	})
	opts.HTTPHandler = mux
	srv := pondsocket.NewServer(&pondsocket.ServerOptions{ServerAddr: "127.0.0.1:0", Options: opts})
	demochat.RegisterWith(srv, demochat.Config{TestEvents: true})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(5 * time.Second) })
	return "ws://" + srv.Addr().String() + "/api/socket"
}

// small shrinks an attack to a size a race-enabled test runs in well under
// three seconds. The test never asserts that the server survives: the
// fixes of issue 10 land separately; it checks that the report is filled.
func small(name, target string) attack.Config {
	c := attack.Defaults(name)
	c.Target = target
	c.ServerPid = os.Getpid() // the server is this process
	c.After = 100 * time.Millisecond
	c.Duration = 1500 * time.Millisecond
	c.Hold = 100 * time.Millisecond
	c.SampleEvery = 100 * time.Millisecond
	c.BystanderEvery = 20 * time.Millisecond
	switch name {
	case "connburst", "capblind":
		c.Conns, c.Concurrency, c.Count = 60, 16, 3
	case "pingflood":
		c.Bytes, c.Duration = 2<<20, 500*time.Millisecond
	case "longnames":
		c.Count, c.Size = 10, 2000
	case "bigpresence":
		c.Conns, c.Listeners, c.Size, c.Duration = 2, 5, 20_000, 700*time.Millisecond
	case "mailbox":
		c.Count, c.Size, c.HandlerMS = 20, 10_000, 5
	case "slowhandlers":
		c.Conns, c.Count, c.HandlerMS, c.Concurrency = 10, 2, 100, 10
	case "presencespam":
		c.Listeners, c.Count, c.Size, c.Duration = 10, 50, 100, time.Second
	case "badupgrade":
		// A request the server never answers waits this long.
		c.Count, c.DialTimeout = 5, time.Second
	}
	return c
}

func TestAttacksFillTheirReports(t *testing.T) {
	target := startDemo(t, nil)
	for _, name := range attack.Names {
		t.Run(name, func(t *testing.T) {
			cfg := small(name, target)
			start := time.Now()
			r, err := attack.Run(context.Background(), cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %v; the small attack should be quick", d)
			}
			checkReport(t, r)
			want := map[string]string{
				"connburst":    "upgraded (101)",
				"pingflood":    "ping bytes sent",
				"longnames":    "joins sent",
				"bigpresence":  "honest members cut",
				"mailbox":      "messages sent",
				"slowhandlers": "calls queued",
				"leak":         "probes",
				"capblind":     "upgraded (101)",
				"presencespam": "amplification (out/in)",
				"badupgrade":   "bare LF: answer p50",
			}[name]
			if _, ok := r.Figure(want); !ok {
				t.Errorf("no figure %q in %+v", want, r.Figures)
			}
			if len(r.Counts) == 0 && name != "leak" {
				t.Errorf("no outcome counts")
			}
			switch name {
			case "leak":
				// Every probe is answered one way or another, and the text
				// that came back is shown.
				if len(r.Observations) < 3 {
					t.Errorf("observations %q, want one per probe", r.Observations)
				}
			case "badupgrade":
				if r.Counts["valid (control): 101"] != int64(cfg.Count) {
					t.Errorf("the valid control requests were not all upgraded: %v", r.Counts)
				}
			case "connburst":
				if r.Counts["healthz after: 200"] == 0 {
					t.Errorf("no /healthz poll after the burst: %v", r.Counts)
				}
			case "mailbox", "slowhandlers":
				if r.Counts["answer: reply"] == 0 {
					t.Errorf("the slow event never answered: %v", r.Counts)
				}
			}
		})
	}
}

func checkReport(t *testing.T, r *attack.Report) {
	t.Helper()
	b := r.Bystander
	if b.Sent == 0 || b.Replies == 0 || b.P50ms <= 0 || b.P99ms < b.P50ms || b.Maxms < b.P99ms {
		t.Errorf("bystander %+v: want samples with ordered percentiles", b)
	}
	s := r.Server
	for what, x := range map[string]attack.ServerSample{"before": s.Before, "peak": s.Peak, "after": s.After} {
		if x.RSSBytes <= 0 || x.FDs <= 0 || x.Goroutines <= 0 {
			t.Errorf("server sample %s = %+v, want RSS, fds and goroutines", what, x)
		}
	}
	if s.Peak.RSSBytes < s.Before.RSSBytes || !s.Alive || s.Pid != os.Getpid() {
		t.Errorf("server stats %+v", s)
	}
	if r.Seconds <= 0 || len(r.Figures) == 0 || len(r.Errors) > 0 {
		t.Errorf("seconds %v, figures %v, tool errors %v", r.Seconds, r.Figures, r.Errors)
	}
	var md bytes.Buffer
	attack.WriteMarkdown(&md, r)
	for _, want := range []string{"### " + r.Attack, "| RSS |", "round trip p99", r.Figures[0].Name} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	if testing.Verbose() {
		t.Logf("\n%s", md.String())
	}
}

// TestMedianAndJSON checks that repeated runs combine into medians and that
// the JSON output reads back.
func TestMedianAndJSON(t *testing.T) {
	mk := func(v float64, rss int64) *attack.Report {
		r := &attack.Report{Attack: "leak", Counts: map[string]int64{"x": int64(v)}}
		r.Set("f", v, "")
		r.Server.Peak.RSSBytes = rss
		r.Server.Alive = true
		r.Bystander.P50ms = v
		return r
	}
	m := attack.Median([]*attack.Report{mk(1, 10), mk(9, 30), mk(5, 20)})
	if f, _ := m.Figure("f"); f != 5 || m.Counts["x"] != 5 || m.Server.Peak.RSSBytes != 20 || m.Bystander.P50ms != 5 || m.Runs != 3 || !m.Server.Alive {
		t.Fatalf("median %+v", m)
	}
	// Runs written one file each come back as the same medians, and a
	// median written beside its runs is not counted again.
	dir := t.TempDir()
	var paths []string
	for i, r := range []*attack.Report{mk(1, 10), mk(9, 30), mk(5, 20)} {
		p := filepath.Join(dir, fmt.Sprintf("r%d.json", i))
		if err := attack.WriteJSON(p, []*attack.Report{r}); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	both := filepath.Join(dir, "both.json")
	if err := attack.WriteJSON(both, []*attack.Report{mk(100, 100), m}); err != nil {
		t.Fatal(err)
	}
	rs, err := attack.ReadJSON(append(paths, both)...)
	if err != nil || len(rs) != 5 {
		t.Fatalf("read %d reports, %v", len(rs), err)
	}
	var md bytes.Buffer
	attack.WriteSuiteMarkdown(&md, rs)
	// Four runs (1, 9, 5, 100): the figure's median is 7.
	if !strings.Contains(md.String(), "| leak | 4 |") || !strings.Contains(md.String(), "| f | 7 |") {
		t.Fatalf("suite markdown:\n%s", md.String())
	}
}
