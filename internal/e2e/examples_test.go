package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pondsocket/pondsocket/internal/testenv"
)

// runProgram builds the package at dir (relative to the repository root)
// and runs it with PONDSOCKET_ADDR set to a free loopback address, waiting
// until the port accepts connections.
func runProgram(t *testing.T, dir string, env ...string) string {
	t.Helper()
	return runProgramAt(t, dir, testenv.FreeAddr(t), env...)
}

// runSeedProgram runs one of the two seed programs, which listen on the
// :8080 they hard-code (the library reads no environment variable, and
// they must run unchanged). A lock file keeps test processes from running
// two of them at once; a port taken by something else fails the test with
// a clear message rather than a confusing one.
func runSeedProgram(t *testing.T, dir string) string {
	t.Helper()
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "pondsocket-seed-8080.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() }) // after the program's own cleanup (LIFO)
	if l, err := net.Listen("tcp", ":8080"); err != nil {
		t.Fatalf("%s listens on :8080, which is taken: %v", dir, err)
	} else {
		l.Close()
	}
	return runProgramAt(t, dir, "127.0.0.1:8080")
}

func runProgramAt(t *testing.T, dir, addr string, env ...string) string {
	t.Helper()
	testenv.Start(t, testenv.Build(t, dir), testenv.ProcOptions{
		Env:  append([]string{"PONDSOCKET_ADDR=" + addr}, env...),
		Dial: addr,
	})
	return addr
}

// The seed README's "Complete Type-Safe Example", unchanged but for its
// import line, driven by the published JS client.
func TestTypeSafeExampleWithJSClient(t *testing.T) {
	testenv.NodeModules(t)
	addr := runSeedProgram(t, "examples/typesafe")
	connect := func(token string) *pond {
		d := testenv.StartNode(t, "pondsocket-client", "pond-driver.mjs")
		p := &pond{t: t, d: d}
		d.Send(map[string]any{"op": "connect", "url": fmt.Sprintf("ws://%s/api/socket", addr), "params": map[string]any{"token": token}})
		p.expect("conn", func(e pondEv) bool { return e.State == "connected" })
		return p
	}
	a := connect("alice-token-123")
	b := connect("bob-token-456")
	const room = "/chat/general"
	a.join(room, map[string]any{"username": "alice"})
	a.state(room, "JOINED")
	if w := a.message(room, "welcome"); w["room"].(map[string]any)["id"] != "general" {
		t.Fatalf("welcome %v", w)
	}
	b.join(room, map[string]any{"username": "bob"})
	b.state(room, "JOINED")
	a.users(room, 2)

	a.send(room, "message", map[string]any{"text": "hello from alice"})
	for _, p := range []*pond{a, b} {
		if m := p.message(room, "message"); m["text"] != "hello from alice" || m["id"] == "" {
			t.Fatalf("message %v", m)
		}
	}
	// validation errors come back as "error" replies
	if r := a.request(room, "message", map[string]any{"text": ""}); r["code"] != "MESSAGE_TOO_LONG" {
		t.Fatalf("empty message reply %v", r)
	}
	a.send(room, "typing", map[string]any{"isTyping": true})
	if m := b.message(room, "typing"); m["isTyping"] != true {
		t.Fatalf("typing %v", m)
	}
	a.send(room, "status_update", map[string]any{"status": "away"})
	b.expect("presence", func(e pondEv) bool {
		ch, _ := e.Payload["changed"].(map[string]any)
		return ch != nil && ch["status"] == "away"
	})
	if r := a.request(room, "status_update", map[string]any{"status": "sleeping"}); r["code"] != "INVALID_FORMAT" {
		t.Fatalf("bad status reply %v", r)
	}
	_ = strings.TrimSpace
}

// The seed README's Quick Start, with its three helpers supplied.
func TestQuickStartExampleWithJSClient(t *testing.T) {
	testenv.NodeModules(t)
	addr := runSeedProgram(t, "examples/quickstart")
	d := testenv.StartNode(t, "pondsocket-client", "pond-driver.mjs")
	p := &pond{t: t, d: d}
	d.Send(map[string]any{"op": "connect", "url": fmt.Sprintf("ws://%s/api/socket", addr), "params": map[string]any{"token": "user:carol"}})
	p.expect("conn", func(e pondEv) bool { return e.State == "connected" })
	p.join("/chat/lobby", map[string]any{"username": "carol"})
	p.state("/chat/lobby", "JOINED")
	if h := p.message("/chat/lobby", "history"); len(h["messages"].([]any)) != 1 {
		t.Fatalf("history %v", h)
	}
	p.send("/chat/lobby", "message", map[string]any{"text": "hi"})
	if m := p.message("/chat/lobby", "message"); m["text"] != "hi" || m["username"] != "carol" {
		t.Fatalf("message %v", m)
	}
}
