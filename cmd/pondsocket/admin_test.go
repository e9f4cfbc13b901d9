package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/client"
	"github.com/pondsocket/pondsocket/internal/testenv"
)

// startConfiguredInProcess starts the command's server with the example's
// configuration file (plus args) on a free loopback port, in this process
// (so the test can read srv.Stats), and stops it when the test ends.
func startConfiguredInProcess(t *testing.T, args ...string) (*pondsocket.Server, *syncBuffer) {
	t.Helper()
	args = append([]string{"--config", exampleConfig, "--addr", "127.0.0.1:0", "--log-level", "debug"}, args...)
	cfg, err := parseConfig(args, func(string) (string, bool) { return "", false }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	srv, err := newServer(cfg, newLogger(cfg, logs))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(5 * time.Second); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return srv, logs
}

// apiGet calls GET path with the Authorization header auth ("" for none)
// and decodes the JSON answer into v.
func apiGet(t *testing.T, base, path, auth string, v any) int {
	t.Helper()
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("GET %s: Content-Type %q", path, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode
}

// GET /api/stats: 401 without the right key; with it, the counters, the
// channels with their member counts and the node match what two Go
// clients did.
func TestAPIStats(t *testing.T) {
	srv, _ := startConfiguredInProcess(t)
	base := "http://" + srv.Addr().String()

	for _, auth := range []string{"", "apikey nope", "Bearer backend-secret", "apikey backend-secret2"} {
		var e struct{ Error string }
		if st := apiGet(t, base, "/api/stats", auth, &e); st != http.StatusUnauthorized || e.Error == "" {
			t.Errorf("Authorization %q: %d %q, want 401 with an error", auth, st, e.Error)
		}
	}

	var st statsAnswer
	if code := apiGet(t, base, "/api/stats", "apikey backend-secret", &st); code != 200 {
		t.Fatalf("stats: %d", code)
	}
	if st.Connections != 0 || st.Channels != 0 || len(st.ChannelList) != 0 || st.Clustered || !st.Ready {
		t.Fatalf("idle server: %+v", st)
	}
	if len(st.Nodes) != 1 || !st.Nodes[0].Self || !strings.Contains(st.Nodes[0].ID, srv.Addr().String()) {
		t.Fatalf("nodes of a single node: %+v", st.Nodes)
	}
	before := st

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var chans []*client.Channel
	for _, u := range []string{"ann", "bob"} {
		c, err := client.Dial(ctx, "ws://"+srv.Addr().String()+"/api/socket", &client.Options{Params: map[string]string{"token": userToken(t, u, nil)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		ch := c.Channel("/chat/stats", nil)
		if err := ch.Join(ctx); err != nil {
			t.Fatal(err)
		}
		chans = append(chans, ch)
	}
	const sends = 5
	got := make(chan struct{}, 2*sends)
	chans[1].On("message", func(client.Message) { got <- struct{}{} })
	chans[0].On("message", func(client.Message) { got <- struct{}{} })
	for i := range sends {
		if err := chans[0].Send("message", map[string]any{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 * sends {
		select {
		case <-got:
		case <-ctx.Done():
			t.Fatal("broadcasts did not arrive")
		}
	}

	testenv.Eventually(t, 10*time.Second, "stats show two connections in /chat/stats and the traffic", func() bool {
		st = statsAnswer{}
		apiGet(t, base, "/api/stats", "apikey backend-secret", &st)
		return st.Connections == 2 && st.Channels == 1 && st.MessagesIn >= before.MessagesIn+2+sends &&
			st.MessagesOut >= before.MessagesOut+2*sends
	})
	if len(st.ChannelList) != 1 || st.ChannelList[0] != (channelInfo{Endpoint: "/api/socket", Name: "/chat/stats", Members: 2}) || st.MoreChannels != 0 {
		t.Fatalf("channel list %+v (%d more)", st.ChannelList, st.MoreChannels)
	}
	if st.Accepted < before.Accepted+2 || st.Joins < before.Joins+2 || st.Time < before.Time || st.UptimeSeconds <= 0 {
		t.Fatalf("counters: %+v, before %+v", st, before)
	}
}

// The admin page is served (with its files and a strict CSP) only when the
// server API is on; otherwise /admin answers 404 saying why.
func TestAdminPageServed(t *testing.T) {
	get := func(url string) (int, string, http.Header) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	t.Run("demo", func(t *testing.T) {
		srv, _ := startInProcess(t)
		for _, p := range []string{"/admin", "/admin/", "/admin/admin.js"} {
			if code, body, _ := get("http://" + srv.Addr().String() + p); code != 404 || body != adminOff {
				t.Errorf("GET %s: %d %q, want 404 %q", p, code, body, adminOff)
			}
		}
	})
	t.Run("configured", func(t *testing.T) {
		srv, _ := startConfiguredInProcess(t)
		base := "http://" + srv.Addr().String()
		for _, c := range []struct{ path, ctype, contains string }{
			{"/admin/", "text/html", `<script type="module" src="admin.js"></script>`},
			{"/admin/admin.js", "text/javascript", "/api/stats"},
			{"/admin/admin.css", "text/css", "#plot"},
			{"/admin/favicon.svg", "image/svg+xml", "<svg"},
			{"/admin/theme.css", "text/css", "--accent"},
		} {
			code, body, h := get(base + c.path)
			if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), c.ctype) || !strings.Contains(body, c.contains) {
				t.Errorf("GET %s: %d %q, want %s containing %q", c.path, code, h.Get("Content-Type"), c.ctype, c.contains)
			}
			if csp := h.Get("Content-Security-Policy"); csp != pageCSP {
				t.Errorf("GET %s: Content-Security-Policy %q", c.path, csp)
			}
		}
		// /admin redirects to the folder (relative links need the slash)
		req, _ := http.NewRequest("GET", base+"/admin", nil)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/admin/" {
			t.Errorf("GET /admin: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if code, _, _ := get(base + "/admin/nothing.js"); code != 404 {
			t.Errorf("GET /admin/nothing.js: %d", code)
		}
	})
}

// The admin page in Chromium (testdata/js/browser-admin.mjs): three users
// of the published JS client in one channel; the page refuses a wrong key,
// then shows 3 connections, the channel with 3 members and, once chosen,
// its presence by user id, this node, zero rates and, while one client
// sends, non-zero rates and a plot. Screenshots: admin-idle.png,
// admin-traffic.png in $PONDSOCKET_ARTIFACTS.
func TestBrowserAdmin(t *testing.T) {
	b := needBrowser(t)
	srv, logs := startConfiguredInProcess(t)
	addr := srv.Addr().String()
	const room = "/chat/admin"
	users := []string{"ann", "bob", "cy"}
	var js []*jsClient
	for _, u := range users {
		c := newJS(t, addr, userToken(t, u, nil))
		c.join(room, "JOINED")
		js = append(js, c)
	}
	testenv.Eventually(t, 10*time.Second, "three members", func() bool {
		var st statsAnswer
		apiGet(t, "http://"+addr, "/api/stats", "apikey backend-secret", &st)
		return st.Connections == 3 && len(st.ChannelList) == 1 && st.ChannelList[0].Members == 3
	})

	// traffic: ann sends 10 messages a second while the page looks, for
	// at most 60 s (stopped when the test ends)
	stop := make(chan struct{})
	var sender sync.WaitGroup
	defer func() { close(stop); sender.Wait() }()
	trafficStarted := false
	b.run(t, "browser-admin.mjs", []string{
		"ADMIN_URL=http://" + addr + "/admin/",
		"API_KEY=backend-secret",
		"CHANNEL=" + room,
		"USERS=" + strings.Join(users, ","),
	}, logs, func(ev browserEv) {
		if ev.Ev != "need" || ev.What != "traffic" || trafficStarted {
			return
		}
		trafficStarted = true
		sender.Add(1)
		go func() {
			defer sender.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for i := 0; i < 600; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				js[0].d.Send(map[string]any{"op": "send", "channel": room, "event": "message", "payload": map[string]any{"n": i}})
			}
		}()
	})
	if !trafficStarted {
		t.Fatal("the driver never asked for traffic")
	}
}

// In a cluster over a real redis-server, /api/stats names this node first
// and then the other nodes heard from; a node that stops drops out.
func TestAPIStatsCluster(t *testing.T) {
	redis, err := exec.LookPath("redis-server")
	testenv.Require(t, "redis-server", err == nil, "install it with apt-get install -y redis-server (.ci/run does)")
	redisAddr := testenv.FreeAddr(t)
	testenv.Start(t, redis, testenv.ProcOptions{
		Args:  []string{"--port", redisAddr[strings.LastIndexByte(redisAddr, ':')+1:], "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"},
		Ready: "Ready to accept connections",
	})
	cluster := []string{"--redis-addr", redisAddr, "--heartbeat-interval", "200ms", "--heartbeat-timeout", "2s"}
	a, _ := startConfiguredInProcess(t, append([]string{"--node-id", "node-a"}, cluster...)...)
	b, _ := startConfiguredInProcess(t, append([]string{"--node-id", "node-b"}, cluster...)...)
	stats := func(srv *pondsocket.Server) statsAnswer {
		var st statsAnswer
		if code := apiGet(t, "http://"+srv.Addr().String(), "/api/stats", "apikey backend-secret", &st); code != 200 {
			t.Fatalf("stats: %d", code)
		}
		return st
	}
	nodes := func(st statsAnswer) string {
		var s []string
		for _, n := range st.Nodes {
			s = append(s, fmt.Sprintf("%s:%v", n.ID, n.Self))
		}
		return strings.Join(s, " ")
	}
	testenv.Eventually(t, 20*time.Second, "each node lists itself first, then the other", func() bool {
		sa, sb := stats(a), stats(b)
		return nodes(sa) == "node-a:true node-b:false" && nodes(sb) == "node-b:true node-a:false"
	})
	if st := stats(a); !st.Clustered || !st.Ready || st.Node != "node-a" {
		t.Fatalf("node a: clustered %v ready %v (%s) node %q", st.Clustered, st.Ready, st.ReadyError, st.Node)
	}
	if err := b.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, "node b drops out of node a's list", func() bool {
		return nodes(stats(a)) == "node-a:true"
	})
}

// With --api-addr the server API and the admin page move to a listener of
// their own: answered there (with the key), absent from the WebSocket port.
func TestAPIOnItsOwnListener(t *testing.T) {
	args := []string{"--config", exampleConfig, "--addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--log-level", "debug"}
	cfg, err := parseConfig(args, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.api.mux = http.NewServeMux()
	logs := &syncBuffer{}
	log := newLogger(cfg, logs)
	srv, err := newServer(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(5 * time.Second) })
	hs, err := serveAPIListener(cfg.api, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hs.Close() })

	key := "apikey backend-secret"
	api, main := "http://"+hs.Addr, "http://"+srv.Addr().String()
	var st map[string]any
	if code := apiGet(t, api, "/api/stats", key, &st); code != http.StatusOK || st["connections"] == nil {
		t.Fatalf("GET /api/stats on the API listener: %d %v", code, st)
	}
	var answer map[string]any
	if code := apiGet(t, api, "/api/stats", "", &answer); code != http.StatusUnauthorized {
		t.Fatalf("GET /api/stats without the key: %d, want 401", code)
	}
	for _, path := range []string{"/api/stats", "/admin/"} {
		resp, err := http.Get(main + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET %s on the WebSocket port: %d, want 404 (it moved to --api-addr)", path, resp.StatusCode)
		}
	}
	resp, err := http.Get(api + "/admin/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /admin/ on the API listener: %d", resp.StatusCode)
	}
	if _, err := parseConfig([]string{"--api-addr", "127.0.0.1:0"}, noEnv, io.Discard); err == nil {
		t.Fatal("--api-addr without a configuration file was accepted")
	}
}
