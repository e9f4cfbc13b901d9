package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/internal/testenv"
)

// startWith starts a server on 127.0.0.1:0 whose endpoint /api/socket
// accepts everyone and whose channels /room/:id run what register adds.
func startWith(t *testing.T, tweak func(*pondsocket.Options), register func(*pondsocket.Channel)) *pondsocket.Server {
	t.Helper()
	opts := pondsocket.DefaultOptions()
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	opts.Transport.EventLoops = 2
	if tweak != nil {
		tweak(opts)
	}
	srv := pondsocket.NewServer(&pondsocket.ServerOptions{ServerAddr: "127.0.0.1:0", Options: opts})
	ep := srv.CreateEndpoint("/api/socket", func(ctx *pondsocket.ConnectionContext) error { return ctx.Accept() })
	room := ep.CreateChannel("/room/:id", func(ctx *pondsocket.JoinContext) error { return ctx.Accept().Err() })
	room.OnEvent("echo", func(ctx *pondsocket.EventContext) error {
		return ctx.Reply("echo", map[string]any{"ok": true}).Err()
	})
	if register != nil {
		register(room)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(5 * time.Second) })
	return srv
}

// wsConn is a raw client that reads on its own goroutine: every message
// line goes to msgs, the close (or read error) to closed.
type wsConn struct {
	c      *websocket.Conn
	wmu    sync.Mutex
	msgs   chan map[string]any
	closed chan error
}

func dialWS(t *testing.T, srv *pondsocket.Server) *wsConn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://%s/api/socket", srv.Addr()), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	w := &wsConn{c: c, msgs: make(chan map[string]any, 4096), closed: make(chan error, 1)}
	go func() {
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				w.closed <- err
				close(w.msgs)
				return
			}
			for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
				var m map[string]any
				if json.Unmarshal([]byte(line), &m) == nil {
					select {
					case w.msgs <- m:
					default: // a test that does not read them does not care
					}
				}
			}
		}
	}()
	w.wait(t, time.Now().Add(5*time.Second), func(m map[string]any) bool { return m["action"] == "CONNECT" })
	return w
}

func (w *wsConn) send(t *testing.T, s string) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	return w.c.WriteMessage(websocket.TextMessage, []byte(s))
}

// wait returns the first message that satisfies ok before deadline.
func (w *wsConn) wait(t *testing.T, deadline time.Time, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		select {
		case m, open := <-w.msgs:
			if !open {
				t.Fatalf("connection ended while waiting: %v", <-w.closed)
			}
			if ok(m) {
				return m
			}
		case <-timer.C:
			t.Fatalf("no expected message before the deadline")
		}
	}
}

func (w *wsConn) join(t *testing.T, room string) {
	t.Helper()
	if err := w.send(t, `{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"`+room+`","requestId":"j-`+room+`","payload":{}}`); err != nil {
		t.Fatal(err)
	}
	w.wait(t, time.Now().Add(5*time.Second), func(m map[string]any) bool {
		return m["event"] == "ACKNOWLEDGE" && m["channelName"] == room
	})
}

// echo sends an echo on room and returns how long the answer took.
func (w *wsConn) echo(t *testing.T, room, id string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	if err := w.send(t, `{"action":"BROADCAST","event":"echo","channelName":"`+room+`","requestId":"`+id+`","payload":{}}`); err != nil {
		t.Fatal(err)
	}
	w.wait(t, start.Add(within), func(m map[string]any) bool { return m["event"] == "echo" && m["requestId"] == id })
	return time.Since(start)
}

func status(m map[string]any) float64 {
	p, _ := m["payload"].(map[string]any)
	if s, ok := p["status"].(float64); ok {
		return s
	}
	s, _ := p["code"].(float64)
	return s
}

// Issue 10 point 5: one connection sending 1 MB messages to a 50 ms handler
// may hold MaxQueuedBytes (4 MiB), not ReceiveChannelBuffer (1 024)
// messages: it gets 429s, then close 1008, the heap stays far from the
// gigabyte the old count-only queue let it take, and a bystander's echo
// still answers.
func TestReceiveQueueBoundedInBytes(t *testing.T) {
	// The first call also waits until the attacker is cut: under the race
	// detector decoding a 1 MB message takes longer than 50 ms, and the
	// queue must stay full however fast this machine decodes.
	attackOver := make(chan struct{})
	var first atomic.Bool
	srv := startWith(t, nil, func(room *pondsocket.Channel) {
		room.OnEvent("slow", func(ctx *pondsocket.EventContext) error {
			if first.CompareAndSwap(false, true) {
				select {
				case <-attackOver:
				case <-time.After(20 * time.Second):
				}
			}
			time.Sleep(50 * time.Millisecond)
			return nil
		})
	})
	by := dialWS(t, srv)
	by.join(t, "/room/b")
	att := dialWS(t, srv)
	att.join(t, "/room/a")

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()

	// ~1 MB messages; 600 of them is 600 MB that the count-only queue held
	msg := []byte(`{"action":"BROADCAST","event":"slow","channelName":"/room/a","requestId":"s","payload":{"x":"` +
		strings.Repeat("x", 1_000_000) + `"}}`)
	// one pre-built masked frame (a zero mask key: the payload is sent as
	// is), written straight to the socket, so the client is not the
	// bottleneck
	frame := []byte{0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint64(frame[2:10], uint64(len(msg)))
	frame = append(frame, msg...)
	go func() {
		for sent := 0; sent < 600; sent++ {
			att.wmu.Lock()
			_, err := att.c.NetConn().Write(frame)
			att.wmu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	refused := 0
	deadline := time.After(15 * time.Second)
	var closeErr error
	var during time.Duration
wait:
	for {
		select {
		case m, ok := <-att.msgs:
			if !ok {
				closeErr = <-att.closed
				break wait
			}
			if m["action"] == "ERROR" && status(m) == 429 {
				if refused == 0 {
					// the attacker's queue is full right now
					during = by.echo(t, "/room/b", "during", 5*time.Second)
				}
				refused++
			}
		case <-deadline:
			st := srv.Stats()
			t.Fatalf("no close after %d refusals (in %d, limited %d)", refused, st.MessagesIn, st.RateLimited)
		}
	}
	close(attackOver)
	close(stopSampling)
	<-sampled
	if refused == 0 {
		t.Fatalf("closed (%v) without a 429 first", closeErr)
	}
	var ce *websocket.CloseError
	if !errors.As(closeErr, &ce) || ce.Code != 1008 {
		t.Fatalf("attacker ended with %v, want close 1008", closeErr)
	}
	if growth := int64(peak.Load()) - int64(base); growth > 256<<20 {
		t.Fatalf("heap grew by %d MiB during the attack (bound 256 MiB)", growth>>20)
	}
	by.echo(t, "/room/b", "after", 5*time.Second)
	t.Logf("refused %d, bystander echo %v during the attack, heap growth peak %d MiB, reason %q", refused, during, (int64(peak.Load())-int64(base))>>20, ce.Text)
}

// Issue 10 point 6: with a small pool (8 workers, so one handler may hold
// 4), 20 connections each queuing two calls to a handler that blocks do
// not delay an unrelated echo or a new join; closing them cancels the
// running calls' contexts and their queued calls never run.
func TestSlowHandlerCannotStarveOthers(t *testing.T) {
	var calls atomic.Int64
	started := make(chan struct{}, 64)
	left := make(chan struct{}, 64)
	cancelled := make(chan error, 64)
	proceed := make(chan struct{})
	srv := startWith(t, func(o *pondsocket.Options) { o.Handlers.Workers = 8 }, func(room *pondsocket.Channel) {
		room.OnEvent("slow", func(ctx *pondsocket.EventContext) error {
			calls.Add(1)
			started <- struct{}{}
			select {
			case <-ctx.Context().Done():
				cancelled <- ctx.Context().Err()
			case <-time.After(20 * time.Second):
				cancelled <- errors.New("never cancelled")
			}
			// keep the slot until the parked connections are gone, so
			// that a slot freed early cannot go to one still open
			<-proceed
			return nil
		})
		room.OnLeave(func(ctx *pondsocket.LeaveContext) {
			if ctx.Route.Params["id"] == "slow" {
				left <- struct{}{}
			}
		})
	})
	by := dialWS(t, srv)
	by.join(t, "/room/b")

	const n = 20
	slow := make([]*wsConn, n)
	for i := range slow {
		slow[i] = dialWS(t, srv)
		slow[i].join(t, "/room/slow")
		for k := 0; k < 2; k++ {
			if err := slow[i].send(t, fmt.Sprintf(`{"action":"BROADCAST","event":"slow","channelName":"/room/slow","requestId":"s%d","payload":{}}`, k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < 4; i++ {
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d slow calls started", i)
		}
	}
	// the handler holds its 4 workers with 36 calls waiting; others pass
	if d := by.echo(t, "/room/b", "e1", time.Second); d > time.Second {
		t.Fatalf("bystander echo took %v", d)
	}
	start := time.Now()
	late := dialWS(t, srv)
	late.join(t, "/room/late")
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a new connection and join took %v", d)
	}
	if got := calls.Load(); got != 4 {
		t.Fatalf("%d calls of the slow handler running, want its share of 4", got)
	}

	for _, c := range slow {
		c.c.Close()
	}
	for i := 0; i < 4; i++ {
		select {
		case err := <-cancelled:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("running call ended with %v, want its context cancelled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a running call's context was not cancelled when its connection closed")
		}
	}
	// the 16 parked connections leave at once (their calls dropped); the
	// 4 running ones after their call returns
	for i := 0; i < n; i++ {
		if i == n-4 {
			close(proceed)
		}
		select {
		case <-left:
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d closed connections left the room", i, n)
		}
	}
	if got := calls.Load(); got != 4 {
		t.Fatalf("the slow handler ran %d times: work queued by closed connections ran", got)
	}
	by.echo(t, "/room/b", "e2", time.Second)
}

// Handlers.Timeout: the handler's context ends at the deadline and the client
// gets status 504 instead of the handler's result; the connection goes on.
func TestHandlerTimeout(t *testing.T) {
	srv := startWith(t, func(o *pondsocket.Options) { o.Handlers.Timeout = 200 * time.Millisecond }, func(room *pondsocket.Channel) {
		room.OnEvent("stuck", func(ctx *pondsocket.EventContext) error {
			<-ctx.Context().Done()
			return ctx.Context().Err()
		})
	})
	by := dialWS(t, srv)
	by.join(t, "/room/b")
	c := dialWS(t, srv)
	c.join(t, "/room/t")
	if err := c.send(t, `{"action":"BROADCAST","event":"stuck","channelName":"/room/t","requestId":"st","payload":{}}`); err != nil {
		t.Fatal(err)
	}
	if d := by.echo(t, "/room/b", "by", 5*time.Second); d > 150*time.Millisecond {
		t.Logf("bystander echo took %v while the handler was stuck", d)
	}
	m := c.wait(t, time.Now().Add(5*time.Second), func(m map[string]any) bool { return m["requestId"] == "st" })
	if m["action"] != "ERROR" || status(m) != 504 {
		t.Fatalf("overrun answered %v, want an error with status 504", m)
	}
	c.echo(t, "/room/t", "after", 5*time.Second)
}

// MaxTotalQueuedBytes: once two connections fill the total, a third
// one's 1 MB message is refused with 429 "Server busy" (and it is not
// cut: the total is not its fault), while a bystander's small request
// still gets through.
func TestTotalQueuedBytesBound(t *testing.T) {
	release := make(chan struct{})
	srv := startWith(t, func(o *pondsocket.Options) {
		o.Inbound.MaxQueuedBytes = 2 << 20
		o.Inbound.MaxTotalQueuedBytes = 4 << 20
	},
		func(room *pondsocket.Channel) {
			room.OnEvent("slow", func(ctx *pondsocket.EventContext) error {
				<-release
				return nil
			})
		})
	defer close(release)
	by := dialWS(t, srv)
	by.join(t, "/room/b")
	big := func(id string) string {
		return `{"action":"BROADCAST","event":"slow","channelName":"/room/x","requestId":"` + id +
			`","payload":{"x":"` + strings.Repeat("x", 1_000_000) + `"}}`
	}
	refusal := func(c *wsConn, id string) string {
		t.Helper()
		m := c.wait(t, time.Now().Add(10*time.Second), func(m map[string]any) bool { return m["requestId"] == id })
		if m["action"] != "ERROR" || status(m) != 429 {
			t.Fatalf("%s answered %v, want 429", id, m)
		}
		return m["payload"].(map[string]any)["message"].(string)
	}
	for _, name := range []string{"a", "b"} {
		c := dialWS(t, srv)
		c.join(t, "/room/x")
		// one runs (and blocks), two wait (2 MB), the fourth is refused:
		// its refusal proves the two before it are queued
		for i := 0; i < 4; i++ {
			if err := c.send(t, big(fmt.Sprintf("%s%d", name, i))); err != nil {
				t.Fatal(err)
			}
		}
		refusal(c, name+"3")
	}
	c := dialWS(t, srv)
	c.join(t, "/room/x")
	if err := c.send(t, big("c0")); err != nil {
		t.Fatal(err)
	}
	if text := refusal(c, "c0"); !strings.Contains(text, "Server busy") {
		t.Fatalf("third connection refused with %q, want the total limit's message", text)
	}
	by.echo(t, "/room/b", "small", 5*time.Second)
	c.echo(t, "/room/x", "still-open", 5*time.Second)
}

// ourGoroutines counts goroutines running code of this module or gnet.
func ourGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, mark := range []string{"pondsocket/pondsocket/channel.", "pondsocket/pondsocket/engine.", "pondsocket/pondsocket.(", "panjf2000/gnet"} {
			if strings.Contains(g, mark) {
				n++
				break
			}
		}
	}
	return n
}

// Issue 10 point 7: Stop returns by its deadline even with handlers that
// ignore their context; the error says how many were abandoned, their
// contexts are cancelled, and once they return no goroutine of ours is
// left.
func TestStopHonoursDeadline(t *testing.T) {
	before := ourGoroutines()
	release := make(chan struct{})
	started := make(chan struct{}, 32)
	ctxErrs := make(chan error, 32)
	var calls atomic.Int64
	srv := startWith(t, func(o *pondsocket.Options) { o.Handlers.Workers = 8 }, func(room *pondsocket.Channel) {
		room.OnEvent("stubborn", func(ctx *pondsocket.EventContext) error {
			calls.Add(1)
			started <- struct{}{}
			<-release // ignores its context
			ctxErrs <- ctx.Context().Err()
			return nil
		})
	})
	for i := 0; i < 5; i++ {
		c := dialWS(t, srv)
		c.join(t, "/room/s")
		for k := 0; k < 4; k++ {
			if err := c.send(t, `{"action":"BROADCAST","event":"stubborn","channelName":"/room/s","requestId":"x","payload":{}}`); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < 4; i++ {
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d calls started", i)
		}
	}
	const timeout = 500 * time.Millisecond
	start := time.Now()
	err := srv.Stop(timeout)
	took := time.Since(start)
	if took > timeout+2*time.Second {
		t.Fatalf("Stop(%v) took %v", timeout, took)
	}
	var ae *pondsocket.AbandonedError
	if !errors.Is(err, pondsocket.ErrHandlersAbandoned) || !errors.As(err, &ae) || ae.Count != 4 {
		t.Fatalf("Stop returned %v, want 4 handlers abandoned", err)
	}
	close(release)
	for i := 0; i < 4; i++ {
		if err := <-ctxErrs; !errors.Is(err, context.Canceled) {
			t.Fatalf("abandoned handler's context: %v, want cancelled", err)
		}
	}
	if got := calls.Load(); got != 4 {
		t.Fatalf("%d calls ran, want only the 4 that were running", got)
	}
	defer func() {
		if t.Failed() {
			buf := make([]byte, 1<<20)
			t.Logf("%d goroutines of ours (before: %d):\n%s", ourGoroutines(), before, buf[:runtime.Stack(buf, true)])
		}
	}()
	testenv.Eventually(t, 5*time.Second, "no goroutine of ours left", func() bool { return ourGoroutines() <= before })
	t.Logf("Stop(%v) returned in %v: %v", timeout, took, err)
}
