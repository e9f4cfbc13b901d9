package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket/internal/testenv"
)

// Multi-node tests with separate processes: cmd/pondsocket nodes joined
// over a real redis-server and over a Kafka-protocol broker (cmd/devkafka,
// franz-go's kfake), the published JS client connected to different nodes.

// startNodes runs n cmd/pondsocket nodes with fast heartbeats and the
// backend's flags.
func startNodes(t *testing.T, n int, backend ...string) ([]*testenv.Proc, []string) {
	return startNodesArgs(t, n, append([]string{"--heartbeat-interval", "200ms", "--heartbeat-timeout", "1s"}, backend...)...)
}

// startNodesArgs runs n cmd/pondsocket nodes with args after the common
// ones (later flags win).
func startNodesArgs(t *testing.T, n int, args ...string) ([]*testenv.Proc, []string) {
	t.Helper()
	bin := testenv.Build(t, "cmd/pondsocket")
	var ps []*testenv.Proc
	var addrs []string
	for i := 0; i < n; i++ {
		all := append([]string{"--addr", "127.0.0.1:0", "--node-id", fmt.Sprintf("node%d", i), "--cluster-namespace", "multi",
			"--log-level", "warn"}, args...)
		p := testenv.Start(t, bin, testenv.ProcOptions{Args: all, Ready: "listening on "})
		ps = append(ps, p)
		addrs = append(addrs, p.Ready)
	}
	return ps, addrs
}

// runRedis runs a redis-server without persistence on addr.
func runRedis(t *testing.T, addr string) *testenv.Proc {
	t.Helper()
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	return testenv.Start(t, redisServerPath(t), testenv.ProcOptions{
		Args:  []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"},
		Ready: "Ready to accept connections",
	})
}

// startKafka runs cmd/devkafka, a Kafka-protocol broker, on addr with its
// data in dir.
func startKafka(t *testing.T, addr, dir string) *testenv.Proc {
	t.Helper()
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	return testenv.Start(t, testenv.Build(t, "cmd/devkafka"), testenv.ProcOptions{
		Args:  []string{"--port", port, "--data", dir},
		Ready: "kafka broker listening on ",
	})
}

func redisServerPath(t *testing.T) string {
	p, err := exec.LookPath("redis-server")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/redis-server"); serr == nil {
			p, err = "/usr/bin/redis-server", nil
		}
	}
	testenv.Require(t, "redis-server", err == nil, "install it with apt-get install -y redis-server (.ci/run does)")
	return p
}

func TestClusterProcessesRedis(t *testing.T) {
	testenv.NodeModules(t)
	redisAddr := testenv.FreeAddr(t)
	runRedis(t, redisAddr)
	nodes, addrs := startNodes(t, 3, "--redis-addr", redisAddr)
	clusterScenario(t, addrs, false, func(i int) { nodes[i].Kill() })
}

func TestClusterProcessesKafka(t *testing.T) {
	testenv.NodeModules(t)
	brokerAddr := testenv.FreeAddr(t)
	data := t.TempDir()
	broker := startKafka(t, brokerAddr, data)
	nodes, addrs := startNodes(t, 3, "--kafka-brokers", brokerAddr)
	clusterScenario(t, addrs, false, func(i int) { nodes[i].Kill() })

	// The broker restarts: cross-node delivery recovers without restarting
	// the nodes.
	const room = "/chat/after-restart"
	a := pondOn(t, addrs[0], "dora")
	b := pondOn(t, addrs[1], "erin")
	a.join(room, map[string]any{"username": "dora"})
	a.state(room, "JOINED")
	b.join(room, map[string]any{"username": "erin"})
	b.state(room, "JOINED")
	a.users(room, 2)
	broker.Stop(10 * time.Second)
	startKafka(t, brokerAddr, data)
	a.send(room, "message", map[string]any{"text": "after the restart"})
	if m := b.message(room, "message"); m["text"] != "after the restart" {
		t.Fatalf("after broker restart %v", m)
	}
}
