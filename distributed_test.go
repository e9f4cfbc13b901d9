package pondsocket

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/pondsocket/pondsocket/cluster"
	"github.com/pondsocket/pondsocket/internal/protocol"
)

// The hub's side of the distributed protocol, without a bus: fakeNode
// stands in for the cluster node (clusterNode is this package's own
// interface) and records what the hub publishes; HandleMessage is fed
// envelopes as another node would send them. The real buses are tested in
// cluster/ and internal/e2e.

// fakeNode records subscriptions and published envelopes.
type fakeNode struct {
	mu   sync.Mutex
	subs []string
	pub  []*cluster.Envelope
}

func (n *fakeNode) ID() string { return "node-a" }
func (n *fakeNode) Subscribe(ep, ch string) error {
	n.mu.Lock()
	n.subs = append(n.subs, "+"+ep+" "+ch)
	n.mu.Unlock()
	return nil
}
func (n *fakeNode) Unsubscribe(ep, ch string) error {
	n.mu.Lock()
	n.subs = append(n.subs, "-"+ep+" "+ch)
	n.mu.Unlock()
	return nil
}
func (n *fakeNode) Publish(e *cluster.Envelope) {
	n.mu.Lock()
	n.pub = append(n.pub, e)
	n.mu.Unlock()
}
func (n *fakeNode) Alone() bool { return false }

// take returns and forgets what was published.
func (n *fakeNode) take() []*cluster.Envelope {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := n.pub
	n.pub = nil
	return out
}

func types(es []*cluster.Envelope) []string {
	var out []string
	for _, e := range es {
		out = append(out, string(e.Type))
	}
	return out
}

// distHub is a testHub attached to a fakeNode, with ann and bob (local,
// tracked as {"id": ...}) in /room/1.
type distHub struct {
	*testHub
	node     *fakeNode
	room     *Channel
	ann, bob *Client
	ra, rb   *recConn
}

func newDistHub(t *testing.T) *distHub {
	t.Helper()
	x := &distHub{testHub: newTestHub(t), node: &fakeNode{}}
	x.h.AttachCluster(x.node)
	x.room = x.trackingRoom()
	x.room.OnEvent("*", func(ctx *EventContext) error { return nil })
	x.ann, x.ra = x.connect(t, "ann")
	x.bob, x.rb = x.connect(t, "bob")
	x.join(x.ann, "/room/1", "ja")
	x.join(x.bob, "/room/1", "jb")
	x.ra.waitPresence(t, protocol.EventJoin, "bob")
	return x
}

// from applies an envelope as node-b (or e.SourceNodeID when set) sends it
// for /room/1.
func (x *distHub) from(e *cluster.Envelope) {
	if e.SourceNodeID == "" {
		e.SourceNodeID = "node-b"
	}
	if e.EndpointName == "" {
		e.EndpointName = cluster.EndpointName("/api/socket")
	}
	if e.ChannelName == "" {
		e.ChannelName = "/room/1"
	}
	x.h.HandleMessage(e)
}

func (x *distHub) reset() {
	x.ra.reset()
	x.rb.reset()
	x.node.take()
}

// presenceIDs is the channel's presence (local and remote), sorted by id.
func (x *distHub) presenceIDs() []string {
	ch, _ := x.ep.Channel("/room/1")
	return slices.Sorted(func(yield func(string) bool) {
		for id := range ch.GetPresence() {
			if !yield(id) {
				return
			}
		}
	})
}

func (x *distHub) assignsOf(id string) map[string]any {
	ch, _ := x.ep.Channel("/room/1")
	a, _ := ch.GetAssigns()[id].(map[string]any)
	return a
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

// Local changes reach the bus: the first member subscribes the node and
// asks for the channel's state, every join is announced, a leave is
// announced, and the last one unsubscribes.
func TestHubPublishesLocalChanges(t *testing.T) {
	x := newTestHub(t)
	node := &fakeNode{}
	x.h.AttachCluster(node)
	x.trackingRoom()
	a, _ := x.connect(t, "ann")
	b, _ := x.connect(t, "bob")
	x.join(a, "/room/1", "ja")
	first := node.take()
	if len(first) < 2 || first[0].Type != cluster.UserJoined || first[0].UserID != "ann" || first[1].Type != cluster.StateRequest ||
		first[0].EndpointName != "api/socket" || first[0].ChannelName != "/room/1" {
		t.Fatalf("first join published %v", types(first))
	}
	x.join(b, "/room/1", "jb")
	if got := types(node.take()); !slices.Contains(got, string(cluster.UserJoined)) || slices.Contains(got, string(cluster.StateRequest)) {
		t.Fatalf("second join published %v: want USER_JOINED and no STATE_REQUEST", got)
	}
	x.send(b, protocol.ActionLeave, "/room/1", protocol.ActionLeave, "l", "")
	if got := node.take(); !slices.ContainsFunc(got, func(e *cluster.Envelope) bool { return e.Type == cluster.UserLeft && e.UserID == "bob" }) {
		t.Fatalf("leave published %v", types(got))
	}
	x.h.Disconnect(a)
	x.h.Disconnect(b)
	node.mu.Lock()
	defer node.mu.Unlock()
	if want := []string{"+/api/socket /room/1", "-/api/socket /room/1"}; !slices.Equal(node.subs, want) {
		t.Fatalf("subscriptions %v, want %v", node.subs, want)
	}
}

// Each distributed message type applied to a channel this node serves:
// what the local members receive, what the channel then holds, and what
// the hub publishes in answer.
func TestHubHandleMessage(t *testing.T) {
	joined := func(x *distHub, id, presence string) {
		x.from(&cluster.Envelope{Type: cluster.UserJoined, UserID: id, Assigns: raw(`{"lang":"fr"}`), Presence: raw(`{}`)})
		if presence != "" {
			x.from(&cluster.Envelope{Type: cluster.PresenceUpdate, UserID: id, Presence: raw(presence)})
		}
	}
	cases := []struct {
		name  string
		setup func(x *distHub)
		apply []*cluster.Envelope
		check func(t *testing.T, x *distHub)
	}{
		{
			name:  "USER_JOINED: known with its assigns, no presence yet",
			apply: []*cluster.Envelope{{Type: cluster.UserJoined, UserID: "zoe", Assigns: raw(`{"lang":"fr"}`), Presence: raw(`{}`)}},
			check: func(t *testing.T, x *distHub) {
				if a := x.assignsOf("zoe"); a["lang"] != "fr" {
					t.Errorf("zoe's assigns %v", a)
				}
				if got := x.ra.of(protocol.ActionPresence, protocol.EventJoin); len(got) != 0 {
					t.Errorf("presence sent for an untracked remote user: %v", got)
				}
			},
		},
		{
			name:  "PRESENCE_UPDATE: JOIN then UPDATE to the members",
			apply: []*cluster.Envelope{{Type: cluster.PresenceUpdate, UserID: "zoe", Presence: raw(`{"id":"zoe"}`)}, {Type: cluster.PresenceUpdate, UserID: "zoe", Presence: raw(`{"id":"zoe","away":true}`)}},
			check: func(t *testing.T, x *distHub) {
				for _, r := range []*recConn{x.ra, x.rb} {
					r.waitPresence(t, protocol.EventJoin, "zoe")
					u := r.waitPresence(t, protocol.EventUpdate, "zoe")
					if ch := u.Payload["changed"].(map[string]any); ch["away"] != true {
						t.Errorf("update %v", u)
					}
					if list, _ := u.Payload["presence"].([]any); len(list) != 3 {
						t.Errorf("presence list %v", u.Payload["presence"])
					}
				}
			},
		},
		{
			name:  "PRESENCE_REMOVED: LEAVE to the members, the user stays known",
			setup: func(x *distHub) { joined(x, "zoe", `{"id":"zoe"}`) },
			apply: []*cluster.Envelope{{Type: cluster.PresenceRemoved, UserID: "zoe"}},
			check: func(t *testing.T, x *distHub) {
				x.ra.waitPresence(t, protocol.EventLeave, "zoe")
				if got := x.presenceIDs(); !slices.Equal(got, []string{"ann", "bob"}) {
					t.Errorf("presence %v", got)
				}
				if x.assignsOf("zoe") == nil {
					t.Error("zoe was forgotten")
				}
			},
		},
		{
			name:  "ASSIGNS_UPDATE: whole object, then one key",
			setup: func(x *distHub) { joined(x, "zoe", "") },
			apply: []*cluster.Envelope{{Type: cluster.AssignsUpdate, UserID: "zoe", Assigns: raw(`{"lang":"de","score":1}`)}, {Type: cluster.AssignsUpdate, UserID: "zoe", Key: "score", Value: raw(`2`)}},
			check: func(t *testing.T, x *distHub) {
				if a := x.assignsOf("zoe"); a["lang"] != "de" || a["score"] != float64(2) {
					t.Errorf("zoe's assigns %v", a)
				}
			},
		},
		{
			name:  "USER_LEFT: LEAVE to the members, the user is forgotten",
			setup: func(x *distHub) { joined(x, "zoe", `{"id":"zoe"}`) },
			apply: []*cluster.Envelope{{Type: cluster.UserLeft, UserID: "zoe"}},
			check: func(t *testing.T, x *distHub) {
				x.rb.waitPresence(t, protocol.EventLeave, "zoe")
				if x.assignsOf("zoe") != nil || !slices.Equal(x.presenceIDs(), []string{"ann", "bob"}) {
					t.Errorf("zoe still known: %v %v", x.assignsOf("zoe"), x.presenceIDs())
				}
			},
		},
		{
			name:  "USER_MESSAGE to all users",
			apply: []*cluster.Envelope{{Type: cluster.UserMessage, FromUserID: "zoe", Event: "news", RequestID: "m1", Payload: raw(`{"n":1}`), Recipients: cluster.Recipients{All: true}}},
			check: func(t *testing.T, x *distHub) {
				for name, r := range map[string]*recConn{"ann": x.ra, "bob": x.rb} {
					if got := r.of(protocol.ActionServerBroadcast, "news"); len(got) != 1 || got[0].Payload["n"] != float64(1) || got[0].RequestID != "m1" {
						t.Errorf("%s got %v", name, got)
					}
				}
			},
		},
		{
			name:  "USER_MESSAGE to all but the sender",
			apply: []*cluster.Envelope{{Type: cluster.UserMessage, FromUserID: "ann", Event: "news", Payload: raw(`{}`), Recipients: cluster.Recipients{ExceptSender: true}}},
			check: func(t *testing.T, x *distHub) {
				if a, b := x.ra.of(protocol.ActionServerBroadcast, "news"), x.rb.of(protocol.ActionServerBroadcast, "news"); len(a) != 0 || len(b) != 1 {
					t.Errorf("ann got %v, bob got %v", a, b)
				}
			},
		},
		{
			name:  "USER_MESSAGE to listed users: only the local ones listed",
			apply: []*cluster.Envelope{{Type: cluster.UserMessage, FromUserID: "zoe", Event: "dm", Payload: raw(`{}`), Recipients: cluster.Recipients{IDs: []string{"bob", "somebody-elsewhere"}}}},
			check: func(t *testing.T, x *distHub) {
				if a, b := x.ra.of(protocol.ActionServerBroadcast, "dm"), x.rb.of(protocol.ActionServerBroadcast, "dm"); len(a) != 0 || len(b) != 1 {
					t.Errorf("ann got %v, bob got %v", a, b)
				}
			},
		},
		{
			name:  "USER_MESSAGE to users of no member here: nothing",
			apply: []*cluster.Envelope{{Type: cluster.UserMessage, FromUserID: "zoe", Event: "dm", Payload: raw(`{}`), Recipients: cluster.Recipients{IDs: []string{"somebody-elsewhere"}}}},
			check: func(t *testing.T, x *distHub) {
				if a, b := x.ra.all(), x.rb.all(); len(a)+len(b) != 0 {
					t.Errorf("ann got %v, bob got %v", a, b)
				}
			},
		},
		{
			name:  "EVICT_USER of a local member: kicked_out to it, removed, LEAVE to the others",
			apply: []*cluster.Envelope{{Type: cluster.EvictUser, UserID: "bob", Reason: "spam"}},
			check: func(t *testing.T, x *distHub) {
				k := x.rb.of(protocol.ActionSystem, "kicked_out")
				if len(k) != 1 || k[0].Payload["message"] != "spam" || k[0].Payload["code"] != float64(403) {
					t.Errorf("bob got %v", x.rb.all())
				}
				if got := x.ra.of(protocol.ActionSystem, "kicked_out"); len(got) != 0 {
					t.Errorf("ann got kicked_out %v", got)
				}
				x.ra.waitPresence(t, protocol.EventLeave, "bob")
				if got := x.members("/room/1"); !slices.Equal(got, []string{"ann"}) {
					t.Errorf("members %v", got)
				}
				// the evicting node already told everyone "kicked"; this
				// node announces the leave only
				for _, e := range x.node.take() {
					if e.Type == cluster.EvictUser {
						t.Errorf("EVICT_USER published back: %+v", e)
					}
				}
			},
		},
		{
			name:  "EVICT_USER of a remote user: forgotten",
			setup: func(x *distHub) { joined(x, "zoe", `{"id":"zoe"}`) },
			apply: []*cluster.Envelope{{Type: cluster.EvictUser, UserID: "zoe", Reason: "spam"}},
			check: func(t *testing.T, x *distHub) {
				x.ra.waitPresence(t, protocol.EventLeave, "zoe")
				if x.assignsOf("zoe") != nil {
					t.Error("zoe still known")
				}
			},
		},
		{
			name:  "USER_REMOVE of a local member: removed without kicked_out",
			apply: []*cluster.Envelope{{Type: cluster.UserRemove, UserID: "bob"}},
			check: func(t *testing.T, x *distHub) {
				x.ra.waitPresence(t, protocol.EventLeave, "bob")
				if got := x.rb.of(protocol.ActionSystem, "kicked_out"); len(got) != 0 || !slices.Equal(x.members("/room/1"), []string{"ann"}) {
					t.Errorf("bob got %v; members %v", got, x.members("/room/1"))
				}
			},
		},
		{
			name:  "USER_GET_REQUEST: answered with the member's assigns and presence",
			apply: []*cluster.Envelope{{Type: cluster.UserGetRequest, UserID: "bob", RequestID: "g1"}, {Type: cluster.UserGetRequest, UserID: "nobody", RequestID: "g2"}},
			check: func(t *testing.T, x *distHub) {
				got := x.node.take()
				if len(got) != 1 || got[0].Type != cluster.UserGetResponse || got[0].RequestID != "g1" || string(got[0].Presence) != `{"id":"bob"}` {
					t.Errorf("published %v", got)
				}
			},
		},
		{
			name:  "STATE_REQUEST: answered with this node's own users",
			setup: func(x *distHub) { joined(x, "zoe", `{"id":"zoe"}`) },
			apply: []*cluster.Envelope{{Type: cluster.StateRequest, FromNode: "node-c", SourceNodeID: "node-c"}},
			check: func(t *testing.T, x *distHub) {
				got := x.node.take()
				if len(got) != 1 || got[0].Type != cluster.StateResponse {
					t.Fatalf("published %v", types(got))
				}
				var ids []string
				for _, u := range got[0].Users {
					ids = append(ids, u.ID+" "+string(u.Presence))
				}
				slices.Sort(ids)
				if want := []string{`ann {"id":"ann"}`, `bob {"id":"bob"}`}; !slices.Equal(ids, want) {
					t.Errorf("STATE_RESPONSE users %v, want %v (zoe is node-b's to tell)", ids, want)
				}
			},
		},
		{
			name: "STATE_RESPONSE: the sender's complete list (added, updated, omitted forgotten)",
			setup: func(x *distHub) {
				joined(x, "zoe", `{"id":"zoe"}`)
				joined(x, "yan", `{"id":"yan"}`)
				x.from(&cluster.Envelope{Type: cluster.UserJoined, UserID: "cal", SourceNodeID: "node-c", Presence: raw(`{}`)})
				x.from(&cluster.Envelope{Type: cluster.PresenceUpdate, UserID: "cal", SourceNodeID: "node-c", Presence: raw(`{"id":"cal"}`)})
			},
			apply: []*cluster.Envelope{{Type: cluster.StateResponse, Users: []cluster.StateUser{
				{ID: "zoe", Assigns: raw(`{"lang":"it"}`), Presence: raw(`{"id":"zoe","away":true}`)},
				{ID: "xia", Assigns: raw(`{}`), Presence: raw(`{"id":"xia"}`)},
				{ID: "cal", Assigns: raw(`{}`), Presence: raw(`{"id":"cal","node":"b"}`)}, // node-c's user: left alone
			}}},
			check: func(t *testing.T, x *distHub) {
				x.ra.waitPresence(t, protocol.EventLeave, "yan")
				if got, want := x.presenceIDs(), []string{"ann", "bob", "cal", "xia", "zoe"}; !slices.Equal(got, want) {
					t.Errorf("presence %v, want %v", got, want)
				}
				ch, _ := x.ep.Channel("/room/1")
				p := ch.GetPresence()
				if z, _ := p["zoe"].(map[string]any); z["away"] != true {
					t.Errorf("zoe's presence %v", p["zoe"])
				}
				if c, _ := p["cal"].(map[string]any); c["node"] != nil {
					t.Errorf("node-b's list changed node-c's user: %v", p["cal"])
				}
				if a := x.assignsOf("zoe"); a["lang"] != "it" {
					t.Errorf("zoe's assigns %v", a)
				}
			},
		},
		{
			name: "messages for an endpoint or channel this node does not serve: ignored",
			apply: []*cluster.Envelope{
				{Type: cluster.UserMessage, EndpointName: "elsewhere", Event: "x", Recipients: cluster.Recipients{All: true}},
				{Type: cluster.UserMessage, ChannelName: "/room/2", Event: "x", Recipients: cluster.Recipients{All: true}},
				{Type: cluster.StateRequest, ChannelName: "/room/2"},
			},
			check: func(t *testing.T, x *distHub) {
				if a, b, p := x.ra.all(), x.rb.all(), x.node.take(); len(a)+len(b)+len(p) != 0 {
					t.Errorf("ann %v, bob %v, published %v", a, b, types(p))
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := newDistHub(t)
			if tc.setup != nil {
				tc.setup(x)
			}
			x.reset()
			for _, e := range tc.apply {
				x.from(e)
			}
			tc.check(t, x)
		})
	}
}

// NODE_DOWN (cluster.Handler.NodeDown): every user of the node that went
// silent is dropped, with a presence LEAVE; other nodes' users stay.
func TestHubNodeDown(t *testing.T) {
	x := newDistHub(t)
	for i, node := range []string{"node-b", "node-b", "node-c"} {
		id := fmt.Sprintf("u%d", i)
		x.from(&cluster.Envelope{Type: cluster.UserJoined, UserID: id, SourceNodeID: node, Presence: raw(`{}`)})
		x.from(&cluster.Envelope{Type: cluster.PresenceUpdate, UserID: id, SourceNodeID: node, Presence: raw(fmt.Sprintf(`{"id":%q}`, id))})
	}
	x.ra.waitPresence(t, protocol.EventJoin, "u2")
	x.reset()
	x.h.NodeDown("node-b")
	x.ra.waitPresence(t, protocol.EventLeave, "u0")
	x.ra.waitPresence(t, protocol.EventLeave, "u1")
	if got, want := x.presenceIDs(), []string{"ann", "bob", "u2"}; !slices.Equal(got, want) {
		t.Fatalf("presence after node-b went down: %v, want %v", got, want)
	}
	if x.assignsOf("u0") != nil || x.assignsOf("u2") == nil {
		t.Fatalf("assigns: u0 %v, u2 %v", x.assignsOf("u0"), x.assignsOf("u2"))
	}
	if got := x.node.take(); len(got) != 0 {
		t.Fatalf("NodeDown published %v", types(got))
	}
}
