package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pondsocket/pondsocket/internal/testenv"
)

// testBackend is the application backend of the proxy tests: a real HTTP
// server on 127.0.0.1 whose answers depend on what it is asked.
type testBackend struct {
	srv       *httptest.Server
	release   chan struct{} // closed: slow answers return
	once      sync.Once
	slowIn    atomic.Int32 // slow calls being held right now
	slowAll   atomic.Int32 // slow calls received
	firstSlow atomic.Int64 // when the first slow call arrived, unix ns

	mu    sync.Mutex
	calls map[string][]map[string]any // by kind: the decoded requests
}

func newTestBackend(t *testing.T) *testBackend {
	b := &testBackend{release: make(chan struct{}), calls: map[string][]map[string]any{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /connect", b.connect)
	mux.HandleFunc("POST /join", b.join)
	mux.HandleFunc("POST /event", b.event)
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	t.Cleanup(b.unblock) // before Close, which waits for held requests
	return b
}

func (b *testBackend) unblock() { b.once.Do(func() { close(b.release) }) }

func (b *testBackend) url(kind string) string { return b.srv.URL + "/" + kind }

// record decodes a request and keeps it.
func (b *testBackend) record(kind string, r *http.Request) map[string]any {
	var m map[string]any
	_ = json.NewDecoder(r.Body).Decode(&m)
	b.mu.Lock()
	b.calls[kind] = append(b.calls[kind], m)
	b.mu.Unlock()
	return m
}

func (b *testBackend) requests(kind string) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]map[string]any(nil), b.calls[kind]...)
}

// hold keeps a call until the test releases it or the server gives up.
func (b *testBackend) hold(r *http.Request) {
	b.slowAll.Add(1)
	b.firstSlow.CompareAndSwap(0, time.Now().UnixNano())
	b.slowIn.Add(1)
	defer b.slowIn.Add(-1)
	select {
	case <-b.release:
	case <-r.Context().Done():
	}
}

func answer(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// connect: the query's name is the user; mallory is declined, slowpoke
// never answered in time; everyone may join /chat/* and /echo/* only,
// but vip may join anything.
func (b *testBackend) connect(w http.ResponseWriter, r *http.Request) {
	req := b.record("connect", r)
	q, _ := req["query"].(map[string]any)
	name, _ := q["name"].(string)
	switch name {
	case "mallory":
		answer(w, map[string]any{"decline": map[string]any{"code": 403, "message": "Not on the list"}})
	case "slowpoke":
		b.hold(r)
	case "":
		answer(w, map[string]any{"decline": map[string]any{}})
	case "sue": // private assigns, public presence
		answer(w, map[string]any{"user": name, "assigns": map[string]any{"email": "sue@example.com"}, "presence": map[string]any{"nick": "Sue S."}})
	case "vip":
		answer(w, map[string]any{"user": name})
	default:
		answer(w, map[string]any{"user": name, "assigns": map[string]any{"name": strings.ToUpper(name[:1]) + name[1:]},
			"channels": []string{"/chat/*", "/echo/*"}})
	}
}

// join: /chat/closed is declined; members of a chat get the role member.
func (b *testBackend) join(w http.ResponseWriter, r *http.Request) {
	req := b.record("join", r)
	switch req["channel"] {
	case "/chat/closed":
		answer(w, map[string]any{"decline": map[string]any{"code": 403, "message": "Room closed"}})
	case "/chat/stage": // a presence of the backend's choosing
		answer(w, map[string]any{"presence": map[string]any{"on": "stage"}})
	default:
		answer(w, map[string]any{"assigns": map[string]any{"role": "member"}})
	}
}

// event: the event name says what the backend does.
func (b *testBackend) event(w http.ResponseWriter, r *http.Request) {
	req := b.record("event", r)
	payload, _ := req["payload"].(map[string]any)
	switch req["event"] {
	case "message": // a changed payload to everyone
		text, _ := payload["text"].(string)
		answer(w, map[string]any{"broadcast": map[string]any{"payload": map[string]any{"text": strings.ToUpper(text), "by": req["user"]}}})
	case "ask":
		answer(w, map[string]any{"reply": map[string]any{"event": "answer", "payload": map[string]any{"n": 42}}})
	case "save": // a reply to the sender and the client's payload to everyone
		answer(w, map[string]any{"reply": map[string]any{"payload": map[string]any{"saved": true}}, "broadcast": map[string]any{}})
	case "rude":
		answer(w, map[string]any{"deny": map[string]any{"code": 422, "message": "Be nice"}})
	case "slow":
		b.hold(r)
	case "garbage":
		io.WriteString(w, "{{{")
	case "oops":
		http.Error(w, "database on fire", http.StatusInternalServerError)
	case "typo": // a misspelt deny must not pass as anything
		answer(w, map[string]any{"denied": map[string]any{"code": 403}})
	case "huge":
		answer(w, map[string]any{"reply": map[string]any{"payload": map[string]any{"x": strings.Repeat("a", 200<<10)}}})
	default:
		answer(w, map[string]any{"broadcast_from": map[string]any{}})
	}
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "app.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// jsConnect starts the published client towards addr with params, without
// waiting for the connection.
func jsConnect(t *testing.T, addr string, params map[string]any) *jsClient {
	t.Helper()
	d := testenv.StartNode(t, "pondsocket-client", "pond-driver.mjs")
	d.Send(map[string]any{"op": "connect", "url": fmt.Sprintf("ws://%s/api/socket", addr), "params": params})
	return &jsClient{t: t, d: d}
}

// rawMember is a plain WebSocket client that has joined one channel.
type rawMember struct {
	t *testing.T
	c *websocket.Conn
}

func rawJoin(t *testing.T, addr, name, channel string) *rawMember {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://%s/api/socket?name=%s", addr, name), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	m := &rawMember{t: t, c: c}
	m.send("JOIN_CHANNEL", "JOIN_CHANNEL", channel, "j")
	if f := m.await("j", 10*time.Second); !strings.Contains(f, `"ACKNOWLEDGE"`) {
		t.Fatalf("%s joining %s: %s", name, channel, f)
	}
	return m
}

func (m *rawMember) send(action, event, channel, reqID string) {
	m.t.Helper()
	msg := fmt.Sprintf(`{"action":%q,"event":%q,"channelName":%q,"requestId":%q,"payload":{}}`, action, event, channel, reqID)
	if err := m.c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		m.t.Fatal(err)
	}
}

// await reads frames until one carries reqID.
func (m *rawMember) await(reqID string, timeout time.Duration) string {
	m.t.Helper()
	m.c.SetReadDeadline(time.Now().Add(timeout))
	for {
		_, f, err := m.c.ReadMessage()
		if err != nil {
			m.t.Fatalf("waiting for %s: %v", reqID, err)
		}
		if strings.Contains(string(f), fmt.Sprintf(`"requestId":%q`, reqID)) {
			return string(f)
		}
	}
}

// Issue 13 §2: the backend proxy without JWT. The backend decides who
// connects (and as whom, with which headers forwarded), who joins and
// what each event does; a backend that fails, hangs or is gone gives each
// client the protocol's error within the timeout, and a slow event
// backend holds neither connects, joins nor other channels' events.
func TestProxyBackend(t *testing.T) {
	be := newTestBackend(t)
	const timeout = 4 * time.Second
	cfg := writeConfig(t, fmt.Sprintf(`proxy:
  connect_url: %s
  join_url: %s
  event_url: %s
  timeout: %s
  forward_headers: [X-Tenant]
  max_connections: 2
max_message_size: 65536 # answers over 128 KiB are refused
endpoints:
  - path: /api/socket
    channels:
      - pattern: /chat/:roomId
        presence: true
        events:
          "*": proxy
      - pattern: /echo/:id
        events:
          echo: reply
      - pattern: /vip/:id
`, be.url("connect"), be.url("join"), be.url("event"), timeout))
	p := testenv.Start(t, buildBinary(t), testenv.ProcOptions{
		Args:  []string{"--addr", "127.0.0.1:0", "--log-level", "warn", "--config", cfg},
		Ready: "listening on ",
	})
	addr := p.Ready
	ws := "ws://" + addr + "/api/socket"

	// connect: only the forwarded header reaches the backend; its user id
	// is CONNECT's connectionId
	status, _, connect := dialStatus(t, ws+"?name=carol", http.Header{"X-Tenant": {"acme"}, "Cookie": {"session=secret"}})
	if status != 0 || !strings.Contains(connect, `"connectionId":"carol"`) {
		t.Fatalf("carol: status %d, CONNECT %s", status, connect)
	}
	req := be.requests("connect")[0]
	if fmt.Sprint(req["headers"]) != "map[X-Tenant:acme]" || req["path"] != "/api/socket" ||
		!strings.HasPrefix(fmt.Sprint(req["remote_addr"]), "127.0.0.1:") || req["user"] != nil {
		t.Fatalf("connect request %v", req)
	}
	for _, c := range []struct {
		query, body string
		status      int
	}{
		{"?name=mallory", "Not on the list", 403},
		{"", "Connection declined", 403}, // a decline without code or message
	} {
		if status, body, _ := dialStatus(t, ws+c.query, nil); status != c.status || body != c.body {
			t.Errorf("connect %q: %d %q, want %d %q", c.query, status, body, c.status, c.body)
		}
	}
	// the published client: a declined upgrade never connects
	mallory := jsConnect(t, addr, map[string]any{"name": "mallory"})
	mallory.expect("conn", func(e jsEv) bool { return strings.EqualFold(e.State, "disconnected") })
	for _, e := range mallory.d.History() {
		if strings.Contains(strings.ToLower(string(e.Raw)), `"connected"`) {
			t.Fatalf("mallory connected: %s", e.Raw)
		}
	}

	mallory.d.Close() // it would retry forever

	ann := jsConnect(t, addr, map[string]any{"name": "ann"})
	ann.expect("conn", func(e jsEv) bool { return strings.EqualFold(e.State, "connected") })
	bob := jsConnect(t, addr, map[string]any{"name": "bob"})
	bob.expect("conn", func(e jsEv) bool { return strings.EqualFold(e.State, "connected") })

	// join: the backend sees the user, its assigns, the params and the
	// join payload; its assigns show in presence
	ann.d.Send(map[string]any{"op": "join", "channel": "/chat/1", "params": map[string]any{"seat": "7"}})
	ann.expect("state", func(e jsEv) bool { return e.Channel == "/chat/1" && e.State == "JOINED" })
	bob.join("/chat/1", "JOINED")
	var jr map[string]any
	for _, r := range be.requests("join") {
		if r["user"] == "ann" {
			jr = r
		}
	}
	if jr == nil || jr["channel"] != "/chat/1" || fmt.Sprint(jr["params"]) != "map[roomId:1]" ||
		fmt.Sprint(jr["payload"]) != "map[seat:7]" || fmt.Sprint(jr["assigns"]) != "map[name:Ann]" {
		t.Fatalf("join request %v", jr)
	}
	users := ann.expect("users", func(e jsEv) bool { return e.Channel == "/chat/1" && len(e.Users) == 2 }).Users
	for _, u := range users {
		if u["role"] != "member" || (u["id"] != "ann" && u["id"] != "bob") || u["name"] == nil || u["_channels"] != nil {
			t.Fatalf("presence %v", users)
		}
	}
	bob.join("/chat/stage", "JOINED")
	if u := bob.expect("users", func(e jsEv) bool { return e.Channel == "/chat/stage" && len(e.Users) == 1 }).Users[0]; u["id"] != "bob" || u["on"] != "stage" || len(u) != 2 {
		t.Fatalf("presence chosen by the join answer: %v", u)
	}
	ann.join("/chat/closed", "DECLINED") // the backend declines
	joins := len(be.requests("join"))
	ann.join("/vip/1", "DECLINED") // outside the channels the connect answer gave
	if n := len(be.requests("join")); n != joins {
		t.Fatalf("a join outside the user's channels reached the backend")
	}

	// events: a changed payload to everyone, a reply, a deny, bad answers
	ann.d.Send(map[string]any{"op": "send", "channel": "/chat/1", "event": "message", "payload": map[string]any{"text": "hi"}})
	for _, c := range []*jsClient{ann, bob} {
		if m := c.expect("message", func(e jsEv) bool { return e.Event == "message" }); m.Payload["text"] != "HI" || m.Payload["by"] != "ann" {
			t.Fatalf("broadcast %v", m.Payload)
		}
	}
	if r := ann.request("/chat/1", "ask", map[string]any{}); r["n"] != float64(42) {
		t.Fatalf("reply %v", r)
	}
	if r := ann.request("/chat/1", "save", map[string]any{"doc": "d1"}); r["saved"] != true {
		t.Fatalf("reply with a broadcast: %v", r)
	}
	if m := bob.expect("message", func(e jsEv) bool { return e.Event == "save" }); m.Payload["doc"] != "d1" {
		t.Fatalf("broadcast of the client's payload %v", m.Payload)
	}
	if r := ann.request("/chat/1", "rude", map[string]any{}); r["code"] != float64(422) || r["message"] != "Be nice" {
		t.Fatalf("deny %v", r)
	}
	for _, ev := range []string{"garbage", "oops", "typo", "huge"} {
		if r := ann.request("/chat/1", ev, map[string]any{}); r["code"] != float64(502) || r["message"] != "Bad answer from backend" {
			t.Errorf("%s: %v, want 502 Bad answer from backend", ev, r)
		}
	}
	er := be.requests("event")[0]
	if er["user"] != "ann" || er["channel"] != "/chat/1" || er["event"] != "message" || fmt.Sprint(er["payload"]) != "map[text:hi]" {
		t.Fatalf("event request %v", er)
	}

	// SSE connects through the same handler, so through the backend too
	sd := testenv.StartNodeFlags(t, "pondsocket-sse-client", []string{"--experimental-eventsource", "--no-warnings"}, "pond-driver.mjs")
	sue := &jsClient{t: t, d: sd}
	sd.Send(map[string]any{"op": "connect", "transport": "sse", "url": "http://" + addr + "/api/socket", "params": map[string]any{"name": "sue"}})
	sue.expect("conn", func(e jsEv) bool { return strings.EqualFold(e.State, "connected") })
	sue.join("/chat/1", "JOINED")
	sue.expect("users", func(e jsEv) bool {
		for _, u := range e.Users {
			if u["id"] == "sue" {
				if u["nick"] != "Sue S." || len(u) != 2 {
					t.Fatalf("sue's presence %v, want the connect answer's presence and her id only", u)
				}
				return e.Channel == "/chat/1"
			}
		}
		return false
	})

	for _, r := range be.requests("join") {
		if r["user"] == "sue" && fmt.Sprint(r["assigns"]) != "map[email:sue@example.com]" {
			t.Fatalf("sue's join request %v", r)
		}
	}

	// a slow backend: three slow events fill the event pool (2
	// connections) and queue behind it; meanwhile a new connection joins
	// through the join backend and a bystander's echo is answered
	dave := jsConnect(t, addr, map[string]any{"name": "dave"})
	dave.expect("conn", func(e jsEv) bool { return strings.EqualFold(e.State, "connected") })
	s1, s2 := rawJoin(t, addr, "s1", "/chat/slow"), rawJoin(t, addr, "s2", "/chat/slow")
	ann.d.Send(map[string]any{"op": "request", "channel": "/chat/1", "event": "slow", "payload": map[string]any{}, "id": "slow-ann"})
	sent := time.Now()
	s1.send("BROADCAST", "slow", "/chat/slow", "slow-1")
	s2.send("BROADCAST", "slow", "/chat/slow", "slow-2")
	testenv.Eventually(t, 10*time.Second, "two slow calls held by the backend", func() bool { return be.slowIn.Load() == 2 })
	dave.join("/echo/1", "JOINED")
	if r := dave.request("/echo/1", "echo", map[string]any{"k": "v"}); r["k"] != "v" {
		t.Fatalf("echo %v", r)
	}
	if be.slowIn.Load() != 2 {
		t.Fatalf("the slow calls ended before the bystander was served (%d held)", be.slowIn.Load())
	}
	// every slow call ends with the protocol's 504, the queued one too
	if r := ann.expect("response", func(e jsEv) bool { return e.ID == "slow-ann" }).Payload; r["code"] != float64(504) || r["message"] != "Backend timeout" {
		t.Fatalf("slow event: %v", r)
	}
	for _, m := range []struct {
		c  *rawMember
		id string
	}{{s1, "slow-1"}, {s2, "slow-2"}} {
		if f := m.c.await(m.id, 20*time.Second); !strings.Contains(f, `"code":504`) {
			t.Fatalf("%s: %s", m.id, f)
		}
	}
	if d := time.Since(sent); d > timeout+20*time.Second {
		t.Fatalf("slow events answered after %v", d)
	}
	if n := be.slowAll.Load(); n > 3 {
		t.Fatalf("%d slow calls reached the backend, want at most 3", n)
	}

	// a slow connect: 504 within the timeout
	start := time.Now()
	if status, body, _ := dialStatus(t, ws+"?name=slowpoke", nil); status != 504 || body != "Backend timeout" {
		t.Fatalf("slow connect: %d %q", status, body)
	}
	if d := time.Since(start); d > timeout+20*time.Second {
		t.Fatalf("slow connect declined after %v", d)
	}

	// the backend goes away: 502 for connects, joins and events
	be.unblock()
	be.srv.Close()
	if status, body, _ := dialStatus(t, ws+"?name=zed", nil); status != 502 || body != "Backend unavailable" {
		t.Errorf("connect, backend down: %d %q", status, body)
	}
	ann.join("/chat/2", "DECLINED")
	if r := ann.request("/chat/1", "message", map[string]any{"text": "anyone?"}); r["code"] != float64(502) || r["message"] != "Backend unavailable" {
		t.Errorf("event, backend down: %v", r)
	}
	// and every failure was logged
	log := strings.Join(p.Log(), "\n")
	for _, want := range []string{"proxy: backend unreachable", "proxy: backend timed out", "proxy: malformed backend answer",
		"proxy: backend answered an error status", "proxy: backend answer too large"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// Issue 13 §2: the proxy besides JWT: only verified connections reach the
// backend, which sees the token's sub and claims and adds assigns.
func TestProxyWithJWT(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		_ = json.NewDecoder(r.Body).Decode(&m)
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
		answer(w, map[string]any{"assigns": map[string]any{"plan": "pro"}})
	}))
	t.Cleanup(be.Close)
	cfg := writeConfig(t, `auth:
  jwt:
    hmac_secret: change-me
proxy:
  connect_url: `+be.URL+`
endpoints:
  - path: /api/socket
    channels:
      - pattern: /chat/:roomId
        presence: true
`)
	addr := startConfigured(t, buildBinary(t), "--config", cfg)
	ws := "ws://" + addr + "/api/socket"
	if status, body, _ := dialStatus(t, ws+"?token=abc", nil); status != 401 || body != "Malformed token" {
		t.Fatalf("bad token: %d %q", status, body)
	}
	mu.Lock()
	n := len(got)
	mu.Unlock()
	if n != 0 {
		t.Fatalf("an unverified connection reached the backend")
	}
	ann := newJS(t, addr, userToken(t, "ann", map[string]any{"info": map[string]any{"name": "Ann"}, "team": "red"}))
	ann.join("/chat/1", "JOINED")
	users := ann.expect("users", func(e jsEv) bool { return e.Channel == "/chat/1" && len(e.Users) == 1 }).Users
	if u := users[0]; u["id"] != "ann" || u["name"] != "Ann" || u["plan"] != "pro" {
		t.Fatalf("presence %v, want the token's id and info with the backend's assigns", users)
	}
	mu.Lock()
	req := got[0]
	mu.Unlock()
	claims, _ := req["claims"].(map[string]any)
	if req["user"] != "ann" || claims["sub"] != "ann" || claims["team"] != "red" || fmt.Sprint(claims["info"]) != "map[name:Ann]" {
		t.Fatalf("connect request %v", req)
	}
}

// Issue 13 §2: the proxy keys are read like every other key, and a bad one
// stops the start naming the key and its line.
func TestProxyConfig(t *testing.T) {
	app := "endpoints:\n  - path: /ws\n    channels:\n      - pattern: /r/:id\n        events: {m: proxy}\n"
	good := writeConfig(t, "proxy:\n  connect_url: http://127.0.0.1:9/c\n  event_url: https://backend.example/e\n  timeout: 1500ms\n  forward_headers: [Cookie, X-Tenant]\n  max_connections: 8\n"+app)
	c, err := parseConfig([]string{"--config", good}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.proxy != (proxyConfig{connectURL: "http://127.0.0.1:9/c", eventURL: "https://backend.example/e", timeout: 1500 * time.Millisecond, forwardHeaders: "Cookie,X-Tenant", maxConns: 8}) {
		t.Fatalf("proxy %+v", c.proxy)
	}
	// the environment overrides the file, through the same check
	env := func(k string) (string, bool) { return "20s", k == "PONDSOCKET_PROXY_TIMEOUT" }
	if _, err := parseConfig([]string{"--config", good}, env, io.Discard); err == nil || !strings.Contains(err.Error(), `PONDSOCKET_PROXY_TIMEOUT="20s": must be more than 0 and at most 9s`) {
		t.Errorf("PONDSOCKET_PROXY_TIMEOUT=20s: %v", err)
	}
	noProxyEvents := "endpoints:\n  - path: /ws\n    channels:\n      - pattern: /r/:id\n"
	for _, b := range []struct{ file, want string }{
		{"proxy:\n  conect_url: http://x/\n" + noProxyEvents, "proxy.conect_url (line 2): unknown key"},
		{"proxy:\n  connect_url: ftp://x/\n" + noProxyEvents, "proxy.connect_url (line 2): must be an http:// or https:// URL"},
		{"proxy:\n  join_url: \"http://x/%zz\"\n" + noProxyEvents, "proxy.join_url (line 2): not a usable URL"},
		{"proxy:\n  timeout: 0s\n" + noProxyEvents, "proxy.timeout (line 2): must be more than 0 and at most 9s"},
		{"proxy:\n  timeout: 30s\n" + noProxyEvents, "proxy.timeout (line 2): must be more than 0 and at most 9s"},
		{"proxy:\n  timeout: soon\n" + noProxyEvents, `proxy.timeout (line 2): "soon": parse error`},
		{"proxy:\n  forward_headers: [Cookie, X Tenant]\n" + noProxyEvents, `proxy.forward_headers (line 2): "X Tenant" is not a header name`},
		{"proxy:\n  max_connections: 0\n" + noProxyEvents, "proxy.max_connections (line 2): must be from 1 to 10000"},
		{app, "endpoints[0].channels[0].events.m (line 5): mode proxy needs proxy.event_url"},
		{"inline_handlers: true\nproxy:\n  join_url: http://x/j\n" + noProxyEvents, "inline_handlers (line 1): not with proxy.join_url"},
		{"proxy:\n  event_url: http://x/e\n" + noProxyEvents, "proxy.event_url (line 2): no event has mode proxy"},
		{"endpoints:\n  - path: /ws\n    channels:\n      - pattern: /r\n        events: {m: shout}\n", "events.m (line 5): must be broadcast, broadcast_from, reply, forbidden or proxy"},
		{"endpoints:\n  - path: /ws\n    channels:\n      - pattern: /r\n        events:\n          m: reply\n          m: proxy\n", "events.m (line 7): listed twice"},
	} {
		_, err := parseConfig([]string{"--config", writeConfig(t, b.file)}, noEnv, io.Discard)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%q: error %v, want %q", b.file, err, b.want)
		}
	}
	if _, err := parseConfig([]string{"--proxy-connect-url", "http://x/"}, noEnv, io.Discard); err == nil || !strings.Contains(err.Error(), "--proxy-connect-url: needs a configuration file") {
		t.Errorf("--proxy-connect-url without --config: %v", err)
	}
}

// metricValue reads one value of the server's /metrics.
func metricValue(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		var v float64
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			if _, err := fmt.Sscan(f[1], &v); err == nil {
				return v
			}
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// Issue 13 §2: more slow event calls than the server has workers cannot
// starve other channels: the proxied event's handler holds at most
// Handlers.MaxPerHandler (half of the workers; 128 of 256 with one core),
// the others wait without a worker, and a bystander's echo is answered
// long before the first slow call could time out.
func TestProxySlowBackendCannotStarve(t *testing.T) {
	be := newTestBackend(t)
	const timeout = 8 * time.Second
	const senders = 300 // more than the 256 workers of GOMAXPROCS=1
	cfg := writeConfig(t, fmt.Sprintf(`proxy:
  connect_url: %s
  event_url: %s
  timeout: %s
  max_connections: 2
endpoints:
  - path: /api/socket
    channels:
      - pattern: /chat/:roomId
        events:
          slow: proxy
      - pattern: /echo/:id
        events:
          echo: reply
`, be.url("connect"), be.url("event"), timeout))
	p := testenv.Start(t, buildBinary(t), testenv.ProcOptions{
		Args:  []string{"--addr", "127.0.0.1:0", "--log-level", "error", "--config", cfg},
		Env:   []string{"GOMAXPROCS=1"},
		Ready: "listening on ",
	})
	addr := p.Ready
	bystander := jsConnect(t, addr, map[string]any{"name": "bystander"})
	bystander.expect("conn", func(e jsEv) bool { return strings.EqualFold(e.State, "connected") })
	bystander.join("/echo/1", "JOINED")

	members := make([]*rawMember, senders)
	for i := range members {
		members[i] = rawJoin(t, addr, fmt.Sprintf("s%d", i), "/chat/slow")
	}
	before := metricValue(t, addr, "pondsocket_messages_in_total")
	for i, m := range members {
		m.send("BROADCAST", "slow", "/chat/slow", fmt.Sprintf("slow-%d", i))
	}
	testenv.Eventually(t, 20*time.Second, "the server received every slow event", func() bool {
		return metricValue(t, addr, "pondsocket_messages_in_total") >= before+senders
	})
	testenv.Eventually(t, 10*time.Second, "the backend holds two slow calls", func() bool { return be.slowIn.Load() == 2 })
	if r := bystander.request("/echo/1", "echo", map[string]any{"k": "v"}); r["k"] != "v" {
		t.Fatalf("echo %v", r)
	}
	if waited := time.Since(time.Unix(0, be.firstSlow.Load())); waited >= timeout {
		t.Fatalf("the echo came %v after the first slow call: it waited for the slow calls to time out", waited)
	}
	// the first slow call ends with the protocol's 504 (the others follow
	// in waves of at most Handlers.MaxPerHandler, each within its timeout)
	if f := members[0].await("slow-0", timeout+30*time.Second); !strings.Contains(f, `"code":504`) {
		t.Fatalf("slow-0: %s", f)
	}
}
