package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket/internal/wsframe"
)

// oneLoop keeps every connection of a test on the same event loop, so the
// bystander checks prove a bad peer does not stall its neighbours.
func oneLoop(cfg Config) Config {
	cfg.EventLoops = 1
	return cfg
}

// bystanderOK checks that an unrelated connection on the same loop still
// gets its echo.
func bystanderOK(t *testing.T, b *rawConn, tag string) {
	t.Helper()
	b.send(wsframe.OpText, "still-here-"+tag)
	b.expectFrame(wsframe.OpText, "still-here-"+tag)
}

func TestHandshakeRules(t *testing.T) {
	h := newEchoHandler()
	e := startEngine(t, oneLoop(Config{MaxHeaderBytes: 1024, CheckOrigin: true, AllowedOrigins: []string{"http://ok.example"}}), h)
	by := dialRaw(t, e, "/bystander").pump()
	host := e.Addr().String()
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	cases := []struct {
		name   string
		req    string
		status int
		body   string
		header [2]string
	}{
		{"declined by handler", upgradeRequest(host, "/deny"), 401, "Invalid token\n", [2]string{}},
		{"header too large", upgradeRequest(host, "/x", "X-Big: "+strings.Repeat("a", 2000)), 431, "", [2]string{}},
		{"malformed request line", "NOT A REQUEST\r\n\r\n", 400, "", [2]string{}},
		{"bad header line", "GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400, "", [2]string{}},
		{"wrong version", "GET /x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 8\r\n\r\n", 426, "", [2]string{"Sec-Websocket-Version", "13"}},
		{"bad key", "GET /x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n", 400, "Invalid Sec-WebSocket-Key\n", [2]string{}},
		{"missing connection upgrade", "GET /x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n", 400, "", [2]string{}},
		{"post upgrade", "POST /x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n", 405, "", [2]string{"Allow", "GET"}},
		{"http/1.0 upgrade", "GET /x HTTP/1.0\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n", 400, "", [2]string{}},
		{"origin refused", upgradeRequest(host, "/x", "Origin: http://evil.example"), 403, "Origin not allowed\n", [2]string{}},
		{"plain GET without HTTP hook", "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n", 404, "", [2]string{}},
		{"chunked body", "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 411, "", [2]string{}},
		{"duplicate host", "GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n", 400, "", [2]string{}},
		// answered at once, not after the handshake timeout
		{"bare LF line endings", "GET /x HTTP/1.1\nHost: h\nUpgrade: websocket\n", 400, "Header lines must end in CRLF\n", [2]string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawHTTP(t, e, tc.req)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%q), want %d", resp.StatusCode, body, tc.status)
			}
			if resp.ContentLength != int64(len(body)) {
				t.Fatalf("Content-Length %d for a %d-byte body", resp.ContentLength, len(body))
			}
			if tc.body != "" && body != tc.body {
				t.Fatalf("body %q, want %q", body, tc.body)
			}
			if tc.header[0] != "" && resp.Header.Get(tc.header[0]) != tc.header[1] {
				t.Fatalf("header %s=%q, want %q", tc.header[0], resp.Header.Get(tc.header[0]), tc.header[1])
			}
			bystanderOK(t, by, tc.name)
		})
	}
	t.Run("origin allowed", func(t *testing.T) {
		c := dialRaw(t, e, "/x", "Origin: http://ok.example")
		c.send(wsframe.OpText, "hi")
		c.expectFrame(wsframe.OpText, "hi")
	})
}

func TestHandshakeOneByteAtATime(t *testing.T) {
	e := startEngine(t, Config{}, newEchoHandler())
	c := dialTCP(t, e)
	req := upgradeRequest(e.Addr().String(), "/slow?greet=1")
	for i := 0; i < len(req); i++ {
		if _, err := c.Write([]byte{req[i]}); err != nil {
			t.Fatal(err)
		}
		if i%16 == 0 {
			time.Sleep(time.Millisecond) // let them arrive as separate segments
		}
	}
	r := &rawConn{t: t, c: c, br: bufioReader(c)}
	if resp := r.readResponse(); resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	r.expectFrame(wsframe.OpText, "hello")
}

func TestSlowlorisClosed(t *testing.T) {
	e := startEngine(t, oneLoop(Config{HandshakeTimeout: 200 * time.Millisecond}), newEchoHandler())
	by := dialRaw(t, e, "/bystander").pump()
	c := dialTCP(t, e)
	_, _ = io.WriteString(c, "GET /x HTTP/1.1\r\nHost: h\r\n")
	r := &rawConn{t: t, c: c, br: bufioReader(c)}
	r.expectEOF(3 * time.Second)
	if e.Stats().HandshakeTimeouts.Load() == 0 {
		t.Fatal("handshake timeout not counted")
	}
	bystanderOK(t, by, "after-slowloris")
}

func TestPlainHTTPHook(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(201)
		w.Write(bytes.ToUpper(b))
	})
	e := startEngine(t, Config{HTTP: mux, MaxBodyBytes: 100}, newEchoHandler())
	resp, body := rawHTTP(t, e, "GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
	if resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("healthz: %d %q", resp.StatusCode, body)
	}
	resp, body = rawHTTP(t, e, "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
	if resp.StatusCode != 201 || body != "HELLO" {
		t.Fatalf("echo: %d %q", resp.StatusCode, body)
	}
	resp, _ = rawHTTP(t, e, "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 500\r\n\r\n")
	if resp.StatusCode != 413 {
		t.Fatalf("oversized body: %d", resp.StatusCode)
	}
	// the same request through net/http's client
	hr, err := http.Get("http://" + e.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(hr.Body)
	hr.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("net/http client got %q", b)
	}
}

func TestMaxConnections(t *testing.T) {
	h := newEchoHandler()
	e := startEngine(t, Config{MaxConnections: 2}, h)
	a := dialRaw(t, e, "/a")
	dialRaw(t, e, "/b")
	resp, body := rawHTTP(t, e, upgradeRequest(e.Addr().String(), "/c"))
	if resp.StatusCode != 503 {
		t.Fatalf("third connection: %d %q", resp.StatusCode, body)
	}
	a.send(wsframe.OpClose, "\x03\xe8")
	a.expectClose(1000)
	<-h.closeC
	dialRaw(t, e, "/d") // a slot is free again
}

func TestFramingRules(t *testing.T) {
	type tc struct {
		name  string
		bytes func() []byte
		code  int
	}
	big := make([]byte, 2000)
	cases := []tc{
		{"unmasked frame", func() []byte { return frame(true, 0, 1, []byte("x"), false) }, 1002},
		{"reserved bits", func() []byte { return frame(true, 4, 1, []byte("x"), true) }, 1002},
		{"reserved opcode", func() []byte { return frame(true, 0, 3, []byte("x"), true) }, 1002},
		{"reserved control opcode", func() []byte { return frame(true, 0, 0xb, nil, true) }, 1002},
		{"invalid utf-8", func() []byte { return frame(true, 0, 1, []byte{0xff, 0xfe}, true) }, 1007},
		{"invalid utf-8 across fragments", func() []byte {
			return append(frame(false, 0, 1, []byte{0xe2, 0x82}, true), frame(true, 0, 0, []byte{0x41}, true)...)
		}, 1007},
		{"oversized frame", func() []byte { return frame(true, 0, 1, big, true) }, 1009},
		{"oversized fragments", func() []byte {
			return append(frame(false, 0, 1, big[:600], true), frame(true, 0, 0, big[:600], true)...)
		}, 1009},
		{"continuation without start", func() []byte { return frame(true, 0, 0, []byte("x"), true) }, 1002},
		{"text inside fragmented", func() []byte {
			return append(frame(false, 0, 1, []byte("a"), true), frame(true, 0, 1, []byte("b"), true)...)
		}, 1002},
		{"fragmented ping", func() []byte { return frame(false, 0, 9, nil, true) }, 1002},
		{"control payload too long", func() []byte { return frame(true, 0, 9, big[:126], true) }, 1002},
		{"close with one byte", func() []byte { return frame(true, 0, 8, []byte{3}, true) }, 1002},
		{"close with reserved code", func() []byte { return frame(true, 0, 8, []byte{0x03, 0xed}, true) }, 1002},
		{"close with bad utf-8 reason", func() []byte { return frame(true, 0, 8, []byte{0x03, 0xe8, 0xff}, true) }, 1007},
	}
	h := newEchoHandler()
	e := startEngine(t, oneLoop(Config{MaxMessageSize: 1000}), h)
	by := dialRaw(t, e, "/bystander").pump()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := dialRaw(t, e, "/x")
			r.write(c.bytes())
			r.expectClose(c.code)
			bystanderOK(t, by, c.name)
		})
	}
	if e.Stats().ProtocolErrors.Load() < int64(len(cases)) {
		t.Fatalf("protocol errors counted %d, want ≥ %d", e.Stats().ProtocolErrors.Load(), len(cases))
	}
}

func TestCloseHandshakeEchoesCode(t *testing.T) {
	h := newEchoHandler()
	e := startEngine(t, Config{}, h)
	for _, code := range []int{1000, 1001, 3000, 4001} {
		r := dialRaw(t, e, "/x")
		r.write(frame(true, 0, 8, append([]byte{byte(code >> 8), byte(code)}, "bye"...), true))
		f, err := r.readFrame(5 * time.Second)
		if err != nil || f.op != 8 || len(f.payload) < 2 || int(f.payload[0])<<8|int(f.payload[1]) != code {
			t.Fatalf("code %d: echo %+v %v", code, f, err)
		}
		r.expectEOF(5 * time.Second)
		if got := <-h.closeC; got != code {
			t.Fatalf("OnClose code %d, want %d", got, code)
		}
	}
	// an empty close is answered with an empty close
	r := dialRaw(t, e, "/x")
	r.write(frame(true, 0, 8, nil, true))
	f, err := r.readFrame(5 * time.Second)
	if err != nil || f.op != 8 || len(f.payload) != 0 {
		t.Fatalf("empty close echo %+v %v", f, err)
	}
	if got := <-h.closeC; got != 1005 {
		t.Fatalf("OnClose code %d, want 1005", got)
	}
}

func TestFragmentsWithInterleavedControl(t *testing.T) {
	e := startEngine(t, Config{}, newEchoHandler())
	r := dialRaw(t, e, "/x")
	var b []byte
	b = append(b, frame(false, 0, 1, []byte("Hel"), true)...)
	b = append(b, frame(true, 0, 9, []byte("p1"), true)...)
	b = append(b, frame(false, 0, 0, []byte("lo, "), true)...)
	b = append(b, frame(true, 0, 0xa, []byte("unsolicited"), true)...)
	b = append(b, frame(true, 0, 0, []byte("world"), true)...)
	r.write(b)
	r.expectFrame(0xa, "p1")
	r.expectFrame(wsframe.OpText, "Hello, world")
	// binary messages are echoed as binary
	r.write(frame(true, 0, 2, []byte{0, 1, 2, 0xff}, true))
	r.expectFrame(wsframe.OpBinary, "\x00\x01\x02\xff")
}

func TestManySmallMessagesInOneSegment(t *testing.T) {
	e := startEngine(t, Config{}, newEchoHandler())
	r := dialRaw(t, e, "/x")
	const n = 500
	r.write(textFrames(n))
	for i := 0; i < n; i++ {
		r.expectFrame(wsframe.OpText, fmt.Sprintf("m%03d", i))
	}
}

// textFrames is n masked text frames "m000", "m001", … in one buffer.
func textFrames(n int) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		b = append(b, frame(true, 0, 1, []byte(fmt.Sprintf("m%03d", i)), true)...)
	}
	return b
}

func TestLargeMessage(t *testing.T) {
	e := startEngine(t, Config{}, newEchoHandler())
	r := dialRaw(t, e, "/x")
	msg := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // exactly 1 MiB, the default limit
	// sent in 7 fragments, each written in pieces
	var b []byte
	chunk := len(msg)/7 + 1
	for i := 0; i < len(msg); i += chunk {
		end := min(i+chunk, len(msg))
		op := byte(0)
		if i == 0 {
			op = 1
		}
		b = append(b, frame(end == len(msg), 0, op, msg[i:end], true)...)
	}
	for i := 0; i < len(b); i += 64 << 10 {
		r.write(b[i:min(i+64<<10, len(b))])
	}
	f, err := r.readFrame(10 * time.Second)
	if err != nil || !bytes.Equal(f.payload, msg) {
		t.Fatalf("1 MiB echo: len %d err %v", len(f.payload), err)
	}
	// one byte more is refused
	r.write(frame(true, 0, 2, append(msg, 'x'), true))
	r.expectClose(1009)
}

func TestPingPongAndDeadPeer(t *testing.T) {
	e := startEngine(t, oneLoop(Config{PingInterval: 50 * time.Millisecond, PongWait: 300 * time.Millisecond}), newEchoHandler())
	by := dialRaw(t, e, "/bystander").pump()
	// a client ping is answered with its payload
	r := dialRaw(t, e, "/x")
	r.write(frame(true, 0, 9, []byte("are you there"), true))
	r.expectFrame(0xa, "are you there")

	// a live peer answers server pings and stays
	live := dialRaw(t, e, "/live")
	deadline := time.Now().Add(700 * time.Millisecond)
	pings := 0
	for time.Now().Before(deadline) {
		f, err := live.readFrame(time.Second)
		if err != nil {
			t.Fatalf("live peer dropped after %d pings: %v", pings, err)
		}
		if f.op == 9 {
			pings++
			live.write(frame(true, 0, 0xa, f.payload, true))
		}
	}
	if pings < 2 {
		t.Fatalf("only %d server pings in 700ms", pings)
	}
	// a silent peer is dropped after PongWait
	dead := dialRaw(t, e, "/dead")
	start := time.Now()
	for {
		f, err := dead.readFrame(3 * time.Second)
		if err != nil {
			break
		}
		if f.op != 9 {
			t.Fatalf("unexpected frame %d", f.op)
		}
	}
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Fatalf("dropped after %v, before PongWait", el)
	}
	if e.Stats().PongTimeouts.Load() == 0 {
		t.Fatal("pong timeout not counted")
	}
	bystanderOK(t, by, "after-dead-peer")
}

func TestIdleTimeout(t *testing.T) {
	e := startEngine(t, Config{IdleTimeout: 200 * time.Millisecond, PingInterval: 50 * time.Millisecond, PongWait: time.Second}, newEchoHandler())
	r := dialRaw(t, e, "/x")
	for {
		f, err := r.readFrame(3 * time.Second)
		if err != nil {
			t.Fatalf("no idle close: %v", err)
		}
		if f.op == 9 {
			r.write(frame(true, 0, 0xa, f.payload, true)) // pongs do not count as activity
			continue
		}
		if f.op == 8 {
			if code := int(f.payload[0])<<8 | int(f.payload[1]); code != 1001 {
				t.Fatalf("idle close code %d", code)
			}
			return
		}
	}
}

// broadcastHandler fans every message out to all open connections.
type broadcastHandler struct {
	*echoHandler
	e atomic.Pointer[Engine]
}

func (h *broadcastHandler) OnMessage(c *Conn, op byte, data []byte) {
	f := wsframe.NewStaticFrame(op, data)
	h.e.Load().Fanout(f, h.sinks())
	f.Release()
}

func TestSlowConsumerIsCut(t *testing.T) {
	bh := &broadcastHandler{echoHandler: newEchoHandler()}
	e := startEngine(t, oneLoop(Config{MaxOutboundBytes: 256 << 10, CloseTimeout: 300 * time.Millisecond}), bh)
	bh.e.Store(e)
	slow := dialRaw(t, e, "/slow")
	_ = slow
	fast := dialRaw(t, e, "/fast")
	// The slow client never reads. Shrink nothing: just send far more than
	// kernel buffers plus the limit.
	payload := strings.Repeat("x", 16<<10)
	const n = 2000 // 32 MiB in total
	// The fast client keeps a window of 8 messages in flight, as a real
	// publisher with acknowledgements would.
	const window = 8
	for i := 0; i < window; i++ {
		fast.send(wsframe.OpText, payload)
	}
	for i := 0; i < n; i++ {
		if i+window < n {
			fast.send(wsframe.OpText, payload)
		}
		f, err := fast.readFrame(10 * time.Second)
		if err != nil {
			t.Fatalf("fast consumer stalled at %d: %v", i, err)
		}
		if len(f.payload) != len(payload) {
			t.Fatalf("frame %d len %d", i, len(f.payload))
		}
	}
	if e.Stats().SlowConsumers.Load() != 1 {
		t.Fatalf("slow consumers %d, want 1", e.Stats().SlowConsumers.Load())
	}
	// The slow client finds a close 1008 after what was buffered for it.
	for {
		f, err := slow.readFrame(10 * time.Second)
		if err != nil {
			// the close timeout may have cut it before the close frame
			break
		}
		if f.op == 8 {
			if code := int(f.payload[0])<<8 | int(f.payload[1]); code != 1008 {
				t.Fatalf("slow consumer close code %d", code)
			}
			break
		}
	}
}

func TestFanoutReleasesFrames(t *testing.T) {
	h := newEchoHandler()
	e := startEngine(t, Config{EventLoops: 2}, h)
	var rs []*rawConn
	for i := 0; i < 20; i++ {
		rs = append(rs, dialRaw(t, e, fmt.Sprintf("/m%d", i)))
	}
	waitFor(t, func() bool { return len(h.conns()) == 20 })
	f := wsframe.NewStaticFrame(wsframe.OpText, []byte("to everyone"))
	e.Fanout(f, h.sinks())
	for _, r := range rs {
		r.expectFrame(wsframe.OpText, "to everyone")
	}
	waitFor(t, func() bool { return f.Refs() == 1 })
	f.Release()
}

func TestGracefulStop(t *testing.T) {
	baseG := goroutines()
	baseFD := openFDs(t)
	h := newEchoHandler()
	e := New(Config{Addr: "127.0.0.1:0", Logger: quietLogger(), EventLoops: 2}, h)
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	var rs []*rawConn
	for i := 0; i < 10; i++ {
		rs = append(rs, dialRaw(t, e, "/x"))
	}
	stuck := dialRaw(t, e, "/stuck") // never answers the close
	_ = stuck
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		done <- e.Stop(ctx)
	}()
	for _, r := range rs {
		r.expectClose(1001)
	}
	if err := <-done; err != context.DeadlineExceeded {
		t.Fatalf("Stop with a stuck peer: %v, want deadline exceeded", err)
	}
	stuck.expectEOF(2 * time.Second)
	for _, r := range rs {
		r.c.Close()
	}
	stuck.c.Close()
	// Everything the engine started is gone.
	waitFor(t, func() bool { return goroutines() <= baseG })
	waitFor(t, func() bool { return openFDs(t) <= baseFD })
}

func TestRestartSamePort(t *testing.T) {
	e := startEngine(t, Config{}, newEchoHandler())
	addr := e.Addr().String()
	r := dialRaw(t, e, "/x")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	go r.expectClose(1001)
	if err := e.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	e2 := New(Config{Addr: addr, Logger: quietLogger()}, newEchoHandler())
	if err := e2.Start(); err != nil {
		t.Fatalf("restart on %s: %v", addr, err)
	}
	defer e2.Stop(context.Background())
	r2 := dialRaw(t, e2, "/x")
	r2.send(wsframe.OpText, "again")
	r2.expectFrame(wsframe.OpText, "again")
}

// Near the open-files limit TCP connections are answered 503 at once, so
// accept never fails (gnet stops its listener when accept fails).
func TestFDCapRefusesAtAccept(t *testing.T) {
	h := newEchoHandler()
	e := New(Config{Addr: "127.0.0.1:0", Logger: quietLogger(), EventLoops: 1}, h)
	e.fdCap = 5
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		e.Stop(ctx)
	}()
	var open []*rawConn
	for i := 0; i < 5; i++ {
		open = append(open, dialRaw(t, e, "/ok"))
	}
	// beyond the cap: a complete HTTP answer, not a silent drop
	for i := 0; i < 3; i++ {
		resp, body := rawHTTP(t, e, upgradeRequest(e.Addr().String(), "/over"))
		if resp.StatusCode != 503 || !strings.Contains(body, "connection limit") {
			t.Fatalf("over the cap: %d %q", resp.StatusCode, body)
		}
	}
	// the listener still works: free a slot and connect again
	open[0].c.Close()
	waitFor(t, func() bool { return e.Connections() < 5 })
	dialRaw(t, e, "/again")
	bystanderOK(t, open[1], "after-cap")
}

// countingHandler counts Upgrade calls.
type countingHandler struct {
	*echoHandler
	upgrades atomic.Int64
}

func (h *countingHandler) Upgrade(r *Request) Decision {
	h.upgrades.Add(1)
	return h.echoHandler.Upgrade(r)
}

// One validator: a request the engine lets reach the application's
// connection handler is upgraded. Before, "Upgrade: websocket, foo" passed
// the engine's checks, ran the handler, then failed gobwas' own checks and
// wrote an ERROR line per request.
func TestUpgradeHandlerRunsOnlyForUpgrades(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelError}))
	h := &countingHandler{echoHandler: newEchoHandler()}
	e := startEngine(t, oneLoop(Config{Logger: log}), h)
	host := e.Addr().String()
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	for _, up := range []string{"websocket, foo", "foo, WebSocket", "WEBSOCKET"} {
		req := "GET /x HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: " + up + "\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
		before := h.upgrades.Load()
		resp, _ := rawHTTP(t, e, req)
		if resp.StatusCode != 101 {
			t.Fatalf("Upgrade: %s → %d, want 101", up, resp.StatusCode)
		}
		if h.upgrades.Load() != before+1 {
			t.Fatalf("handler ran %d times", h.upgrades.Load()-before)
		}
		if got := resp.Header.Get("Sec-Websocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
			t.Fatalf("Sec-WebSocket-Accept %q", got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if logs.Len() > 0 {
		t.Fatalf("ERROR lines for valid upgrades:\n%s", logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// blockingHandler's Upgrade blocks until release is closed.
type blockingHandler struct {
	*echoHandler
	release chan struct{}
	running atomic.Int64
}

func (h *blockingHandler) Upgrade(r *Request) Decision {
	if r.Path == "/slow" {
		h.running.Add(1)
		<-h.release
		h.running.Add(-1)
	}
	return h.echoHandler.Upgrade(r)
}

// Connection handlers that block run at most MaxPendingUpgrades at once;
// the rest are answered 503 at once instead of piling up goroutines.
func TestPendingUpgradesBounded(t *testing.T) {
	h := &blockingHandler{echoHandler: newEchoHandler(), release: make(chan struct{})}
	e := startEngine(t, oneLoop(Config{MaxPendingUpgrades: 8}), h)
	by := dialRaw(t, e, "/bystander").pump()
	for range 8 {
		c := dialTCP(t, e)
		io.WriteString(c, upgradeRequest(e.Addr().String(), "/slow"))
	}
	waitFor(t, func() bool { return h.running.Load() == 8 })
	g := goroutines()
	for range 20 {
		resp, body := rawHTTP(t, e, upgradeRequest(e.Addr().String(), "/slow"))
		if resp.StatusCode != 503 {
			t.Fatalf("upgrade beyond the bound: %d %q", resp.StatusCode, body)
		}
	}
	if h.running.Load() != 8 || goroutines() > g+4 {
		t.Fatalf("running %d handlers, %d goroutines (was %d)", h.running.Load(), goroutines(), g)
	}
	bystanderOK(t, by, "pending-upgrades")
	close(h.release)
	dialRaw(t, e, "/slow") // slots free again
}
