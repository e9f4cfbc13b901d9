package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/cluster"
	"github.com/pondsocket/pondsocket/internal/testenv"
)

// Cluster healing (issue 11): a node declared down by mistake, a bus
// outage and a partition all end with every client holding the same,
// correct presence list and messages flowing both ways.

// healHB and healTimeout are the heartbeat settings of these tests: short,
// so a pause of a few timeouts costs little test time.
const (
	healHB      = 200 * time.Millisecond
	healTimeout = 600 * time.Millisecond
)

func startHealNodes(t *testing.T, n int, backend ...string) ([]*testenv.Proc, []string) {
	t.Helper()
	bin := testenv.Build(t, "cmd/pondsocket")
	var ps []*testenv.Proc
	var addrs []string
	for i := 0; i < n; i++ {
		args := append([]string{"--addr", "127.0.0.1:0", "--node-id", fmt.Sprintf("heal%d", i), "--cluster-namespace", "heal",
			"--heartbeat-interval", healHB.String(), "--heartbeat-timeout", healTimeout.String(), "--log-level", "info"}, backend...)
		p := testenv.Start(t, bin, testenv.ProcOptions{Args: args, Ready: "listening on "})
		ps = append(ps, p)
		addrs = append(addrs, p.Ready)
	}
	return ps, addrs
}

// startRedis runs a redis-server on a free port; restart stops it, waits
// down, and starts a new one on the same port.
func startRedis(t *testing.T) (addr string, restart func(down time.Duration, during func())) {
	addr = testenv.FreeAddr(t)
	r := runRedis(t, addr)
	return addr, func(down time.Duration, during func()) {
		_ = r.Stop(10 * time.Second)
		stopped := time.Now()
		during()
		time.Sleep(time.Until(stopped.Add(down))) // the outage itself is the thing under test
		r = runRedis(t, addr)
	}
}

// lastUsers is the presence list of room in the last "users" event p got
// (the clients replace their list with every presence message).
func lastUsers(t *testing.T, p *pond, room string) ([]string, bool) {
	h := p.d.History()
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Ev != "users" {
			continue
		}
		e := decode(t, h[i])
		if e.Channel != room {
			continue
		}
		var names []string
		for _, u := range e.Users {
			s, _ := u["username"].(string)
			if st, ok := u["status"].(string); ok && st != "online" {
				s += ":" + st
			}
			names = append(names, s)
		}
		slices.Sort(names)
		return names, true
	}
	return nil, false
}

// converge waits until every client's presence list of room is exactly
// want (no ghost, no duplicate, nobody missing), and fails at deadline.
// The lists have no signal of their own; they are polled.
func converge(t *testing.T, deadline time.Time, room string, want []string, ps ...*pond) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	bad := ""
	defer func() {
		if bad != "" { // only when it did not converge
			t.Logf("presence lists: %s", bad)
		}
	}()
	testenv.Eventually(t, time.Until(deadline), fmt.Sprintf("every client's presence list of %s is %v", room, want), func() bool {
		bad = ""
		for i, p := range ps {
			if got, _ := lastUsers(t, p, room); !slices.Equal(got, want) {
				bad = fmt.Sprintf("client %d has %v, want %v", i, got, want)
				return false
			}
		}
		return true
	})
}

// flows sends a uniquely tagged message from each client and checks that
// every other client gets it (both ways across every node).
func flows(t *testing.T, room, tag string, ps ...*pond) {
	t.Helper()
	for i, from := range ps {
		text := fmt.Sprintf("%s-from-%d", tag, i)
		from.send(room, "message", map[string]any{"text": text})
		for _, to := range ps {
			to.expect("message", func(e pondEv) bool {
				return e.Channel == room && e.Event == "message" && e.Payload["text"] == text
			})
		}
	}
}

// metric reads one value from a node's /metrics.
func metric(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, _ := strconv.ParseFloat(f[1], 64)
			return v
		}
	}
	t.Fatalf("%s has no metric %s", addr, name)
	return 0
}

func readyz(t *testing.T, addr string) int {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A node paused (SIGSTOP) for longer than the heartbeat timeout is
// declared down by the others; when it resumes, its users reappear
// everywhere, it learns what changed meanwhile, and messages flow both
// ways again. On main the paused node's users were never re-admitted and,
// with two nodes, delivery to it stopped for good.
func TestClusterHealsAfterPause(t *testing.T) {
	testenv.NodeModules(t)
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d nodes", n), func(t *testing.T) {
			redisAddr, _ := startRedis(t)
			healAfterPause(t, n, 3*time.Second, "--redis-addr", redisAddr)
		})
	}
}

// The same over Kafka (cmd/devkafka): every node reads every partition from
// the end, so the paused node, once resumed, reads what the others
// published meanwhile (its readers' offsets stayed where they were) as well
// as the resync. Kafka's hop is slower than Redis' (a produce batch and a
// fetch), hence the more generous bound.
func TestClusterHealsAfterPauseKafka(t *testing.T) {
	testenv.NodeModules(t)
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d nodes", n), func(t *testing.T) {
			broker := testenv.FreeAddr(t)
			startKafka(t, broker, t.TempDir())
			healAfterPause(t, n, 5*time.Second, "--kafka-brokers", broker)
		})
	}
}

// healAfterPause runs n nodes on the given backend, pauses node 1 for
// twice the heartbeat timeout while a user joins node 0, resumes it and
// checks that everyone converges and messages flow within bound.
func healAfterPause(t *testing.T, n int, bound time.Duration, backend ...string) {
	t.Helper()
	nodes, addrs := startHealNodes(t, n, backend...)
	room := fmt.Sprintf("/chat/pause%d", n)
	names := []string{"alice", "bob", "carol"}[:n]
	var clients []*pond
	for i, name := range names {
		p := pondOn(t, addrs[i], name)
		p.join(room, map[string]any{"username": name})
		p.state(room, "JOINED")
		clients = append(clients, p)
	}
	converge(t, time.Now().Add(wait), room, names, clients...)

	paused := nodes[1]
	if err := paused.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { paused.Signal(syscall.SIGCONT) })
	// node 0 declares node 1 down: bob leaves alice's list
	clients[0].expect("leave", func(e pondEv) bool { return e.Presence["username"] == "bob" })
	// meanwhile dave joins on node 0
	dave := pondOn(t, addrs[0], "dave")
	dave.join(room, map[string]any{"username": "dave"})
	dave.state(room, "JOINED")
	time.Sleep(2 * healTimeout) // the pause lasts well past the timeout

	if err := paused.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	all := append(clients, dave)
	converge(t, resumed.Add(bound), room, append(names, "dave"), all...)
	flows(t, room, "after-pause", all...)
	took := time.Since(resumed)
	if took > bound {
		t.Errorf("converged and flowing %v after the resume, want within %v", took, bound)
	}
	t.Logf("%d nodes: presence equal and messages both ways %v after SIGCONT", n, took.Round(time.Millisecond))
	// still equal afterwards: no late sweep or duplicate undid it
	converge(t, time.Now(), room, append(names, "dave"), all...)
	if v := metric(t, addrs[0], "pondsocket_cluster_nodes_back_total"); v < 1 {
		t.Errorf("node 0 nodes_back_total = %v", v)
	}
}

// Redis is down for longer than main's 5 s retry window while users join,
// leave and change presence: nothing published meanwhile is lost (the
// default 16 MiB buffer), /readyz and pondsocket_cluster_connected follow
// the bus, and every client converges on the true list. On main the
// messages were dropped after 5 s, cross-node delivery did not recover,
// and the left user stayed as a ghost.
func TestClusterHealsAfterRedisRestart(t *testing.T) {
	testenv.NodeModules(t)
	redisAddr, restart := startRedis(t)
	_, addrs := startHealNodes(t, 2, "--redis-addr", redisAddr)
	const room = "/chat/outage"
	a := pondOn(t, addrs[0], "alice")
	b := pondOn(t, addrs[1], "bob")
	c := pondOn(t, addrs[1], "carol")
	for _, x := range []struct {
		p    *pond
		name string
	}{{a, "alice"}, {b, "bob"}, {c, "carol"}} {
		x.p.join(room, map[string]any{"username": x.name})
		x.p.state(room, "JOINED")
	}
	converge(t, time.Now().Add(wait), room, []string{"alice", "bob", "carol"}, a, b, c)
	if v := metric(t, addrs[0], "pondsocket_cluster_connected"); v != 1 {
		t.Fatalf("connected = %v before the outage", v)
	}

	var d *pond
	const during = 30
	restart(5500*time.Millisecond, func() {
		testenv.Eventually(t, 3*time.Second, "/readyz answers 503 with Redis down", func() bool {
			return readyz(t, addrs[0]) == http.StatusServiceUnavailable
		})
		if v := metric(t, addrs[0], "pondsocket_cluster_connected"); v != 0 {
			t.Errorf("connected = %v with Redis down", v)
		}
		// membership changes on node 1 and messages from node 0
		c.d.Send(map[string]any{"op": "leave", "channel": room})
		d = pondOn(t, addrs[1], "dave")
		d.join(room, map[string]any{"username": "dave"})
		d.state(room, "JOINED")
		b.send(room, "status", map[string]any{"status": "away"})
		for i := range during {
			a.send(room, "message", map[string]any{"text": fmt.Sprintf("during-%d", i)})
		}
	})
	back := time.Now()
	want := []string{"alice", "bob:away", "dave"}
	converge(t, back.Add(5*time.Second), room, want, a, b, d)
	// what alice said during the outage reaches bob and dave, in order
	for _, p := range []*pond{b, d} {
		for i := range during {
			text := fmt.Sprintf("during-%d", i)
			p.expect("message", func(e pondEv) bool { return e.Event == "message" && e.Payload["text"] == text })
		}
	}
	flows(t, room, "after-outage", a, b, d)
	t.Logf("converged, the outage's messages delivered and flowing both ways %v after Redis returned", time.Since(back).Round(time.Millisecond))
	converge(t, time.Now(), room, want, a, b, d)
	for _, addr := range addrs {
		if v := metric(t, addr, "pondsocket_cluster_dropped_total"); v != 0 {
			t.Errorf("%s dropped %v messages", addr, v)
		}
		if v := metric(t, addr, "pondsocket_cluster_resyncs_total"); v < 1 {
			t.Errorf("%s resyncs_total = %v", addr, v)
		}
		if code := readyz(t, addr); code != http.StatusOK {
			t.Errorf("%s /readyz = %d after the outage", addr, code)
		}
		if v := metric(t, addr, "pondsocket_cluster_connected"); v != 1 {
			t.Errorf("%s connected = %v after the outage", addr, v)
		}
	}
}

// The Kafka broker (cmd/devkafka) is stopped for longer than the heartbeat
// timeout and restarted on the same port with the same data, while a user
// joins, another changes presence and messages are sent: every client
// converges on the true list and messages flow both ways. Kafka's clients
// reconnect with their own back-off, hence the generous bound.
func TestClusterHealsAfterKafkaRestart(t *testing.T) {
	testenv.NodeModules(t)
	addr, data := testenv.FreeAddr(t), t.TempDir()
	broker := startKafka(t, addr, data)
	_, addrs := startHealNodes(t, 2, "--kafka-brokers", addr)
	const room = "/chat/kafka-outage"
	a := pondOn(t, addrs[0], "alice")
	b := pondOn(t, addrs[1], "bob")
	for _, x := range []struct {
		p    *pond
		name string
	}{{a, "alice"}, {b, "bob"}} {
		x.p.join(room, map[string]any{"username": x.name})
		x.p.state(room, "JOINED")
	}
	converge(t, time.Now().Add(wait), room, []string{"alice", "bob"}, a, b)

	if err := broker.Stop(10 * time.Second); err != nil {
		t.Logf("broker stop: %v", err)
	}
	stopped := time.Now()
	testenv.Eventually(t, 5*time.Second, "/readyz answers 503 with the broker down", func() bool {
		return readyz(t, addrs[0]) == http.StatusServiceUnavailable
	})
	c := pondOn(t, addrs[1], "carol")
	c.join(room, map[string]any{"username": "carol"})
	c.state(room, "JOINED")
	b.send(room, "status", map[string]any{"status": "away"})
	a.send(room, "message", map[string]any{"text": "during"})
	time.Sleep(time.Until(stopped.Add(4 * healTimeout))) // the outage itself is the thing under test
	startKafka(t, addr, data)
	back := time.Now()

	const bound = 15 * time.Second
	want := []string{"alice", "bob:away", "carol"}
	converge(t, back.Add(bound), room, want, a, b, c)
	for _, p := range []*pond{b, c} {
		p.expect("message", func(e pondEv) bool { return e.Event == "message" && e.Payload["text"] == "during" })
	}
	flows(t, room, "after-kafka", a, b, c)
	took := time.Since(back)
	if took > bound {
		t.Errorf("converged and flowing %v after the broker returned, want within %v", took, bound)
	}
	t.Logf("converged, the outage's message delivered and flowing both ways %v after the broker returned", took.Round(time.Millisecond))
	converge(t, time.Now(), room, want, a, b, c)
	for _, addr := range addrs {
		if code := readyz(t, addr); code != http.StatusOK {
			t.Errorf("%s /readyz = %d after the outage", addr, code)
		}
	}
}

// partitioned wraps a node's PubSub: while cut, nothing it publishes
// leaves and nothing reaches it (a partition between nodes sharing a bus).
type partitioned struct {
	cluster.PubSub
	cut atomic.Bool
}

func (p *partitioned) Start(ctx context.Context, deliver func(string, []byte)) error {
	return p.PubSub.Start(ctx, func(topic string, data []byte) {
		if !p.cut.Load() {
			deliver(topic, data)
		}
	})
}

func (p *partitioned) Publish(ctx context.Context, topic string, data []byte) error {
	if p.cut.Load() {
		return nil // "accepted", and lost: the node cannot tell
	}
	return p.PubSub.Publish(ctx, topic, data)
}

// A partition longer than the heartbeat timeout: both sides declare the
// other down; changes on both sides meanwhile; after the partition heals
// every client has the full, current list and messages flow both ways.
func TestClusterHealsAfterPartition(t *testing.T) {
	testenv.NodeModules(t)
	bus := cluster.NewMemoryBus()
	cut := &partitioned{PubSub: bus.Connect()}
	var addrs []string
	for i, ps := range []pondsocket.PubSub{bus.Connect(), bus.Connect(), cut} {
		s := startNode(t, ps, fmt.Sprintf("p%d", i), 100*time.Millisecond, 400*time.Millisecond)
		addrs = append(addrs, s.Addr().String())
	}
	const room = "/chat/partition"
	names := []string{"alice", "bob", "carol"}
	var ps []*pond
	for i, name := range names {
		p := pondOn(t, addrs[i], name)
		p.join(room, map[string]any{"username": name})
		p.state(room, "JOINED")
		ps = append(ps, p)
	}
	converge(t, time.Now().Add(wait), room, names, ps...)

	cut.cut.Store(true)
	ps[0].expect("leave", func(e pondEv) bool { return e.Presence["username"] == "carol" })
	ps[2].expect("leave", func(e pondEv) bool { return e.Presence["username"] == "alice" })
	// both sides change: bob leaves, erin joins node 2, carol goes away
	ps[1].d.Send(map[string]any{"op": "leave", "channel": room})
	erin := pondOn(t, addrs[2], "erin")
	erin.join(room, map[string]any{"username": "erin"})
	erin.state(room, "JOINED")
	ps[2].send(room, "status", map[string]any{"status": "away"})
	converge(t, time.Now().Add(wait), room, []string{"alice"}, ps[0])
	converge(t, time.Now().Add(wait), room, []string{"carol:away", "erin"}, ps[2], erin)

	cut.cut.Store(false)
	healed := time.Now()
	all := []*pond{ps[0], ps[2], erin}
	converge(t, healed.Add(3*time.Second), room, []string{"alice", "carol:away", "erin"}, all...)
	flows(t, room, "after-partition", all...)
	t.Logf("converged and flowing %v after the partition healed", time.Since(healed).Round(time.Millisecond))
}

// PublishBuffer crossed over real sockets: with the bus down, a client
// sends far more than the buffer holds; the bystander on the same node
// gets every message at once, the other node gets the newest ones when the
// bus returns (the oldest were dropped and counted), and presence agrees.
func TestClusterPublishBufferOverflow(t *testing.T) {
	testenv.NodeModules(t)
	bus := cluster.NewMemoryBus()
	var srvs []*pondsocket.Server
	for i := range 2 {
		srvs = append(srvs, startDemo(t, func(o *pondsocket.Options) {
			o.PubSub = bus.Connect()
			o.Cluster = pondsocket.ClusterOptions{NodeID: fmt.Sprintf("o%d", i), Namespace: "overflow",
				HeartbeatInterval: 100 * time.Millisecond, HeartbeatTimeout: 400 * time.Millisecond, PublishBuffer: 32 << 10}
		}))
	}
	const room = "/chat/overflow"
	a := pondOn(t, srvs[0].Addr().String(), "alice")
	by := pondOn(t, srvs[0].Addr().String(), "bystander")
	b := pondOn(t, srvs[1].Addr().String(), "bob")
	for _, x := range []struct {
		p    *pond
		name string
	}{{a, "alice"}, {by, "bystander"}, {b, "bob"}} {
		x.p.join(room, map[string]any{"username": x.name})
		x.p.state(room, "JOINED")
	}
	converge(t, time.Now().Add(wait), room, []string{"alice", "bob", "bystander"}, a, by, b)

	bus.SetDown(true)
	node := srvs[0].ClusterNode()
	testenv.Eventually(t, 5*time.Second, "the node is not Ready with the bus down", func() bool { return node.Ready() != nil })
	pad := strings.Repeat("x", 900)
	const total = 200 // ~200 KB of messages for a 32 KiB buffer
	for i := range total {
		a.send(room, "message", map[string]any{"text": fmt.Sprintf("m-%d", i), "pad": pad})
	}
	// the bystander on the same node is unaffected: everything, in order
	for i := range total {
		text := fmt.Sprintf("m-%d", i)
		by.expect("message", func(e pondEv) bool { return e.Event == "message" && e.Payload["text"] == text })
	}
	s := node.Stats()
	if s.Overflowed == 0 || s.BufferedBytes > 32<<10 {
		t.Fatalf("with the bus down: %+v", s)
	}
	bus.SetDown(false)
	// bob gets the newest message; the oldest were dropped
	last := fmt.Sprintf("m-%d", total-1)
	b.expect("message", func(e pondEv) bool { return e.Event == "message" && e.Payload["text"] == last })
	got := 0
	for _, e := range b.d.History() {
		if e.Ev == "message" && decode(t, e).Event == "message" {
			got++
		}
	}
	if got >= total || uint64(total-got) > node.Stats().Overflowed {
		t.Errorf("bob got %d of %d; %d counted as dropped", got, total, node.Stats().Overflowed)
	}
	t.Logf("bob got %d of %d messages sent during the outage; %d dropped, counted", got, total, node.Stats().Overflowed)
	flows(t, room, "after-overflow", a, by, b)
	converge(t, time.Now().Add(wait), room, []string{"alice", "bob", "bystander"}, a, by, b)
}
