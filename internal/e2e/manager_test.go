package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/internal/testenv"
)

// startManager mounts a Manager on a net/http ServeMux (with a logging
// middleware in front, as applications do) and serves it on 127.0.0.1.
func startManager(t *testing.T) (string, *pondsocket.Manager, *int) {
	t.Helper()
	opts := pondsocket.DefaultOptions()
	opts.Logger = quiet()
	ctx, cancel := context.WithCancel(context.Background())
	m := pondsocket.NewManager(ctx, *opts)
	registerReferenceDemoAt(m, "/ws/api/socket")
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "plain route") })
	mux.Handle("/ws/", m.HTTPHandler())
	seen := 0
	logged := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen++ // the router's middleware runs before the upgrade
		mux.ServeHTTP(w, r)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: logged}
	go hs.Serve(l)
	t.Cleanup(func() {
		cancel()
		_ = m.Stop(5 * time.Second)
		hs.Close()
	})
	return l.Addr().String(), m, &seen
}

func TestManagerOnServeMux(t *testing.T) {
	addr, m, seen := startManager(t)
	// a normal route still works
	resp, err := http.Get("http://" + addr + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "plain route" {
		t.Fatalf("plain route %q", b)
	}
	// a declined upgrade is a normal HTTP response
	_, resp, err = websocket.DefaultDialer.Dial(fmt.Sprintf("ws://%s/ws/api/socket?token=bad", addr), nil)
	if err == nil || resp.StatusCode != 401 {
		t.Fatalf("decline: %v %v", resp, err)
	}
	b, _ = io.ReadAll(resp.Body)
	if strings.TrimSpace(string(b)) != "Invalid token" {
		t.Fatalf("decline body %q", b)
	}
	// a non-upgrade request to the WebSocket route
	resp, err = http.Get("http://" + addr + "/ws/api/socket")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("plain GET on the socket route: %d", resp.StatusCode)
	}

	// the JS client through the bridge: join, presence, broadcast
	a := newPondAt(t, addr+"/ws", map[string]any{"token": "alice"})
	b2 := newPondAt(t, addr+"/ws", map[string]any{"token": "bob"})
	_ = a
	_ = b2
	if *seen == 0 {
		t.Fatal("router middleware did not run")
	}
	const room = "/chat/bridge"
	a.join(room, map[string]any{"username": "alice"})
	a.state(room, "JOINED")
	b2.join(room, map[string]any{"username": "bob"})
	b2.state(room, "JOINED")
	a.users(room, 2)
	a.send(room, "message", map[string]any{"text": "via net/http"})
	if msg := b2.message(room, "message"); msg["text"] != "via net/http" {
		t.Fatalf("broadcast %v", msg)
	}
	if st := m.Stats(); st.Accepted < 2 || st.Connections != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// Frames the client sends right behind its upgrade request (already in
// net/http's buffer at hijack time) are not lost.
func TestManagerKeepsBufferedBytes(t *testing.T) {
	addr, _, _ := startManager(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := "GET /ws/api/socket?token=alice HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	join := `{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/early","requestId":"early","payload":{"username":"a"}}`
	frame := maskedText(join)
	if _, err := c.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 0, 4096)
	tmp := make([]byte, 4096)
	for !strings.Contains(string(buf), `"requestId":"early"`) {
		n, err := c.Read(tmp)
		if err != nil {
			t.Fatalf("no answer to the early join: %v\n%s", err, buf)
		}
		buf = append(buf, tmp[:n]...)
	}
	if !strings.Contains(string(buf), "101 Switching Protocols") || !strings.Contains(string(buf), `"event":"ACKNOWLEDGE"`) {
		t.Fatalf("got %q", buf)
	}
}

func maskedText(s string) []byte {
	p := []byte(s)
	out := []byte{0x81}
	switch {
	case len(p) < 126:
		out = append(out, 0x80|byte(len(p)))
	default:
		out = append(out, 0x80|126, byte(len(p)>>8), byte(len(p)))
	}
	key := []byte{1, 2, 3, 4}
	out = append(out, key...)
	for i, c := range p {
		out = append(out, c^key[i%4])
	}
	return out
}

// Behind an HTTPS net/http server the hijacked connection is a *tls.Conn,
// which the event loops cannot own: it is served by the fallback transport
// with the same protocol.
func TestManagerOverHTTPS(t *testing.T) {
	opts := pondsocket.DefaultOptions()
	opts.Logger = quiet()
	m := pondsocket.NewManager(context.Background(), *opts)
	defer m.Stop(time.Second)
	registerReferenceDemoAt(m, "/ws/api/socket")
	ts := httptest.NewTLSServer(m.HTTPHandler())
	defer ts.Close()
	d := websocket.Dialer{TLSClientConfig: ts.Client().Transport.(*http.Transport).TLSClientConfig}
	c, resp, err := d.Dial("wss"+strings.TrimPrefix(ts.URL, "https")+"/ws/api/socket?token=alice", nil)
	if err != nil {
		t.Fatalf("wss through net/http: %v %v", resp, err)
	}
	r := &raw{t: t, c: c, name: "https"}
	t.Cleanup(func() { c.Close() })
	if first := r.next(); first["action"] != "CONNECT" {
		t.Fatalf("first frame %v", first)
	}
	joinRaw(r, "/chat/https", "j")
	r.sync("/chat/https")
	if st := m.Stats(); st.Connections != 1 {
		t.Fatalf("connections %d", st.Connections)
	}
}

// A ResponseWriter that cannot be hijacked gets a clear 500, and nothing
// is left reserved.
func TestManagerHijackFailure(t *testing.T) {
	opts := pondsocket.DefaultOptions()
	opts.Logger = quiet()
	opts.MaxConnections = 1
	m := pondsocket.NewManager(context.Background(), *opts)
	defer m.Stop(time.Second)
	registerReferenceDemoAt(m, "/ws/api/socket")
	req := httptest.NewRequest("GET", "/ws/api/socket?token=alice", nil)
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	for i := 0; i < 3; i++ { // the slot of a failed hand-over is given back
		rec := httptest.NewRecorder()
		m.HTTPHandler()(rec, req)
		if rec.Code != 500 || !strings.Contains(rec.Body.String(), "cannot hand connections over") {
			t.Fatalf("attempt %d: %d %q", i, rec.Code, rec.Body.String())
		}
	}
}

// The bridge applies the listener's upgrade checks before any user code.
func TestManagerChecksTheUpgrade(t *testing.T) {
	opts := pondsocket.DefaultOptions()
	opts.Logger = quiet()
	opts.CheckOrigin = true
	opts.AllowedOrigins = []string{"http://ok.example"}
	m := pondsocket.NewManager(context.Background(), *opts)
	defer m.Stop(time.Second)
	ran := 0
	m.CreateEndpoint("/ws", func(ctx *pondsocket.ConnectionContext) error { ran++; return ctx.Accept() })
	for _, c := range []struct {
		name, key, version, origin string
		status                     int
	}{
		{"bad key", "short", "13", "", 400},
		{"old version", "dGhlIHNhbXBsZSBub25jZQ==", "8", "", 426},
		{"foreign origin", "dGhlIHNhbXBsZSBub25jZQ==", "13", "http://evil.example", 403},
	} {
		req := httptest.NewRequest("GET", "/ws", nil)
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Sec-WebSocket-Version", c.version)
		req.Header.Set("Sec-WebSocket-Key", c.key)
		if c.origin != "" {
			req.Header.Set("Origin", c.origin)
		}
		rec := httptest.NewRecorder()
		m.HTTPHandler()(rec, req)
		if rec.Code != c.status {
			t.Fatalf("%s: %d %q, want %d", c.name, rec.Code, rec.Body.String(), c.status)
		}
	}
	if ran != 0 {
		t.Fatalf("the connection handler ran %d times for refused upgrades", ran)
	}
}

// A Manager with a PubSub is one node of a cluster like a Server, and its
// Stop stops that node too: other nodes see its users leave at once (not
// after their heartbeat timeout), and no goroutine of ours is left. Before,
// Manager started its node through a throwaway Server and never stopped
// it: it kept sending heartbeats, so its users stayed listed elsewhere.
func TestManagerWithPubSubStopsCleanly(t *testing.T) {
	testenv.NodeModules(t)
	redisAddr, _ := startRedis(t)
	host, portStr, _ := net.SplitHostPort(redisAddr)
	port, _ := strconv.Atoi(portStr)
	// the other node: cmd/pondsocket in its own process, with a heartbeat
	// timeout far longer than the test, so only a goodbye can remove bob
	_, addrs := startNodesArgs(t, 1, "--redis-addr", redisAddr, "--heartbeat-timeout", "60s", "--heartbeat-interval", "1s")

	base := goroutinesOfOurs()
	opts := pondsocket.DefaultOptions()
	opts.Logger = quiet()
	opts.PubSub = pondsocket.NewRedisPubSub(&pondsocket.RedisPubSubOptions{Host: host, Port: port})
	opts.Cluster = pondsocket.ClusterOptions{NodeID: "manager", Namespace: "multi", HeartbeatInterval: time.Second, HeartbeatTimeout: 60 * time.Second}
	m := pondsocket.NewManager(context.Background(), *opts)
	registerReferenceDemoAt(m, "/api/socket")
	mux := http.NewServeMux()
	mux.Handle("/api/", m.HTTPHandler())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(l)
	defer hs.Close()
	if err := m.Ready(); err != nil {
		t.Fatal(err)
	}

	const room = "/chat/mgr"
	alice := newPondAt(t, addrs[0], map[string]any{"username": "alice"})
	alice.join(room, map[string]any{})
	alice.state(room, "JOINED")
	bob := newPondURL(t, "ws://"+l.Addr().String()+"/api/socket", map[string]any{"token": "bob"})
	bob.join(room, map[string]any{"username": "bob"})
	bob.state(room, "JOINED")
	alice.users(room, 2)

	start := time.Now()
	if err := m.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	alice.users(room, 1) // bob's leave crossed the bus before the node closed
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("bob left after %v: by the heartbeat timeout, not by Stop", d)
	}
	hs.Close()
	defer func() {
		if t.Failed() {
			t.Log(ourStacks())
		}
	}()
	testenv.Eventually(t, 5*time.Second, "no goroutine of ours left after Manager.Stop", func() bool {
		return goroutinesOfOurs() <= base
	})
}

func ourStacks() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if isOurs(g) {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

func isOurs(g string) bool {
	if strings.Contains(g, "internal/testenv") || strings.Contains(g, "pondsocket_test.") {
		return false // the test's own helpers
	}
	return strings.Contains(g, "github.com/pondsocket/pondsocket.") || strings.Contains(g, "github.com/pondsocket/pondsocket/internal/") ||
		strings.Contains(g, "github.com/pondsocket/pondsocket/cluster") || strings.Contains(g, "panjf2000/gnet")
}

// goroutinesOfOurs counts goroutines running this module's code or gnet's
// (the event loops).
func goroutinesOfOurs() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if isOurs(g) {
			n++
		}
	}
	return n
}
