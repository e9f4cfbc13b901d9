package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/cluster"
	"github.com/pondsocket/pondsocket/internal/testenv"
)

// startNode runs the demo application as one node of a cluster on ps.
func startNode(t *testing.T, ps pondsocket.PubSub, id string, hb, timeout time.Duration) *pondsocket.Server {
	t.Helper()
	return startDemo(t, func(o *pondsocket.Options) {
		o.PubSub = ps
		o.Cluster = pondsocket.ClusterOptions{NodeID: id, Namespace: "test", HeartbeatInterval: hb, HeartbeatTimeout: timeout}
	})
}

func pondOn(t *testing.T, addr string, token string) *pond {
	t.Helper()
	return newPondAt(t, addr, map[string]any{"token": token})
}

// clusterScenario is the cross-node behaviour every backend must give: the
// JS clients are connected to different nodes and see one channel.
// full adds what only the test application has (the "from" field,
// eviction, cluster-wide assigns); cmd/pondsocket's demo has the rest.
func clusterScenario(t *testing.T, nodes []string, full bool, killNode func(i int)) {
	testenv.NodeModules(t)
	const room = "/chat/lobby"
	a := pondOn(t, nodes[0], "alice")
	b := pondOn(t, nodes[1], "bob")
	joinAliceBob(a, b, room, true)
	// presence across nodes: each sees both (bob via STATE_RESPONSE,
	// alice via PRESENCE_UPDATE)
	b.users(room, 2)
	a.users(room, 2)
	a.expect("join", func(e pondEv) bool { return e.Presence["username"] == "bob" })

	// broadcast, broadcastFrom, broadcastTo across nodes
	a.send(room, "message", map[string]any{"text": "hello cluster"})
	for _, p := range []*pond{a, b} {
		if m := p.message(room, "message"); m["text"] != "hello cluster" || (full && m["from"] != "alice") {
			t.Fatalf("broadcast %v", m)
		}
	}
	a.send(room, "typing", map[string]any{"who": "alice"})
	if m := b.message(room, "typing"); m["who"] != "alice" {
		t.Fatalf("typing %v", m)
	}
	a.noMessageBeforePing(room, "typing")
	bobID := b.request(room, "whoami", map[string]any{})["id"].(string)
	a.send(room, "whisper", map[string]any{"to": bobID, "text": "psst"})
	if m := b.message(room, "whisper"); m["text"] != "psst" {
		t.Fatalf("whisper %v", m)
	}
	// exactly once: bob got one copy of the broadcast and one whisper
	b.noMessageBeforePing(room, "nothing")
	count := func(p *pond, event string) int {
		n := 0
		for _, e := range p.d.History() {
			if e.Ev == "message" && decode(t, e).Event == event {
				n++
			}
		}
		return n
	}
	if count(b, "message") != 1 || count(b, "whisper") != 1 || count(a, "message") != 1 {
		t.Fatalf("duplicates: bob message=%d whisper=%d, alice message=%d", count(b, "message"), count(b, "whisper"), count(a, "message"))
	}

	// presence update across nodes
	b.send(room, "status", map[string]any{"status": "away"})
	a.expect("presence", func(e pondEv) bool {
		ch, _ := e.Payload["changed"].(map[string]any)
		return ch != nil && ch["username"] == "bob" && ch["status"] == "away"
	})
	if full {
		// assigns and presence of the whole cluster
		all := a.request(room, "everyone", map[string]any{})
		if as := all["assigns"].(map[string]any); len(as) != 2 || as[bobID].(map[string]any)["username"] != "bob" {
			t.Fatalf("GetAllAssigns across nodes %v", all["assigns"])
		}
		if ps := all["presence"].(map[string]any); len(ps) != 2 || ps[bobID].(map[string]any)["status"] != "away" {
			t.Fatalf("GetAllPresence across nodes %v", all["presence"])
		}
	}

	// a late node learns the state
	c := pondOn(t, nodes[2], "carol")
	c.join(room, map[string]any{"username": "carol"})
	c.state(room, "JOINED")
	// (the order of a list is the order this node learnt of the users)
	users := c.users(room, 3)
	names := map[any]bool{}
	for _, u := range users {
		names[u["username"]] = true
	}
	if !names["alice"] || !names["bob"] || !names["carol"] {
		t.Fatalf("late node presence %v", users)
	}
	a.users(room, 3)

	if full {
		evictAcrossNodes(t, a, b, c, room, bobID, count)
	} else {
		// bob leaves explicitly: the others see it
		b.d.Send(map[string]any{"op": "leave", "channel": room})
		a.expect("leave", func(e pondEv) bool { return e.Presence["username"] == "bob" })
		c.expect("leave", func(e pondEv) bool { return e.Presence["username"] == "bob" })
	}

	// a node dies without a word: its users leave after the heartbeat timeout
	killNode(2)
	a.expect("leave", func(e pondEv) bool { return e.Presence["username"] == "carol" })
	a.users(room, 1)
}

func TestClusterMemoryBus(t *testing.T) {
	bus := cluster.NewMemoryBus()
	var nodes []*pondsocket.Server
	var addrs []string
	for i := 0; i < 3; i++ {
		nodes = append(nodes, startNode(t, bus.Connect(), fmt.Sprintf("n%d", i), 100*time.Millisecond, 500*time.Millisecond))
		addrs = append(addrs, nodes[i].Addr().String())
	}
	clusterScenario(t, addrs, true, func(i int) {
		// the node stops talking (as if killed); its server keeps its
		// sockets, so nothing is announced
		nodes[i].ClusterNode().Close()
	})
}

func evictAcrossNodes(t *testing.T, a, b, c *pond, room, bobID string, count func(*pond, string) int) {
	// eviction across nodes: alice (node 0) kicks bob (node 1)
	a.send(room, "kick", map[string]any{"userId": bobID})
	if m := b.message(room, "kicked_out"); m["message"] != "spamming" {
		t.Fatalf("kicked_out %v", m)
	}
	b.message(room, "kicked")
	c.message(room, "kicked")
	a.expect("leave", func(e pondEv) bool { return e.Presence["username"] == "bob" })
	c.expect("leave", func(e pondEv) bool { return e.Presence["username"] == "bob" })
	// bob's connection stays open; a later request proves nothing else
	// (a second kicked_out) was on its way
	b.join("/chat/after", map[string]any{"username": "bob"})
	b.state("/chat/after", "JOINED")
	b.noMessageBeforePing("/chat/after", "nothing")
	if count(b, "kicked_out") != 1 {
		t.Fatalf("kicked_out %d times", count(b, "kicked_out"))
	}

}

// recordingPubSub keeps every envelope its node publishes.
type recordingPubSub struct {
	pondsocket.PubSub
	mu   sync.Mutex
	sent []*cluster.Envelope
}

func (r *recordingPubSub) Publish(ctx context.Context, topic string, data []byte) error {
	if e, err := cluster.Decode(data); err == nil {
		r.mu.Lock()
		r.sent = append(r.sent, e)
		r.mu.Unlock()
	}
	return r.PubSub.Publish(ctx, topic, data)
}

func (r *recordingPubSub) find(match func(*cluster.Envelope) bool) *cluster.Envelope {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.sent {
		if match(e) {
			return e
		}
	}
	return nil
}

// A message a user's handler broadcasts crosses the bus with the sender's
// id in fromUserId, as the reference node sends it (it was "CHANNEL").
func TestUserMessageCarriesTheSender(t *testing.T) {
	testenv.NodeModules(t)
	bus := cluster.NewMemoryBus()
	rec := &recordingPubSub{PubSub: bus.Connect()}
	n0 := startNode(t, rec, "n0", 100*time.Millisecond, time.Second)
	n1 := startNode(t, bus.Connect(), "n1", 100*time.Millisecond, time.Second)
	const room = "/chat/sender"
	a := pondOn(t, n0.Addr().String(), "alice")
	b := pondOn(t, n1.Addr().String(), "bob")
	joinAliceBob(a, b, room, false)
	a.users(room, 2)
	a.send(room, "message", map[string]any{"text": "hi"})
	b.message(room, "message")
	joined := rec.find(func(e *cluster.Envelope) bool { return e.Type == cluster.UserJoined && e.ChannelName == room })
	msg := rec.find(func(e *cluster.Envelope) bool { return e.Type == cluster.UserMessage && e.Event == "message" })
	if joined == nil || msg == nil {
		t.Fatalf("published USER_JOINED %v, USER_MESSAGE %v", joined != nil, msg != nil)
	}
	if msg.FromUserID != joined.UserID {
		t.Fatalf("USER_MESSAGE fromUserId %q, want the sender %q", msg.FromUserID, joined.UserID)
	}
}
