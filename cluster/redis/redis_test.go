package redis

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pondsocket/pondsocket/cluster"
	"github.com/pondsocket/pondsocket/cluster/internal/pubsubtest"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func config(addr string) pubsubtest.Config {
	return pubsubtest.Config{
		Connect:         func(testing.TB) cluster.PubSub { return New(Options{Addr: addr, Logger: quiet()}) },
		CrossTopicOrder: true, // one subscriber connection: Redis's global order
		Timeout:         5 * time.Second,
	}
}

func TestRedisSuite(t *testing.T) {
	srv := startRedis(t)
	pubsubtest.Run(t, config(srv.addr()))
}

func TestRedisRoundTrip(t *testing.T) {
	srv := startRedis(t)
	rtts := pubsubtest.RoundTrips(t, config(srv.addr()), 200)
	t.Logf("redis round trip over 127.0.0.1 (PUBLISH → SUBSCRIBE → PUBLISH → SUBSCRIBE), 200 runs: median %v, p90 %v, min %v; one hop ≈ %v",
		rtts[len(rtts)/2], rtts[len(rtts)*9/10], rtts[0], rtts[len(rtts)/2]/2)
}

func TestRedisOptions(t *testing.T) {
	for _, c := range []struct {
		o    Options
		addr string
	}{
		{Options{}, "localhost:6379"},
		{Options{Host: "10.0.0.1"}, "10.0.0.1:6379"},
		{Options{Port: 7000}, "localhost:7000"},
		{Options{Addr: "h:1", Host: "x", Port: 2}, "h:1"},
		{Options{URL: "redis://:pw@h2:3/4", Addr: "ignored:1"}, "h2:3"},
	} {
		p := New(c.o).(*pubsub)
		if p.Addr() != c.addr {
			t.Errorf("%+v: addr %q, want %q", c.o, p.Addr(), c.addr)
		}
	}
	if p := New(Options{URL: "redis://:pw@h2:3/4"}).(*pubsub); p.opt.Password != "pw" || p.opt.DB != 4 {
		t.Errorf("URL: %+v", p.opt)
	}
	err := New(Options{URL: "http://x"}).Start(context.Background(), func(string, []byte) {})
	if err == nil || !strings.Contains(err.Error(), "bad URL") {
		t.Errorf("bad URL: %v", err)
	}

	// DB and URL against the real server.
	srv := startRedis(t)
	cfg := config("")
	cfg.Connect = func(testing.TB) cluster.PubSub {
		return New(Options{URL: "redis://127.0.0.1:" + strconv.Itoa(srv.port) + "/3", Logger: quiet()})
	}
	a, _ := pubsubtest.Started(t, cfg)
	b, inb := pubsubtest.Started(t, cfg)
	pubsubtest.Subscribe(t, b, "t")
	pubsubtest.Publish(t, a, "t", "via URL")
	inb.Expect(t, 5*time.Second, "t", "via URL")
}

func TestRedisStartUnreachable(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	ps := New(Options{Addr: addr, Logger: quiet()})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := ps.Start(ctx, func(string, []byte) {})
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Start against nothing: %v (want an error naming %s)", err, addr)
	}
	t.Logf("error: %v", err)
	// A failed Start holds nothing and may be retried.
	srvPortErr := ps.Close()
	if srvPortErr != nil {
		t.Error(srvPortErr)
	}
}

// Interop: a plain Redis client subscribed to the exact topic (what a
// reference node does) receives the §5 bytes unchanged, and a captured
// reference message published by a plain client reaches a Node's handler.
func TestRedisInterop(t *testing.T) {
	srv := startRedis(t)
	raw := goredis.NewClient(&goredis.Options{Addr: srv.addr()})
	defer raw.Close()
	topic := cluster.ChannelTopic("pondsocket", "demo", "/api/socket", "/chat/lobby")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rawSub := raw.Subscribe(ctx, topic)
	defer rawSub.Close()
	if _, err := rawSub.Receive(ctx); err != nil { // subscription confirmed
		t.Fatal(err)
	}

	h := &handler{msgs: make(chan *cluster.Envelope, 10)}
	node := cluster.NewNode(New(Options{Addr: srv.addr(), Logger: quiet()}), cluster.Options{Namespace: "demo", FailFast: true, Logger: quiet()})
	if err := node.Start(ctx, h); err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	if err := node.Subscribe("/api/socket", "/chat/lobby"); err != nil {
		t.Fatal(err)
	}
	node.Publish(&cluster.Envelope{Type: cluster.UserMessage, EndpointName: "/api/socket", ChannelName: "/chat/lobby",
		FromUserID: "a", Event: "message", Payload: json.RawMessage(`{"text":"hi"}`), RequestID: "msg-1", Recipients: cluster.AllUsers()})
	m, err := rawSub.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e, err := cluster.Decode([]byte(m.Payload))
	if err != nil || e.SourceNodeID != node.ID() || e.Event != "message" || m.Channel != topic {
		t.Fatalf("raw subscriber got %s on %s: %v", m.Payload, m.Channel, err)
	}
	again, _ := cluster.Encode(e)
	if string(again) != m.Payload {
		t.Errorf("not the canonical bytes:\n%s\n%s", m.Payload, again)
	}

	captured := `{"type":"USER_MESSAGE","endpointName":"api/socket","channelName":"/chat/lobby","fromUserId":"a0961fc1-4e22-41a4-afbe-2c31497c7aff","event":"message","payload":{"text":"hi","from":"alice"},"requestId":"msg-1","recipientDescriptor":"ALL_USERS","protocol":"pondsocket.distributed","version":1,"messageId":"mwr014zr-x2pky1znm1e","timestamp":1795301284743,"sourceNodeId":"712vqfmp6d"}`
	if err := raw.Publish(ctx, topic, captured).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-h.msgs:
		if e.SourceNodeID != "712vqfmp6d" || string(e.Payload) != `{"text":"hi","from":"alice"}` {
			t.Errorf("node got %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the captured reference message did not reach the node")
	}
}

type handler struct{ msgs chan *cluster.Envelope }

func (h *handler) HandleMessage(e *cluster.Envelope) { h.msgs <- e }
func (h *handler) NodeDown(string)                   {}

// Kill redis-server and start it again on the same port: publishing fails
// while it is down, and the subscriber reconnects, resubscribes and
// receives again without a restart of the PubSub.
func TestRedisServerRestart(t *testing.T) {
	srv := startRedis(t)
	cfg := config(srv.addr())
	a, _ := pubsubtest.Started(t, cfg)
	b, inb := pubsubtest.Started(t, cfg)
	topic := cluster.ChannelTopic("pondsocket", "restart", "/ws", "/chat/[a]*?")
	pubsubtest.Subscribe(t, b, topic)
	pubsubtest.Publish(t, a, topic, "before")
	inb.Expect(t, 5*time.Second, topic, "before")

	srv.kill(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var perr error
	for i := 0; i < 10 && perr == nil; i++ { // the first write may reach a dying socket
		perr = a.Publish(ctx, topic, []byte("during"))
	}
	if perr == nil || !strings.Contains(perr.Error(), srv.addr()) {
		t.Fatalf("Publish while redis-server is down: %v", perr)
	}
	t.Logf("publish while down: %v", perr)
	// Subscribing while down records the topic for the reconnect.
	other := topic + "/other"
	b.Subscribe(ctx, other)

	down := time.Now()
	srv.start(t)
	// Wait for b's resubscription: PUBSUB NUMSUB is the server's view of it.
	raw := goredis.NewClient(&goredis.Options{Addr: srv.addr()})
	defer raw.Close()
	for {
		n, err := raw.PubSubNumSub(ctx, topic, other).Result()
		if err == nil && n[topic] == 1 && n[other] == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("b did not resubscribe: %v %v", n, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("resubscribed %v after the restart", time.Since(down))
	pubsubtest.Publish(t, a, topic, "after")
	inb.Expect(t, 5*time.Second, topic, "after")
	pubsubtest.Publish(t, a, other, "other")
	inb.Expect(t, 5*time.Second, other, "other")
}

func TestReconnectDelays(t *testing.T) {
	// min(50·attempt, 200) ms: shorter steps and a lower cap than the reference's.
	for attempt, want := range map[int]time.Duration{1: 50 * time.Millisecond, 3: 150 * time.Millisecond, 10: 200 * time.Millisecond, 80: 200 * time.Millisecond} {
		if got := reconnectDelay(attempt); got != want {
			t.Errorf("attempt %d: %v, want %v", attempt, got, want)
		}
	}
}

// Close leaves no goroutine of the backend behind, also while it is
// reconnecting.
func TestRedisCloseLeavesNoGoroutines(t *testing.T) {
	srv := startRedis(t)
	before := runtime.NumGoroutine()
	cfg := config(srv.addr())
	a := cfg.Connect(t)
	b := cfg.Connect(t)
	in := pubsubtest.NewInbox()
	for _, ps := range []cluster.PubSub{a, b} {
		if err := ps.Start(t.Context(), in.Deliver); err != nil {
			t.Fatal(err)
		}
	}
	pubsubtest.Subscribe(t, a, "t")
	pubsubtest.Publish(t, a, "t", "x")
	in.Expect(t, 5*time.Second, "t", "x")
	during := runtime.NumGoroutine()
	a.Close()
	srv.kill(t) // b is now in its reconnect loop
	b.Close()
	srv.start(t) // the helper's own goroutines, as at "before"
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("goroutines: %d before, %d running, %d after Close\n%s", before, during, after, buf[:runtime.Stack(buf, true)])
	} else {
		t.Logf("goroutines: %d before, %d running, %d after Close", before, during, after)
	}
}
