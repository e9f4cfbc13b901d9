package e2e

import (
	"bufio"
	"context"
	"encoding/json"
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

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/internal/testenv"
)

// The SSE transport (docs/protocol.md §9): the published client's
// SSEClient (@eleven-am/pondsocket-client 0.0.32) on Node's own
// EventSource, in rooms shared with WebSocket clients, and the bad input
// of §9.1 over raw HTTP.

// newSSEPond connects an SSEClient to srv's /api/socket.
func newSSEPond(t *testing.T, srv *pondsocket.Server, params map[string]any) *pond {
	t.Helper()
	return newSSEPondURL(t, fmt.Sprintf("http://%s/api/socket", srv.Addr()), params)
}

func newSSEPondURL(t *testing.T, url string, params map[string]any) *pond {
	t.Helper()
	d := testenv.StartNodeFlags(t, "pondsocket-sse-client", []string{"--experimental-eventsource", "--no-warnings"}, "pond-driver.mjs")
	p := &pond{t: t, d: d}
	d.Send(map[string]any{"op": "connect", "transport": "sse", "url": url, "params": params})
	p.expect("conn", func(e pondEv) bool { return e.State == "connected" })
	return p
}

// A mixed room: alice on SSE, bob on WebSocket; each sees the other's
// messages, presence joins, updates and leaves.
func TestSSEClientMixedRoom(t *testing.T) {
	srv := startDemo(t, nil)
	a := newSSEPond(t, srv, map[string]any{"token": "alice"})
	b := newPond(t, srv, map[string]any{"token": "bob"})
	const room = "/chat/lobby"

	joinAliceBob(a, b, room, true)
	if got := b.users(room, 2); got[0]["username"] != "alice" || got[1]["username"] != "bob" {
		t.Fatalf("presence list on the WebSocket %v", got)
	}
	a.expect("join", func(e pondEv) bool { return e.Channel == room && e.Presence["username"] == "bob" })
	a.users(room, 2)

	// broadcasts both ways, sender included
	a.send(room, "message", map[string]any{"text": "from sse"})
	b.send(room, "message", map[string]any{"text": "from ws"})
	for _, p := range []*pond{a, b} {
		for _, want := range []string{"from sse", "from ws"} {
			p.expect("message", func(e pondEv) bool { return e.Channel == room && e.Event == "message" && e.Payload["text"] == want })
		}
	}
	// sendForResponse over POST, the answer on the stream
	if r := a.request(room, "ping", map[string]any{}); r["receivedAt"] != float64(1) {
		t.Fatalf("pong %v", r)
	}
	// broadcastTo across transports
	aliceID := a.request(room, "whoami", map[string]any{})["id"].(string)
	b.send(room, "whisper", map[string]any{"to": aliceID, "text": "psst"})
	if m := a.message(room, "whisper"); m["text"] != "psst" {
		t.Fatalf("whisper %v", m)
	}
	// presence updates both ways
	a.send(room, "status", map[string]any{"status": "away"})
	b.send(room, "status", map[string]any{"status": "busy"})
	for _, p := range []*pond{a, b} {
		for _, who := range []string{"alice", "bob"} {
			p.expect("presence", func(e pondEv) bool {
				c, _ := e.Payload["changed"].(map[string]any)
				return e.Channel == room && c != nil && c["username"] == who && c["status"] != "online"
			})
		}
	}
	// a declined join ends DECLINED on the SSE client too
	a.join("/chat/vip", map[string]any{"username": "blocked"})
	a.state("/chat/vip", "DECLINED")

	// the SSE client leaves: bob sees it; it joins again, then disconnects
	// (its DELETE): bob sees it leave again
	a.d.Send(map[string]any{"op": "leave", "channel": room})
	if l := b.expect("leave", func(e pondEv) bool { return e.Channel == room }); l.Presence["username"] != "alice" {
		t.Fatalf("onLeave %v", l.Presence)
	}
	b.users(room, 1)
	a.join(room, map[string]any{"username": "alice"})
	b.expect("join", func(e pondEv) bool { return e.Channel == room && e.Presence["username"] == "alice" })
	a.d.Send(map[string]any{"op": "disconnect"})
	b.expect("leave", func(e pondEv) bool { return e.Channel == room && e.Presence["username"] == "alice" })
	testenv.Eventually(t, 5*time.Second, "the SSE connection to be gone", func() bool { return srv.Stats().Connections == 1 })
}

// sseConn is a raw event stream.
type sseConn struct {
	t    *testing.T
	nc   net.Conn
	br   *bufio.Reader
	resp *http.Response
	body *bufio.Reader
	id   string
}

// rawRequest sends one HTTP request on a fresh connection and returns the
// response (body read) and the connection.
func rawRequest(t *testing.T, addr, method, target string, hdr map[string]string, body string) (*http.Response, string) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, addr)
	for k, v := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	if _, ok := hdr["Content-Length"]; !ok && body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(nc, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

func openStream(t *testing.T, addr, query string, hdr map[string]string) *sseConn {
	t.Helper()
	return openStreamAt(t, addr, "/api/socket?"+query, hdr)
}

func openStreamAt(t *testing.T, addr, target string, hdr map[string]string) *sseConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n", target, addr)
	for k, v := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(nc, b.String()); err != nil {
		t.Fatal(err)
	}
	s := &sseConn{t: t, nc: nc, br: bufio.NewReader(nc)}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	s.resp, err = http.ReadResponse(s.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.id = s.resp.Header.Get("X-Connection-ID")
	return s
}

// event reads the next event: its data lines joined with "\n" as
// EventSource does, or ": comment" for a comment. An "event:" line fails
// the test (EventSource.onmessage would never see the event).
func (s *sseConn) event() string {
	s.t.Helper()
	var data []string
	_ = s.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		line, err := s.body.ReadString('\n')
		if err != nil {
			s.t.Fatalf("stream read: %v (after %q)", err, data)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if len(data) > 0 {
				return strings.Join(data, "\n")
			}
		case strings.HasPrefix(line, ":"):
			if len(data) == 0 {
				s.body.ReadString('\n') // the blank line after it
				return line
			}
		case strings.HasPrefix(line, "data: "):
			data = append(data, line[len("data: "):])
		default:
			s.t.Fatalf("unexpected stream line %q", line)
		}
	}
}

// message reads events up to the next message (skipping keep-alives) and
// decodes it.
func (s *sseConn) message() map[string]any {
	s.t.Helper()
	for {
		ev := s.event()
		if strings.HasPrefix(ev, ":") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(ev), &m); err != nil {
			s.t.Fatalf("event %q: %v", ev, err)
		}
		return m
	}
}

// post sends one client message on the stream's behalf.
func (s *sseConn) post(addr, msg string) int {
	s.t.Helper()
	resp, _ := rawRequest(s.t, addr, "POST", "/api/socket", map[string]string{"X-Connection-ID": s.id, "Content-Type": "application/json"}, msg)
	return resp.StatusCode
}

func TestSSERawProtocol(t *testing.T) {
	srv := startDemo(t, func(o *pondsocket.Options) {
		o.MaxMessageSize = 4096
		o.CheckOrigin = true
		o.AllowedOrigins = []string{"http://app.example"}
	})
	addr := srv.Addr().String()
	bystander := dialRawPond(t, srv, "token=bob")
	bystander.send(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/raw","requestId":"j","payload":{"username":"bob"}}`)
	for m := bystander.next(); m["event"] != "ACKNOWLEDGE"; m = bystander.next() {
	}

	// a declined stream answers the handler's status and text
	s := openStream(t, addr, "token=bad", nil)
	if body, _ := io.ReadAll(s.resp.Body); s.resp.StatusCode != 401 || strings.TrimSpace(string(body)) != "Invalid token" {
		t.Fatalf("declined stream: %d %q", s.resp.StatusCode, body)
	}
	// a foreign origin is refused like an upgrade
	if s := openStream(t, addr, "token=eve", map[string]string{"Origin": "http://evil.example"}); s.resp.StatusCode != 403 {
		t.Fatalf("foreign origin: %d", s.resp.StatusCode)
	}

	s = openStream(t, addr, "token=alice", map[string]string{"Origin": "http://app.example"})
	h := s.resp.Header
	for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "Connection": "keep-alive",
		"X-Accel-Buffering": "no", "Access-Control-Allow-Origin": "http://app.example", "Access-Control-Expose-Headers": "X-Connection-ID"} {
		if h.Get(k) != want {
			t.Errorf("stream header %s = %q, want %q", k, h.Get(k), want)
		}
	}
	if s.resp.StatusCode != 200 || len(s.id) < 20 {
		t.Fatalf("stream: %d, id %q", s.resp.StatusCode, s.id)
	}
	s.body = bufio.NewReader(s.resp.Body)
	m := s.message()
	if m["action"] != "CONNECT" || m["payload"].(map[string]any)["connectionId"] != s.id {
		t.Fatalf("first event %v, want CONNECT with connectionId %s", m, s.id)
	}

	// preflight: allowed and foreign origins
	resp, _ := rawRequest(t, addr, "OPTIONS", "/api/socket?token=alice", map[string]string{"Origin": "http://app.example",
		"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-connection-id"}, "")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "http://app.example" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "X-Connection-ID") ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "DELETE") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := rawRequest(t, addr, "OPTIONS", "/api/socket", map[string]string{"Origin": "http://evil.example"}, ""); resp.StatusCode != 403 {
		t.Fatalf("foreign preflight: %d", resp.StatusCode)
	}

	// bad requests
	join := `{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/raw","requestId":"j1","payload":{"username":"alice"}}`
	if resp, _ := rawRequest(t, addr, "POST", "/api/socket", nil, join); resp.StatusCode != 400 {
		t.Fatalf("POST without id: %d", resp.StatusCode)
	}
	if resp, _ := rawRequest(t, addr, "POST", "/api/socket", map[string]string{"X-Connection-ID": "nope"}, join); resp.StatusCode != 404 {
		t.Fatalf("POST with an unknown id: %d", resp.StatusCode)
	}
	if resp, _ := rawRequest(t, addr, "POST", "/api/socket", map[string]string{"X-Connection-ID": s.id, "Content-Length": "5000"}, ""); resp.StatusCode != 413 {
		t.Fatalf("POST over MaxMessageSize: %d", resp.StatusCode)
	}
	if resp, _ := rawRequest(t, addr, "POST", "/api/socket", map[string]string{"X-Connection-ID": s.id, "Origin": "http://evil.example"}, join); resp.StatusCode != 403 {
		t.Fatalf("POST from a foreign origin: %d", resp.StatusCode)
	}
	if st := s.post(addr, `not json`); st != 202 {
		t.Fatalf("POST malformed: %d", st)
	}
	if m := s.message(); m["event"] != "INVALID_MESSAGE" || m["channelName"] != "ENDPOINT" || m["payload"].(map[string]any)["status"].(float64) < 400 {
		t.Fatalf("malformed JSON answer %v", m)
	}

	// join and broadcast: the answers on the stream, the bystander sees them
	if st := s.post(addr, join); st != 202 {
		t.Fatalf("POST join: %d", st)
	}
	for m := s.message(); m["event"] != "ACKNOWLEDGE"; m = s.message() {
	}
	for m := bystander.next(); !(m["action"] == "PRESENCE" && m["event"] == "JOIN"); m = bystander.next() {
	}
	s.post(addr, `{"action":"BROADCAST","channelName":"/chat/raw","requestId":"b1","event":"message","payload":{"text":"hi"}}`)
	for m := bystander.next(); m["event"] != "message"; m = bystander.next() {
	}

	// DELETE ends it as a disconnect: the stream ends, the bystander sees
	// the leave, and the id is unknown from then on
	resp, _ = rawRequest(t, addr, "DELETE", "/api/socket", map[string]string{"X-Connection-ID": s.id, "Origin": "http://app.example"}, "")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "http://app.example" {
		t.Fatalf("DELETE: %d %v", resp.StatusCode, resp.Header)
	}
	for {
		m := bystander.next()
		if m["action"] == "PRESENCE" && m["event"] == "LEAVE" {
			break
		}
	}
	_ = s.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, s.body); err != nil {
		t.Fatalf("stream after DELETE: %v", err)
	}
	if st := s.post(addr, join); st != 404 {
		t.Fatalf("POST after DELETE: %d", st)
	}
	if resp, _ := rawRequest(t, addr, "DELETE", "/api/socket", map[string]string{"X-Connection-ID": s.id}, ""); resp.StatusCode != 404 {
		t.Fatalf("second DELETE: %d", resp.StatusCode)
	}
	// the bystander carries on
	bystander.send(`{"action":"BROADCAST","channelName":"/chat/raw","requestId":"b2","event":"ping","payload":{}}`)
	for m := bystander.next(); m["event"] != "pong"; m = bystander.next() {
	}
}

// Keep-alive comments every PingInterval; the WebSocket limits on a
// stream: the idle timeout and MaxConnections.
func TestSSEKeepaliveAndLimits(t *testing.T) {
	srv := startDemo(t, func(o *pondsocket.Options) {
		o.PingInterval = 100 * time.Millisecond
		o.PongWait = 300 * time.Millisecond
		o.Transport.IdleTimeout = 800 * time.Millisecond
		o.MaxConnections = 2
	})
	addr := srv.Addr().String()
	s := openStream(t, addr, "token=alice", nil)
	s.body = bufio.NewReader(s.resp.Body)
	s.message() // CONNECT
	// no pong is expected of a stream: it outlives PongWait
	for range 5 {
		if ev := s.event(); ev != ": keepalive" {
			t.Fatalf("expected a keep-alive, got %q", ev)
		}
	}
	// MaxConnections counts streams
	bystander := dialRawPond(t, srv, "token=bob")
	if s2 := openStream(t, addr, "token=carol", nil); s2.resp.StatusCode != 503 {
		t.Fatalf("stream over MaxConnections: %d", s2.resp.StatusCode)
	}
	// the idle timeout ends the stream (no message POSTed since it opened)
	start := time.Now()
	_ = s.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, s.body); err != nil {
		t.Fatalf("stream did not end at the idle timeout: %v", err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("stream ended after %v", el)
	}
	_ = bystander
}

// A stream whose reader never reads while its room is flooded is cut by
// the outbound limit; the server's memory stays bounded and a bystander
// keeps being served.
func TestSSESlowReaderIsCut(t *testing.T) {
	srv := startDemo(t, func(o *pondsocket.Options) {
		o.Outbound.MaxBytes = 256 << 10
		o.Outbound.SlowConsumerTimeout = 200 * time.Millisecond
	})
	addr := srv.Addr().String()
	s := openStream(t, addr, "token=alice", nil)
	s.body = bufio.NewReader(s.resp.Body)
	s.message()
	if st := s.post(addr, `{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/flood","requestId":"j","payload":{"username":"alice"}}`); st != 202 {
		t.Fatalf("join: %d", st)
	}
	for m := s.message(); m["event"] != "ACKNOWLEDGE"; m = s.message() {
	}
	// shrink the reader's socket buffer: from now on it reads nothing
	if tc, ok := s.nc.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	flooder := dialRawPond(t, srv, "token=bob")
	flooder.send(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/flood","requestId":"j","payload":{"username":"bob"}}`)
	for m := flooder.next(); m["event"] != "ACKNOWLEDGE"; m = flooder.next() {
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	text := strings.Repeat("x", 8<<10)
	deadline := time.Now().Add(10 * time.Second)
	sent := 0
	for srv.Stats().SlowConsumers == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the stalled stream was not cut after %d messages (%d MiB)", sent, sent*8>>10)
		}
		for range 50 {
			flooder.send(`{"action":"BROADCAST","channelName":"/chat/flood","requestId":"f` + strconv.Itoa(sent) + `","event":"message","payload":{"text":"` + text + `"}}`)
			sent++
		}
		// the flooder reads its own echoes, so it is never slow itself
		for range 50 {
			for m := flooder.next(); m["event"] != "message"; m = flooder.next() {
			}
		}
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grow := int64(after.HeapInuse) - int64(before.HeapInuse); grow > 256<<20 {
		t.Fatalf("heap grew by %d MiB", grow>>20)
	}
	// the flooder (a bystander of the cut) carries on and sees alice leave
	flooder.send(`{"action":"BROADCAST","channelName":"/chat/flood","requestId":"p","event":"ping","payload":{}}`)
	for m := flooder.next(); m["event"] != "pong"; m = flooder.next() {
	}
	testenv.Eventually(t, 5*time.Second, "the cut stream to leave", func() bool { return srv.Stats().Connections == 1 })
}

// Through Manager.HTTPHandler on a net/http ServeMux: the SSEClient and a
// WebSocket client in one room, the bad requests, and the stream handed
// over to the event loops.
func TestSSEThroughManager(t *testing.T) {
	addr, m, _ := startManager(t)
	a := newSSEPondURL(t, "http://"+addr+"/ws/api/socket", map[string]any{"token": "alice"})
	b := newPondURL(t, "ws://"+addr+"/ws/api/socket", map[string]any{"token": "bob"})
	const room = "/chat/m"
	joinAliceBob(a, b, room, false)
	a.expect("join", func(e pondEv) bool { return e.Channel == room && e.Presence["username"] == "bob" })
	b.send(room, "message", map[string]any{"text": "from ws"})
	if m := a.message(room, "message"); m["text"] != "from ws" {
		t.Fatalf("broadcast %v", m)
	}
	if r := a.request(room, "ping", map[string]any{}); r["receivedAt"] != float64(1) {
		t.Fatalf("pong %v", r)
	}
	for method, want := range map[string]int{"POST": 400, "DELETE": 400} {
		if resp, _ := rawRequest(t, addr, method, "/ws/api/socket", nil, ""); resp.StatusCode != want {
			t.Fatalf("%s without id: %d", method, resp.StatusCode)
		}
	}
	if resp, _ := rawRequest(t, addr, "POST", "/ws/api/socket", map[string]string{"X-Connection-ID": "nope"}, "{}"); resp.StatusCode != 404 {
		t.Fatalf("unknown id: %d", resp.StatusCode)
	}
	if resp, _ := rawRequest(t, addr, "OPTIONS", "/ws/api/socket", map[string]string{"Origin": "http://app.example"}, ""); resp.StatusCode != 204 ||
		resp.Header.Get("Access-Control-Allow-Origin") != "http://app.example" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	s := openStreamAt(t, addr, "/ws/api/socket?token=bad", nil)
	if s.resp.StatusCode != 401 {
		t.Fatalf("declined stream: %d", s.resp.StatusCode)
	}
	a.d.Send(map[string]any{"op": "disconnect"})
	b.expect("leave", func(e pondEv) bool { return e.Channel == room && e.Presence["username"] == "alice" })
	testenv.Eventually(t, 5*time.Second, "the stream to be gone", func() bool { return m.Stats().Connections == 1 })
}

// Over HTTPS the stream cannot ride the event loops: the Manager hands it
// to the fallback transport, with the same behaviour.
func TestSSEThroughManagerOverHTTPS(t *testing.T) {
	opts := pondsocket.DefaultOptions()
	opts.Logger = quiet()
	m := pondsocket.NewManager(context.Background(), *opts)
	registerReferenceDemo(m)
	ts := httptest.NewTLSServer(m.HTTPHandler())
	t.Cleanup(func() { _ = m.Stop(5 * time.Second); ts.Close() })
	cl := ts.Client()
	req, _ := http.NewRequest("GET", ts.URL+"/api/socket?token=alice", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	id := resp.Header.Get("X-Connection-ID")
	if resp.StatusCode != 200 || id == "" {
		t.Fatalf("stream: %d %v", resp.StatusCode, resp.Header)
	}
	br := bufio.NewReader(resp.Body)
	next := func() string {
		t.Helper()
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("stream read: %v", err)
			}
			if strings.HasPrefix(line, "data: ") {
				return line
			}
		}
	}
	if ev := next(); !strings.Contains(ev, `"connectionId":"`+id+`"`) {
		t.Fatalf("first event %q", ev)
	}
	post, _ := http.NewRequest("POST", ts.URL+"/api/socket", strings.NewReader(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/tls","requestId":"j","payload":{"username":"alice"}}`))
	post.Header.Set("X-Connection-ID", id)
	pr, err := cl.Do(post)
	if err != nil || pr.StatusCode != 202 {
		t.Fatalf("POST: %v %v", pr, err)
	}
	pr.Body.Close()
	for ev := next(); !strings.Contains(ev, "ACKNOWLEDGE"); ev = next() {
	}
	del, _ := http.NewRequest("DELETE", ts.URL+"/api/socket", nil)
	del.Header.Set("X-Connection-ID", id)
	if dr, err := cl.Do(del); err != nil || dr.StatusCode != 204 {
		t.Fatalf("DELETE: %v %v", dr, err)
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		t.Fatalf("stream after DELETE: %v", err)
	}
}
