package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
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
	// each its own module: built in parallel, each failing its own subtest
	var dirs []string
	for _, name := range frameworkExamples {
		dirs = append(dirs, "examples/frameworks/"+name)
	}
	start := time.Now()
	testenv.Prebuild(dirs...)
	t.Logf("built %d framework examples in %s", len(dirs), time.Since(start).Round(time.Millisecond))
	for _, name := range frameworkExamples {
		t.Run(name, func(t *testing.T) {
			frameworkScenario(t, testenv.Build(t, "examples/frameworks/"+name))
		})
	}
	// fiber's net/http adaptor, mounted as the upstream README shows
	t.Run("fiber-adaptor", func(t *testing.T) {
		frameworkScenario(t, testenv.Build(t, "examples/frameworks/fiber"), "WS_MOUNT=adaptor")
	})
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
	p := testenv.Start(t, bin, testenv.ProcOptions{
		Env:   append([]string{"PONDSOCKET_ADDR=127.0.0.1:0"}, env...),
		Ready: "listening on ",
	})
	addr := p.Ready
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
	if err := p.Stop(15 * time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if err := <-closed; !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("socket at shutdown: %v, want close 1001", err)
	}
}
