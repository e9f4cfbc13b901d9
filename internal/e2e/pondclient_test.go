package e2e

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/internal/testenv"
)

// Conformance with the published client @eleven-am/pondsocket-client
// 0.0.32, driven by testdata/js/pond-driver.mjs, through the sequences of
// docs/protocol.md §6.

const wait = 10 * time.Second

// pondEv is one event of the PondSocket client driver.
type pondEv struct {
	Ev       string           `json:"ev"`
	State    string           `json:"state"`
	Channel  string           `json:"channel"`
	Event    string           `json:"event"`
	Payload  map[string]any   `json:"payload"`
	Presence map[string]any   `json:"presence"`
	Users    []map[string]any `json:"users"`
	ID       string           `json:"id"`
}

type pond struct {
	t *testing.T
	d *testenv.Driver
}

func decode(t testing.TB, e testenv.Event) pondEv {
	var p pondEv
	if err := e.Decode(&p); err != nil {
		t.Fatalf("bad driver event %s: %v", e.Raw, err)
	}
	return p
}

func newPond(t *testing.T, srv *pondsocket.Server, params map[string]any) *pond {
	t.Helper()
	return newPondAt(t, srv.Addr().String(), params)
}

func newPondAt(t *testing.T, addr string, params map[string]any) *pond {
	t.Helper()
	return newPondURL(t, fmt.Sprintf("ws://%s/api/socket", addr), params)
}

// newPondURL connects a JS client to the endpoint at url.
func newPondURL(t *testing.T, url string, params map[string]any) *pond {
	t.Helper()
	testenv.NodeModules(t)
	d := testenv.StartNode(t, "pondsocket-client", "pond-driver.mjs")
	p := &pond{t: t, d: d}
	d.Send(map[string]any{"op": "connect", "url": url, "params": params})
	p.expect("conn", func(e pondEv) bool { return e.State == "connected" })
	return p
}

func (p *pond) expect(ev string, match func(pondEv) bool) pondEv {
	p.t.Helper()
	e := p.d.ExpectMatch(p.t, ev, func(e testenv.Event) bool { return match(decode(p.t, e)) }, wait)
	return decode(p.t, e)
}

func (p *pond) join(ch string, params map[string]any) {
	p.t.Helper()
	p.d.Send(map[string]any{"op": "join", "channel": ch, "params": params})
}

func (p *pond) state(ch, state string) {
	p.t.Helper()
	p.expect("state", func(e pondEv) bool { return e.Channel == ch && e.State == state })
}

func (p *pond) send(ch, event string, payload map[string]any) {
	p.d.Send(map[string]any{"op": "send", "channel": ch, "event": event, "payload": payload})
}

var reqSeq int

func (p *pond) request(ch, event string, payload map[string]any) map[string]any {
	p.t.Helper()
	reqSeq++
	id := fmt.Sprintf("r%d", reqSeq)
	p.d.Send(map[string]any{"op": "request", "channel": ch, "event": event, "payload": payload, "id": id})
	return p.expect("response", func(e pondEv) bool { return e.ID == id }).Payload
}

func (p *pond) message(ch, event string) map[string]any {
	p.t.Helper()
	return p.expect("message", func(e pondEv) bool { return e.Channel == ch && e.Event == event }).Payload
}

func (p *pond) users(ch string, n int) []map[string]any {
	p.t.Helper()
	return p.expect("users", func(e pondEv) bool { return e.Channel == ch && len(e.Users) == n }).Users
}

// noMessage asserts that no "event" message arrived on ch before the
// response to a ping sent now (the server keeps order per connection).
func (p *pond) noMessageBeforePing(ch, event string) {
	p.t.Helper()
	p.request(ch, "ping", map[string]any{})
	for _, e := range p.d.History() {
		if e.Ev != "message" {
			continue
		}
		if pe := decode(p.t, e); pe.Channel == ch && pe.Event == event {
			p.t.Fatalf("unexpected %q message on %s: %s", event, ch, e.Raw)
		}
	}
}

func TestPondClientChat(t *testing.T) {
	srv := startDemo(t, nil)
	a := newPond(t, srv, map[string]any{"token": "alice"})
	b := newPond(t, srv, map[string]any{"token": "bob"})
	const room = "/chat/lobby"

	// join accepted, presence JOIN seen through onJoin/onUsersChange
	joinAliceBob(a, b, room, true)
	if got := b.users(room, 2); got[0]["username"] != "alice" || got[1]["username"] != "bob" {
		t.Fatalf("presence list order %v", got)
	}
	if j := a.expect("join", func(e pondEv) bool { return e.Channel == room && e.Presence["username"] == "bob" }); j.Presence["status"] != "online" {
		t.Fatalf("onJoin presence %v", j.Presence)
	}
	a.users(room, 2)

	// broadcast reaches both, sender included
	a.send(room, "message", map[string]any{"text": "hi all"})
	for _, p := range []*pond{a, b} {
		if m := p.message(room, "message"); m["text"] != "hi all" || m["from"] != "alice" {
			t.Fatalf("broadcast payload %v", m)
		}
	}

	// sendForResponse
	if r := a.request(room, "ping", map[string]any{}); r["receivedAt"] != float64(1) {
		t.Fatalf("pong %v", r)
	}

	// broadcastFrom: bob gets typing, alice does not
	a.send(room, "typing", map[string]any{})
	if m := b.message(room, "typing"); m["who"] != "alice" {
		t.Fatalf("typing %v", m)
	}
	a.noMessageBeforePing(room, "typing")

	// broadcastTo: a whisper only bob gets
	bobID := b.request(room, "whoami", map[string]any{})["id"].(string)
	a.send(room, "whisper", map[string]any{"to": bobID, "text": "psst"})
	if m := b.message(room, "whisper"); m["text"] != "psst" {
		t.Fatalf("whisper %v", m)
	}
	a.noMessageBeforePing(room, "whisper")

	// presence update: changed carries the new presence (decision (c))
	a.send(room, "status", map[string]any{"status": "away"})
	for _, p := range []*pond{a, b} {
		pe := p.expect("presence", func(e pondEv) bool {
			return e.Channel == room && e.Payload["changed"] != nil && e.Payload["changed"].(map[string]any)["status"] == "away"
		})
		list := pe.Payload["presence"].([]any)
		if len(list) != 2 || list[0].(map[string]any)["status"] != "away" {
			t.Fatalf("update list %v", list)
		}
	}

	// assigns never reach clients
	for _, e := range append(a.d.History(), b.d.History()...) {
		if e.Ev == "message" && decode(t, e).Event != "whoami" && containsKey(e.Raw, "role") {
			t.Fatalf("assigns leaked: %s", e.Raw)
		}
	}

	// leave: alice sees bob leave
	b.d.Send(map[string]any{"op": "leave", "channel": room})
	if l := a.expect("leave", func(e pondEv) bool { return e.Channel == room }); l.Presence["username"] != "bob" {
		t.Fatalf("onLeave %v", l.Presence)
	}
	a.users(room, 1)
}

func containsKey(raw []byte, key string) bool {
	var v any
	_ = json.Unmarshal(raw, &v)
	var walk func(any) bool
	walk = func(x any) bool {
		switch t := x.(type) {
		case map[string]any:
			for k, v := range t {
				if k == key || walk(v) {
					return true
				}
			}
		case []any:
			for _, v := range t {
				if walk(v) {
					return true
				}
			}
		}
		return false
	}
	return walk(v)
}

func TestPondClientJoinRefusals(t *testing.T) {
	srv := startDemo(t, nil)
	a := newPond(t, srv, map[string]any{"token": "alice"})
	// declined, undecided, no such pattern: the npm client must end DECLINED
	// (decision (a) of docs/protocol.md §10), never hang in JOINING
	a.join("/chat/vip", map[string]any{"username": "blocked"})
	a.state("/chat/vip", "DECLINED")
	a.join("/chat/quiet", map[string]any{"username": "alice", "silent": true})
	a.state("/chat/quiet", "DECLINED")
	a.join("/unknown/room", map[string]any{})
	a.state("/unknown/room", "DECLINED")
	// and the connection carries on
	a.join("/chat/ok", map[string]any{"username": "alice"})
	a.state("/chat/ok", "JOINED")
	// no channel instance leaked for the refused joins
	if n := srv.Stats().Channels; n != 1 {
		t.Fatalf("live channels %d, want 1", n)
	}
}

func TestPondClientEviction(t *testing.T) {
	srv := startDemo(t, nil)
	a := newPond(t, srv, map[string]any{"token": "alice"})
	evictBob(t, a, newPond(t, srv, map[string]any{"token": "bob"}), "/chat/r1")
}

// joinAliceBob joins alice, then bob, to room, each with its username in
// the join params, and waits for both to be JOINED; with alone, alice's
// list must show her alone before bob joins.
func joinAliceBob(a, b *pond, room string, alone bool) {
	a.join(room, map[string]any{"username": "alice"})
	a.state(room, "JOINED")
	if alone {
		a.users(room, 1)
	}
	b.join(room, map[string]any{"username": "bob"})
	b.state(room, "JOINED")
}

// evictBob joins alice and bob to room, has alice kick bob, and checks what
// both see: bob kicked_out (403, "spamming") and kicked, alice kicked and
// bob's leave.
func evictBob(t *testing.T, a, b *pond, room string) {
	t.Helper()
	joinAliceBob(a, b, room, false)
	a.users(room, 2)
	bobID := b.request(room, "whoami", map[string]any{})["id"].(string)
	a.send(room, "kick", map[string]any{"userId": bobID})
	if m := b.message(room, "kicked_out"); m["message"] != "spamming" || m["code"] != float64(403) {
		t.Fatalf("kicked_out %v", m)
	}
	if m := b.message(room, "kicked"); m["userId"] != bobID {
		t.Fatalf("kicked to bob %v", m)
	}
	if m := a.message(room, "kicked"); m["reason"] != "spamming" {
		t.Fatalf("kicked to alice %v", m)
	}
	a.expect("leave", func(e pondEv) bool { return e.Presence["username"] == "bob" })
	a.users(room, 1)
}

func TestPondClientWildcardAndQuery(t *testing.T) {
	srv := startDemo(t, nil)
	a := newPond(t, srv, map[string]any{"token": "alice"})
	const ch = "/files/a/b/c.txt?mode=ro"
	a.join(ch, nil)
	a.state(ch, "JOINED")
	m := a.message(ch, "opened")
	if !reflect.DeepEqual(m["params"], map[string]any{"*": "/a/b/c.txt"}) || !reflect.DeepEqual(m["query"], map[string]any{"mode": "ro"}) {
		t.Fatalf("wildcard route %v", m)
	}
	// event names with params and a query
	a.join("/chat/lobby", map[string]any{"username": "alice"})
	a.state("/chat/lobby", "JOINED")
	r := a.request("/chat/lobby", "message/42?draft=1", map[string]any{})
	if r["id"] != "42" || !reflect.DeepEqual(r["query"], map[string]any{"draft": "1"}) {
		t.Fatalf("event route %v", r)
	}
	// a handler error and a missing handler resolve sendForResponse with payload B
	if r := a.request("/chat/lobby", "explode", map[string]any{}); r["message"] != "bad input" || r["code"] != float64(422) {
		t.Fatalf("handler error %v", r)
	}
	if r := a.request("/chat/lobby", "nope", map[string]any{}); r["code"] != float64(500) {
		t.Fatalf("no handler %v", r)
	}
}

func TestPondClientDisconnectAndRestart(t *testing.T) {
	srv := startDemo(t, nil)
	addr := srv.Addr().String()
	a := newPond(t, srv, map[string]any{"token": "alice"})
	b := newPond(t, srv, map[string]any{"token": "bob"})
	const room = "/chat/r2"
	joinAliceBob(a, b, room, false)
	a.users(room, 2)
	// bob's socket goes away: alice sees him leave
	b.d.Send(map[string]any{"op": "disconnect"})
	a.expect("leave", func(e pondEv) bool { return e.Presence["username"] == "bob" })

	// the server restarts on the same port; the client reconnects and
	// rejoins by itself
	if err := srv.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	a.state(room, "STALLED")
	opts := pondsocket.DefaultOptions()
	opts.Logger = quiet()
	srv2 := pondsocket.NewServer(&pondsocket.ServerOptions{ServerAddr: addr, Options: opts})
	registerReferenceDemo(srv2)
	if err := srv2.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv2.Stop(5 * time.Second) })
	a.state(room, "JOINED")
	a.send(room, "message", map[string]any{"text": "back"})
	if m := a.message(room, "message"); m["text"] != "back" {
		t.Fatalf("after restart %v", m)
	}
}
