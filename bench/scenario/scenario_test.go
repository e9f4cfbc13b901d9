package scenario_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket/bench/report"
	"github.com/pondsocket/pondsocket/bench/scenario"
)

func TestMain(m *testing.M) {
	// Worker processes and the ceiling server are this test binary run again.
	if scenario.MaybeChild() {
		return
	}
	os.Exit(m.Run())
}

// small returns a spec small enough for a race-enabled test run.
func small(name string, targets ...string) scenario.Spec {
	s := scenario.Defaults(name)
	s.Targets = targets
	s.Conns = 40
	s.Messages = 150
	s.InFlight = 8
	s.Rooms = 4
	s.RoomSize = 10
	s.Rate = 20
	s.Duration = scenario.Duration(1200 * time.Millisecond)
	s.Hold = scenario.Duration(400 * time.Millisecond)
	s.Grace = scenario.Duration(3 * time.Second)
	s.Timeout = scenario.Duration(30 * time.Second)
	s.Interval = scenario.Duration(200 * time.Millisecond)
	s.PayloadSize = 64
	if name == "presence" {
		s.Conns = 30
	}
	if name == "echo" {
		// The demo server allows 1000 messages/s per connection: stay under.
		s.Conns = 20
		s.Depth = 2
		s.Rate = 200
	}
	return s
}

func runSpec(t *testing.T, spec scenario.Spec, serverPid int) *report.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := scenario.Run(ctx, spec, scenario.Options{
		ServerPid: serverPid,
		Exe:       os.Args[0],
		Command:   "test " + spec.Scenario,
	})
	if err != nil {
		t.Fatalf("%s: %v", spec.Scenario, err)
	}
	return res
}

// checkResult asserts what every report must satisfy, and the exact counts
// a run with nothing dropped must have.
func checkResult(t *testing.T, spec scenario.Spec, res *report.Result) {
	t.Helper()
	c := res.Conns
	if c.Requested != spec.Conns || c.Opened != int64(spec.Conns) || c.Failed != 0 || c.Dropped != 0 {
		t.Fatalf("conns: %+v, want %d opened and none failed or dropped (warnings %v)", c, spec.Conns, res.Warnings)
	}
	if c.Opened+c.Failed != int64(c.Requested) {
		t.Errorf("opened %d + failed %d != requested %d", c.Opened, c.Failed, c.Requested)
	}
	if c.ConnectLatency.Count != uint64(c.Opened) || c.ConnectLatency.Min < 0 || c.ConnectLatency.P50 > c.ConnectLatency.Max {
		t.Errorf("connect latency %+v for %d opened", c.ConnectLatency, c.Opened)
	}
	if c.Joined != c.Opened || c.JoinLatency.Count != uint64(c.Joined) {
		t.Errorf("joined %d (latency count %d), want %d", c.Joined, c.JoinLatency.Count, c.Opened)
	}
	if c.ConnectSeconds <= 0 || c.ConnectPerSec <= 0 {
		t.Errorf("connect seconds %v rate %v", c.ConnectSeconds, c.ConnectPerSec)
	}
	if res.Generator.CPUAvgPercent <= 0 || len(res.Generator.Pids) == 0 {
		t.Errorf("generator resources missing: %+v", res.Generator)
	}
	if len(res.Series) == 0 {
		t.Errorf("no time series")
	}
	for _, p := range res.Series {
		if p.Delivered < 0 || p.Sent < 0 || p.GenCPU < 0 || p.Conns < 0 {
			t.Fatalf("negative point %+v", p)
		}
	}
	if len(res.Figures) == 0 || res.Label == "" || res.Machine.Cores == 0 || res.Machine.CPU == "" {
		t.Errorf("figures/label/machine missing: %q %+v", res.Label, res.Machine)
	}
	if tr := res.Traffic; tr != nil {
		if tr.Sent == 0 || tr.Delivered == 0 {
			t.Fatalf("traffic %+v", tr)
		}
		if tr.Missing != 0 || tr.Delivered != tr.Expected {
			t.Errorf("delivered %d, expected %d (missing %d); warnings %v", tr.Delivered, tr.Expected, tr.Missing, res.Warnings)
		}
		if tr.NegativeLatency != 0 || tr.OutOfOrder != 0 || tr.Duplicates != 0 || tr.Refused != 0 {
			t.Errorf("negative %d, out of order %d, duplicates %d, refused %d; warnings %v", tr.NegativeLatency, tr.OutOfOrder, tr.Duplicates, tr.Refused, res.Warnings)
		}
		lat := res.Latency
		n := lat.Count
		if res.LatencyRemote != nil {
			n += res.LatencyRemote.Count
		}
		if n != tr.Delivered {
			t.Errorf("latency samples %d != delivered %d", n, tr.Delivered)
		}
		if lat.Min < 0 || lat.P50 < lat.Min || lat.P99 < lat.P50 || lat.P999 < lat.P99 || lat.Max < lat.P999 {
			t.Errorf("latency not ordered: %+v", lat.Summary)
		}
		if lat.Max > int64(30*time.Second) {
			t.Errorf("latency max %v is not plausible", time.Duration(lat.Max))
		}
		var sum uint64
		for _, b := range lat.Buckets {
			sum += b.Count
		}
		if sum != lat.Count {
			t.Errorf("histogram buckets hold %d, count %d", sum, lat.Count)
		}
		if tr.Seconds <= 0 || tr.DeliveredPerSec <= 0 {
			t.Errorf("rate: %v over %vs", tr.DeliveredPerSec, tr.Seconds)
		}
	}
	switch spec.Scenario {
	case "fanout", "ceiling", "cluster":
		if want := uint64(spec.Conns * spec.Messages); res.Traffic.Delivered != want || res.Traffic.Sent != uint64(spec.Messages) {
			t.Errorf("fanout: sent %d delivered %d, want %d × %d = %d", res.Traffic.Sent, res.Traffic.Delivered, spec.Conns, spec.Messages, want)
		}
	case "rooms":
		// Every room is full, so each message reaches RoomSize members.
		if res.Traffic.Delivered != res.Traffic.Sent*uint64(spec.RoomSize) {
			t.Errorf("rooms: delivered %d, want sent %d × %d", res.Traffic.Delivered, res.Traffic.Sent, spec.RoomSize)
		}
		// The rate is honoured to within 25% over the run.
		want := spec.Rate * float64(spec.Conns) * time.Duration(spec.Duration).Seconds()
		if got := float64(res.Traffic.Sent); got < 0.75*want || got > 1.25*want {
			t.Errorf("rooms: sent %v messages, want about %v", got, want)
		}
	case "echo":
		if res.Traffic.Delivered != res.Traffic.Sent {
			t.Errorf("echo: %d replies for %d requests", res.Traffic.Delivered, res.Traffic.Sent)
		}
	case "presence":
		p := res.Presence
		if p == nil || p.Members != int64(spec.Conns) || p.Complete != p.Members {
			t.Fatalf("presence %+v, want %d complete", p, spec.Conns)
		}
		if p.Seconds <= 0 || p.BytesIn == 0 || p.TimeToFull.Count != uint64(p.Complete) || p.TimeToFull.Min < 0 {
			t.Errorf("presence figures %+v", p)
		}
	case "conns":
		if res.Traffic != nil {
			t.Errorf("conns has traffic")
		}
	}
	var md bytes.Buffer
	report.WriteMarkdown(&md, res)
	if !strings.Contains(md.String(), res.Label) || !strings.Contains(md.String(), "generator CPU") {
		t.Errorf("markdown lacks label or generator CPU:\n%s", md.String())
	}
	var html bytes.Buffer
	if err := report.WriteHTML(&html, "t", []*report.Result{res}, nil); err != nil {
		t.Fatal(err)
	}
	want := 0
	if res.Latency != nil && res.Latency.Count > 0 {
		want++
	}
	if res.LatencyRemote != nil && res.LatencyRemote.Count > 0 {
		want++
	}
	if len(res.Series) > 1 {
		want += 2 // connections, CPU
		if res.Traffic != nil {
			want++
		}
		if res.Server != nil {
			want++
		}
	}
	if plots := strings.Count(html.String(), "<svg"); plots != want {
		t.Errorf("html has %d plots, want %d (%d series points)", plots, want, len(res.Series))
	}
}

func TestScenariosAgainstStub(t *testing.T) {
	hub := newStubHub()
	url := hub.serve(t)
	for _, name := range []string{"conns", "fanout", "rooms", "presence", "echo"} {
		t.Run(name, func(t *testing.T) {
			spec := small(name, url)
			res := runSpec(t, spec, -1) // the stub is this process: nothing separate to sample
			checkResult(t, spec, res)
		})
	}
	t.Run("cluster", func(t *testing.T) {
		// Two listeners on one hub behave as two nodes of a cluster.
		spec := small("cluster", url, hub.serve(t))
		spec.Rate = 0 // closed loop, --in-flight
		res := runSpec(t, spec, -1)
		checkResult(t, spec, res)
		if res.LatencyRemote == nil || res.LatencyRemote.Count != uint64(spec.Conns/2*spec.Messages) {
			t.Errorf("remote latency %+v, want %d samples", res.LatencyRemote, spec.Conns/2*spec.Messages)
		}
		if _, ok := res.Figure("hop p50"); !ok {
			t.Errorf("no hop figure")
		}
	})
	t.Run("cluster paced sender-alone", func(t *testing.T) {
		// one sender on the first "node", every receiver on the second, at
		// a fixed rate: every delivery but the sender's own is remote
		spec := small("cluster", url, hub.serve(t))
		spec.SenderAlone, spec.Rate = true, 200
		began := time.Now()
		res := runSpec(t, spec, -1)
		checkResult(t, spec, res)
		if want := uint64((spec.Conns - 1) * spec.Messages); res.LatencyRemote == nil || res.LatencyRemote.Count != want {
			t.Errorf("remote latency %+v, want %d samples", res.LatencyRemote, want)
		}
		// open loop: the messages take (Messages-1)/Rate at least
		if min := time.Duration(float64(spec.Messages-1) / spec.Rate * float64(time.Second)); time.Since(began) < min {
			t.Errorf("%d messages at %g/s took %v, less than %v", spec.Messages, spec.Rate, time.Since(began), min)
		}
		if !strings.Contains(res.Label, "rate=200/s") || !strings.Contains(res.Label, "sender-alone") {
			t.Errorf("label %q", res.Label)
		}
	})
}

func TestCeilingScenario(t *testing.T) {
	spec := small("ceiling")
	spec.Conns = 60
	res := runSpec(t, spec, 0)
	checkResult(t, spec, res)
	if res.Server == nil || res.Server.RSSPeakBytes <= 0 || len(res.Server.Pids) != 1 {
		t.Fatalf("ceiling server resources %+v", res.Server)
	}
}

// TestWorkerProcesses runs the fan-out with three worker processes and
// checks that the merged counts add up exactly.
func TestWorkerProcesses(t *testing.T) {
	hub := newStubHub()
	url := hub.serve(t)
	spec := small("fanout", url)
	spec.Conns = 45
	spec.Workers = 3
	spec.Loops = 1
	res := runSpec(t, spec, -1)
	checkResult(t, spec, res)
	if res.Workers != 3 || len(res.Generator.Pids) != 4 {
		t.Fatalf("workers %d, generator pids %v: want 3 workers and 4 processes", res.Workers, res.Generator.Pids)
	}
}

func TestConnsFailuresAreCounted(t *testing.T) {
	// A port nobody listens on: every connection fails, and the run says so.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	spec := small("conns", "ws://"+addr+"/api/socket")
	spec.Conns = 10
	_, err := scenario.Run(context.Background(), spec, scenario.Options{ServerPid: -1, Exe: os.Args[0]})
	if err == nil || !strings.Contains(err.Error(), "10 failed") {
		t.Fatalf("err = %v, want all 10 failed", err)
	}
}

// --- against the real server, when it exists ---

func buildServer(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	dir := filepath.Join(root, "cmd", "pondsocket")
	gos, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	if len(gos) == 0 {
		t.Skipf("cmd/pondsocket has no Go files yet: the end-to-end run against the real server is skipped")
	}
	bin := filepath.Join(t.TempDir(), "pondsocket")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/pondsocket")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/pondsocket: %v\n%s", err, out)
	}
	return bin
}

func startServer(t *testing.T, bin string, args ...string) (url string, pid int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, append([]string{"--addr", addr}, args...)...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		ok := false
		for sc.Scan() {
			if !ok && strings.Contains(sc.Text(), "listening on") {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("pondsocket exited without printing \"listening on\"")
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("pondsocket did not print \"listening on\" within 20s")
	}
	return fmt.Sprintf("ws://%s/api/socket", addr), cmd.Process.Pid
}

func TestScenariosAgainstServer(t *testing.T) {
	bin := buildServer(t)
	url, pid := startServer(t, bin)
	for _, name := range []string{"conns", "fanout", "rooms", "presence", "echo"} {
		t.Run(name, func(t *testing.T) {
			spec := small(name, url)
			res := runSpec(t, spec, 0) // found by port
			checkResult(t, spec, res)
			if res.Server == nil || len(res.Server.Pids) != 1 || res.Server.Pids[0] != pid || res.Server.RSSPeakBytes <= 0 {
				t.Errorf("server resources %+v, want pid %d sampled", res.Server, pid)
			}
			if name == "conns" && res.Server != nil && res.Server.RSSPerConnBytes == 0 {
				t.Errorf("no RSS per connection")
			}
		})
	}
}

// The SSE transport (--transport sse, mixed) against the real server:
// every member an event stream, or half of them, with exact counts.
func TestSSEScenariosAgainstServer(t *testing.T) {
	bin := buildServer(t)
	url, _ := startServer(t, bin)
	for _, tr := range []string{"sse", "mixed"} {
		for _, name := range []string{"conns", "fanout", "echo"} {
			t.Run(tr+"/"+name, func(t *testing.T) {
				spec := small(name, url)
				spec.Transport = tr
				res := runSpec(t, spec, 0)
				checkResult(t, spec, res)
				if !strings.Contains(res.Label, "transport="+tr) {
					t.Errorf("label %q does not name the transport", res.Label)
				}
			})
		}
	}
	t.Run("ceiling refuses sse", func(t *testing.T) {
		spec := small("ceiling")
		spec.Transport = "sse"
		if err := spec.Validate(); err == nil {
			t.Fatal("ceiling accepted --transport sse")
		}
	})
}
