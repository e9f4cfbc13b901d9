package pondsocket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket/internal/protocol"
	"github.com/pondsocket/pondsocket/internal/testenv"
	"github.com/pondsocket/pondsocket/internal/wsframe"
)

// Table tests of the hub with virtual connections: no socket, no engine.
// A recConn decodes every frame the hub sends it, so the tests assert what
// a member would read on the wire.

// wireMsg is one server message as a client decodes it.
type wireMsg struct {
	Action      string         `json:"action"`
	Event       string         `json:"event"`
	ChannelName string         `json:"channelName"`
	RequestID   string         `json:"requestId"`
	Payload     map[string]any `json:"payload"`
}

func (m wireMsg) String() string {
	p, _ := json.Marshal(m.Payload)
	return fmt.Sprintf("%s %s %s req=%s %s", m.Action, m.Event, m.ChannelName, m.RequestID, p)
}

// recConn is a virtual connection that keeps every message it is sent.
type recConn struct {
	mu     sync.Mutex
	msgs   []wireMsg
	closed []int
}

func (r *recConn) Send(f *wsframe.Frame) {
	var m wireMsg
	if err := json.Unmarshal(f.Payload(), &m); err != nil {
		m = wireMsg{Action: "UNDECODABLE", Event: string(f.Payload())}
	}
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
}

func (r *recConn) Close(code int, _ string) {
	r.mu.Lock()
	r.closed = append(r.closed, code)
	r.mu.Unlock()
}

// all returns the messages received so far.
func (r *recConn) all() []wireMsg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// reset forgets the messages received so far.
func (r *recConn) reset() {
	r.mu.Lock()
	r.msgs = nil
	r.mu.Unlock()
}

// of returns the messages with this action and event.
func (r *recConn) of(action, event string) []wireMsg {
	var out []wireMsg
	for _, m := range r.all() {
		if m.Action == action && m.Event == event {
			out = append(out, m)
		}
	}
	return out
}

// wait returns the first message matching, waiting for it: presence goes
// out from a timer when a channel's budget is spent.
func (r *recConn) wait(t *testing.T, what string, match func(wireMsg) bool) wireMsg {
	t.Helper()
	var got wireMsg
	defer func() {
		if t.Failed() && got.Action == "" {
			t.Logf("received: %v", r.all())
		}
	}()
	testenv.Eventually(t, 2*time.Second, what, func() bool {
		for _, m := range r.all() {
			if match(m) {
				got = m
				return true
			}
		}
		return false
	})
	return got
}

// waitPresence waits for a PRESENCE event whose changed entry has user id.
func (r *recConn) waitPresence(t *testing.T, event, id string) wireMsg {
	t.Helper()
	return r.wait(t, fmt.Sprintf("PRESENCE %s of %s", event, id), func(m wireMsg) bool {
		ch, _ := m.Payload["changed"].(map[string]any)
		return m.Action == protocol.ActionPresence && m.Event == event && ch["id"] == id
	})
}

// testHub is a hub with one endpoint, /api/socket, whose connection
// handler takes the user id from ?id= and a connection assign from ?role=.
type testHub struct {
	h  *hub
	ep *Endpoint
}

func newTestHub(t *testing.T) *testHub {
	t.Helper()
	h := newHub(Options{Logger: quietLog(),
		Handlers: HandlerOptions{Inline: true},
		Inbound:  InboundOptions{JoinRate: -1, MessageRate: -1},
		Presence: PresenceOptions{Rate: -1, Budget: 1 << 40}}, nil)
	t.Cleanup(h.Close)
	ep := h.CreateEndpoint("/api/socket", func(ctx *ConnectionContext) error {
		ctx.SetUserID(ctx.Route.Query.Get("id"))
		if r := ctx.Route.Query.Get("role"); r != "" {
			ctx.SetAssigns("role", r)
		}
		return ctx.Accept()
	})
	return &testHub{h: h, ep: ep}
}

// trackingRoom adds the pattern /room/:id whose join handler accepts and
// tracks {"id": user id}.
func (x *testHub) trackingRoom() *Channel {
	return x.ep.CreateChannel("/room/:id", func(ctx *JoinContext) error {
		return ctx.Accept().Track(map[string]any{"id": ctx.User().UserID}).Err()
	})
}

func (x *testHub) connect(t *testing.T, id string, query ...string) (*Client, *recConn) {
	t.Helper()
	q := "id=" + id
	for _, s := range query {
		q += "&" + s
	}
	d := x.h.Connect(&handshake{Path: "/api/socket", RawQuery: q})
	if d.Client == nil {
		t.Fatalf("connect %s declined: %d %s", id, d.Status, d.Message)
	}
	for _, f := range d.Greeting {
		f.Release()
	}
	r := &recConn{}
	x.h.Open(d.Client, r)
	return d.Client, r
}

// send passes one client message to the hub.
func (x *testHub) send(c *Client, action, channel, event, reqID, payload string) {
	if payload == "" {
		payload = "{}"
	}
	x.h.Message(c, []byte(fmt.Sprintf(`{"action":%q,"event":%q,"channelName":%q,"requestId":%q,"payload":%s}`,
		action, event, channel, reqID, payload)))
}

func (x *testHub) join(c *Client, channel, reqID string) {
	x.send(c, protocol.ActionJoin, channel, protocol.ActionJoin, reqID, "")
}

func (x *testHub) broadcast(c *Client, channel, event, reqID, payload string) {
	x.send(c, protocol.ActionBroadcast, channel, event, reqID, payload)
}

// members lists the channel's members, sorted.
func (x *testHub) members(name string) []string {
	ch, ok := x.ep.Channel(name)
	if !ok {
		return nil
	}
	return slices.Sorted(slices.Values(ch.Users()))
}

// errorPayload checks the error payload A of docs/protocol.md §5.
func checkErrorPayload(t *testing.T, m wireMsg, code string, status int, message string) {
	t.Helper()
	if m.Payload["code"] != code || m.Payload["status"] != float64(status) || m.Payload["statusCode"] != float64(status) {
		t.Errorf("error payload %v: want code %s status %d", m, code, status)
	}
	if message != "" && m.Payload["message"] != message {
		t.Errorf("error message %q, want %q", m.Payload["message"], message)
	}
}

// A join handler's decision reaches the joiner as the protocol says:
// ACKNOWLEDGE when accepted, ERROR UNAUTHORIZED with error payload A
// otherwise, and only an accepted user is a member.
func TestHubJoin(t *testing.T) {
	secret := errors.New("database password in the error text")
	cases := []struct {
		name    string
		channel string
		handler func(*JoinContext) error
		member  bool
		code    string
		status  int
		message string
	}{
		{name: "accepted", channel: "/room/1", member: true,
			handler: func(ctx *JoinContext) error { return ctx.Accept().Err() }},
		{name: "declined with status and message", channel: "/room/1", code: protocol.ErrUnauthorizedJoinRequest, status: 403, message: "members only",
			handler: func(ctx *JoinContext) error { return ctx.Decline(403, "members only") }},
		{name: "declined with defaults", channel: "/room/1", code: protocol.ErrUnauthorizedJoinRequest, status: 401, message: "Unauthorized connection",
			handler: func(ctx *JoinContext) error { return ctx.Decline(0, "") }},
		{name: "handler returns an *Error", channel: "/room/1", code: protocol.ErrChannelError, status: 403, message: "banned",
			handler: func(ctx *JoinContext) error { return Forbidden("banned") }},
		{name: "handler returns another error: generic 500", channel: "/room/1", code: protocol.ErrChannelError, status: 500,
			handler: func(ctx *JoinContext) error { return secret }},
		{name: "handler panics: generic 500", channel: "/room/1", code: protocol.ErrChannelError, status: 500,
			handler: func(ctx *JoinContext) error { panic(secret) }},
		{name: "handler decides nothing", channel: "/room/1", code: protocol.ErrUnauthorizedJoinRequest, status: 500,
			message: "Join handler completed without accepting or declining the request",
			handler: func(ctx *JoinContext) error { return nil }},
		{name: "no such channel pattern", channel: "/nowhere/1", code: protocol.ErrChannelNotFound, status: 404,
			message: "GatewayEngine: Channel /nowhere/1 does not exist",
			handler: func(ctx *JoinContext) error { return ctx.Accept().Err() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := newTestHub(t)
			x.ep.CreateChannel("/room/:id", tc.handler)
			c, r := x.connect(t, "ann")
			x.join(c, tc.channel, "j1")
			msgs := r.all()
			if len(msgs) != 1 {
				t.Fatalf("joiner got %v, want one answer", msgs)
			}
			m := msgs[0]
			if m.ChannelName != tc.channel || m.RequestID != "j1" {
				t.Errorf("answer %v: want channel %s request j1", m, tc.channel)
			}
			if tc.member {
				if m.Action != protocol.ActionSystem || m.Event != protocol.EventAcknowledge {
					t.Fatalf("answer %v, want SYSTEM ACKNOWLEDGE", m)
				}
			} else {
				if m.Action != protocol.ActionError || m.Event != protocol.EventUnauthorized {
					t.Fatalf("answer %v, want ERROR UNAUTHORIZED", m)
				}
				checkErrorPayload(t, m, tc.code, tc.status, tc.message)
				if msg, _ := m.Payload["message"].(string); strings.Contains(msg, "password") {
					t.Errorf("the handler's own error reached the client: %q", msg)
				}
			}
			if got := x.members(tc.channel); tc.member != slices.Equal(got, []string{"ann"}) {
				t.Errorf("members %v, member=%v", got, tc.member)
			}
		})
	}
}

// A second join of a channel the user is in is answered with
// CHANNEL_ERROR 400 and changes nothing.
func TestHubDuplicateJoin(t *testing.T) {
	x := newTestHub(t)
	joins := 0
	x.ep.CreateChannel("/room/:id", func(ctx *JoinContext) error { joins++; return ctx.Accept().Err() })
	c, r := x.connect(t, "ann")
	x.join(c, "/room/1", "j1")
	x.join(c, "/room/1", "j2")
	msgs := r.all()
	if len(msgs) != 2 || msgs[0].Event != protocol.EventAcknowledge {
		t.Fatalf("got %v, want ACKNOWLEDGE then an error", msgs)
	}
	m := msgs[1]
	if m.Action != protocol.ActionError || m.Event != protocol.ErrChannelError || m.RequestID != "j2" {
		t.Fatalf("second join answered %v", m)
	}
	checkErrorPayload(t, m, protocol.ErrChannelError, 400, "ChannelEngine: User with id ann already exists in channel /room/1")
	if joins != 1 || !slices.Equal(x.members("/room/1"), []string{"ann"}) {
		t.Fatalf("join handler ran %d times; members %v", joins, x.members("/room/1"))
	}
}

// Leaving, by LEAVE_CHANNEL or by disconnecting: the others see the
// presence LEAVE, the leave handler gets the reason, the user receives
// nothing more of the channel, and the last member's leave ends the
// channel.
func TestHubLeave(t *testing.T) {
	cases := []struct {
		name   string
		leave  func(x *testHub, c *Client)
		reason string
	}{
		{"LEAVE_CHANNEL", func(x *testHub, c *Client) {
			x.send(c, protocol.ActionLeave, "/room/1", protocol.ActionLeave, "l1", "")
		}, LeaveExplicit},
		{"disconnect", func(x *testHub, c *Client) { x.h.Disconnect(c) }, LeaveClosed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := newTestHub(t)
			room := x.trackingRoom()
			left := make(chan *LeaveContext, 4)
			room.OnLeave(func(ctx *LeaveContext) { left <- ctx })
			a, ra := x.connect(t, "ann")
			b, rb := x.connect(t, "bob")
			x.join(a, "/room/1", "ja")
			x.join(b, "/room/1", "jb")
			ra.waitPresence(t, protocol.EventJoin, "bob")

			tc.leave(x, b)
			m := ra.waitPresence(t, protocol.EventLeave, "bob")
			if list, _ := m.Payload["presence"].([]any); len(list) != 1 {
				t.Errorf("presence list after bob left: %v", m.Payload["presence"])
			}
			select {
			case ctx := <-left:
				if ctx.User.UserID != "bob" || ctx.Reason != tc.reason || ctx.Channel().Name() != "/room/1" {
					t.Errorf("leave handler got user %s reason %q channel %s", ctx.User.UserID, ctx.Reason, ctx.Channel().Name())
				}
			case <-time.After(2 * time.Second):
				t.Fatal("the leave handler did not run")
			}
			if got := x.members("/room/1"); !slices.Equal(got, []string{"ann"}) {
				t.Fatalf("members %v", got)
			}
			rb.reset()
			if err := room.Broadcast("news", map[string]any{"n": 1}); err != nil {
				t.Fatal(err)
			}
			ra.wait(t, "ann gets the news", func(m wireMsg) bool { return m.Event == "news" })
			if got := rb.all(); len(got) != 0 {
				t.Fatalf("bob got %v after leaving", got)
			}
			x.h.Disconnect(a)
			testenv.Eventually(t, 2*time.Second, "the empty channel is gone", func() bool {
				_, ok := x.ep.Channel("/room/1")
				return !ok && x.h.Stats().Channels.Load() == 0
			})
		})
	}
}

// Assigns set at connection, at join and in an event handler are read the
// same through every context and through Channel; GetAssign says which key
// is missing; UpdateAssigns changes one member only.
func TestHubAssigns(t *testing.T) {
	x := newTestHub(t)
	room := x.ep.CreateChannel("/room/:id", func(ctx *JoinContext) error {
		if ctx.GetAssigns("role") != "admin" && ctx.User().UserID == "ann" {
			return BadRequest("connection assign not visible at join")
		}
		return ctx.SetAssigns("seat", 3).Accept(map[string]any{"team": "red"}).Err()
	})
	seen := map[string]any{}
	room.OnEvent("read", func(ctx *EventContext) error {
		for _, k := range []string{"role", "seat", "team", "score"} {
			seen[k] = ctx.GetAssigns(k)
		}
		if _, err := ctx.GetAssign("missing"); !errors.Is(err, ErrNoAssign) {
			return fmt.Errorf("GetAssign(missing) = %v", err)
		}
		return nil
	})
	room.OnEvent("score", func(ctx *EventContext) error { return ctx.SetAssigns("score", 10).Err() })
	a, ra := x.connect(t, "ann", "role=admin")
	b, _ := x.connect(t, "bob")
	x.join(a, "/room/1", "ja")
	x.join(b, "/room/1", "jb")
	x.broadcast(a, "/room/1", "score", "s", "")
	x.broadcast(a, "/room/1", "read", "r", "")
	if errs := ra.of(protocol.ActionError, protocol.ErrHandlerNotFound); len(errs) > 0 {
		t.Fatalf("handler errors: %v", errs)
	}
	ch, _ := x.ep.Channel("/room/1")
	all := ch.GetAssigns()
	ann, _ := all["ann"].(map[string]any)
	bob, _ := all["bob"].(map[string]any)
	for _, tc := range []struct {
		key          string
		want         any
		fromEvent    any
		fromChannel  any
		bobsOwnValue any
	}{
		{"role", "admin", seen["role"], ann["role"], bob["role"]},
		{"seat", 3, seen["seat"], ann["seat"], bob["seat"]},
		{"team", "red", seen["team"], ann["team"], bob["team"]},
		{"score", 10, seen["score"], ann["score"], bob["score"]},
	} {
		if fmt.Sprint(tc.fromEvent) != fmt.Sprint(tc.want) || fmt.Sprint(tc.fromChannel) != fmt.Sprint(tc.want) {
			t.Errorf("%s: event context %v, Channel.GetAssigns %v, want %v", tc.key, tc.fromEvent, tc.fromChannel, tc.want)
		}
		if tc.key == "role" || tc.key == "score" {
			if tc.bobsOwnValue != nil {
				t.Errorf("%s leaked to bob: %v", tc.key, tc.bobsOwnValue)
			}
		}
	}
	if err := ch.UpdateAssigns("bob", "score", 11); err != nil {
		t.Fatal(err)
	}
	if u, err := ch.GetUser("bob"); err != nil || fmt.Sprint(u.Assigns["score"]) != "11" {
		t.Fatalf("bob after UpdateAssigns: %+v %v", u, err)
	}
	if u, _ := ch.GetUser("ann"); fmt.Sprint(u.Assigns["score"]) != "10" {
		t.Fatalf("ann's score changed with bob's: %v", u.Assigns)
	}
	if err := ch.UpdateAssigns("nobody", "score", 1); !errors.Is(err, ErrNotMember) {
		t.Fatalf("UpdateAssigns of a non-member: %v", err)
	}
	// a channel assign does not change the connection's own assigns
	if _, ok := a.Assigns()["score"]; ok {
		t.Fatalf("connection assigns %v", a.Assigns())
	}
}

// EvictUser, from the Channel handle or from an event: the user gets
// kicked_out then kicked, the others get kicked and the presence LEAVE,
// the leave handler sees "evicted:<reason>", and the connection stays open.
func TestHubEvictUser(t *testing.T) {
	cases := []struct {
		name   string
		reason string
		want   string
		evict  func(x *testHub, room *Channel, by *Client, reason string) error
	}{
		{"Channel.EvictUser", "spam", "spam", func(x *testHub, room *Channel, _ *Client, reason string) error {
			ch, _ := x.ep.Channel("/room/1")
			return ch.EvictUser("bob", reason)
		}},
		{"Channel.EvictUser default reason", "", DefaultEvictReason, func(x *testHub, room *Channel, _ *Client, reason string) error {
			return room.EvictUser("bob", reason)
		}},
		{"EventContext.EvictUser", "by a moderator", "by a moderator", func(x *testHub, room *Channel, by *Client, reason string) error {
			x.broadcast(by, "/room/1", "kick", "k", fmt.Sprintf(`{"user":"bob","reason":%q}`, reason))
			return nil
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := newTestHub(t)
			room := x.trackingRoom()
			room.OnEvent("kick", func(ctx *EventContext) error {
				var p struct{ User, Reason string }
				_ = ctx.ParsePayload(&p)
				return ctx.Channel().EvictUser(p.User, p.Reason)
			})
			left := make(chan string, 4)
			room.OnLeave(func(ctx *LeaveContext) { left <- ctx.User.UserID + " " + ctx.Reason })
			var rs []*recConn
			var cs []*Client
			for _, id := range []string{"ann", "bob", "cid"} {
				c, r := x.connect(t, id)
				x.join(c, "/room/1", "j")
				cs, rs = append(cs, c), append(rs, r)
			}
			rs[0].waitPresence(t, protocol.EventJoin, "cid")
			for _, r := range rs {
				r.reset()
			}
			if err := tc.evict(x, room, cs[0], tc.reason); err != nil {
				t.Fatal(err)
			}
			bob := rs[1].all()
			if len(bob) != 2 || bob[0].Action != protocol.ActionSystem || bob[0].Event != "kicked_out" ||
				bob[0].Payload["message"] != tc.want || bob[0].Payload["code"] != float64(403) ||
				bob[1].Event != "kicked" || bob[1].Payload["userId"] != "bob" {
				t.Fatalf("bob got %v, want kicked_out {%s, 403} then kicked", bob, tc.want)
			}
			for i, r := range []*recConn{rs[0], rs[2]} {
				k := r.wait(t, "kicked", func(m wireMsg) bool { return m.Action == protocol.ActionSystem && m.Event == "kicked" })
				if k.Payload["userId"] != "bob" || k.Payload["reason"] != tc.want {
					t.Errorf("member %d: kicked %v", i, k)
				}
				r.waitPresence(t, protocol.EventLeave, "bob")
				if got := r.of(protocol.ActionSystem, "kicked_out"); len(got) != 0 {
					t.Errorf("member %d got kicked_out: %v", i, got)
				}
			}
			if got := <-left; got != "bob "+LeaveEvicted+":"+tc.want {
				t.Errorf("leave handler: %q", got)
			}
			if got := x.members("/room/1"); !slices.Equal(got, []string{"ann", "cid"}) {
				t.Errorf("members %v", got)
			}
			if _, ok := x.ep.Client("bob"); !ok {
				t.Error("bob's connection was closed; eviction keeps it")
			}
			if err := room.EvictUser("bob", "again"); !errors.Is(err, ErrNotMember) {
				t.Errorf("evicting a non-member: %v", err)
			}
		})
	}
}

// Outgoing hooks run once per recipient of a matching event: one
// recipient's payload is changed, another's message is blocked, the
// others get it unchanged, and events the pattern does not match pass.
func TestHubOutgoingHooks(t *testing.T) {
	x := newTestHub(t)
	room := x.ep.CreateChannel("/room/:id", func(ctx *JoinContext) error { return ctx.Accept().Err() })
	room.OnEvent("*", func(ctx *EventContext) error { return ctx.Broadcast(ctx.Event().Event, ctx.RawPayload()).Err() })
	var mu sync.Mutex
	var calls []string
	room.OnOutgoing("chat/:kind", func(ctx *OutgoingContext) error {
		u := ctx.User().UserID
		mu.Lock()
		calls = append(calls, u+" "+ctx.Event.Event+" "+ctx.Event.Params["kind"])
		mu.Unlock()
		switch u {
		case "bob":
			p := ctx.Payload()
			p["text"] = strings.ToUpper(p["text"].(string))
			p["for"] = u
			return ctx.Transform(p)
		case "eve":
			ctx.Block()
		}
		return nil
	})
	rs := map[string]*recConn{}
	var ann *Client
	for _, id := range []string{"ann", "bob", "eve"} {
		c, r := x.connect(t, id)
		x.join(c, "/room/1", "j")
		rs[id] = r
		if id == "ann" {
			ann = c
		}
	}
	x.broadcast(ann, "/room/1", "chat/plain", "m1", `{"text":"hi"}`)
	x.broadcast(ann, "/room/1", "other", "m2", `{"text":"hi"}`)
	cases := []struct {
		user     string
		event    string
		wantText string // "" means not received
		wantFor  any
	}{
		{"ann", "chat/plain", "hi", nil},
		{"bob", "chat/plain", "HI", "bob"},
		{"eve", "chat/plain", "", nil},
		{"ann", "other", "hi", nil},
		{"bob", "other", "hi", nil},
		{"eve", "other", "hi", nil},
	}
	for _, tc := range cases {
		got := rs[tc.user].of(protocol.ActionServerBroadcast, tc.event)
		switch {
		case tc.wantText == "" && len(got) != 0:
			t.Errorf("%s got %v, want it blocked", tc.user, got)
		case tc.wantText != "" && len(got) != 1:
			t.Errorf("%s got %v, want one %s", tc.user, got, tc.event)
		case tc.wantText != "" && (got[0].Payload["text"] != tc.wantText || got[0].Payload["for"] != tc.wantFor):
			t.Errorf("%s got %v, want text %q for %v", tc.user, got[0], tc.wantText, tc.wantFor)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(calls)
	if want := []string{"ann chat/plain plain", "bob chat/plain plain", "eve chat/plain plain"}; !slices.Equal(calls, want) {
		t.Errorf("hook calls %v, want %v", calls, want)
	}
}

// Middleware runs in registration order before the handler, sees the user
// and the event, and stops the chain by returning (an error it returns
// reaches the sender as HANDLER_NOT_FOUND {message, code}).
func TestHubMiddleware(t *testing.T) {
	cases := []struct {
		event     string
		wantOrder []string
		wantErr   string // the error message the sender gets; "" for none
		wantCode  int
		replied   bool
	}{
		{"pass", []string{"mw1", "mw2", "handler"}, "", 0, true},
		{"deny-first", []string{"mw1"}, "not allowed", 403, false},
		{"stop-second", []string{"mw1", "mw2"}, "", 0, false},
		{"fail-second", []string{"mw1", "mw2"}, "rate", 429, false},
		{"handler-error", []string{"mw1", "mw2", "handler"}, "bad input", 400, false},
	}
	for _, tc := range cases {
		t.Run(tc.event, func(t *testing.T) {
			x := newTestHub(t)
			room := x.ep.CreateChannel("/room/:id", func(ctx *JoinContext) error { return ctx.Accept().Err() })
			var order []string
			room.Use(func(ctx context.Context, req *MessageEvent, res *Channel, next NextFunc) error {
				order = append(order, "mw1")
				if req.User.UserID != "ann" || req.Event.Event != tc.event || res.Name() != "/room/1" || ctx == nil {
					t.Errorf("mw1 saw user %s event %s channel %s", req.User.UserID, req.Event.Event, res.Name())
				}
				if req.Event.Event == "deny-first" {
					return Forbidden("not allowed")
				}
				return next()
			})
			room.Use(func(ctx context.Context, req *MessageEvent, res *Channel, next NextFunc) error {
				order = append(order, "mw2")
				switch req.Event.Event {
				case "stop-second":
					return nil
				case "fail-second":
					return TooManyRequests("rate")
				}
				return next()
			})
			room.OnEvent("*", func(ctx *EventContext) error {
				order = append(order, "handler")
				if ctx.Event().Event == "handler-error" {
					return BadRequest("bad input")
				}
				return ctx.Reply("done", map[string]any{}).Err()
			})
			a, r := x.connect(t, "ann")
			x.join(a, "/room/1", "j")
			r.reset()
			x.broadcast(a, "/room/1", tc.event, "e1", "")
			if !slices.Equal(order, tc.wantOrder) {
				t.Errorf("order %v, want %v", order, tc.wantOrder)
			}
			errs := r.of(protocol.ActionError, protocol.ErrHandlerNotFound)
			switch {
			case tc.wantErr == "" && len(errs) != 0:
				t.Errorf("sender got %v, want no error", errs)
			case tc.wantErr != "" && (len(errs) != 1 || errs[0].Payload["message"] != tc.wantErr ||
				errs[0].Payload["code"] != float64(tc.wantCode) || errs[0].RequestID != "e1"):
				t.Errorf("sender got %v, want error %q code %d", errs, tc.wantErr, tc.wantCode)
			}
			if got := len(r.of(protocol.ActionSystem, "done")) == 1; got != tc.replied {
				t.Errorf("reply received %v, want %v (%v)", got, tc.replied, r.all())
			}
		})
	}
}
