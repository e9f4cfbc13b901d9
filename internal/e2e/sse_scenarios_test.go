package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/internal/testenv"
)

// More of the SSE transport (docs/protocol.md §9) with the npm SSEClient
// 0.0.32 and raw HTTP: eviction, a server process restarted under the
// client, thousands of idle streams, and the bad POSTs of §9.1 on both
// ways of serving (the engine's listener and Manager.HTTPHandler).

// An SSE member is evicted: it sees kicked_out and kicked as a WebSocket
// member does (TestPondClientEviction), the others see it leave, and its
// stream stays open (§6.7).
func TestSSEClientEviction(t *testing.T) {
	srv := startDemo(t, nil)
	a := newPond(t, srv, map[string]any{"token": "alice"})
	b := newSSEPond(t, srv, map[string]any{"token": "bob"})
	evictBob(t, a, b, "/chat/evict")
	// the stream is still open: bob joins another room and is answered there
	b.join("/chat/after", map[string]any{"username": "bob"})
	b.state("/chat/after", "JOINED")
	if r := b.request("/chat/after", "ping", map[string]any{}); r["receivedAt"] != float64(1) {
		t.Fatalf("pong after eviction %v", r)
	}
	if got := srv.Stats().Connections; got != 2 {
		t.Fatalf("connections %d after the eviction, want 2", got)
	}
}

// expectWithin is pond.expect with its own timeout (a reconnect waits
// out the client's back-off: 1 s, 2 s, 4 s …).
func (p *pond) expectWithin(d time.Duration, ev string, match func(pondEv) bool) pondEv {
	p.t.Helper()
	e := p.d.ExpectMatch(p.t, ev, func(e testenv.Event) bool { return match(decode(p.t, e)) }, d)
	return decode(p.t, e)
}

// The server process goes away and comes back on the same port, once
// stopped (SIGTERM: the streams end as the server drains) and once killed
// (SIGKILL: the kernel resets the sockets). Each time the SSEClient sees
// the stream fail, reconnects with its back-off, gets a new stream and
// re-joins its channel by itself (§9.4), beside a WebSocket member that
// does the same.
func TestSSEClientServerRestart(t *testing.T) {
	bin := testenv.Build(t, "cmd/pondsocket")
	addr := testenv.FreeAddr(t)
	start := func() *testenv.Proc {
		return testenv.Start(t, bin, testenv.ProcOptions{
			Args:  []string{"--addr", addr, "--log-level", "info", "--drain-timeout", "2s"},
			Ready: "listening on ",
		})
	}
	p := start()
	a := newSSEPondURL(t, "http://"+addr+"/api/socket", map[string]any{"username": "alice"})
	b := newPondURL(t, "ws://"+addr+"/api/socket", map[string]any{"username": "bob"})
	const room = "/chat/restart"
	joinAliceBob(a, b, room, false)
	a.users(room, 2)

	for i, stop := range []struct {
		how  string
		stop func(*testenv.Proc)
	}{
		{"SIGTERM", func(p *testenv.Proc) { _ = p.Stop(10 * time.Second) }},
		{"SIGKILL", func(p *testenv.Proc) { p.Kill() }},
	} {
		stop.stop(p)
		a.expectWithin(15*time.Second, "conn", func(e pondEv) bool { return e.State == "disconnected" })
		a.expectWithin(15*time.Second, "state", func(e pondEv) bool { return e.Channel == room && e.State == "STALLED" })
		p = start()
		a.expectWithin(30*time.Second, "conn", func(e pondEv) bool { return e.State == "connected" })
		a.expectWithin(15*time.Second, "state", func(e pondEv) bool { return e.Channel == room && e.State == "JOINED" })
		b.expectWithin(30*time.Second, "state", func(e pondEv) bool { return e.Channel == room && e.State == "JOINED" })
		// both are members of the new server's channel: a message from the
		// SSE client reaches both, and presence lists both
		text := fmt.Sprintf("back after %s (%d)", stop.how, i)
		a.send(room, "message", map[string]any{"text": text})
		for _, c := range []*pond{a, b} {
			c.expect("message", func(e pondEv) bool { return e.Channel == room && e.Event == "message" && e.Payload["text"] == text })
		}
		a.users(room, 2)
	}
}

// vmRSS is a process's resident set in bytes.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

// Thousands of idle event streams (opened from this process, no goroutine
// each) against a server process: its RSS grows by a bounded amount per
// stream, and a bystander's broadcast is still delivered, to a stream too.
func TestSSEThousandsOfIdleStreams(t *testing.T) {
	const streams = 2000
	// Generous: the target is 4 KiB per idle stream (bench/idleconns
	// measures it); this catches a stream that costs a goroutine and
	// buffers, not a few hundred bytes.
	const perStream = 24 << 10
	bin := testenv.Build(t, "cmd/pondsocket")
	addr := testenv.FreeAddr(t)
	p := testenv.Start(t, bin, testenv.ProcOptions{Args: []string{"--addr", addr, "--log-level", "info"}, Ready: "listening on "})
	// warm up the paths a stream takes, then measure from there
	warm := openStreamAt(t, addr, "/api/socket?username=warm", nil)
	warm.body = bufio.NewReader(warm.resp.Body)
	warm.message()
	before := vmRSS(t, p.Pid())
	open := make([]*sseConn, 0, streams)
	for i := 0; i < streams; i++ {
		s := openStreamAt(t, addr, "/api/socket?username=idle"+strconv.Itoa(i), nil)
		if s.resp.StatusCode != 200 {
			t.Fatalf("stream %d: %d", i, s.resp.StatusCode)
		}
		open = append(open, s)
	}
	// every stream is open on the server once its CONNECT has been read
	for _, s := range open {
		s.body = bufio.NewReader(s.resp.Body)
		if m := s.message(); m["action"] != "CONNECT" {
			t.Fatalf("first event %v", m)
		}
	}
	if got := metric(t, addr, "pondsocket_connections"); got < streams+1 {
		t.Fatalf("server holds %v connections, want at least %d", got, streams+1)
	}
	after := vmRSS(t, p.Pid())
	grow := after - before
	t.Logf("server RSS %d KiB → %d KiB for %d idle streams: %.2f KiB per stream", before>>10, after>>10, streams, float64(grow)/streams/1024)
	if grow > streams*perStream {
		t.Fatalf("server RSS grew by %d KiB for %d idle streams (more than %d KiB each)", grow>>10, streams, perStream>>10)
	}

	// a WebSocket bystander broadcasts; a stream member and the bystander
	// itself receive it
	const room = "/chat/idle"
	listener := open[streams/2]
	if st := listener.post(addr, `{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"`+room+`","requestId":"j","payload":{"username":"listener"}}`); st != 202 {
		t.Fatalf("join POST: %d", st)
	}
	for m := listener.message(); m["event"] != "ACKNOWLEDGE"; m = listener.message() {
	}
	by := dialRawPondAt(t, addr, "username=bystander")
	joinRaw(by, room, "jb")
	by.send(`{"action":"BROADCAST","event":"message","channelName":"` + room + `","requestId":"b1","payload":{"text":"still here"}}`)
	for m := by.next(); m["event"] != "message"; m = by.next() {
	}
	m := listener.message()
	for m["event"] != "message" {
		m = listener.message()
	}
	if p, _ := m["payload"].(map[string]any); p["text"] != "still here" {
		t.Fatalf("broadcast on the stream %v", m)
	}

	// closing the streams frees them on the server
	for _, s := range open {
		s.nc.Close()
	}
	testenv.Eventually(t, 20*time.Second, "the closed streams to leave the server", func() bool {
		return metric(t, addr, "pondsocket_connections") <= 2 // the warm-up stream and the bystander
	})
}

// sseBadPosts runs the bad POSTs of §9.1 against a stream served at
// addr+path: each is refused with its status (or, for a well-formed
// request whose body is not a valid message, answered on the stream), and
// the stream carries on. chunked is the status of a chunked body over the
// size limit (the listener refuses every chunked body with 411; net/http
// reads it and refuses it once it passes the limit, 413).
func sseBadPosts(t *testing.T, addr, path string, maxBody, chunked int) {
	s := openStreamAt(t, addr, path+"?token=alice", nil)
	if s.resp.StatusCode != 200 {
		t.Fatalf("stream: %d", s.resp.StatusCode)
	}
	s.body = bufio.NewReader(s.resp.Body)
	s.message() // CONNECT
	post := func(hdr map[string]string, body string) int {
		t.Helper()
		h := map[string]string{"X-Connection-ID": s.id, "Content-Type": "application/json"}
		for k, v := range hdr {
			h[k] = v
		}
		resp, _ := rawRequest(t, addr, "POST", path, h, body)
		return resp.StatusCode
	}
	// an oversized body, really sent
	if st := post(nil, `{"action":"BROADCAST","event":"message","channelName":"/chat/x","requestId":"big","payload":{"pad":"`+strings.Repeat("x", maxBody)+`"}}`); st != 413 {
		t.Fatalf("oversized body: %d, want 413", st)
	}
	// a chunked body over the limit
	chunk := strings.Repeat("y", maxBody+1)
	if st := post(map[string]string{"Transfer-Encoding": "chunked"}, fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(chunk), chunk)); st != chunked {
		t.Fatalf("chunked body over the limit: %d, want %d", st, chunked)
	}
	// not UTF-8
	if st := post(nil, "{\"action\":\"BROADCAST\",\"event\":\"\xff\xfe\",\"channelName\":\"/chat/x\",\"requestId\":\"u\",\"payload\":{}}"); st != 400 {
		t.Fatalf("body that is not UTF-8: %d, want 400", st)
	}
	// accepted, then answered on the stream as on a WebSocket (§5.3)
	for _, body := range []string{`not json`, `[1,2,3]`, `{"action":"NOPE","event":"x","channelName":"/chat/x","requestId":"n","payload":{}}`} {
		if st := post(nil, body); st != 202 {
			t.Fatalf("POST %q: %d, want 202", body, st)
		}
		if m := s.message(); m["event"] != "INVALID_MESSAGE" || m["channelName"] != "ENDPOINT" {
			t.Fatalf("answer to %q: %v", body, m)
		}
	}
	// the stream carries on: a join is acknowledged on it
	if st := post(nil, `{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/bad","requestId":"j","payload":{"username":"alice"}}`); st != 202 {
		t.Fatalf("join after the bad POSTs: %d", st)
	}
	for m := s.message(); m["event"] != "ACKNOWLEDGE"; m = s.message() {
	}
}

func TestSSEBadPosts(t *testing.T) {
	t.Run("listener", func(t *testing.T) {
		srv := startDemo(t, func(o *pondsocket.Options) { o.MaxMessageSize = 4096 })
		sseBadPosts(t, srv.Addr().String(), "/api/socket", 4096, 411)
	})
	t.Run("manager", func(t *testing.T) {
		addr, _, _ := startManager(t)
		sseBadPosts(t, addr, "/ws/api/socket", int(pondsocket.DefaultOptions().MaxMessageSize), 413)
	})
}

// The message rate limit applies to POSTed messages as to WebSocket
// frames: beyond the burst each is answered on the stream with 429, and a
// WebSocket member receives exactly the burst.
func TestSSEMessageRateLimit(t *testing.T) {
	srv := startDemo(t, func(o *pondsocket.Options) { o.Inbound.MessageRate = 1; o.Inbound.MessageBurst = 5 })
	addr := srv.Addr().String()
	s := openStream(t, addr, "token=alice", nil)
	s.body = bufio.NewReader(s.resp.Body)
	s.message()
	if st := s.post(addr, `{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/rl","requestId":"j","payload":{"username":"alice","presence":false}}`); st != 202 {
		t.Fatalf("join: %d", st)
	}
	for m := s.message(); m["event"] != "ACKNOWLEDGE"; m = s.message() {
	}
	b := dialRawPond(t, srv, "token=bob")
	joinRaw(b, "/chat/rl", "jb")
	const n = 15
	for i := 0; i < n; i++ {
		if st := s.post(addr, `{"action":"BROADCAST","event":"typing","channelName":"/chat/rl","requestId":"t`+strconv.Itoa(i)+`","payload":{}}`); st != 202 {
			t.Fatalf("POST %d: %d", i, st)
		}
	}
	limited := 0
	for limited < n-5 {
		m := s.message()
		if m["event"] == "typing" {
			continue // alice's own broadcasts within the burst
		}
		if m["event"] != "HANDLER_NOT_FOUND" || m["payload"].(map[string]any)["code"] != float64(429) {
			t.Fatalf("unexpected %v", m)
		}
		limited++
	}
	// bob got the burst, in order
	for i := 0; i < 5; i++ {
		for m := b.next(); ; m = b.next() {
			if m["event"] == "typing" {
				if m["requestId"] != "t"+strconv.Itoa(i) {
					t.Fatalf("typing %d: %v", i, m)
				}
				break
			}
		}
	}
	b.sync("/chat/rl")
	if srv.Stats().RateLimited < n-5 {
		t.Fatalf("rate limited counter %d", srv.Stats().RateLimited)
	}
}

// A POSTed message may span lines (pretty-printed JSON): only the request
// head's lines must end in CRLF. A body that arrives in pieces is answered
// once it is complete.
func TestSSEPostBodyWithLineBreaks(t *testing.T) {
	srv := startDemo(t, nil)
	addr := srv.Addr().String()
	s := openStream(t, addr, "token=alice", nil)
	s.body = bufio.NewReader(s.resp.Body)
	s.message() // CONNECT
	join := "{\n  \"action\": \"JOIN_CHANNEL\",\n  \"event\": \"JOIN_CHANNEL\",\n  \"channelName\": \"/chat/lf\",\n  \"requestId\": \"j\",\n  \"payload\": {\"username\": \"alice\"}\n}\n"
	if st := s.post(addr, join); st != 202 {
		t.Fatalf("POST with line breaks in the body: %d, want 202", st)
	}
	for m := s.message(); m["event"] != "ACKNOWLEDGE"; m = s.message() {
	}

	// the same body in three pieces, the head first
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msg := strings.Replace(join, `"j"`, `"j2"`, 1)
	msg = strings.Replace(msg, "/chat/lf", "/chat/lf2", 1)
	head := fmt.Sprintf("POST /api/socket HTTP/1.1\r\nHost: %s\r\nX-Connection-ID: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, s.id, len(msg))
	for _, part := range []string{head, msg[:10], msg[10:]} {
		if _, err := io.WriteString(nc, part); err != nil {
			t.Fatal(err)
		}
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("POST in pieces: %d, want 202", resp.StatusCode)
	}
	for m := s.message(); m["event"] != "ACKNOWLEDGE" || m["channelName"] != "/chat/lf2"; m = s.message() {
	}
}
