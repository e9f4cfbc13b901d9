package pondsocket

import (
	"slices"
	"testing"

	"github.com/pondsocket/pondsocket/cluster"
	"github.com/pondsocket/pondsocket/internal/protocol"
)

// Several connections of one user id (SetUserID): presence once per user,
// messages to the user reach each connection, the entry leaves with the
// last connection, and the connections per user are bounded.
func TestHubSeveralConnectionsPerUser(t *testing.T) {
	setup := func(t *testing.T) (x *testHub, ann1, ann2, bob *Client, ra1, ra2, rb *recConn) {
		x = newTestHub(t)
		room := x.trackingRoom()
		room.OnEvent("to-ann", func(ctx *EventContext) error { return ctx.BroadcastTo("hi", map[string]any{}, "ann").Err() })
		room.OnEvent("reply", func(ctx *EventContext) error { return ctx.Reply("pong", map[string]any{}).Err() })
		room.OnEvent("away", func(ctx *EventContext) error {
			return ctx.UpdatePresence(map[string]any{"id": ctx.User().UserID, "away": true}).Err()
		})
		room.OnEvent("from", func(ctx *EventContext) error { return ctx.BroadcastFrom("typing", map[string]any{}).Err() })
		ann1, ra1 = x.connect(t, "ann")
		ann2, ra2 = x.connect(t, "ann")
		bob, rb = x.connect(t, "bob")
		x.join(bob, "/room/1", "jb")
		x.join(ann1, "/room/1", "j1")
		x.join(ann2, "/room/1", "j2")
		return
	}
	presenceList := func(m wireMsg) []any { l, _ := m.Payload["presence"].([]any); return l }
	t.Run("presence once, second tab silent", func(t *testing.T) {
		x, _, _, _, ra1, ra2, rb := setup(t)
		rb.waitPresence(t, protocol.EventJoin, "ann")
		joins := 0
		for _, m := range rb.of(protocol.ActionPresence, protocol.EventJoin) {
			if ch, _ := m.Payload["changed"].(map[string]any); ch["id"] == "ann" {
				joins++
			}
		}
		if joins != 1 {
			t.Fatalf("bob got %d presence JOINs of ann, want 1 (the second tab adds none): %v", joins, rb.all())
		}
		ch, _ := x.ep.Channel("/room/1")
		if p := ch.GetPresence(); len(p) != 2 {
			t.Fatalf("presence %v, want ann and bob once", p)
		}
		if u := x.members("/room/1"); !slices.Equal(u, []string{"ann", "bob"}) {
			t.Fatalf("users %v", u)
		}
		if x.ep.ClientCount() != 3 || x.ep.UserCount() != 2 {
			t.Fatalf("clients %d users %d, want 3 and 2", x.ep.ClientCount(), x.ep.UserCount())
		}
		for _, r := range []*recConn{ra1, ra2} {
			if len(r.of(protocol.ActionSystem, protocol.EventAcknowledge)) != 1 {
				t.Fatalf("a tab was not acknowledged: %v", r.all())
			}
		}
	})
	t.Run("a message to the user reaches each tab; a reply only its own", func(t *testing.T) {
		x, ann1, _, bob, ra1, ra2, rb := setup(t)
		x.broadcast(bob, "/room/1", "to-ann", "m1", "")
		for _, r := range []*recConn{ra1, ra2} {
			r.wait(t, "hi to each tab of ann", func(m wireMsg) bool { return m.Event == "hi" })
		}
		if len(rb.of(protocol.ActionBroadcast, "hi")) != 0 {
			t.Fatal("bob got ann's message")
		}
		x.broadcast(ann1, "/room/1", "reply", "r1", "")
		ra1.wait(t, "pong to the asking tab", func(m wireMsg) bool { return m.Event == "pong" })
		if len(ra2.of(protocol.ActionSystem, "pong")) != 0 {
			t.Fatal("the reply reached the other tab")
		}
		x.broadcast(ann1, "/room/1", "from", "f1", "")
		rb.wait(t, "typing to bob", func(m wireMsg) bool { return m.Event == "typing" })
		if len(ra2.of(protocol.ActionBroadcast, "typing")) != 0 || len(ra1.of(protocol.ActionBroadcast, "typing")) != 0 {
			t.Fatal("BroadcastFrom reached a connection of the sender")
		}
	})
	t.Run("an update from one tab is the user's one entry", func(t *testing.T) {
		x, _, ann2, _, _, _, rb := setup(t)
		x.broadcast(ann2, "/room/1", "away", "a1", "")
		u := rb.waitPresence(t, protocol.EventUpdate, "ann")
		if l := presenceList(u); len(l) != 2 {
			t.Fatalf("presence after the update %v, want 2 entries", l)
		}
	})
	t.Run("one tab leaves: still present; both: LEAVE", func(t *testing.T) {
		x, ann1, ann2, _, _, _, rb := setup(t)
		rb.waitPresence(t, protocol.EventJoin, "ann")
		x.send(ann1, protocol.ActionLeave, "/room/1", protocol.ActionLeave, "l1", "")
		x.h.Disconnect(ann1)
		ch, _ := x.ep.Channel("/room/1")
		if _, ok := ch.GetPresence()["ann"]; !ok || len(rb.of(protocol.ActionPresence, protocol.EventLeave)) != 0 {
			t.Fatalf("ann left with a tab still in: presence %v, bob got %v", ch.GetPresence(), rb.all())
		}
		if u := x.members("/room/1"); !slices.Equal(u, []string{"ann", "bob"}) {
			t.Fatalf("users %v", u)
		}
		x.h.Disconnect(ann2)
		rb.waitPresence(t, protocol.EventLeave, "ann")
		if u := x.members("/room/1"); !slices.Equal(u, []string{"bob"}) {
			t.Fatalf("users %v", u)
		}
		if _, ok := x.ep.Client("ann"); ok {
			t.Fatal("ann's id still has a connection")
		}
	})
	t.Run("evict and close reach every tab", func(t *testing.T) {
		x, _, _, _, ra1, ra2, rb := setup(t)
		ch, _ := x.ep.Channel("/room/1")
		if err := ch.EvictUser("ann", "out"); err != nil {
			t.Fatal(err)
		}
		for _, r := range []*recConn{ra1, ra2} {
			r.wait(t, "kicked_out", func(m wireMsg) bool { return m.Event == "kicked_out" })
		}
		rb.waitPresence(t, protocol.EventLeave, "ann")
		x.ep.CloseConnection(4000, "bye", "ann")
		for _, r := range []*recConn{ra1, ra2} {
			r.mu.Lock()
			closed := slices.Clone(r.closed)
			r.mu.Unlock()
			if !slices.Equal(closed, []int{4000}) {
				t.Fatalf("close codes %v", closed)
			}
		}
		rb.mu.Lock()
		defer rb.mu.Unlock()
		if len(rb.closed) != 0 {
			t.Fatal("bob was closed")
		}
	})
	t.Run("bounded per user", func(t *testing.T) {
		x := newTestHub(t)
		x.h.opts.Transport.MaxConnectionsPerUser = 2
		x.connect(t, "ann")
		x.connect(t, "ann")
		d := x.h.Connect(&handshake{Path: "/api/socket", RawQuery: "id=ann"})
		if d.Client != nil || d.Status != StatusUserConnected {
			t.Fatalf("third connection: %+v, want %d", d, StatusUserConnected)
		}
		x.connect(t, "bob") // others are unaffected
	})
}

// Across nodes: a user on this node and on node-b is one presence entry;
// it stays while either node tracks it, and USER_JOINED/USER_LEFT travel
// for the user's first and last connection only.
func TestHubUserOnTwoNodes(t *testing.T) {
	x := newDistHub(t)
	x.reset()
	x.from(&cluster.Envelope{Type: cluster.UserJoined, UserID: "ann", Assigns: raw(`{}`), Presence: raw(`{}`)})
	x.from(&cluster.Envelope{Type: cluster.PresenceUpdate, UserID: "ann", Presence: raw(`{"id":"ann"}`)})
	if got := x.presenceIDs(); !slices.Equal(got, []string{"ann", "bob"}) {
		t.Fatalf("presence %v", got)
	}
	if n := len(x.rb.of(protocol.ActionPresence, protocol.EventJoin)); n != 0 {
		t.Fatalf("bob got %d JOINs for ann, already present here", n)
	}
	// ann's remote side leaves: she stays (her local tab tracks her)
	x.from(&cluster.Envelope{Type: cluster.UserLeft, UserID: "ann"})
	if got := x.presenceIDs(); !slices.Equal(got, []string{"ann", "bob"}) || len(x.rb.of(protocol.ActionPresence, protocol.EventLeave)) != 0 {
		t.Fatalf("presence %v after ann left node-b; bob got %v", got, x.rb.all())
	}
	// back on node-b, then her local tab leaves: still present (node-b)
	x.from(&cluster.Envelope{Type: cluster.PresenceUpdate, UserID: "ann", Presence: raw(`{"id":"ann"}`)})
	x.node.take()
	x.h.Disconnect(x.ann)
	testEventuallyPublished(t, x, cluster.UserLeft)
	if got := x.presenceIDs(); !slices.Equal(got, []string{"ann", "bob"}) {
		t.Fatalf("presence %v after ann's local tab left", got)
	}
	x.from(&cluster.Envelope{Type: cluster.UserLeft, UserID: "ann"})
	x.rb.waitPresence(t, protocol.EventLeave, "ann")
	// a second local tab announces nothing; the last one leaving does
	c1, _ := x.connect(t, "cy")
	c2, _ := x.connect(t, "cy")
	x.node.take()
	x.join(c1, "/room/1", "c1")
	x.join(c2, "/room/1", "c2")
	if got := types(x.node.take()); slices.Index(got, string(cluster.UserJoined)) < 0 || len(slices.DeleteFunc(got, func(s string) bool { return s != string(cluster.UserJoined) })) != 1 {
		t.Fatalf("published %v, want one USER_JOINED for two tabs", got)
	}
	x.h.Disconnect(c1)
	x.h.Disconnect(c2)
	testEventuallyPublished(t, x, cluster.UserLeft)
}

func testEventuallyPublished(t *testing.T, x *distHub, typ cluster.Type) {
	t.Helper()
	var seen []string
	for _, e := range x.node.take() {
		seen = append(seen, string(e.Type))
		if e.Type == typ {
			return
		}
	}
	t.Fatalf("published %v, want %s", seen, typ)
}

// The server-side calls reach other nodes for a channel or user this node
// has nothing of (clusterapi.go), and a node applies a disconnect order.
func TestHubCallsFromAnyNode(t *testing.T) {
	x := newDistHub(t)
	x.reset()
	if err := x.ep.BroadcastChannel("/room/far", "news", map[string]any{"n": 1}, nil, ""); err != nil {
		t.Fatal(err)
	}
	if err := x.ep.EvictFromChannel("/room/far", "zoe", "out"); err != nil {
		t.Fatal(err)
	}
	pub := x.node.take()
	if got := types(pub); !slices.Equal(got, []string{"USER_MESSAGE", "USER_MESSAGE", "EVICT_USER"}) {
		t.Fatalf("published %v", got)
	}
	if pub[0].ChannelName != "/room/far" || pub[0].Event != "news" || !pub[0].Recipients.All || pub[2].UserID != "zoe" {
		t.Fatalf("envelopes %+v %+v", pub[0], pub[2])
	}
	// to a user this node does not know in a live channel: published
	if err := x.ep.BroadcastChannel("/room/1", "hi", map[string]any{}, []string{"zed"}, ""); err != nil {
		t.Fatal(err)
	}
	if pub := x.node.take(); len(pub) != 1 || !slices.Equal(pub[0].Recipients.IDs, []string{"zed"}) {
		t.Fatalf("published %v", types(pub))
	}
	// a disconnect order from another node closes the user's connections here
	ann2, ra2 := x.connect(t, "ann")
	_ = ann2
	if n := x.ep.DisconnectUser("nobody-here", 4000, "bye"); n != 0 {
		t.Fatalf("closed %d", n)
	}
	ctl := x.node.take()
	if len(ctl) != 1 || ctl[0].EndpointName != "~pondsocket" || ctl[0].Event != "disconnect" {
		t.Fatalf("control message %+v", ctl)
	}
	x.from(&cluster.Envelope{Type: cluster.UserMessage, EndpointName: "~pondsocket", ChannelName: "/control", Event: "disconnect",
		FromUserID: "SYSTEM", Payload: raw(`{"endpoint":"api/socket","user":"ann","code":4000,"reason":"bye"}`)})
	for _, r := range []*recConn{x.ra, ra2} {
		r.mu.Lock()
		closed := slices.Clone(r.closed)
		r.mu.Unlock()
		if !slices.Equal(closed, []int{4000}) {
			t.Fatalf("ann's connection closed with %v", closed)
		}
	}
	x.rb.mu.Lock()
	defer x.rb.mu.Unlock()
	if len(x.rb.closed) != 0 {
		t.Fatal("bob was closed")
	}
}
