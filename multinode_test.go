package pondsocket_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket/internal/testenv"
)

// Multi-node tests with separate processes: cmd/pondsocket nodes joined
// over a real redis-server and over a Kafka-protocol broker (cmd/devkafka,
// franz-go's kfake), the published JS client connected to different nodes.

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds cmd/pondsocket, cmd/devkafka and the demo once per run.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "pondsocket-bin")
		if buildErr != nil {
			return
		}
		for _, pkg := range []string{"pondsocket", "devkafka"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, pkg), "./cmd/"+pkg)
			cmd.Dir = testenv.RepoRoot()
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// proc is a child process whose stderr is scanned for a ready line.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs []string
}

func startProc(t *testing.T, ready string, name string, args ...string) (*proc, string) {
	t.Helper()
	p := &proc{cmd: exec.Command(name, args...)}
	stderr, _ := p.cmd.StderrPipe()
	p.cmd.Stdout = p.cmd.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.logs = append(p.logs, sc.Text())
			p.mu.Unlock()
			select {
			case lines <- sc.Text():
			default:
			}
		}
		close(lines)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			p.mu.Lock()
			for _, l := range p.logs {
				t.Logf("%s: %s", filepath.Base(name), l)
			}
			p.mu.Unlock()
		}
	})
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("%s exited before it was ready", name)
			}
			if i := strings.Index(l, ready); i >= 0 {
				go io.Copy(io.Discard, strings.NewReader(""))
				go func() {
					for range lines {
					}
				}()
				return p, strings.TrimSpace(l[i+len(ready):])
			}
		case <-deadline:
			t.Fatalf("%s not ready", name)
		}
	}
}

func (p *proc) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

func startNodes(t *testing.T, n int, backend ...string) ([]*proc, []string) {
	return startNodesArgs(t, n, append([]string{"--heartbeat-interval", "200ms", "--heartbeat-timeout", "1s"}, backend...)...)
}

// startNodesArgs runs n cmd/pondsocket nodes with args after the common
// ones (later flags win).
func startNodesArgs(t *testing.T, n int, args ...string) ([]*proc, []string) {
	bin := binaries(t)
	var ps []*proc
	var addrs []string
	for i := 0; i < n; i++ {
		all := append([]string{"--addr", "127.0.0.1:0", "--node-id", fmt.Sprintf("node%d", i), "--cluster-namespace", "multi",
			"--log-level", "warn"}, args...)
		p, addr := startProc(t, "listening on ", filepath.Join(bin, "pondsocket"), all...)
		ps = append(ps, p)
		addrs = append(addrs, addr)
	}
	return ps, addrs
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
	redisAddr := freeAddr(t)
	port := redisAddr[strings.LastIndexByte(redisAddr, ':')+1:]
	startProc(t, "Ready to accept connections", redisServerPath(t), "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	nodes, addrs := startNodes(t, 3, "--redis-addr", redisAddr)
	clusterScenario(t, addrs, false, func(i int) { nodes[i].kill() })
}

func TestClusterProcessesKafka(t *testing.T) {
	testenv.NodeModules(t)
	bin := binaries(t)
	brokerAddr := freeAddr(t)
	port := brokerAddr[strings.LastIndexByte(brokerAddr, ':')+1:]
	data := t.TempDir()
	broker, _ := startProc(t, "kafka broker listening on ", filepath.Join(bin, "devkafka"), "--port", port, "--data", data)
	nodes, addrs := startNodes(t, 3, "--kafka-brokers", brokerAddr)
	clusterScenario(t, addrs, false, func(i int) { nodes[i].kill() })

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
	broker.stop()
	startProc(t, "kafka broker listening on ", filepath.Join(bin, "devkafka"), "--port", port, "--data", data)
	a.send(room, "message", map[string]any{"text": "after the restart"})
	if m := b.message(room, "message"); m["text"] != "after the restart" {
		t.Fatalf("after broker restart %v", m)
	}
}
