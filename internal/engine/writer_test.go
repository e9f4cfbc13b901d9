package engine

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/panjf2000/gnet/v2"

	"github.com/pondsocket/pondsocket/internal/wsframe"
)

// recSocket records what the loop writes to one connection, one entry per
// write call; onWrite runs inside the write, as a broadcast posted by
// another goroutine while the loop is writing would.
type recSocket struct {
	writes  [][]string
	onWrite func()
}

func (s *recSocket) record(bs [][]byte) {
	var call []string
	for _, b := range bs {
		call = append(call, string(b))
	}
	s.writes = append(s.writes, call)
	if s.onWrite != nil {
		f := s.onWrite
		s.onWrite = nil
		f()
	}
}

func (s *recSocket) Peek(int) ([]byte, error)    { return nil, nil }
func (s *recSocket) Discard(int) (int, error)    { return 0, nil }
func (s *recSocket) Write(b []byte) (int, error) { s.record([][]byte{b}); return len(b), nil }
func (s *recSocket) Writev(bs [][]byte) (int, error) {
	s.record(bs)
	return 0, nil
}
func (s *recSocket) OutboundBuffered() int { return 0 }
func (s *recSocket) RemoteAddr() net.Addr  { return &net.TCPAddr{} }

// countExec counts the tasks posted to the loop without running them: the
// test runs the loop's task itself.
type countExec struct{ n int }

func (x *countExec) Execute(context.Context, gnet.Runnable) error { x.n++; return nil }
func (x *countExec) closeSocket(socket) error                     { return nil }

// testLoop is an engine with one loop whose tasks the test runs itself
// (countExec), and n open connections on it writing to recSockets.
func testLoop(cfg Config, n int) (*Engine, *countExec, *loop, []*recSocket, []wsframe.Sink) {
	e := New(cfg, nil)
	x := &countExec{}
	l := newLoop(e, x, 0)
	e.loopList = []*loop{l}
	socks := make([]*recSocket, n)
	conns := make([]wsframe.Sink, n)
	for i := range conns {
		socks[i] = &recSocket{}
		c := &Conn{gc: socks[i], loop: l, e: e, state: stateOpen, qhead: -1, qtail: -1}
		l.add(c)
		conns[i] = c
	}
	return e, x, l, socks, conns
}

func textFrame(t *testing.T, s string) *wsframe.Frame {
	t.Helper()
	f := wsframe.NewFrame()
	_, _ = f.WriteString(s)
	f.Seal(wsframe.OpText)
	return f
}

// A broadcast posted while the loop is writing an earlier one joins the
// queues of the connections not yet written and leaves in the same writev;
// connections written before the loop looked at its inbox get it in a
// second write of the same pass. Every connection gets every frame once,
// in order, and the frames are released after the pass.
func TestFlushTakesBroadcastsPostedMeanwhile(t *testing.T) {
	e, x, l, socks, conns := testLoop(Config{}, 3*refillEvery+10)
	f1, f2 := textFrame(t, "one"), textFrame(t, "two")
	one, two := string(f1.Bytes()), string(f2.Bytes())
	const early = 10 // the second broadcast arrives while this one is written
	socks[early].onWrite = func() { e.Fanout(f2, conns) }

	e.Fanout(f1, conns)
	if x.n != 1 {
		t.Fatalf("first broadcast scheduled %d tasks, want 1", x.n)
	}
	if err := l.Run(context.Background()); err != nil {
		t.Fatal(err)
	}

	for i, s := range socks {
		var got []string
		for _, call := range s.writes {
			got = append(got, call...)
		}
		if len(got) != 2 || got[0] != one || got[1] != two {
			t.Fatalf("conn %d received %q, want [one two] in order", i, got)
		}
		// The inbox is looked at after every refillEvery connections:
		// those written before the first look get the frames apart.
		together := i >= refillEvery-1
		if together && len(s.writes) != 1 {
			t.Fatalf("conn %d: %d writes, want both frames in one", i, len(s.writes))
		}
		if !together && len(s.writes) != 2 {
			t.Fatalf("conn %d: %d writes, want 2 (written before the second broadcast was taken)", i, len(s.writes))
		}
	}
	if x.n != 2 {
		t.Fatalf("%d tasks scheduled, want 2 (the second broadcast's)", x.n)
	}
	// The task scheduled by the second broadcast finds nothing left to do.
	if err := l.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, s := range socks {
		if len(s.writes) > 2 {
			t.Fatalf("conn %d written again by the second task", i)
		}
	}
	if r1, r2 := f1.Refs(), f2.Refs(); r1 != 1 || r2 != 1 {
		t.Fatalf("after the pass the frames hold %d and %d references, want only the caller's (1)", r1, r2)
	}
}

// countHandler counts the messages handed to it.
type countHandler struct{ messages int }

func (h *countHandler) Upgrade(*Request) Decision     { return Decision{} }
func (h *countHandler) OnOpen(*Conn)                  {}
func (h *countHandler) OnMessage(*Conn, byte, []byte) { h.messages++ }
func (h *countHandler) OnClose(*Conn, int, error)     {}

// POSTed messages waiting for their stream's loop are bounded in bytes:
// beyond four bodies' worth the POST is answered 429, and once the loop
// has handed them on, POSTs are accepted again.
func TestSSEPendingMessagesBounded(t *testing.T) {
	h := &countHandler{}
	e := New(Config{MaxSSEBody: 100}, h)
	x := &countExec{}
	l := newLoop(e, x, 0)
	c := &Conn{gc: &recSocket{}, loop: l, e: e, state: stateOpen, sse: true, qhead: -1, qtail: -1}
	l.add(c)
	e.sse.add("s1", c)
	body := []byte(strings.Repeat("x", 100))
	for i := range 4 {
		if st := e.SSEMessage("s1", body); st != 202 {
			t.Fatalf("POST %d: %d, want 202", i, st)
		}
	}
	if st := e.SSEMessage("s1", body); st != 429 {
		t.Fatalf("POST beyond 4 bodies waiting: %d, want 429", st)
	}
	if err := l.Run(context.Background()); err != nil { // the loop catches up
		t.Fatal(err)
	}
	if h.messages != 4 {
		t.Fatalf("handler got %d messages, want the 4 accepted", h.messages)
	}
	if st := e.SSEMessage("s1", body); st != 202 {
		t.Fatalf("POST after the loop caught up: %d, want 202", st)
	}
}

// Broadcasts to the same connections that wait in one batch are joined:
// each connection queues their frames as one buffer and gets them in one
// contiguous piece of its write. A send to one connection, or a broadcast
// to other connections, ends the run; order holds for every connection.
func TestBroadcastRunIsJoined(t *testing.T) {
	const n = 20
	e, _, l, socks, conns := testLoop(Config{EnableCompression: true, CompressionThreshold: 3}, n)
	// the last connection negotiated permessage-deflate, the one before is
	// an SSE stream: each gets its own form of the run
	deflated, sse := conns[n-1].(*Conn), conns[n-2].(*Conn)
	deflated.deflate, sse.sse = true, true
	fs := []*wsframe.Frame{textFrame(t, "a"), textFrame(t, "bb"), textFrame(t, "ccc"), textFrame(t, "dddd"), textFrame(t, "eeeee")}
	b := func(i int) string { return string(fs[i].Bytes()) }
	z := func(i int) string { // under CompressionThreshold frames go plain
		if fs[i].Len() < 3 {
			return b(i)
		}
		return string(deflatedFrame(fs[i]))
	}
	ev := func(i int) string { return string(sseFrame(fs[i])) }
	e.Fanout(fs[0], conns)
	e.Fanout(fs[1], conns)
	e.Fanout(fs[2], conns) // a run of three
	conns[0].Send(fs[3])   // ends it
	e.Fanout(fs[4], conns[:n/2])
	if err := l.Run(context.Background()); err != nil {
		t.Fatal(err)
	}

	frames := 0
	for i, s := range socks {
		want := []string{b(0) + b(1) + b(2)}
		switch conns[i] {
		case deflated:
			want = []string{z(0) + z(1) + z(2)}
		case sse:
			want = []string{ev(0) + ev(1) + ev(2)}
		}
		if i == 0 {
			want = append(want, b(3))
		}
		if i < n/2 {
			want = append(want, b(4))
		}
		frames += 3 + len(want) - 1
		if len(s.writes) != 1 || strings.Join(s.writes[0], "|") != strings.Join(want, "|") {
			t.Fatalf("conn %d: writes %q, want one write of %q", i, s.writes, want)
		}
	}
	if got := e.stats.FramesOut.Load(); got != int64(frames) {
		t.Fatalf("FramesOut %d, want %d (a joined run counts each of its frames)", got, frames)
	}
	for i, f := range fs {
		if f.Refs() != 1 {
			t.Fatalf("frame %d holds %d references after the pass, want only the caller's", i, f.Refs())
		}
	}
}
