package pondsocket

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket/internal/protocol"
	"github.com/pondsocket/pondsocket/internal/wsframe"
)

// OnEventInline: the handler runs on the goroutine that delivered the
// message (the event loop), unless the connection has work waiting on a
// worker or the channel has middleware or outgoing hooks.

// inlineHub is a hub that runs handlers on workers (unlike newTestHub),
// with one connected member of /room/1.
func inlineHub(t *testing.T, setup func(*Channel)) (*testHub, *Client, *recConn) {
	t.Helper()
	h := newHub(Options{Logger: quietLog(), Inbound: InboundOptions{JoinRate: -1, MessageRate: -1}}, nil)
	t.Cleanup(h.Close)
	ep := h.CreateEndpoint("/api/socket", func(ctx *ConnectionContext) error {
		ctx.SetUserID(ctx.Route.Query.Get("id"))
		return ctx.Accept()
	})
	x := &testHub{h: h, ep: ep}
	setup(ep.CreateChannel("/room/:id", func(ctx *JoinContext) error { return ctx.Accept().Err() }))
	c, r := x.connect(t, "u1")
	x.join(c, "/room/1", "j1")
	r.wait(t, "the join's ACKNOWLEDGE", func(m wireMsg) bool { return m.Event == protocol.EventAcknowledge })
	return x, c, r
}

func replies(r *recConn, event string) []string {
	var out []string
	for _, m := range r.of(protocol.ActionSystem, event) {
		out = append(out, m.RequestID)
	}
	return out
}

func TestOnEventInlineRunsWhereTheMessageArrives(t *testing.T) {
	x, c, r := inlineHub(t, func(ch *Channel) {
		ch.OnEventInline("echo", func(ctx *EventContext) error { return ctx.Reply("echo", ctx.RawPayload()).Err() })
	})
	for i, id := range []string{"m1", "m2", "m3"} {
		x.broadcast(c, "/room/1", "echo", id, `{"n":1}`)
		// no worker involved: the reply was sent before Message returned
		if got := replies(r, "echo"); len(got) != i+1 || got[i] != id {
			t.Fatalf("after sending %s the replies are %v: the handler did not run inline", id, got)
		}
	}
}

// A message for an inline handler waits behind the connection's messages
// that are queued for, or running on, a worker: order per connection holds.
func TestOnEventInlineKeepsOrderBehindQueuedWork(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	x, c, r := inlineHub(t, func(ch *Channel) {
		ch.OnEvent("slow", func(ctx *EventContext) error {
			started <- struct{}{}
			<-release
			return ctx.Reply("slow", ctx.RawPayload()).Err()
		})
		ch.OnEventInline("echo", func(ctx *EventContext) error { return ctx.Reply("echo", ctx.RawPayload()).Err() })
	})
	x.broadcast(c, "/room/1", "slow", "s1", "")
	<-started
	x.broadcast(c, "/room/1", "echo", "e1", "")
	if got := replies(r, "echo"); len(got) != 0 {
		t.Fatalf("the inline event overtook the slow one still running: replies %v", got)
	}
	close(release)
	r.wait(t, "the echo reply", func(m wireMsg) bool { return m.Event == "echo" })
	var order []string
	for _, m := range r.all() {
		if m.Action == protocol.ActionSystem && (m.Event == "slow" || m.Event == "echo") {
			order = append(order, m.RequestID)
		}
	}
	if strings.Join(order, ",") != "s1,e1" {
		t.Fatalf("replies in order %v, want s1,e1", order)
	}
	// with nothing waiting any more, the next one runs inline again
	x.broadcast(c, "/room/1", "echo", "e2", "")
	if got := replies(r, "echo"); len(got) != 2 {
		t.Fatalf("after the queue emptied the inline handler did not run inline: replies %v", got)
	}
}

// Middleware and outgoing hooks are user code that may block, so a channel
// that has them runs even its inline handlers on workers, middleware first.
func TestOnEventInlineWithMiddlewareRunsOnAWorker(t *testing.T) {
	gate := make(chan struct{})
	x, c, r := inlineHub(t, func(ch *Channel) {
		ch.Use(func(ctx context.Context, req *MessageEvent, res *Channel, next NextFunc) error {
			<-gate // blocks: on the loop this would hang the test's goroutine
			return next()
		})
		ch.OnEventInline("echo", func(ctx *EventContext) error { return ctx.Reply("echo", ctx.RawPayload()).Err() })
	})
	done := make(chan struct{})
	go func() {
		x.broadcast(c, "/room/1", "echo", "e1", "")
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Message blocked in the middleware: the handler ran on the delivering goroutine")
	}
	close(gate)
	r.wait(t, "the echo reply after the middleware", func(m wireMsg) bool { return m.Event == "echo" })
}

// A panic in an inline handler is recovered like any other: the sender
// gets a generic 500 with an error id and the next event is served.
func TestOnEventInlinePanicIsRecovered(t *testing.T) {
	x, c, r := inlineHub(t, func(ch *Channel) {
		ch.OnEventInline("crash", func(ctx *EventContext) error { panic("inline handler panics") })
		ch.OnEventInline("echo", func(ctx *EventContext) error { return ctx.Reply("echo", ctx.RawPayload()).Err() })
	})
	x.broadcast(c, "/room/1", "crash", "c1", "")
	m := r.wait(t, "the error for the panic", func(m wireMsg) bool { return m.Action == protocol.ActionError && m.RequestID == "c1" })
	msg, _ := m.Payload["message"].(string)
	if m.Payload["code"] != float64(500) || !strings.Contains(msg, "error id") || strings.Contains(msg, "panics") {
		t.Fatalf("error for the panic: %v", m)
	}
	x.broadcast(c, "/room/1", "echo", "e1", "")
	if got := replies(r, "echo"); len(got) != 1 {
		t.Fatalf("after the panic the next inline event got replies %v", got)
	}
}

// Handlers.Timeout measures an inline handler from its own start, not from
// the start of the connection's last job on a worker.
func TestOnEventInlineTimedFromItsOwnStart(t *testing.T) {
	h := newHub(Options{Logger: quietLog(), Handlers: HandlerOptions{Timeout: 50 * time.Millisecond},
		Inbound: InboundOptions{JoinRate: -1, MessageRate: -1}}, nil)
	t.Cleanup(h.Close)
	ep := h.CreateEndpoint("/api/socket", func(ctx *ConnectionContext) error { return ctx.Accept() })
	x := &testHub{h: h, ep: ep}
	ch := ep.CreateChannel("/room/:id", func(ctx *JoinContext) error { return ctx.Accept().Err() })
	ch.OnEvent("work", func(ctx *EventContext) error { return ctx.Reply("work", ctx.RawPayload()).Err() })
	ch.OnEventInline("echo", func(ctx *EventContext) error { return ctx.Reply("echo", ctx.RawPayload()).Err() })
	c, r := x.connect(t, "u1")
	x.join(c, "/room/1", "j1")
	x.broadcast(c, "/room/1", "work", "w1", "")
	r.wait(t, "the worker's reply", func(m wireMsg) bool { return m.Event == "work" })
	time.Sleep(120 * time.Millisecond) // longer than Handlers.Timeout since that job started
	x.broadcast(c, "/room/1", "echo", "e1", "")
	// inline: everything it sends is sent by the time broadcast returns
	var got []string
	for _, m := range r.all() {
		if m.RequestID == "e1" {
			got = append(got, m.Action+" "+m.Event)
		}
	}
	if len(got) != 1 || got[0] != protocol.ActionSystem+" echo" {
		t.Fatalf("the inline event was answered %v, want only its reply (a timeout error means it was timed from the worker job's start)", got)
	}
}

// loopConn is a recConn that also takes replies made inside the delivery
// of its own message (engine.Conn.SendInline), and counts them.
type loopConn struct {
	recConn
	inline atomic.Int32
}

func (l *loopConn) SendInline(f *wsframe.Frame) {
	l.inline.Add(1)
	l.recConn.Send(f)
}

// A reply from an inline handler is handed to the connection's SendInline
// (it leaves with the read it answers); one from a worker goes through Send.
func TestInlineReplyUsesSendInline(t *testing.T) {
	released := make(chan struct{})
	x, _, _ := inlineHub(t, func(ch *Channel) {
		ch.OnEventInline("echo", func(ctx *EventContext) error { return ctx.Reply("echo", ctx.RawPayload()).Err() })
		ch.OnEvent("slow", func(ctx *EventContext) error {
			defer close(released)
			return ctx.Reply("slow", ctx.RawPayload()).Err()
		})
	})
	d := x.h.Connect(&handshake{Path: "/api/socket", RawQuery: "id=u2"})
	for _, f := range d.Greeting {
		f.Release()
	}
	conn := &loopConn{}
	x.h.Open(d.Client, conn)
	x.join(d.Client, "/room/1", "j2")
	conn.wait(t, "the join's ACKNOWLEDGE", func(m wireMsg) bool { return m.Event == protocol.EventAcknowledge })

	x.broadcast(d.Client, "/room/1", "echo", "e1", `{}`)
	if n := conn.inline.Load(); n != 1 || len(replies(&conn.recConn, "echo")) != 1 {
		t.Fatalf("inline reply: %d through SendInline, replies %v", n, replies(&conn.recConn, "echo"))
	}
	x.broadcast(d.Client, "/room/1", "slow", "s1", `{}`)
	<-released
	conn.wait(t, "the worker's reply", func(m wireMsg) bool { return m.Event == "slow" })
	if n := conn.inline.Load(); n != 1 {
		t.Fatalf("a worker's reply went through SendInline (%d calls)", n)
	}
}
