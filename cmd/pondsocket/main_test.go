package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pondsocket/pondsocket/internal/testenv"
	"github.com/prometheus/common/expfmt"
)

// The server binary: starts with no flags but an address, serves /healthz
// and /metrics next to the WebSocket endpoint, runs the demo chat, and
// drains on SIGTERM (clients get close 1001, the process exits 0).
func TestServerBinary(t *testing.T) {
	p := testenv.Start(t, buildBinary(t), testenv.ProcOptions{
		Args:  []string{"--addr", "127.0.0.1:0", "--log-level", "warn"},
		Ready: "listening on ",
	})
	addr := p.Ready

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

	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = c.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 1001 {
		t.Fatalf("on SIGTERM: %v, want close 1001", err)
	}
	if err := p.Stop(15 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
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
		{"/theme.css", "text/css", `--accent`},
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
		cfg, err := parseConfig(args, noEnv, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := newServer(cfg, log); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

func noEnv(string) (string, bool) { return "", false }

// buildBinary builds this command once per test binary.
func buildBinary(t *testing.T) string {
	t.Helper()
	return testenv.Build(t, "cmd/pondsocket")
}

// TestMain removes the binary buildBinary made.
func TestMain(m *testing.M) { testenv.Main(m) }

// Issue 10 point 11: a bad value in a flag or in the environment stops the
// start (exit status 2) with a message naming it, instead of silently
// meaning a default.
func TestBadConfigurationStopsTheStart(t *testing.T) {
	bin := buildBinary(t)
	for _, c := range []struct {
		args []string
		env  string
		want string
	}{
		{nil, "PONDSOCKET_MAX_CONNECTIONS=2k", `PONDSOCKET_MAX_CONNECTIONS="2k": parse error`},
		{nil, "PONDSOCKET_COMPRESSION=yes", `PONDSOCKET_COMPRESSION="yes"`},
		{nil, "PONDSOCKET_EVENT_LOOPS=-3", `PONDSOCKET_EVENT_LOOPS="-3": must be 0`},
		{[]string{"--event-loops", "-3"}, "", "--event-loops: must be 0"},
		{[]string{"--drain-timeout", "-1s"}, "", "--drain-timeout: must not be negative"},
		{[]string{"--log-level", "loud"}, "", "--log-level: must be debug, info, warn or error"},
		{nil, "PONDSOCKET_LOG_LEVEL=loud", `PONDSOCKET_LOG_LEVEL="loud": must be`},
		{nil, "PONDSOCKET_PING_INTERVAL=30", `PONDSOCKET_PING_INTERVAL="30"`},
		{[]string{"--max-message-size", "0"}, "", "--max-message-size: must be more than 0"},
	} {
		cmd := exec.Command(bin, append([]string{"--addr", "127.0.0.1:0"}, c.args...)...)
		if c.env != "" {
			cmd.Env = append(cmd.Environ(), c.env)
		}
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 {
			t.Errorf("%v %s: exit %v, want status 2; output %s", c.args, c.env, err, out)
			continue
		}
		if !strings.Contains(string(out), c.want) {
			t.Errorf("%v %s: output %q lacks %q", c.args, c.env, out, c.want)
		}
	}
}

// Issue 10 point 11: environment values mean what the flags mean
// (PONDSOCKET_COMPRESSION=1 is on) and lists are trimmed (the second origin
// of "a, b" is allowed).
func TestEnvironmentAndLists(t *testing.T) {
	addr := testenv.Start(t, buildBinary(t), testenv.ProcOptions{
		Args:  []string{"--addr", "127.0.0.1:0", "--origins", "https://a.example, https://b.example"},
		Env:   []string{"PONDSOCKET_COMPRESSION=1", "PONDSOCKET_LOG_LEVEL=warn"},
		Ready: "listening on ",
	}).Ready
	d := websocket.Dialer{EnableCompression: true}
	for origin, ok := range map[string]bool{"https://a.example": true, "https://b.example": true, "https://c.example": false} {
		c, resp, err := d.Dial(fmt.Sprintf("ws://%s/api/socket", addr), http.Header{"Origin": {origin}})
		if ok != (err == nil) {
			t.Fatalf("origin %s: err %v, want allowed=%v", origin, err, ok)
		}
		if err == nil {
			if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
				t.Errorf("PONDSOCKET_COMPRESSION=1 did not enable compression (extensions %q)", ext)
			}
			c.Close()
		}
	}
}
