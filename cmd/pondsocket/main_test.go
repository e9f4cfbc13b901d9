package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/common/expfmt"
)

// The server binary: starts with no flags but an address, serves /healthz
// and /metrics next to the WebSocket endpoint, runs the demo chat, and
// drains on SIGTERM (clients get close 1001, the process exits 0).
func TestServerBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "pondsocket")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--addr", "127.0.0.1:0", "--log-level", "warn")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sc := bufio.NewScanner(stderr)
	addr := ""
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		t.Fatal("no 'listening on' line")
	}
	go io.Copy(io.Discard, stderr)

	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("healthz %d %q", resp.StatusCode, b)
	}

	c, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://%s/api/socket?username=ann", addr), nil)
	if err != nil {
		t.Fatal(err)
	}
	read := func() string {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, m, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		return string(m)
	}
	if m := read(); !strings.Contains(m, `"action":"CONNECT"`) {
		t.Fatalf("first frame %s", m)
	}
	c.WriteMessage(websocket.TextMessage, []byte(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/demo","requestId":"j","payload":{}}`))
	if m := read(); !strings.Contains(m, `"event":"ACKNOWLEDGE"`) {
		t.Fatalf("join %s", m)
	}
	if m := read(); !strings.Contains(m, `"presence":[{"status":"online","username":"ann"}]`) {
		t.Fatalf("presence %s", m)
	}
	c.WriteMessage(websocket.TextMessage, []byte(`{"action":"BROADCAST","event":"echo","channelName":"/chat/demo","requestId":"e","payload":{"n":1}}`))
	if m := read(); !strings.Contains(m, `"event":"echo"`) || !strings.Contains(m, `"payload":{"n":1}`) {
		t.Fatalf("echo %s", m)
	}

	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"pondsocket_connections 1", "pondsocket_channels 1", "pondsocket_joins_total 1"} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("metrics lack %q:\n%s", want, b)
		}
	}
	checkMetrics(t, resp, b)
	checkPage(t, "http://"+addr)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = c.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 1001 {
		t.Fatalf("on SIGTERM: %v, want close 1001", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("server did not exit after SIGTERM")
	}
}

// checkMetrics parses /metrics as the Prometheus text format and checks
// the families, their types and the values of the connection that is open
// (one connection in one channel, a join and an echo).
func checkMetrics(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("/metrics Content-Type %q", ct)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics is not valid Prometheus text: %v\n%s", err, body)
	}
	value := func(name string) float64 {
		t.Helper()
		f := fams[name]
		if f == nil || len(f.GetMetric()) != 1 {
			t.Fatalf("/metrics: no single metric %s", name)
		}
		m := f.GetMetric()[0]
		switch f.GetType().String() {
		case "COUNTER":
			return m.GetCounter().GetValue()
		case "GAUGE":
			return m.GetGauge().GetValue()
		}
		return m.GetUntyped().GetValue()
	}
	gauges := []string{"pondsocket_connections", "pondsocket_channels"}
	counters := []string{
		"pondsocket_upgrades_accepted_total", "pondsocket_upgrades_declined_total", "pondsocket_http_requests_total",
		"pondsocket_joins_total", "pondsocket_joins_declined_total", "pondsocket_leaves_total",
		"pondsocket_messages_in_total", "pondsocket_bytes_in_total", "pondsocket_frames_out_total", "pondsocket_bytes_out_total",
		"pondsocket_socket_writes_total", "pondsocket_slow_consumers_total", "pondsocket_rate_limited_total",
		"pondsocket_handler_errors_total", "pondsocket_invalid_messages_total", "pondsocket_protocol_errors_total",
		"pondsocket_pong_timeouts_total", "pondsocket_handshake_timeouts_total",
		"pondsocket_broadcasts_total", "pondsocket_deliveries_total", "pondsocket_presence_messages_total",
	}
	for _, names := range []struct {
		names []string
		typ   string
	}{{gauges, "GAUGE"}, {counters, "COUNTER"}} {
		for _, n := range names.names {
			f := fams[n]
			if f == nil {
				t.Errorf("/metrics lacks %s", n)
				continue
			}
			if f.GetType().String() != names.typ || f.GetHelp() == "" {
				t.Errorf("/metrics %s: type %v, help %q", n, f.GetType(), f.GetHelp())
			}
		}
	}
	for _, n := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"} {
		if fams[n] == nil {
			t.Errorf("/metrics lacks %s (Go and process collectors)", n)
		}
	}
	for name, want := range map[string]float64{
		"pondsocket_connections": 1, "pondsocket_channels": 1, "pondsocket_joins_total": 1,
		"pondsocket_upgrades_accepted_total": 1, "pondsocket_messages_in_total": 2,
	} {
		if got := value(name); got != want {
			t.Errorf("/metrics %s = %v, want %v", name, got, want)
		}
	}
	for _, name := range []string{"pondsocket_bytes_in_total", "pondsocket_bytes_out_total", "pondsocket_frames_out_total", "pondsocket_presence_messages_total", "pondsocket_http_requests_total"} {
		if value(name) <= 0 {
			t.Errorf("/metrics %s is 0", name)
		}
	}
	for n := range fams {
		if strings.HasPrefix(n, "pondsocket_cluster_") {
			t.Errorf("/metrics has %s on a single node", n)
		}
	}
}

// checkPage: / is the chat page, its modules and stylesheet are served
// with their types, other paths are 404.
func checkPage(t *testing.T, base string) {
	t.Helper()
	for _, c := range []struct {
		path, ctype, contains string
	}{
		{"/", "text/html", `<script type="module" src="app.js"></script>`},
		{"/app.js", "text/javascript", `from './pondsocket.js'`},
		{"/pondsocket.js", "text/javascript", `export class PondSocket`},
		{"/style.css", "text/css", `.presence`},
		{"/favicon.svg", "image/svg+xml", `<svg`},
	} {
		resp, err := http.Get(base + c.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), c.ctype) || !strings.Contains(string(b), c.contains) {
			t.Errorf("GET %s: %d %q, want %s containing %q:\n%.300s", c.path, resp.StatusCode, resp.Header.Get("Content-Type"), c.ctype, c.contains, b)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", c.path, csp)
		}
	}
	resp, err := http.Get(base + "/no-such-file")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("GET /no-such-file: %d, want 404", resp.StatusCode)
	}
}

func TestPageURL(t *testing.T) {
	for addr, want := range map[string]string{
		"0.0.0.0:8080":   "http://localhost:8080/",
		"[::]:8080":      "http://localhost:8080/",
		"127.0.0.1:9000": "http://127.0.0.1:9000/",
		"[::1]:9000":     "http://[::1]:9000/",
	} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := pageURL(a); got != want {
			t.Errorf("pageURL(%s) = %s, want %s", addr, got, want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, args := range [][]string{
		{"--redis-addr", "127.0.0.1:6379", "--kafka-brokers", "127.0.0.1:9092"},
		{"--redis-addr", "no-port"},
	} {
		if _, err := newServer(parseFlags(args, io.Discard), log); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
