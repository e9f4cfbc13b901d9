package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/pondsocket/pondsocket/apiclient"
	"github.com/pondsocket/pondsocket/internal/testenv"
)

const exampleConfig = "../../examples/standalone/pondsocket.yaml"

// startConfigured runs the binary with a configuration file on
// 127.0.0.1:0 and returns its address.
func startConfigured(t *testing.T, bin string, args ...string) string {
	t.Helper()
	return testenv.Start(t, bin, testenv.ProcOptions{
		Args:  append([]string{"--addr", "127.0.0.1:0", "--log-level", "warn"}, args...),
		Ready: "listening on ",
	}).Ready
}

// token signs an HS256 token with the example's secret.
func token(t *testing.T, secret string, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func userToken(t *testing.T, sub string, extra map[string]any) string {
	c := jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range extra {
		c[k] = v
	}
	return token(t, "change-me", c)
}

// jsClient drives the published PondSocket client.
type jsClient struct {
	t *testing.T
	d *testenv.Driver
}

type jsEv struct {
	Ev, State, Channel, Event, ID string
	Payload                       map[string]any
	Users                         []map[string]any
}

func newJS(t *testing.T, addr, tok string) *jsClient {
	t.Helper()
	d := testenv.StartNode(t, "pondsocket-client", "pond-driver.mjs")
	c := &jsClient{t: t, d: d}
	d.Send(map[string]any{"op": "connect", "url": fmt.Sprintf("ws://%s/api/socket", addr), "params": map[string]any{"token": tok}})
	c.expect("conn", func(e jsEv) bool { return strings.EqualFold(e.State, "connected") })
	return c
}

func (c *jsClient) expect(ev string, match func(jsEv) bool) jsEv {
	c.t.Helper()
	var got jsEv
	c.d.ExpectMatch(c.t, ev, func(e testenv.Event) bool {
		var j jsEv
		if err := e.Decode(&j); err != nil {
			return false
		}
		if match(j) {
			got = j
			return true
		}
		return false
	}, 10*time.Second)
	return got
}

func (c *jsClient) join(ch, want string) {
	c.t.Helper()
	c.d.Send(map[string]any{"op": "join", "channel": ch, "params": map[string]any{}})
	c.expect("state", func(e jsEv) bool { return e.Channel == ch && e.State == want })
}

var reqN int

func (c *jsClient) request(ch, event string, payload map[string]any) map[string]any {
	c.t.Helper()
	reqN++
	id := fmt.Sprintf("q%d", reqN)
	c.d.Send(map[string]any{"op": "request", "channel": ch, "event": event, "payload": payload, "id": id})
	return c.expect("response", func(e jsEv) bool { return e.ID == id }).Payload
}

// dialStatus upgrades with a raw client and returns the HTTP status and
// body of a declined upgrade (0 when accepted) and the CONNECT frame.
func dialStatus(t *testing.T, url string, h http.Header) (int, string, string) {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url, h)
	if err != nil {
		if resp == nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b)), ""
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, m, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	return 0, "", string(m)
}

// Issue 13: the example file as written, with the published JS client:
// tokens decide who connects and with which id; the channels claim limits
// joins; events follow the file; presence shows the id and the token's info.
func TestStandaloneExample(t *testing.T) {
	bin := buildBinary(t)
	addr := startConfigured(t, bin, "--config", exampleConfig)
	ws := "ws://" + addr + "/api/socket"

	// who connects
	now := time.Now()
	for _, c := range []struct {
		name   string
		url    string
		header http.Header
		want   string
	}{
		{"no token", ws, nil, "Token missing"},
		{"garbage", ws + "?token=abc", nil, "Malformed token"},
		{"wrong secret", ws + "?token=" + token(t, "other", jwt.MapClaims{"sub": "u1"}), nil, "Invalid token signature"},
		{"expired", ws + "?token=" + token(t, "change-me", jwt.MapClaims{"sub": "u1", "exp": now.Add(-time.Minute).Unix()}), nil, "Token expired"},
		{"not yet", ws + "?token=" + token(t, "change-me", jwt.MapClaims{"sub": "u1", "nbf": now.Add(time.Hour).Unix()}), nil, "Token not valid yet"},
		{"no sub", ws + "?token=" + token(t, "change-me", jwt.MapClaims{"exp": now.Add(time.Hour).Unix()}), nil, "Token without sub"},
		{"alg none", ws + "?token=" + noneToken(t), nil, "Invalid token signature"},
	} {
		if status, body, _ := dialStatus(t, c.url, c.header); status != 401 || body != c.want {
			t.Errorf("%s: %d %q, want 401 %q", c.name, status, body, c.want)
		}
	}
	// the Bearer header works too, and CONNECT carries sub as the id
	status, _, connect := dialStatus(t, ws, http.Header{"Authorization": {"Bearer " + userToken(t, "header-user", nil)}})
	if status != 0 || !strings.Contains(connect, `"connectionId":"header-user"`) {
		t.Fatalf("bearer: status %d, CONNECT %s", status, connect)
	}

	ann := newJS(t, addr, userToken(t, "ann", map[string]any{"info": map[string]any{"name": "Ann"}}))
	bob := newJS(t, addr, userToken(t, "bob", map[string]any{"channels": []string{"/chat/*", "/notifications/bob"}}))

	ann.join("/chat/1", "JOINED")
	bob.join("/chat/1", "JOINED")
	bob.join("/notifications/ann", "DECLINED") // outside bob's channels claim
	bob.join("/notifications/bob", "JOINED")
	ann.join("/notifications/bob", "JOINED") // no claim: every configured channel
	ann.join("/elsewhere", "DECLINED")       // not configured

	users := ann.expect("users", func(e jsEv) bool { return e.Channel == "/chat/1" && len(e.Users) == 2 }).Users
	byID := map[string]map[string]any{}
	for _, u := range users {
		byID[fmt.Sprint(u["id"])] = u
	}
	if byID["ann"]["name"] != "Ann" || byID["bob"] == nil || byID["bob"]["_channels"] != nil {
		t.Fatalf("presence %v, want ann with name Ann and bob without his claim", users)
	}

	// message: broadcast (the sender gets it too)
	ann.d.Send(map[string]any{"op": "send", "channel": "/chat/1", "event": "message", "payload": map[string]any{"text": "hi"}})
	for _, c := range []*jsClient{ann, bob} {
		if m := c.expect("message", func(e jsEv) bool { return e.Event == "message" }); m.Payload["text"] != "hi" {
			t.Fatalf("message %v", m.Payload)
		}
	}
	// typing: broadcast_from (bob gets it)
	ann.d.Send(map[string]any{"op": "send", "channel": "/chat/1", "event": "typing", "payload": map[string]any{"on": true}})
	bob.expect("message", func(e jsEv) bool { return e.Event == "typing" })
	// unlisted events and events on a listen-only channel: the protocol's error, 403
	if r := ann.request("/chat/1", "delete_everything", map[string]any{}); r["code"] != float64(403) {
		t.Fatalf("unlisted event: %v, want code 403", r)
	}
	if r := bob.request("/notifications/bob", "message", map[string]any{}); r["code"] != float64(403) {
		t.Fatalf("event on a listen-only channel: %v, want code 403", r)
	}

	// the server API, through the Go package
	ctx := context.Background()
	api := apiclient.New("http://"+addr, "backend-secret")
	if err := api.Broadcast(ctx, apiclient.Broadcast{Channel: "/notifications/bob", Event: "alert", Payload: map[string]any{"n": 1}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*jsClient{ann, bob} {
		c.expect("message", func(e jsEv) bool { return e.Channel == "/notifications/bob" && e.Event == "alert" })
	}
	if err := api.Broadcast(ctx, apiclient.Broadcast{Channel: "/chat/1", Event: "to-bob", To: []string{"bob"}}); err != nil {
		t.Fatal(err)
	}
	bob.expect("message", func(e jsEv) bool { return e.Event == "to-bob" })
	if err := api.Broadcast(ctx, apiclient.Broadcast{Channel: "/chat/1", Event: "not-ann", Except: "ann"}); err != nil {
		t.Fatal(err)
	}
	bob.expect("message", func(e jsEv) bool { return e.Event == "not-ann" })
	// ann got neither: the next thing she sees from the API is "all"
	if err := api.Broadcast(ctx, apiclient.Broadcast{Channel: "/chat/1", Event: "all"}); err != nil {
		t.Fatal(err)
	}
	ann.expect("message", func(e jsEv) bool { return e.Event == "all" })
	for _, e := range ann.d.History() {
		var j jsEv
		_ = e.Decode(&j)
		if j.Ev == "message" && (j.Event == "to-bob" || j.Event == "not-ann") {
			t.Fatalf("ann got %s", e.Raw)
		}
	}
	chans, err := api.Channels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(chans); got != "[{/api/socket /chat/1 2} {/api/socket /notifications/bob 2}]" {
		t.Fatalf("channels %s", got)
	}
	pres, err := api.Presence(ctx, "/chat/1")
	if err != nil || pres["ann"]["name"] != "Ann" || len(pres) != 2 {
		t.Fatalf("presence %v %v", pres, err)
	}
	u, err := api.User(ctx, "ann")
	if err != nil || u.Assigns["name"] != "Ann" || fmt.Sprint(u.Channels) != "[/chat/1 /notifications/bob]" {
		t.Fatalf("user %+v %v", u, err)
	}
	if err := api.Evict(ctx, "/chat/1", "bob", "bye"); err != nil {
		t.Fatal(err)
	}
	if m := bob.expect("message", func(e jsEv) bool { return e.Event == "kicked_out" }); m.Payload["message"] != "bye" {
		t.Fatalf("kicked_out %v", m.Payload)
	}
	ann.expect("users", func(e jsEv) bool { return e.Channel == "/chat/1" && len(e.Users) == 1 })
	var ae *apiclient.Error
	if err := api.Evict(ctx, "/chat/1", "bob", ""); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("evicting a non-member: %v, want 404", err)
	}
	if _, err := api.Presence(ctx, "/chat/none"); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("unknown channel: %v, want 404", err)
	}
	if err := api.Disconnect(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	bob.expect("conn", func(e jsEv) bool { return !strings.EqualFold(e.State, "connected") })
	// bad input to the API: each a JSON error, and ann's connection is unaffected
	for _, c := range []struct {
		name, method, path, key, body string
		status                        int
	}{
		{"missing key", "GET", "/api/channels", "", "", 401},
		{"wrong key", "GET", "/api/channels", "apikey nope", "", 401},
		{"bearer is not an api key", "GET", "/api/channels", "Bearer backend-secret", "", 401},
		{"malformed JSON", "POST", "/api/broadcast", "apikey backend-secret", `{"channel":`, 400},
		{"unknown field", "POST", "/api/broadcast", "apikey backend-secret", `{"channel":"/chat/1","event":"e","too":["x"]}`, 400},
		{"payload not an object", "POST", "/api/broadcast", "apikey backend-secret", `{"channel":"/chat/1","event":"e","payload":[1]}`, 400},
		{"no event", "POST", "/api/broadcast", "apikey backend-secret", `{"channel":"/chat/1"}`, 400},
		{"unknown channel", "POST", "/api/broadcast", "apikey backend-secret", `{"channel":"/chat/nobody","event":"e"}`, 404},
		{"to a non-member", "POST", "/api/broadcast", "apikey backend-secret", `{"channel":"/chat/1","event":"e","to":["zed"]}`, 404},
		{"oversized body", "POST", "/api/broadcast", "apikey backend-secret", `{"channel":"/chat/1","event":"e","payload":{"x":"` + strings.Repeat("a", 40<<10) + `"}}`, 413},
		{"unknown call", "POST", "/api/publish", "apikey backend-secret", `{}`, 404},
	} {
		req, _ := http.NewRequest(c.method, "http://"+addr+c.path, strings.NewReader(c.body))
		if c.key != "" {
			req.Header.Set("Authorization", c.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var body struct{ Error string }
		derr := json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != c.status || derr != nil || body.Error == "" {
			t.Errorf("%s: %d %q (%v), want %d with a JSON error", c.name, resp.StatusCode, body.Error, derr, c.status)
		}
	}
	// far over the engine's bound on HTTP bodies: refused from the head
	// (413 and the connection closed, which the sender may see as a reset
	// while it is still writing)
	req, _ := http.NewRequest("POST", "http://"+addr+"/api/broadcast", strings.NewReader(strings.Repeat("a", 2<<20)))
	req.Header.Set("Authorization", "apikey backend-secret")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Fatalf("2 MiB body: %d, want 413", resp.StatusCode)
		}
	}
	ann.d.Send(map[string]any{"op": "send", "channel": "/chat/1", "event": "message", "payload": map[string]any{"text": "still here"}})
	ann.expect("message", func(e jsEv) bool { return e.Event == "message" && e.Payload["text"] == "still here" })
}

// noneToken is an unsigned token (alg none), which must never pass.
func noneToken(t *testing.T) string {
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "u1"}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Issue 13: the configuration file below the environment and the flags;
// unknown keys and bad values stop the start naming the key and line.
func TestConfigFileLayers(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	app := "endpoints:\n  - path: /ws\n    channels:\n      - pattern: /room/:id\n"
	good := write("good.yaml", "max_connections: 7\nevent_loops: 2\norigins: [https://a.example, https://b.example]\nauth:\n  jwt:\n    hmac_secret: s\napi:\n  key: k\n"+app)
	env := map[string]string{"PONDSOCKET_EVENT_LOOPS": "3"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	c, err := parseConfig([]string{"--config", good, "--max-connections", "9"}, lookup, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.maxConnections != 9 || c.eventLoops != 3 || c.origins != "https://a.example,https://b.example" || c.auth.hmacSecret != "s" || c.api.key != "k" || c.app == nil || c.app.Endpoints[0].Channels[0].Pattern != "/room/:id" {
		t.Fatalf("layers: %+v", c)
	}
	// the environment names the file too
	env = map[string]string{"PONDSOCKET_CONFIG": good}
	if c, err = parseConfig(nil, lookup, io.Discard); err != nil || c.maxConnections != 7 || c.app == nil {
		t.Fatalf("PONDSOCKET_CONFIG: %v %+v", err, c)
	}
	for _, b := range []struct{ file, want string }{
		{"max_conections: 3\n" + app, "max_conections (line 1): unknown key"},
		{"auth:\n  jwt:\n    hmac_secrt: x\n" + app, "auth.jwt.hmac_secrt (line 3): unknown key"},
		{"max_connections: lots\n" + app, `max_connections (line 1): "lots": parse error`},
		{"ping_interval: 30\n" + app, `ping_interval (line 1)`},
		{"event_loops: -1\n" + app, "event_loops (line 1): must be 0"},
		{"endpoints:\n  - path: /ws\n    channels:\n      - pattern: /r\n        events: {m: shout}\n", "endpoints[0].channels[0].events.m (line 5): must be broadcast"},
		{"endpoints:\n  - path: /ws\n    channels:\n      - pattern: /r\n        presense: true\n", "endpoints[0].channels[0].presense (line 5): unknown key"},
		{"endpoints:\n  - path: /ws\n    channels:\n      - pattern: /r\n        presence: maybe\n", "endpoints[0].channels[0].presence (line 5): must be true or false"},
		{"endpoints: []\n", "at least one endpoint"},
		{"test_events: true\n" + app, "test_events (line 1): only for the demo"},
		{"auth:\n  jwt:\n    public_key_file: /nonexistent\n" + app, "auth.jwt.public_key_file (line 3)"},
	} {
		_, err := parseConfig([]string{"--config", write("bad.yaml", b.file)}, noEnv, io.Discard)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%q: error %v, want %q", b.file, err, b.want)
		}
	}
	// app settings without a file: refused (the demo has no auth)
	if _, err := parseConfig([]string{"--api-key", "k"}, noEnv, io.Discard); err == nil || !strings.Contains(err.Error(), "--api-key: needs a configuration file") {
		t.Errorf("--api-key without --config: %v", err)
	}
}

// Every flag is in the reference table of docs/configuration.md under its
// file key, flag and environment variable.
func TestConfigurationReferenceComplete(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var c config
	envOf := map[string]string{}
	defineAppFlags(fs, &c, func(name, env string) string { envOf[name] = env; return "" })
	defineBusFlags(fs, &c, func(name, env string) string { envOf[name] = env; return "" })
	out := &strings.Builder{} // every flag, from the help text
	_, _ = parseConfig([]string{"--help"}, noEnv, out)
	seen := 0
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "-") {
			continue
		}
		seen++
		name := strings.TrimPrefix(f[0], "-")
		if !strings.Contains(string(doc), "`--"+name+"`") {
			t.Errorf("docs/configuration.md lacks --%s", name)
		}
		if name != "config" && name != "version" && !strings.Contains(string(doc), "`"+fileKey(name)+"`") {
			t.Errorf("docs/configuration.md lacks the file key %s", fileKey(name))
		}
	}
	if seen < 30 {
		t.Fatalf("read %d flags from the help text", seen)
	}
	for _, env := range envOf {
		if !strings.Contains(string(doc), env) {
			t.Errorf("docs/configuration.md lacks %s", env)
		}
	}
}

// Two tabs of one user (issue 13 point 2): one presence entry, a message
// to the user reaches both, the user stays present while one tab is open
// and leaves with the last; a third connection over the per-user limit is
// declined 409 while a bystander goes on chatting.
func TestStandaloneTwoTabs(t *testing.T) {
	testenv.NodeModules(t)
	addr := startConfigured(t, buildBinary(t), "--config", exampleConfig, "--max-connections-per-user", "2")
	ctx := context.Background()
	api := apiclient.New("http://"+addr, "backend-secret")
	tab1 := newJS(t, addr, userToken(t, "ann", nil))
	tab2 := newJS(t, addr, userToken(t, "ann", nil))
	bob := newJS(t, addr, userToken(t, "bob", nil))
	bob.join("/chat/tabs", "JOINED")
	tab1.join("/chat/tabs", "JOINED")
	tab2.join("/chat/tabs", "JOINED")
	for _, c := range []*jsClient{bob, tab1, tab2} {
		c.expect("users", func(e jsEv) bool { return e.Channel == "/chat/tabs" && len(e.Users) == 2 })
	}
	if pres, err := api.Presence(ctx, "/chat/tabs"); err != nil || len(pres) != 2 {
		t.Fatalf("presence %v %v, want ann and bob once", pres, err)
	}
	// over the limit: 409, and bob is unaffected
	if status, body, _ := dialStatus(t, fmt.Sprintf("ws://%s/api/socket?token=%s", addr, userToken(t, "ann", nil)), nil); status != 409 {
		t.Fatalf("third connection of ann: %d %q, want 409", status, body)
	}
	bob.d.Send(map[string]any{"op": "send", "channel": "/chat/tabs", "event": "message", "payload": map[string]any{"text": "still"}})
	for _, c := range []*jsClient{bob, tab1, tab2} {
		c.expect("message", func(e jsEv) bool { return e.Event == "message" && e.Payload["text"] == "still" })
	}
	// a message to the user reaches both tabs
	if err := api.Broadcast(ctx, apiclient.Broadcast{Channel: "/chat/tabs", Event: "to-ann", To: []string{"ann"}}); err != nil {
		t.Fatal(err)
	}
	tab1.expect("message", func(e jsEv) bool { return e.Event == "to-ann" })
	tab2.expect("message", func(e jsEv) bool { return e.Event == "to-ann" })
	// one tab closes: ann is still present
	tab1.d.Close()
	testenv.Eventually(t, 10*time.Second, "the server sees one connection of ann", func() bool {
		u, err := api.User(ctx, "ann")
		return err == nil && u.Connections == 1
	})
	if pres, err := api.Presence(ctx, "/chat/tabs"); err != nil || pres["ann"] == nil || len(pres) != 2 {
		t.Fatalf("presence after one tab closed: %v %v", pres, err)
	}
	for _, e := range bob.d.History() {
		var j jsEv
		_ = e.Decode(&j)
		if j.Ev == "leave" && j.Channel == "/chat/tabs" {
			t.Fatalf("bob saw ann leave while a tab was open: %s", e.Raw)
		}
	}
	// the last tab closes: she leaves
	tab2.d.Close()
	bob.expect("leave", func(e jsEv) bool { return e.Channel == "/chat/tabs" })
	bob.expect("users", func(e jsEv) bool { return e.Channel == "/chat/tabs" && len(e.Users) == 1 })
}
