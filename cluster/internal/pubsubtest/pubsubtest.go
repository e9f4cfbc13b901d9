// Package pubsubtest is the backend-independent test suite every
// cluster.PubSub passes (the in-memory bus, Redis, Kafka), plus helpers the
// backend tests share.
package pubsubtest

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket/cluster"
)

// Config describes the backend under test.
type Config struct {
	// Connect returns a new, not yet started PubSub on the shared bus. The
	// suite starts and closes it.
	Connect func(t testing.TB) cluster.PubSub
	// CrossTopicOrder: the backend delivers to one subscriber in global
	// publish order across topics (Redis, MemoryBus), not only per topic
	// (Kafka: one goroutine per partition).
	CrossTopicOrder bool
	// Timeout for one expected delivery (default 10s).
	Timeout time.Duration
}

// Inbox collects what a PubSub delivers.
type Inbox struct {
	ch chan cluster.Message
}

// NewInbox returns an inbox holding up to 100000 messages.
func NewInbox() *Inbox { return &Inbox{ch: make(chan cluster.Message, 100000)} }

// Deliver is the deliver callback.
func (in *Inbox) Deliver(topic string, data []byte) {
	select {
	case in.ch <- cluster.Message{Topic: topic, Data: data}:
	default:
		panic("pubsubtest: inbox full")
	}
}

// C is the channel of delivered messages.
func (in *Inbox) C() <-chan cluster.Message { return in.ch }

// Next waits for the next message.
func (in *Inbox) Next(t testing.TB, timeout time.Duration) cluster.Message {
	t.Helper()
	select {
	case m := <-in.ch:
		return m
	case <-time.After(timeout):
		t.Fatalf("nothing delivered within %v", timeout)
		return cluster.Message{}
	}
}

// Expect waits for the next message and checks it.
func (in *Inbox) Expect(t testing.TB, timeout time.Duration, topic, data string) {
	t.Helper()
	m := in.Next(t, timeout)
	if m.Topic != topic || string(m.Data) != data {
		t.Fatalf("delivered %s %q, want %s %q", m.Topic, m.Data, topic, data)
	}
}

// Quiet checks that nothing arrives for d. Absence has no signal, so this
// is the one place the suite waits for time to pass.
func (in *Inbox) Quiet(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case m := <-in.ch:
		t.Fatalf("unexpected delivery %s %q", m.Topic, m.Data)
	case <-time.After(d):
	}
}

// Started connects a PubSub from cfg and starts it with a new inbox.
func Started(t testing.TB, cfg Config) (cluster.PubSub, *Inbox) {
	t.Helper()
	ps := cfg.Connect(t)
	in := NewInbox()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := ps.Start(ctx, in.Deliver); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { ps.Close() })
	return ps, in
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// Subscribe subscribes or fails the test.
func Subscribe(t testing.TB, ps cluster.PubSub, topics ...string) {
	t.Helper()
	for _, topic := range topics {
		if err := ps.Subscribe(ctx(t), topic); err != nil {
			t.Fatalf("Subscribe(%s): %v", topic, err)
		}
	}
}

// Publish publishes or fails the test.
func Publish(t testing.TB, ps cluster.PubSub, topic, data string) {
	t.Helper()
	if err := ps.Publish(ctx(t), topic, []byte(data)); err != nil {
		t.Fatalf("Publish(%s): %v", topic, err)
	}
}

// Run runs the suite.
func Run(t *testing.T, cfg Config) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	to := cfg.Timeout
	topic := cluster.ChannelTopic("pondsocket", "suite", "/api/socket", "/chat/lobby")

	t.Run("Exchange", func(t *testing.T) {
		a, ina := Started(t, cfg)
		b, inb := Started(t, cfg)
		Subscribe(t, a, topic)
		Subscribe(t, b, topic)
		payload := `{"type":"USER_MESSAGE","x":"é\n"}`
		Publish(t, a, topic, payload)
		inb.Expect(t, to, topic, payload)
		ina.Expect(t, to, topic, payload) // the publisher's own subscription gets it too
		Publish(t, b, topic, "from b")
		ina.Expect(t, to, topic, "from b")
		inb.Expect(t, to, topic, "from b")
	})

	t.Run("ExactTopics", func(t *testing.T) {
		a, _ := Started(t, cfg)
		b, inb := Started(t, cfg)
		glob := cluster.ChannelTopic("pondsocket", "suite", "/chat", "/chat/[a]*?")
		Subscribe(t, b, glob)
		for _, other := range []string{"/chat/ab", "/chat/a", "/chat/[a]", "/chat/[a]*?x", "/chat/b*?"} {
			Publish(t, a, cluster.ChannelTopic("pondsocket", "suite", "/chat", other), "wrong "+other)
		}
		Publish(t, a, glob, "right")
		inb.Expect(t, to, glob, "right")
		if !cfg.CrossTopicOrder {
			inb.Quiet(t, 300*time.Millisecond)
		}
	})

	t.Run("Unsubscribe", func(t *testing.T) {
		a, _ := Started(t, cfg)
		b, inb := Started(t, cfg)
		x, y := topic+"/x", topic+"/y"
		Subscribe(t, b, x, y)
		Publish(t, a, x, "1")
		inb.Expect(t, to, x, "1")
		if err := b.Unsubscribe(ctx(t), x); err != nil {
			t.Fatal(err)
		}
		Publish(t, a, x, "2")
		Publish(t, a, y, "sentinel")
		inb.Expect(t, to, y, "sentinel")
		if !cfg.CrossTopicOrder {
			inb.Quiet(t, 300*time.Millisecond)
		}
		Subscribe(t, b, x) // and again
		Publish(t, a, x, "3")
		inb.Expect(t, to, x, "3")
	})

	t.Run("OrderPerTopic", func(t *testing.T) {
		a, _ := Started(t, cfg)
		b, inb := Started(t, cfg)
		const topics, per = 40, 25
		names := make([]string, topics)
		for i := range names {
			names[i] = cluster.ChannelTopic("pondsocket", "suite", "/ws", "/room/"+strconv.Itoa(i))
			Subscribe(t, b, names[i])
		}
		bp, batched := a.(cluster.BatchPublisher)
		for i := range per {
			if batched && i%2 == 1 {
				msgs := make([]cluster.Message, topics)
				for j, n := range names {
					msgs[j] = cluster.Message{Topic: n, Data: []byte(strconv.Itoa(i))}
				}
				if err := bp.PublishBatch(ctx(t), msgs); err != nil {
					t.Fatal(err)
				}
				continue
			}
			for _, n := range names {
				Publish(t, a, n, strconv.Itoa(i))
			}
		}
		next := map[string]int{}
		for range topics * per {
			m := inb.Next(t, to)
			if got, want := string(m.Data), strconv.Itoa(next[m.Topic]); got != want {
				t.Fatalf("%s: got %s, want %s", m.Topic, got, want)
			}
			next[m.Topic]++
		}
	})

	t.Run("Lifecycle", func(t *testing.T) {
		ps := cfg.Connect(t)
		if err := ps.Publish(ctx(t), topic, []byte("x")); err == nil {
			t.Error("Publish before Start succeeded")
		}
		in := NewInbox()
		if err := ps.Start(ctx(t), in.Deliver); err != nil {
			t.Fatal(err)
		}
		if err := ps.Start(ctx(t), in.Deliver); err == nil {
			t.Error("second Start succeeded")
		}
		if err := ps.Close(); err != nil {
			t.Error(err)
		}
		if err := ps.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if err := ps.Publish(ctx(t), topic, []byte("x")); err == nil {
			t.Error("Publish after Close succeeded")
		}
	})

	t.Run("Nodes", func(t *testing.T) {
		RunNodes(t, cfg)
	})
}

// RunNodes runs two cluster.Nodes over the backend: they see each other's
// heartbeats and exchange channel messages, batched or not.
func RunNodes(t *testing.T, cfg Config) {
	o := cluster.Options{Namespace: "suite", HeartbeatInterval: 200 * time.Millisecond, FailFast: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	h1, h2 := newHandler(), newHandler()
	n1 := cluster.NewNode(cfg.Connect(t), o)
	n2 := cluster.NewNode(cfg.Connect(t), o)
	for _, x := range []struct {
		n *cluster.Node
		h *handler
	}{{n1, h1}, {n2, h2}} {
		if err := x.n.Start(ctx(t), x.h); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { x.n.Close() })
		if err := x.n.Subscribe("/api/socket", "/chat/lobby"); err != nil {
			t.Fatal(err)
		}
	}
	const count = 300
	for i := range count {
		n1.Publish(&cluster.Envelope{Type: cluster.UserMessage, EndpointName: "/api/socket", ChannelName: "/chat/lobby",
			FromUserID: "u", Event: "e", Payload: []byte(strconv.Itoa(i)), Recipients: cluster.AllUsers()})
	}
	for i := range count {
		select {
		case e := <-h2.msgs:
			if string(e.Payload) != strconv.Itoa(i) || e.SourceNodeID != n1.ID() {
				t.Fatalf("message %d: %+v", i, e)
			}
		case <-time.After(cfg.Timeout):
			t.Fatalf("message %d not delivered; stats %+v", i, n1.Stats())
		}
	}
	deadline := time.Now().Add(cfg.Timeout)
	for !slices.Contains(n2.Nodes(), n1.ID()) || !slices.Contains(n1.Nodes(), n2.ID()) {
		if time.Now().After(deadline) {
			t.Fatalf("nodes do not see each other: %v %v", n1.Nodes(), n2.Nodes())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(h1.msgs) != 0 {
		t.Errorf("n1 received its own messages")
	}
	// The counter moves when the backend call returns, which may be after
	// the subscriber has the messages.
	for n1.Stats().Published < count && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	s := n1.Stats()
	if s.Published < count || s.Dropped != 0 || s.PublishFailures != 0 {
		t.Errorf("n1 stats %+v", s)
	}
	t.Logf("n1 %+v", s)
}

type handler struct {
	msgs chan *cluster.Envelope
}

func newHandler() *handler { return &handler{msgs: make(chan *cluster.Envelope, 10000)} }

func (h *handler) HandleMessage(e *cluster.Envelope) { h.msgs <- e }
func (h *handler) NodeDown(string)                   {}

// RoundTrips measures n round trips between two PubSubs (a publishes on a
// ping topic, b echoes on a pong topic) and returns their durations,
// sorted. One hop is about half a round trip.
func RoundTrips(t testing.TB, cfg Config, n int) []time.Duration {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	a, ina := Started(t, cfg)
	b, inb := Started(t, cfg)
	ping := cluster.ChannelTopic("pondsocket", "rtt", "/ws", "/ping")
	pong := cluster.ChannelTopic("pondsocket", "rtt", "/ws", "/pong")
	Subscribe(t, a, pong)
	Subscribe(t, b, ping)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case m := <-inb.ch:
				b.Publish(context.Background(), pong, m.Data)
			case <-stop:
				return
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	const warmup = 3
	rtts := make([]time.Duration, 0, n)
	for i := range n + warmup {
		start := time.Now()
		Publish(t, a, ping, strconv.Itoa(i))
		ina.Expect(t, cfg.Timeout, pong, strconv.Itoa(i))
		if i >= warmup {
			rtts = append(rtts, time.Since(start))
		}
	}
	slices.Sort(rtts)
	return rtts
}
