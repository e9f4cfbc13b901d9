package engine

// The driver matrix: the same scenarios run against every real client
// library of internal/testenv (node ws, python websockets, gorilla), so a
// behaviour that only one library's framing or timing exposes shows up as
// one red cell rather than a flaky test.
//
// Each test function starts one engine and runs one subtest per driver;
// every case opens its own connection (a fresh driver) on a path that names
// it, so the handler's view of that connection can be found by
// Conn.Context() (the echo handler stores the path there).

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket/internal/wsframe"

	"github.com/pondsocket/pondsocket/internal/testenv"
)

// mxWait bounds every driver event; generous because the race detector and
// interpreter start-up (python, node) are slow on a loaded machine.
const mxWait = 10 * time.Second

// mxPath is a unique request path per driver and case.
func mxPath(k testenv.DriverKind, name string) string {
	return "/mx/" + k.Name + "/" + name
}

// mxOpen starts a driver of kind k, connects it to path (plus query) on e
// and waits until the connection is open.
func mxOpen(t *testing.T, k testenv.DriverKind, e *Engine, pathQuery string) *testenv.Driver {
	t.Helper()
	d := k.Start(t)
	d.Send(map[string]any{"op": "connect", "url": wsURL(e, pathQuery)})
	d.Expect(t, "open", mxWait)
	return d
}

// mxNoErrors fails the test if the driver reported any "error" event.
func mxNoErrors(t *testing.T, d *testenv.Driver) {
	t.Helper()
	for _, ev := range d.History() {
		if ev.Ev == "error" {
			t.Errorf("%s reported an error: %s", d.Name, ev)
		}
	}
}

// mxExpectMessage waits for the next message and checks its payload and
// type without dumping megabytes into the log on failure.
func mxExpectMessage(t *testing.T, d *testenv.Driver, want string, binary bool) {
	t.Helper()
	ev := d.Expect(t, "message", mxWait)
	if ev.Binary != binary {
		t.Fatalf("message binary=%v, want %v (%s)", ev.Binary, binary, ev)
	}
	if ev.Data != want {
		if len(want) > 64 {
			i := 0
			for i < len(ev.Data) && i < len(want) && ev.Data[i] == want[i] {
				i++
			}
			t.Fatalf("message of %d bytes differs from the %d bytes sent at offset %d", len(ev.Data), len(want), i)
		}
		t.Fatalf("message %q, want %q", ev.Data, want)
	}
}

// mxServerClose waits until the handler saw the connection opened on path
// close, and returns the code OnClose got.
func mxServerClose(t *testing.T, h *echoHandler, path string) int {
	t.Helper()
	code := 0
	waitFor(t, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for c, cc := range h.closed {
			if c.Context() == path {
				code = cc
				return true
			}
		}
		return false
	})
	return code
}

// TestDriverMatrix runs the basic life of a connection against every
// driver on one engine.
func TestDriverMatrix(t *testing.T) {
	h := newEchoHandler()
	e := startEngine(t, Config{EventLoops: 2}, h)

	type mxCase struct {
		name string
		run  func(t *testing.T, k testenv.DriverKind, path string)
	}
	cases := []mxCase{
		{"connect-greeting", func(t *testing.T, k testenv.DriverKind, path string) {
			d := mxOpen(t, k, e, path+"?greet=1")
			mxExpectMessage(t, d, "hello", false)
			mxNoErrors(t, d)
		}},
		{"echo-text-binary", func(t *testing.T, k testenv.DriverKind, path string) {
			d := mxOpen(t, k, e, path)
			text := "héllo, wörld ✓"
			d.Send(map[string]any{"op": "send", "data": text})
			mxExpectMessage(t, d, text, false)
			bin := []byte{0, 1, 2, 0x7f, 0x80, 0xfe, 0xff}
			d.Send(map[string]any{"op": "send", "data": base64.StdEncoding.EncodeToString(bin), "b64": true, "binary": true})
			mxExpectMessage(t, d, string(bin), true)
			mxNoErrors(t, d)
		}},
		{"fragmented-3", func(t *testing.T, k testenv.DriverKind, path string) {
			d := mxOpen(t, k, e, path)
			parts := []string{"frag-one|", "frag-twö|", "frag-three"}
			for i, p := range parts {
				d.Send(map[string]any{"op": "send", "data": p, "fin": i == len(parts)-1})
			}
			mxExpectMessage(t, d, strings.Join(parts, ""), false)
			// the connection is still usable after the fragmented message
			d.Send(map[string]any{"op": "send", "data": "after"})
			mxExpectMessage(t, d, "after", false)
			mxNoErrors(t, d)
		}},
		{"client-ping", func(t *testing.T, k testenv.DriverKind, path string) {
			d := mxOpen(t, k, e, path)
			d.Send(map[string]any{"op": "ping", "data": "mx-ping-payload"})
			if ev := d.Expect(t, "pong", mxWait); ev.Data != "mx-ping-payload" {
				t.Fatalf("pong payload %q, want %q", ev.Data, "mx-ping-payload")
			}
			mxNoErrors(t, d)
		}},
		{"client-close-1000", func(t *testing.T, k testenv.DriverKind, path string) {
			mxClientClose(t, k, e, h, path, 1000)
		}},
		{"client-close-4001", func(t *testing.T, k testenv.DriverKind, path string) {
			mxClientClose(t, k, e, h, path, 4001)
		}},
		{"text-1MiB", func(t *testing.T, k testenv.DriverKind, path string) {
			// 16-byte blocks with a 2-byte rune, so UTF-8 sequences straddle
			// whatever frame and segment boundaries the library picks.
			msg := strings.Repeat("0123456789abcdé", DefaultMaxMessageSize/16)
			if len(msg) != DefaultMaxMessageSize {
				t.Fatalf("test message is %d bytes", len(msg))
			}
			d := mxOpen(t, k, e, path)
			d.Send(map[string]any{"op": "send", "data": msg})
			mxExpectMessage(t, d, msg, false)
			mxNoErrors(t, d)
		}},
		{"200-frames-one-write", func(t *testing.T, k testenv.DriverKind, path string) {
			d := mxOpen(t, k, e, path)
			const n = 200
			var b []byte
			for i := 0; i < n; i++ {
				b = append(b, frame(true, 0, wsframe.OpText, []byte(fmt.Sprintf("mx-%03d", i)), true)...)
			}
			d.Send(map[string]any{"op": "raw", "b64": base64.StdEncoding.EncodeToString(b)})
			for i := 0; i < n; i++ {
				mxExpectMessage(t, d, fmt.Sprintf("mx-%03d", i), false)
			}
			mxNoErrors(t, d)
		}},
		{"refused-upgrade-401", func(t *testing.T, k testenv.DriverKind, path string) {
			d := k.Start(t)
			d.Send(map[string]any{"op": "connect", "url": wsURL(e, "/deny"+path)})
			ev := d.Expect(t, "error", mxWait)
			if ev.Status != 401 {
				t.Fatalf("refused upgrade reported status %d (%s), want 401", ev.Status, ev)
			}
			if c := d.Expect(t, "close", mxWait); c.Code != 1006 {
				t.Fatalf("refused upgrade close code %d, want 1006", c.Code)
			}
		}},
		{"handshake-split", func(t *testing.T, k testenv.DriverKind, path string) {
			t.Skip("drivers can only write raw bytes on an open WebSocket, not during the handshake; " +
				"a request head split across many writes is covered by TestHandshakeOneByteAtATime")
		}},
	}
	for _, k := range testenv.AllDrivers() {
		t.Run(k.Name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, k, mxPath(k, c.name)) })
			}
		})
	}
}

// mxClientClose: the client closes with code; the engine echoes the code,
// the library reports it, and OnClose sees it.
func mxClientClose(t *testing.T, k testenv.DriverKind, e *Engine, h *echoHandler, path string, code int) {
	t.Helper()
	d := mxOpen(t, k, e, path)
	d.Send(map[string]any{"op": "close", "code": code, "reason": "bye"})
	if ev := d.Expect(t, "close", mxWait); ev.Code != code {
		t.Fatalf("%s reported close code %d (%s), want the echoed %d", k.Name, ev.Code, ev, code)
	}
	if got := mxServerClose(t, h, path); got != code {
		t.Fatalf("OnClose code %d, want %d", got, code)
	}
	mxNoErrors(t, d)
}

// TestDriverMatrixMessageTooBig: a message of exactly MaxMessageSize is
// echoed; one byte more closes the connection with 1009, however the
// library frames it.
func TestDriverMatrixMessageTooBig(t *testing.T) {
	const limit = 64 << 10
	h := newEchoHandler()
	e := startEngine(t, Config{EventLoops: 2, MaxMessageSize: limit}, h)
	for _, k := range testenv.AllDrivers() {
		t.Run(k.Name, func(t *testing.T) {
			path := mxPath(k, "too-big")
			d := mxOpen(t, k, e, path)
			exact := strings.Repeat("x", limit)
			d.Send(map[string]any{"op": "send", "data": exact})
			mxExpectMessage(t, d, exact, false)
			d.Send(map[string]any{"op": "send", "data": exact + "y"})
			if ev := d.Expect(t, "close", mxWait); ev.Code != 1009 {
				t.Fatalf("%s reported close code %d (%s), want 1009", k.Name, ev.Code, ev)
			}
			if got := mxServerClose(t, h, path); got != 1009 {
				t.Fatalf("OnClose code %d, want 1009", got)
			}
			// A library still writing the tail of the message when the
			// server closes may report a failed send; nothing else is
			// expected to go wrong.
			for _, ev := range d.History() {
				if ev.Ev == "error" && ev.Op != "send" {
					t.Errorf("%s reported an error: %s", k.Name, ev)
				}
			}
		})
	}
}

// TestDriverMatrixServerPings: the server pings an idle client every 50ms
// and drops it 300ms after it stops answering; each library answers pings
// on its own, so an idle connection lives on.
func TestDriverMatrixServerPings(t *testing.T) {
	h := newEchoHandler()
	e := startEngine(t, Config{EventLoops: 2, PingInterval: 50 * time.Millisecond, PongWait: 300 * time.Millisecond}, h)
	for _, k := range testenv.AllDrivers() {
		t.Run(k.Name, func(t *testing.T) {
			path := mxPath(k, "server-pings")
			d := mxOpen(t, k, e, path)
			in0 := e.Stats().BytesIn.Load()
			time.Sleep(time.Second) // let time pass: the client stays idle
			for _, ev := range d.History() {
				if ev.Ev == "close" || ev.Ev == "error" {
					t.Fatalf("idle %s connection did not survive server pings: %s", k.Name, ev)
				}
			}
			// Only this connection is open, and its client sent nothing but
			// pongs (6 bytes each, masked and empty) while it was idle.
			pongs := (e.Stats().BytesIn.Load() - in0) / 6
			t.Logf("%s answered about %d server pings in 1s", k.Name, pongs)
			if pongs < 5 {
				t.Fatalf("about %d pongs in 1s of 50ms pings", pongs)
			}
			if n := e.Stats().PongTimeouts.Load(); n != 0 {
				t.Fatalf("%d pong timeouts", n)
			}
			d.Send(map[string]any{"op": "send", "data": "still-alive"})
			mxExpectMessage(t, d, "still-alive", false)
			mxNoErrors(t, d)
		})
	}
}

// TestDriverMatrixGracefulStop: Stop sends close 1001 to every client,
// which answers it, so Stop returns without hitting its deadline. Stop ends
// an engine, so each driver gets its own.
func TestDriverMatrixGracefulStop(t *testing.T) {
	for _, k := range testenv.AllDrivers() {
		t.Run(k.Name, func(t *testing.T) {
			h := newEchoHandler()
			e := startEngine(t, Config{EventLoops: 2}, h)
			path := mxPath(k, "stop")
			d := mxOpen(t, k, e, path)
			d.Send(map[string]any{"op": "send", "data": "before-stop"})
			mxExpectMessage(t, d, "before-stop", false)

			stopped := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				stopped <- e.Stop(ctx)
			}()
			ev := d.Expect(t, "close", mxWait)
			if ev.Code != 1001 || ev.Reason != "Server shutting down" {
				t.Fatalf("%s reported close %d %q, want 1001 %q", k.Name, ev.Code, ev.Reason, "Server shutting down")
			}
			select {
			case err := <-stopped:
				if err != nil {
					t.Fatalf("Stop: %v (the client answered the close; nothing should be left to wait for)", err)
				}
			case <-time.After(mxWait):
				t.Fatal("Stop did not return")
			}
			if got := mxServerClose(t, h, path); got != 1001 {
				t.Fatalf("OnClose code %d, want 1001", got)
			}
			mxNoErrors(t, d)
		})
	}
}
