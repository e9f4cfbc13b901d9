package pondsocket_test

import (
	"fmt"
	"testing"

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/internal/testenv"
)

// The SSE transport (docs/protocol.md §9) with the published client's
// SSEClient (@eleven-am/pondsocket-client 0.0.32) on Node's EventSource.

// newSSEPond connects an SSEClient to srv's /api/socket.
func newSSEPond(t *testing.T, srv *pondsocket.Server, params map[string]any) *pond {
	t.Helper()
	d := testenv.StartNodeFlags(t, "pondsocket-sse-client", []string{"--experimental-eventsource", "--no-warnings"}, "pond-driver.mjs")
	p := &pond{t: t, d: d}
	d.Send(map[string]any{"op": "connect", "transport": "sse", "url": fmt.Sprintf("http://%s/api/socket", srv.Addr()), "params": params})
	p.expect("conn", func(e pondEv) bool { return e.State == "connected" })
	return p
}

func TestSSEClientChat(t *testing.T) {
	srv := startDemo(t, nil)
	a := newSSEPond(t, srv, map[string]any{"token": "alice"})
	b := newPond(t, srv, map[string]any{"token": "bob"})
	const room = "/chat/lobby"

	a.join(room, map[string]any{"username": "alice"})
	a.state(room, "JOINED")
	a.users(room, 1)
	b.join(room, map[string]any{"username": "bob"})
	b.state(room, "JOINED")
	b.users(room, 2)
	a.users(room, 2)

	a.send(room, "message", map[string]any{"text": "hi all"})
	for _, p := range []*pond{a, b} {
		if m := p.message(room, "message"); m["text"] != "hi all" || m["from"] != "alice" {
			t.Fatalf("broadcast payload %v", m)
		}
	}
	if r := a.request(room, "ping", map[string]any{}); r["receivedAt"] != float64(1) {
		t.Fatalf("pong %v", r)
	}
}
