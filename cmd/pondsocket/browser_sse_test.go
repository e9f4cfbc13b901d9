package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pondsocket/pondsocket/internal/testenv"
)

// ssePage is the test page of the other origins: the bundled client and
// places for the page's log.
const ssePage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SSEClient from another origin</title><link rel="icon" href="data:,">
<script src="/client.js"></script></head>
<body><h1>SSEClient from another origin</h1><p id="origin"></p><p id="users"></p><ul id="log"></ul></body></html>
`

// bundleSSEClient is the published client's SSEClient as one browser
// script (testdata/js/bundle-cjs.mjs), defining the global PondSocketSSE.
func bundleSSEClient(t *testing.T, node string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "bundle-cjs.mjs", "@eleven-am/pondsocket-client/browser/sseClient.js", "PondSocketSSE")
	cmd.Dir = filepath.Join(testenv.RepoRoot(), "testdata", "js")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bundle the SSEClient: %v\n%s", err, stderr.Bytes())
	}
	return out
}

// pageServer serves the test page and the bundle on an origin of its own
// (a loopback port); it stops when the test ends.
func pageServer(t *testing.T, bundle []byte) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(ssePage))
	})
	mux.HandleFunc("GET /client.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Write(bundle)
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s.URL
}

// The npm SSEClient on Chromium's real EventSource from pages served on
// other origins (testdata/js/browser-sse.mjs). The server allows one of
// them (--origins): from it two users connect, join, see each other's
// presence and broadcasts (cross-origin POSTs after the OPTIONS preflight),
// read a 404 through CORS, and leave with the DELETE. From the other
// origin the stream is refused, the client never connects, and the
// preflight fails. Screenshots: sse-cross-origin.png,
// sse-refused-origin.png.
func TestBrowserSSECrossOrigin(t *testing.T) {
	b := needBrowser(t)
	bundle := bundleSSEClient(t, b.node)
	allowed := pageServer(t, bundle)
	refused := pageServer(t, bundle)
	srv, logs := startInProcess(t, "--origins", allowed)
	before := srv.Stats()

	b.run(t, "browser-sse.mjs", []string{
		"SERVER=http://" + srv.Addr().String() + "/api/socket",
		"ALLOWED_PAGE=" + allowed + "/",
		"REFUSED_PAGE=" + refused + "/",
		"ROOM=/chat/cors",
	}, logs, nil)

	// The server saw two streams accepted, joined and gone; the refused
	// origin's streams were answered 403 before any handler ran.
	testenv.Eventually(t, 10*time.Second, "both streams closed", func() bool {
		st := srv.Stats()
		return st.Connections == 0 && st.Channels == 0 && st.Accepted-before.Accepted == 2 && st.Joins-before.Joins == 2
	})
	if st := srv.Stats(); st.MessagesIn-before.MessagesIn < 4 {
		t.Errorf("messages in: %d, want the joins and the two broadcasts", st.MessagesIn-before.MessagesIn)
	}
	// eve's three or more attempts (the driver waited for three errors)
	if st := srv.Stats(); st.Declined-before.Declined < 3 {
		t.Errorf("streams declined: %d, want the refused origin's attempts", st.Declined-before.Declined)
	}
}

// The demo page when the server refuses its connection (issue 14 §3): the
// server is at --max-connections 1, held by another client. The browser
// cannot read the refused upgrade, so after three failed attempts the page
// asks the endpoint as an event stream, reads "503 Too many connections"
// and shows it; once the other client leaves, the page connects and the
// note goes (testdata/js/browser-refused.mjs). Screenshots:
// demo-refused.png, demo-refused-then-connected.png.
func TestBrowserDemoRefused(t *testing.T) {
	b := needBrowser(t)
	srv, logs := startInProcess(t, "--max-connections", "1")
	addr := srv.Addr().String()
	blocker, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/api/socket?username=blocker", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close()
	blocker.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, msg, err := blocker.ReadMessage(); err != nil || !strings.Contains(string(msg), `"CONNECT"`) {
		t.Fatalf("the blocker's CONNECT: %q %v", msg, err)
	}
	freed := false
	b.run(t, "browser-refused.mjs", []string{
		"PONDSOCKET_URL=http://" + addr + "/",
		"REASON=Too many connections",
	}, logs, func(ev browserEv) {
		if ev.Ev == "need" && ev.What == "free" && !freed {
			freed = true
			blocker.Close()
		}
	})
	if !freed {
		t.Fatal("the driver never asked for room")
	}
	if st := srv.Stats(); st.Declined < 3 {
		t.Errorf("declined: %d, want the page's refused attempts and its probe", st.Declined)
	}
}

// What the demo page's probe relies on, cross-origin: at the connection
// limit an event-stream GET from an allowed origin is refused 503 with the
// CORS headers (a page can read why); from another origin it is 403
// without them.
func TestSSELimitRefusalReadableCrossOrigin(t *testing.T) {
	const allowed = "http://app.example"
	srv, _ := startInProcess(t, "--max-connections", "1", "--origins", allowed)
	addr := srv.Addr().String()
	blocker, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/api/socket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close()
	testenv.Eventually(t, 10*time.Second, "the blocker holds the only slot", func() bool { return srv.Stats().Connections == 1 })
	probe := func(origin string) (int, string, http.Header) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/api/socket?username=zoe", nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b)), resp.Header
	}
	if code, body, h := probe(allowed); code != 503 || body != "Too many connections" || h.Get("Access-Control-Allow-Origin") != allowed {
		t.Errorf("allowed origin: %d %q, Access-Control-Allow-Origin %q", code, body, h.Get("Access-Control-Allow-Origin"))
	}
	if code, _, h := probe("http://evil.example"); code != 403 || h.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("refused origin: %d, Access-Control-Allow-Origin %q", code, h.Get("Access-Control-Allow-Origin"))
	}
}
