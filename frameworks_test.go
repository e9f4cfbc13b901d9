package pondsocket_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pondsocket/pondsocket/internal/testenv"
)

// The programs of examples/frameworks/ — PondSocket's Manager mounted on
// net/http, chi, echo, gin, gorilla/mux and fiber — each its own module (so
// this one does not depend on the routers), built and run as processes and
// driven by the published JS client.

var frameworkExamples = []string{"nethttp", "chi", "echo", "gin", "gorillamux", "fiber"}

func TestFrameworkExamples(t *testing.T) {
	testenv.NodeModules(t)
	bins := buildFrameworkExamples(t)
	for _, name := range frameworkExamples {
		t.Run(name, func(t *testing.T) {
			if bins[name].err != nil {
				t.Fatal(bins[name].err)
			}
			frameworkScenario(t, bins[name].path)
		})
	}
	// fiber's net/http adaptor, mounted as the upstream README shows
	t.Run("fiber-adaptor", func(t *testing.T) {
		if bins["fiber"].err != nil {
			t.Fatal(bins["fiber"].err)
		}
		frameworkScenario(t, bins["fiber"].path, "WS_MOUNT=adaptor")
	})
}

type fwBinary struct {
	path string
	err  error
}

// buildFrameworkExamples builds the six programs, in parallel, each in its
// own module (GOWORK=off: a go.work at the root must not capture them).
func buildFrameworkExamples(t *testing.T) map[string]fwBinary {
	t.Helper()
	dir := t.TempDir()
	bins := make(map[string]fwBinary)
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for _, name := range frameworkExamples {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := fwBinary{path: filepath.Join(dir, name)}
			src := filepath.Join("examples", "frameworks", name)
			cmd := exec.Command("go", "build", "-o", b.path, ".")
			cmd.Dir = filepath.Join(testenv.RepoRoot(), src)
			cmd.Env = append(os.Environ(), "GOWORK=off")
			if out, err := cmd.CombinedOutput(); err != nil {
				hint := ""
				if strings.Contains(string(out), "go mod tidy") || strings.Contains(string(out), "updates to go.mod needed") || strings.Contains(string(out), "missing go.sum entry") {
					hint = fmt.Sprintf("\n(the root module's requirements changed: run `go mod tidy` in %s)", src)
				}
				b.err = fmt.Errorf("build %s: %v\n%s%s", src, err, out, hint)
			}
			mu.Lock()
			bins[name] = b
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Logf("built %d framework examples in %s", len(frameworkExamples), time.Since(start).Round(time.Millisecond))
	return bins
}

// fwProc is a running example program.
type fwProc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	logs   []string
	exited chan struct{}
	err    error // exit status, once exited is closed
}

// startFrameworkExample runs bin with PONDSOCKET_ADDR=127.0.0.1:0 (and env) and
// returns the address it reports in its "listening on" line.
func startFrameworkExample(t *testing.T, bin string, env ...string) (*fwProc, string) {
	t.Helper()
	p := &fwProc{cmd: exec.Command(bin), exited: make(chan struct{})}
	p.cmd.Env = append(append(os.Environ(), "PONDSOCKET_ADDR=127.0.0.1:0"), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = p.cmd.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs = append(p.logs, line)
			p.mu.Unlock()
			if i := strings.Index(line, "listening on "); i >= 0 {
				select {
				case ready <- strings.TrimSpace(line[i+len("listening on "):]):
				default:
				}
			}
		}
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			p.mu.Lock()
			for _, l := range p.logs {
				t.Logf("%s: %s", filepath.Base(bin), l)
			}
			p.mu.Unlock()
		}
	})
	select {
	case addr := <-ready:
		return p, addr
	case <-p.exited:
		t.Fatalf("%s exited before listening: %v", bin, p.err)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not report its address", bin)
	}
	return nil, ""
}

// terminate sends SIGTERM and returns the exit status.
func (p *fwProc) terminate(t *testing.T) error {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(15 * time.Second):
		t.Fatal("the program did not stop within 15s of SIGTERM")
		return nil
	}
}

// checkUsersRoute checks the plain JSON route served next to the socket.
func checkUsersRoute(t *testing.T, addr string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/users")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var users []map[string]any
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /api/users: %s, Content-Type %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	if err := json.NewDecoder(resp.Body).Decode(&users); err != nil || len(users) != 2 || users[0]["username"] != "john_doe" {
		t.Fatalf("GET /api/users: %v %v", users, err)
	}
}

// checkNoTokenRefused: without a token the upgrade is answered 401.
func checkNoTokenRefused(t *testing.T, addr string) {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws/api/socket", nil)
	if err == nil {
		c.Close()
		t.Fatal("connection without a token accepted")
	}
	if resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("connection without a token: %v %v", resp, err)
	}
	body, _ := io.ReadAll(resp.Body)
	if strings.TrimSpace(string(body)) != "Missing token" {
		t.Fatalf("refusal body %q", body)
	}
}

func frameworkScenario(t *testing.T, bin string, env ...string) {
	p, addr := startFrameworkExample(t, bin, env...)
	checkUsersRoute(t, addr)
	checkNoTokenRefused(t, addr)

	// two published clients: join, presence, broadcast
	a := newPondAt(t, addr+"/ws", map[string]any{"token": "alice"})
	b := newPondAt(t, addr+"/ws", map[string]any{"token": "bob"})
	const room = "/chat/lobby"
	a.join(room, nil)
	a.state(room, "JOINED")
	a.users(room, 1)
	b.join(room, nil)
	b.state(room, "JOINED")
	users := b.users(room, 2)
	if users[0]["username"] != "alice" || users[1]["username"] != "bob" || users[0]["status"] != "online" || users[1]["status"] != "online" {
		t.Fatalf("presence seen by bob %v", users)
	}
	if j := a.expect("join", func(e pondEv) bool { return e.Channel == room && e.Presence["username"] == "bob" }); j.Presence["status"] != "online" {
		t.Fatalf("bob's presence seen by alice %v", j.Presence)
	}
	a.users(room, 2)
	a.send(room, "message", map[string]any{"text": "hello from alice"})
	for _, c := range []*pond{b, a} {
		if m := c.message(room, "message"); m["text"] != "hello from alice" || m["username"] != "alice" {
			t.Fatalf("broadcast %v", m)
		}
	}

	// SIGTERM: WebSockets are closed with 1001, the program exits cleanly
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws/api/socket?token=carol", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	// wait for the greeting, sent once the connection is in the event
	// loops: the 101 is written before the hand-over, so a SIGTERM right
	// after the dial could otherwise race it
	ws.SetReadDeadline(time.Now().Add(wait))
	if _, msg, err := ws.ReadMessage(); err != nil || !strings.Contains(string(msg), `"event":"CONNECTION"`) {
		t.Fatalf("carol's greeting: %s %v", msg, err)
	}
	closed := make(chan error, 1)
	go func() {
		ws.SetReadDeadline(time.Now().Add(15 * time.Second))
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				closed <- err
				return
			}
		}
	}()
	if err := p.terminate(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if err := <-closed; !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("socket at shutdown: %v, want close 1001", err)
	}
}
