package kafka

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/pondsocket/pondsocket/cluster"
	"github.com/pondsocket/pondsocket/cluster/internal/pubsubtest"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startBroker starts an in-process Kafka broker (kfake, a real Kafka
// wire-protocol server) on 127.0.0.1:port (0: a free port). dir, when set,
// persists its log so that a broker restarted on the same port and dir
// keeps topics and offsets, as a real broker does.
func startBroker(t testing.TB, port int, dir string, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	opts = append(opts, kfake.Ports(port))
	if dir != "" {
		opts = append(opts, kfake.DataDir(dir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func brokerPort(t testing.TB, c *kfake.Cluster) int {
	_, p, err := net.SplitHostPort(c.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

func newPS(t testing.TB, o Options) cluster.PubSub {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet()
	}
	if o.MaxWait == 0 {
		o.MaxWait = 100 * time.Millisecond // Close waits for the fetches in flight
	}
	ps, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func config(addrs []string) pubsubtest.Config {
	return pubsubtest.Config{
		Connect: func(t testing.TB) cluster.PubSub { return newPS(t, Options{Brokers: addrs}) },
		Timeout: 10 * time.Second,
	}
}

func TestKafkaSuite(t *testing.T) {
	c := startBroker(t, 0, "")
	pubsubtest.Run(t, config(c.ListenAddrs()))
}

// The round trip is two hops: produce (acks=1) → fetch → produce → fetch.
// The writer holds a lone message for BatchTimeout before producing it, so
// that is most of a hop; measured at the default and at 200µs.
func TestKafkaRoundTrip(t *testing.T) {
	c := startBroker(t, 0, "")
	for _, bt := range []time.Duration{2 * time.Millisecond, 200 * time.Microsecond} {
		t.Run("BatchTimeout="+bt.String(), func(t *testing.T) {
			cfg := config(c.ListenAddrs())
			cfg.Connect = func(t testing.TB) cluster.PubSub {
				return newPS(t, Options{Brokers: c.ListenAddrs(), BatchTimeout: bt})
			}
			rtts := pubsubtest.RoundTrips(t, cfg, 50)
			t.Logf("kafka round trip, kfake on 127.0.0.1, BatchTimeout %v, 50 runs: median %v, p90 %v, min %v; one hop ≈ %v",
				bt, rtts[len(rtts)/2], rtts[len(rtts)*9/10], rtts[0], rtts[len(rtts)/2]/2)
		})
	}
}

func TestKafkaOptions(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("no brokers accepted")
	}
	if _, err := New(Options{Brokers: []string{"x:1"}, TopicPrefix: "a:b"}); err == nil {
		t.Error("bad prefix accepted")
	}
	if _, err := New(Options{Brokers: []string{"x:1"}, RequiredAcks: 7}); err == nil {
		t.Error("bad acks accepted")
	}
	o, err := Options{Brokers: []string{"x:1"}}.withDefaults()
	if err != nil || o.TopicPrefix != "pondsocket" || o.Partitions != 12 || o.BatchTimeout != 2*time.Millisecond ||
		o.RequiredAcks != kafkago.RequireOne || !*o.CreateTopics || o.ClientID != "pondsocket" {
		t.Errorf("defaults %+v %v", o, err)
	}
}

func TestKafkaStartUnreachable(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	ps := newPS(t, Options{Brokers: []string{addr}, DialTimeout: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := ps.Start(ctx, func(string, []byte) {})
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Start against nothing: %v (want an error naming %s)", err, addr)
	}
	t.Logf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
	// The broker comes up: the same PubSub starts (the Node retries Start).
	port, _ := strconv.Atoi(addr[strings.LastIndexByte(addr, ':')+1:])
	startBroker(t, port, "")
	if err := ps.Start(ctx, func(string, []byte) {}); err != nil {
		t.Fatalf("Start once the broker is up: %v", err)
	}
	ps.Close()
}

func TestKafkaTopics(t *testing.T) {
	c := startBroker(t, 0, "")
	addrs := c.ListenAddrs()
	ps := newPS(t, Options{Brokers: addrs})
	if err := ps.Start(t.Context(), func(string, []byte) {}); err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	if n := len(c.PartitionInfos("pondsocket.channels")); n != 12 {
		t.Errorf("pondsocket.channels has %d partitions, want 12", n)
	}
	if n := len(c.PartitionInfos("pondsocket.heartbeat")); n != 1 {
		t.Errorf("pondsocket.heartbeat has %d partitions, want 1", n)
	}

	// A channel's messages sit on partition xxhash(key) mod 12, keyed by the
	// PondSocket topic, with the envelope bytes as value.
	topic := cluster.ChannelTopic("pondsocket", "default", "/api/socket", "/chat/lobby")
	part := Partition(topic, 12)
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: addrs, Topic: "pondsocket.channels", Partition: part, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	for i := range 3 {
		pubsubtest.Publish(t, ps, topic, "v"+strconv.Itoa(i))
	}
	pubsubtest.Publish(t, ps, cluster.HeartbeatTopic("pondsocket", "default"), "hb")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 3 {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Key) != topic || string(m.Value) != "v"+strconv.Itoa(i) || m.Partition != part {
			t.Fatalf("partition %d: key %q value %q", m.Partition, m.Key, m.Value)
		}
	}
	hb := kafkago.NewReader(kafkago.ReaderConfig{Brokers: addrs, Topic: "pondsocket.heartbeat", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer hb.Close()
	if m, err := hb.ReadMessage(ctx); err != nil || string(m.Value) != "hb" || string(m.Key) != "pondsocket:v1:default:__heartbeat__" {
		t.Fatalf("heartbeat topic: %q %q %v", m.Key, m.Value, err)
	}
}

func TestKafkaCreateTopicsOff(t *testing.T) {
	c := startBroker(t, 0, "", kfake.SeedTopics(3, "seeded.channels", "seeded.heartbeat"))
	no := false
	ps := newPS(t, Options{Brokers: c.ListenAddrs(), CreateTopics: &no})
	err := ps.Start(t.Context(), func(string, []byte) {})
	if err == nil || !strings.Contains(err.Error(), `"pondsocket.channels"`) {
		t.Fatalf("missing topic, creation off: %v", err)
	}
	t.Logf("error: %v", err)
	// Existing topics are used with their own partition count.
	cfg := pubsubtest.Config{Connect: func(t testing.TB) cluster.PubSub {
		return newPS(t, Options{Brokers: c.ListenAddrs(), TopicPrefix: "seeded", CreateTopics: &no})
	}}
	a, _ := pubsubtest.Started(t, cfg)
	b, inb := pubsubtest.Started(t, cfg)
	pubsubtest.Subscribe(t, b, "x")
	pubsubtest.Publish(t, a, "x", "seeded")
	inb.Expect(t, 10*time.Second, "x", "seeded")
}

// A node reads from the end of every partition as it was at Start.
func TestKafkaStartsAtLatestOffset(t *testing.T) {
	c := startBroker(t, 0, "")
	cfg := config(c.ListenAddrs())
	a, _ := pubsubtest.Started(t, cfg)
	pubsubtest.Publish(t, a, "t", "old")
	b, inb := pubsubtest.Started(t, cfg)
	pubsubtest.Subscribe(t, b, "t")
	pubsubtest.Publish(t, a, "t", "new")
	inb.Expect(t, 10*time.Second, "t", "new")
}

// Many channels, many messages: per-channel order holds across partitions
// and batches.
func TestKafkaOrderManyChannels(t *testing.T) {
	c := startBroker(t, 0, "")
	cfg := config(c.ListenAddrs())
	a, _ := pubsubtest.Started(t, cfg)
	b, inb := pubsubtest.Started(t, cfg)
	const channels, per = 200, 20
	topics := make([]string, channels)
	for i := range topics {
		topics[i] = cluster.ChannelTopic("pondsocket", "order", "/ws", fmt.Sprintf("/room/%d", i))
		pubsubtest.Subscribe(t, b, topics[i])
	}
	bp := a.(cluster.BatchPublisher)
	start := time.Now()
	for i := range per {
		msgs := make([]cluster.Message, channels)
		for j, tp := range topics {
			msgs[j] = cluster.Message{Topic: tp, Data: []byte(strconv.Itoa(i))}
		}
		if err := bp.PublishBatch(t.Context(), msgs); err != nil {
			t.Fatal(err)
		}
	}
	next := map[string]int{}
	for range channels * per {
		m := inb.Next(t, 10*time.Second)
		if got := string(m.Data); got != strconv.Itoa(next[m.Topic]) {
			t.Fatalf("%s: got %s, want %d", m.Topic, got, next[m.Topic])
		}
		next[m.Topic]++
	}
	t.Logf("%d messages over %d channels in %v", channels*per, channels, time.Since(start))
}

// Stop the broker while running: Publish fails; the node's retry carries a
// message over the outage; restart the broker on the same port (same log
// directory, as a real broker restarts): delivery recovers without
// restarting the PubSubs.
func TestKafkaBrokerRestart(t *testing.T) {
	dir := t.TempDir()
	c := startBroker(t, 0, dir)
	port := brokerPort(t, c)
	addrs := c.ListenAddrs()
	cfg := config(addrs)
	a, _ := pubsubtest.Started(t, cfg)
	b, inb := pubsubtest.Started(t, cfg)
	topic := cluster.ChannelTopic("pondsocket", "restart", "/ws", "/x")
	pubsubtest.Subscribe(t, b, topic)
	pubsubtest.Publish(t, a, topic, "before")
	inb.Expect(t, 10*time.Second, topic, "before")

	// Two nodes over the same broker: the Node's retry across the outage.
	o := cluster.Options{Namespace: "restart", FailFast: true, Logger: quiet()}
	n1 := cluster.NewNode(newPS(t, Options{Brokers: addrs}), o)
	n2 := cluster.NewNode(newPS(t, Options{Brokers: addrs}), o)
	h2 := &handler{msgs: make(chan *cluster.Envelope, 10)}
	for _, n := range []*cluster.Node{n1, n2} {
		if err := n.Start(t.Context(), h2); err != nil {
			t.Fatal(err)
		}
		defer n.Close()
	}
	n2.Subscribe("/ws", "/y")

	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var perr error
	for i := 0; i < 20 && perr == nil; i++ {
		pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
		perr = a.Publish(pctx, topic, []byte("during"))
		pcancel()
	}
	if perr == nil {
		t.Fatal("Publish kept succeeding with the broker stopped")
	}
	t.Logf("publish with the broker stopped: %v", perr)
	n1.Publish(&cluster.Envelope{Type: cluster.UserLeft, EndpointName: "/ws", ChannelName: "/y", UserID: "carried"})
	for n1.Stats().PublishFailures == 0 {
		if ctx.Err() != nil {
			t.Fatal("the node never failed to publish during the outage")
		}
		time.Sleep(10 * time.Millisecond)
	}

	down := time.Now()
	startBroker(t, port, dir)
	// Publish until b has something again; the first attempts may meet
	// stale connections.
	got := make(chan struct{})
	go func() {
		defer close(got)
		for {
			select {
			case m := <-inb.C():
				if strings.HasPrefix(string(m.Data), "after") {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	for i := 0; ; i++ {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		a.Publish(pctx, topic, []byte("after"+strconv.Itoa(i)))
		pcancel()
		select {
		case <-got:
		case <-time.After(200 * time.Millisecond):
			continue
		}
		break
	}
	if ctx.Err() != nil {
		t.Fatal("delivery did not recover")
	}
	t.Logf("delivery recovered %v after the restart", time.Since(down).Round(time.Millisecond))
	select {
	case e := <-h2.msgs:
		if e.UserID != "carried" {
			t.Errorf("node got %+v", e)
		}
	case <-ctx.Done():
		t.Fatalf("the message the node retried across the outage never arrived: %+v", n1.Stats())
	}
	t.Logf("node stats: %+v", n1.Stats())
}

type handler struct{ msgs chan *cluster.Envelope }

func (h *handler) HandleMessage(e *cluster.Envelope) { h.msgs <- e }
func (h *handler) NodeDown(string)                   {}

// Close leaves no goroutine of the backend (kafka-go readers, writer,
// transport) behind.
func TestKafkaCloseLeavesNoGoroutines(t *testing.T) {
	c := startBroker(t, 0, "")
	cfg := config(c.ListenAddrs())
	warm, _ := pubsubtest.Started(t, cfg) // the broker's own goroutines settle
	warm.Close()
	before := runtime.NumGoroutine()
	a := cfg.Connect(t)
	in := pubsubtest.NewInbox()
	if err := a.Start(t.Context(), in.Deliver); err != nil {
		t.Fatal(err)
	}
	pubsubtest.Subscribe(t, a, "t")
	pubsubtest.Publish(t, a, "t", "x")
	in.Expect(t, 10*time.Second, "t", "x")
	during := runtime.NumGoroutine()
	a.Close()
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

// SASL, as against a secured cluster: PLAIN succeeds with the right
// password and fails clearly with a wrong one. (SCRAM works the same way
// through kafka-go/sasl/scram, which needs github.com/xdg-go/scram in
// go.mod.)
func TestKafkaSASL(t *testing.T) {
	c := startBroker(t, 0, "", kfake.EnableSASL(), kfake.Superuser("PLAIN", "pond", "secret"))
	mech := plain.Mechanism{Username: "pond", Password: "secret"}
	cfg := pubsubtest.Config{Connect: func(t testing.TB) cluster.PubSub {
		return newPS(t, Options{Brokers: c.ListenAddrs(), SASL: mech})
	}}
	a, _ := pubsubtest.Started(t, cfg)
	b, inb := pubsubtest.Started(t, cfg)
	pubsubtest.Subscribe(t, b, "t")
	pubsubtest.Publish(t, a, "t", "authenticated")
	inb.Expect(t, 10*time.Second, "t", "authenticated")

	bad := plain.Mechanism{Username: "pond", Password: "wrong"}
	ps := newPS(t, Options{Brokers: c.ListenAddrs(), SASL: bad})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ps.Start(ctx, func(string, []byte) {}); err == nil {
		ps.Close()
		t.Fatal("Start with a wrong password succeeded")
	} else {
		t.Logf("wrong password: %v", err)
	}
}

// The broker comes back without its log (no persistence): once the topics
// exist again, a running reader's offset is past the new end; it resumes
// from the latest offset and delivery recovers without a restart.
func TestKafkaBrokerLostLog(t *testing.T) {
	c := startBroker(t, 0, "")
	port := brokerPort(t, c)
	cfg := config(c.ListenAddrs())
	a, _ := pubsubtest.Started(t, cfg)
	var logs syncBuffer
	b := newPS(t, Options{Brokers: c.ListenAddrs(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	inb := pubsubtest.NewInbox()
	if err := b.Start(t.Context(), inb.Deliver); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	pubsubtest.Subscribe(t, b, "t")
	for i := range 5 {
		pubsubtest.Publish(t, a, "t", "before"+strconv.Itoa(i))
		inb.Expect(t, 10*time.Second, "t", "before"+strconv.Itoa(i))
	}
	c.Close()
	startBroker(t, port, "")
	fresh, _ := pubsubtest.Started(t, cfg) // creates the topics again
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan string, 1)
	go func() {
		for {
			select {
			case m := <-inb.C():
				if strings.HasPrefix(string(m.Data), "after") {
					got <- string(m.Data)
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	start := time.Now()
	for i := 0; ; i++ {
		fresh.Publish(ctx, "t", []byte("after"+strconv.Itoa(i)))
		select {
		case m := <-got:
			t.Logf("b received %s %v after the topics came back", m, time.Since(start).Round(time.Millisecond))
			if !strings.Contains(logs.String(), "offset out of range") {
				t.Errorf("the reader did not go through the out-of-range path; log:\n%s", logs.String())
			}
			return
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("b never received again")
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
