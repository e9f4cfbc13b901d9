package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a Handler that forwards what it gets to channels.
type recorder struct {
	t       testing.TB
	msgs    chan *Envelope
	down    chan string
	resyncs chan Resync
}

func newRecorder(t testing.TB) *recorder {
	return &recorder{t: t, msgs: make(chan *Envelope, 10000), down: make(chan string, 16), resyncs: make(chan Resync, 64)}
}

func (r *recorder) Resync(x Resync) {
	select {
	case r.resyncs <- x:
	default:
	}
}

// nextResync waits for a Resync with the given reason, skipping others.
func (r *recorder) nextResync(t testing.TB, reason ResyncReason) Resync {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case x := <-r.resyncs:
			if x.Reason == reason {
				return x
			}
		case <-deadline:
			t.Fatalf("no Resync(%s) within 5s", reason)
			return Resync{}
		}
	}
}

func (r *recorder) HandleMessage(e *Envelope) {
	if e.Type == NodeHeartbeat {
		r.t.Errorf("heartbeat passed to the handler: %+v", e)
	}
	select {
	case r.msgs <- e:
	default:
		r.t.Errorf("recorder full")
	}
}

func (r *recorder) NodeDown(id string) { r.down <- id }

func (r *recorder) next(t testing.TB) *Envelope {
	t.Helper()
	select {
	case e := <-r.msgs:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5s")
		return nil
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// batching wraps a PubSub so that it also implements BatchPublisher: the
// Node's two publish paths run through the same tests.
type batching struct {
	PubSub
	mu      sync.Mutex
	batches int
}

func (b *batching) PublishBatch(ctx context.Context, msgs []Message) error {
	b.mu.Lock()
	b.batches++
	b.mu.Unlock()
	errs := make([]error, len(msgs))
	failed := false
	for i, m := range msgs {
		if errs[i] = b.Publish(ctx, m.Topic, m.Data); errs[i] != nil {
			failed = true
		}
	}
	if failed {
		return &BatchError{Errs: errs}
	}
	return nil
}

var publishModes = []struct {
	name string
	wrap func(PubSub) PubSub
}{
	{"single", func(p PubSub) PubSub { return p }},
	{"batch", func(p PubSub) PubSub { return &batching{PubSub: p} }},
}

type testNode struct {
	*Node
	rec *recorder
}

func startNode(t testing.TB, ps PubSub, o Options) testNode {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	n := NewNode(ps, o)
	rec := newRecorder(t)
	if err := n.Start(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return testNode{n, rec}
}

// eventually polls cond (for states that have no signal, such as counters)
// until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func userMessage(channel, event string, payload any) *Envelope {
	p, _ := json.Marshal(payload)
	return &Envelope{Type: UserMessage, EndpointName: "/ws", ChannelName: channel,
		FromUserID: "u1", Event: event, Payload: p, RequestID: "r", Recipients: AllUsers()}
}

func TestNodeExchange(t *testing.T) {
	for _, mode := range publishModes {
		t.Run(mode.name, func(t *testing.T) {
			bus := NewMemoryBus()
			o := Options{Namespace: "demo"}
			a := startNode(t, mode.wrap(bus.Connect()), o)
			b := startNode(t, mode.wrap(bus.Connect()), o)
			c := startNode(t, mode.wrap(bus.Connect()), o)
			for _, n := range []testNode{a, b, c} {
				if err := n.Subscribe("ws", "/chat/lobby"); err != nil { // name or pattern: same topic
					t.Fatal(err)
				}
			}
			before := time.Now().UnixMilli()
			a.Publish(userMessage("/chat/lobby", "hello", map[string]string{"text": "hi"}))
			for _, n := range []testNode{b, c} {
				e := n.rec.next(t)
				if e.Event != "hello" || string(e.Payload) != `{"text":"hi"}` || e.SourceNodeID != a.ID() ||
					e.EndpointName != "ws" || e.ChannelName != "/chat/lobby" || e.Timestamp < before ||
					!regexp.MustCompile(`^[0-9a-z]+-[0-9a-z]+$`).MatchString(e.MessageID) {
					t.Errorf("received %+v", e)
				}
			}
			// a's own copy was delivered to a by the bus before b's reply, and
			// dropped by sourceNodeId.
			b.Publish(userMessage("/chat/lobby", "reply", nil))
			if e := a.rec.next(t); e.Event != "reply" || e.SourceNodeID != b.ID() {
				t.Errorf("a got %+v first; its own message must have been dropped", e)
			}
			if got := a.Stats().OwnDropped; got < 1 { // its heartbeats count too
				t.Errorf("a OwnDropped = %d", got)
			}
			if e := c.rec.next(t); e.Event != "reply" {
				t.Errorf("c got %+v", e)
			}
			if len(b.rec.msgs) != 0 {
				t.Errorf("b got its own message")
			}
		})
	}
}

func TestNodeOrderPerTopic(t *testing.T) {
	for _, mode := range publishModes {
		t.Run(mode.name, func(t *testing.T) {
			bus := NewMemoryBus()
			conn := mode.wrap(bus.Connect())
			a := startNode(t, conn, Options{})
			b := startNode(t, bus.Connect(), Options{})
			const channels, per = 10, 200
			for c := range channels {
				b.Subscribe("/ws", fmt.Sprintf("/room/%d", c))
			}
			for i := range per {
				for c := range channels {
					a.Publish(userMessage(fmt.Sprintf("/room/%d", c), "seq", i))
				}
			}
			next := map[string]int{}
			for range channels * per {
				e := b.rec.next(t)
				var i int
				json.Unmarshal(e.Payload, &i)
				if i != next[e.ChannelName] {
					t.Fatalf("%s: got %d, want %d", e.ChannelName, i, next[e.ChannelName])
				}
				next[e.ChannelName]++
			}
			if bp, ok := conn.(*batching); ok {
				bp.mu.Lock()
				t.Logf("%d messages in %d batches", channels*per, bp.batches)
				bp.mu.Unlock()
			}
		})
	}
}

func TestNodeUnsubscribe(t *testing.T) {
	bus := NewMemoryBus()
	a := startNode(t, bus.Connect(), Options{})
	b := startNode(t, bus.Connect(), Options{})
	b.Subscribe("/ws", "/x")
	b.Subscribe("/ws", "/y")
	a.Publish(userMessage("/x", "one", nil))
	if e := b.rec.next(t); e.Event != "one" {
		t.Fatalf("got %+v", e)
	}
	if err := b.Unsubscribe("/ws", "/x"); err != nil {
		t.Fatal(err)
	}
	a.Publish(userMessage("/x", "two", nil))
	a.Publish(userMessage("/y", "sentinel", nil))
	if e := b.rec.next(t); e.Event != "sentinel" {
		t.Fatalf("got %+v after Unsubscribe", e)
	}
}

func TestNodeDropsInvalidMessages(t *testing.T) {
	bus := NewMemoryBus()
	a := startNode(t, bus.Connect(), Options{})
	a.Subscribe("/ws", "/x")
	raw := bus.Connect()
	if err := raw.Start(context.Background(), func(string, []byte) {}); err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	topic := ChannelTopic("pondsocket", "default", "/ws", "/x")
	raw.Publish(context.Background(), topic, []byte(`not json`))
	raw.Publish(context.Background(), topic, []byte(`{"protocol":"pondsocket.distributed","version":"1"}`))
	good, _ := Encode(&Envelope{Type: UserLeft, MessageID: "m", SourceNodeID: "raw", EndpointName: "ws", ChannelName: "/x", Timestamp: 1, UserID: "u"})
	raw.Publish(context.Background(), topic, good)
	if e := a.rec.next(t); e.Type != UserLeft || e.UserID != "u" {
		t.Fatalf("got %+v", e)
	}
	if s := a.Stats(); s.DecodeErrors != 2 || s.Handled != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestNodeHeartbeatsAndNodeDown(t *testing.T) {
	bus := NewMemoryBus()
	o := Options{HeartbeatInterval: 100 * time.Millisecond, HeartbeatTimeout: 300 * time.Millisecond}
	a := startNode(t, bus.Connect(), o)
	b := startNode(t, bus.Connect(), o)
	c := startNode(t, bus.Connect(), o)
	for _, n := range []testNode{a, b, c} {
		eventually(t, 2*time.Second, "all nodes alive", func() bool { return n.Stats().NodesAlive == 2 })
	}
	closed := time.Now()
	c.Close()
	for _, n := range []testNode{a, b} {
		select {
		case id := <-n.rec.down:
			elapsed := time.Since(closed)
			if id != c.ID() {
				t.Errorf("NodeDown(%s), want %s", id, c.ID())
			}
			// c's last heartbeat was at most one interval before Close.
			if elapsed < 200*time.Millisecond || elapsed > 2*time.Second {
				t.Errorf("NodeDown after %v; timeout is 300ms", elapsed)
			}
			t.Logf("NodeDown after %v", elapsed)
		case <-time.After(3 * time.Second):
			t.Fatal("no NodeDown")
		}
		if s := n.Stats(); s.NodesAlive != 1 || s.HeartbeatsSent < 2 {
			t.Errorf("stats %+v", s)
		}
	}
	// Heartbeats keep a and b alive for each other: no further NodeDown.
	select {
	case id := <-a.rec.down:
		t.Errorf("unexpected NodeDown(%s)", id)
	case <-time.After(500 * time.Millisecond):
	}
}

// A node first seen through a user message (no heartbeat ever) is alive
// from then on and goes down after the timeout.
func TestNodeFirstSeenThroughMessage(t *testing.T) {
	bus := NewMemoryBus()
	a := startNode(t, bus.Connect(), Options{HeartbeatInterval: 100 * time.Millisecond, HeartbeatTimeout: 300 * time.Millisecond})
	a.Subscribe("/ws", "/x")
	raw := bus.Connect()
	raw.Start(context.Background(), func(string, []byte) {})
	defer raw.Close()
	data, _ := Encode(&Envelope{Type: UserJoined, MessageID: "m", SourceNodeID: "ghost", EndpointName: "ws", ChannelName: "/x", Timestamp: 1, UserID: "u"})
	sent := time.Now()
	raw.Publish(context.Background(), ChannelTopic("pondsocket", "default", "/ws", "/x"), data)
	a.rec.next(t)
	if nodes := a.Nodes(); len(nodes) != 1 || nodes[0] != "ghost" {
		t.Fatalf("Nodes() = %v", nodes)
	}
	select {
	case id := <-a.rec.down:
		if id != "ghost" || time.Since(sent) < 300*time.Millisecond {
			t.Errorf("NodeDown(%s) after %v", id, time.Since(sent))
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no NodeDown for ghost")
	}
}

// Outage: what is published while the bus is down is kept and delivered,
// in order, when it returns; Connected and Ready follow the bus, and the
// return asks the Handler to resynchronise.
func TestNodeOutageKeepsMessages(t *testing.T) {
	for _, mode := range publishModes {
		t.Run(mode.name, func(t *testing.T) {
			bus := NewMemoryBus()
			o := Options{HeartbeatInterval: 50 * time.Millisecond, HeartbeatTimeout: 200 * time.Millisecond}
			a := startNode(t, mode.wrap(bus.Connect()), o)
			b := startNode(t, bus.Connect(), o)
			b.Subscribe("/ws", "/x")
			a.Publish(userMessage("/x", "before", nil))
			if e := b.rec.next(t); e.Event != "before" {
				t.Fatalf("got %+v", e)
			}
			if err := a.Ready(); err != nil {
				t.Fatalf("Ready before the outage: %v", err)
			}

			bus.SetDown(true)
			eventually(t, 5*time.Second, "Connected to follow the bus down", func() bool { return !a.Stats().Connected })
			if err := a.Ready(); err == nil {
				t.Fatal("Ready while the bus is down")
			}
			const kept = 200
			for i := range kept {
				a.Publish(userMessage("/x", "kept", i))
			}
			// longer than several heartbeat timeouts: nobody is declared
			// down while the bus cannot be heard
			time.Sleep(600 * time.Millisecond)
			if s := a.Stats(); s.Buffered < kept || s.Dropped != 0 || s.NodesDeclaredDown != 0 {
				t.Fatalf("during the outage: %+v", s)
			}
			bus.SetDown(false)
			for i := range kept {
				e := b.rec.next(t)
				var got int
				json.Unmarshal(e.Payload, &got)
				if e.Event != "kept" || got != i {
					t.Fatalf("got %s %d, want kept %d", e.Event, got, i)
				}
			}
			if r := a.rec.nextResync(t, ResyncBusBack); !r.Sweep || r.Window <= 0 {
				t.Errorf("resync %+v", r)
			}
			eventually(t, 5*time.Second, "Ready after the outage", func() bool { return a.Ready() == nil })
			if s := a.Stats(); s.Dropped != 0 || s.Buffered != 0 || s.BufferedBytes != 0 || s.Resyncs == 0 {
				t.Errorf("after the outage: %+v", s)
			}
		})
	}
}

// Past PublishBuffer bytes the oldest messages go, counted; the newest are
// delivered when the bus returns, and the loss asks for a sweeping resync.
func TestNodeBufferOverflowDropsOldest(t *testing.T) {
	bus := NewMemoryBus()
	a := startNode(t, bus.Connect(), Options{PublishBuffer: 64 << 10})
	b := startNode(t, bus.Connect(), Options{})
	b.Subscribe("/ws", "/x")
	bus.SetDown(true)
	pad := string(make([]byte, 1000))
	const total = 300 // ~1.3 KB each: about 50 fit
	for i := range total {
		a.Publish(userMessage("/x", "m", map[string]any{"i": i, "pad": pad}))
	}
	s := a.Stats()
	if s.BufferedBytes > 64<<10 || s.Overflowed == 0 || s.Dropped != s.Overflowed || int(s.Overflowed)+s.Buffered != total {
		t.Fatalf("stats %+v", s)
	}
	bus.SetDown(false)
	// Everything after the dropped ones arrives, in order. The sender may
	// have copied a batch from the head just before the last drops and be
	// sending it as the bus comes back: the messages of that batch that
	// were counted as dropped then arrive after all (never more than one
	// batch, and in order).
	first := int(s.Overflowed)
	var got struct{ I int }
	json.Unmarshal(b.rec.next(t).Payload, &got)
	if got.I > first || got.I < first-maxBatch {
		t.Fatalf("first message received %d, want %d (the oldest %d dropped; at most one batch sent anyway)", got.I, first, first)
	}
	for i := got.I + 1; i < total; i++ {
		json.Unmarshal(b.rec.next(t).Payload, &got)
		if got.I != i {
			t.Fatalf("got %d, want %d (the oldest %d dropped)", got.I, i, first)
		}
	}
	if r := a.rec.nextResync(t, ResyncDropped); !r.Sweep {
		t.Errorf("resync %+v", r)
	}
}

// A node declared down that is heard from again is reported back, once.
func TestNodePeerBackResyncs(t *testing.T) {
	bus := NewMemoryBus()
	o := Options{HeartbeatInterval: 30 * time.Millisecond, HeartbeatTimeout: 150 * time.Millisecond}
	a := startNode(t, bus.Connect(), o)
	b := startNode(t, &muted{PubSub: bus.Connect()}, o)
	eventually(t, 5*time.Second, "a to see b", func() bool { return len(a.Nodes()) == 1 })
	b.ps.(*muted).mute.Store(true)
	if id := <-a.rec.down; id != b.ID() {
		t.Fatalf("NodeDown(%s)", id)
	}
	if s := a.Stats(); s.NodesDown != 1 || s.NodesDeclaredDown != 1 || a.Alone() {
		t.Fatalf("after NodeDown: %+v alone=%v", s, a.Alone())
	}
	b.ps.(*muted).mute.Store(false)
	if r := a.rec.nextResync(t, ResyncPeerBack); r.Peer != b.ID() {
		t.Fatalf("resync %+v", r)
	}
	if s := a.Stats(); s.NodesDown != 0 || s.NodesBack != 1 || s.NodesAlive != 1 {
		t.Fatalf("after back: %+v", s)
	}
}

// muted drops what its node publishes while mute is set (a one-way
// partition of that node).
type muted struct {
	PubSub
	mute atomic.Bool
}

func (m *muted) Publish(ctx context.Context, topic string, data []byte) error {
	if m.mute.Load() {
		return nil
	}
	return m.PubSub.Publish(ctx, topic, data)
}

func TestNodeStartRetriesInBackground(t *testing.T) {
	bus := NewMemoryBus()
	bus.SetDown(true)
	a := startNode(t, bus.Connect(), Options{}) // Start returns nil: the first attempt failed
	if a.Stats().Connected {
		t.Fatal("connected to a bus that is down")
	}
	a.Subscribe("/ws", "/x") // recorded, made once connected
	bus.SetDown(false)
	eventually(t, 5*time.Second, "the background reconnect", func() bool { return a.Stats().Connected })
	b := startNode(t, bus.Connect(), Options{})
	b.Publish(userMessage("/x", "hi", nil))
	if e := a.rec.next(t); e.Event != "hi" {
		t.Fatalf("got %+v", e)
	}
}

func TestNodeStartFailFast(t *testing.T) {
	bus := NewMemoryBus()
	bus.SetDown(true)
	n := NewNode(bus.Connect(), Options{FailFast: true, Logger: quietLogger()})
	err := n.Start(context.Background(), newRecorder(t))
	if !errors.Is(err, ErrBusDown) {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("FailFast error: %v", err)
	if err := n.Start(context.Background(), newRecorder(t)); !errors.Is(err, ErrClosed) {
		t.Errorf("second Start: %v", err)
	}
	n.Close()
}

// Close publishes what is still queued before it returns.
func TestNodeCloseFlushes(t *testing.T) {
	bus := NewMemoryBus()
	a := startNode(t, bus.Connect(), Options{})
	b := startNode(t, bus.Connect(), Options{})
	b.Subscribe("/ws", "/x")
	for i := range 500 {
		a.Publish(userMessage("/x", "m", i))
	}
	a.Close()
	if s := a.Stats(); s.Dropped != 0 || s.Published < 500 {
		t.Errorf("after Close: %+v", s)
	}
	for i := range 500 {
		var got int
		json.Unmarshal(b.rec.next(t).Payload, &got)
		if got != i {
			t.Fatalf("got %d, want %d", got, i)
		}
	}
	a.Publish(userMessage("/x", "late", nil))
	if s := a.Stats(); s.Dropped != 1 {
		t.Errorf("Publish after Close: %+v", s)
	}
}

// Close while the bus is down ends within FlushTimeout, counting the rest.
func TestNodeCloseDuringOutage(t *testing.T) {
	bus := NewMemoryBus()
	a := startNode(t, bus.Connect(), Options{FlushTimeout: 200 * time.Millisecond})
	bus.SetDown(true)
	for i := range 50 {
		a.Publish(userMessage("/x", "m", i))
	}
	start := time.Now()
	a.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	if s := a.Stats(); s.Dropped != 50 {
		t.Errorf("stats %+v", s)
	}
}

func TestNodeCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	bus := NewMemoryBus()
	o := Options{HeartbeatInterval: 20 * time.Millisecond, HeartbeatTimeout: 80 * time.Millisecond, Logger: quietLogger()}
	var nodes []*Node
	var recs []*recorder
	for range 3 {
		n := NewNode(bus.Connect(), o)
		r := newRecorder(t)
		if err := n.Start(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		n.Subscribe("/ws", "/x")
		nodes, recs = append(nodes, n), append(recs, r)
	}
	// A node started while the bus is down has a reconnect loop running.
	bus2 := NewMemoryBus()
	bus2.SetDown(true)
	retrying := NewNode(bus2.Connect(), o)
	retrying.Start(context.Background(), newRecorder(t))
	nodes[0].Publish(userMessage("/x", "m", nil))
	recs[1].next(t)
	recs[2].next(t)
	during := runtime.NumGoroutine()
	for _, n := range append(nodes, retrying) {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("goroutines: %d before, %d running, %d after Close\n%s", before, during, after, buf[:runtime.Stack(buf, true)])
	} else {
		t.Logf("goroutines: %d before, %d running, %d after Close", before, during, after)
	}
}

// notifying makes a MemoryBus connection a ConnectionNotifier and a
// SubscriberCounter whose count the test sets, as the Redis backend is.
type notifying struct {
	PubSub
	notify  func(up bool)
	present atomic.Int32 // what Subscribers answers
	polls   atomic.Int32
}

func (n *notifying) NotifyConnection(f func(up bool)) { n.notify = f }

func (n *notifying) Subscribers(context.Context, string) (int, error) {
	n.polls.Add(1)
	return int(n.present.Load()), nil
}

// After the receiving side returns, the node holds what it buffered until
// the backend counts every known node subscribed again, and then at once
// (not after the whole grace); the "bus back" resync follows the hold.
func TestNodeHoldEndsWhenPeersResubscribed(t *testing.T) {
	ps, a, b := holdPair(t)

	ps.notify(false)
	if a.Ready() == nil {
		t.Fatal("Ready with the receiving side down")
	}
	a.Publish(userMessage("/x", "held", nil))
	ps.present.Store(2) // a and b
	back := time.Now()
	ps.notify(true)
	if e := b.rec.next(t); e.Event != "held" {
		t.Fatalf("got %+v", e)
	}
	// in-process, the hand-off takes a few poll periods; the grace is the
	// bound that a missing peer would have cost
	if took := time.Since(back); took >= reconnectGrace {
		t.Errorf("held for %v: the counter's answer did not end the hold", took)
	}
	if ps.polls.Load() == 0 {
		t.Error("the SubscriberCounter was not asked")
	}
	if r := a.rec.nextResync(t, ResyncBusBack); !r.Sweep {
		t.Errorf("resync %+v", r)
	}
}

// holdPair starts node a on a backend whose receiving side the test
// switches, and node b subscribed to /x, and waits until a sees b.
func holdPair(t *testing.T) (*notifying, testNode, testNode) {
	t.Helper()
	bus := NewMemoryBus()
	o := Options{HeartbeatInterval: 50 * time.Millisecond, HeartbeatTimeout: 5 * time.Second}
	ps := &notifying{PubSub: bus.Connect()}
	a := startNode(t, ps, o)
	b := startNode(t, bus.Connect(), o)
	b.Subscribe("/ws", "/x")
	eventually(t, 5*time.Second, "a to see b", func() bool { return len(a.Nodes()) == 1 })
	return ps, a, b
}

// A peer that does not resubscribe holds the buffer for the grace only.
func TestNodeHoldBoundedByGrace(t *testing.T) {
	ps, a, b := holdPair(t)

	ps.notify(false)
	a.Publish(userMessage("/x", "held", nil))
	ps.present.Store(1) // only a itself
	back := time.Now()
	ps.notify(true)
	if e := b.rec.next(t); e.Event != "held" {
		t.Fatalf("got %+v", e)
	}
	if took := time.Since(back); took < reconnectGrace {
		t.Errorf("released after %v with a peer missing, before the grace", took)
	}
	if n := ps.polls.Load(); n < 2 {
		t.Errorf("the counter was asked %d times during the hold", n)
	}
	a.rec.nextResync(t, ResyncBusBack)
}
