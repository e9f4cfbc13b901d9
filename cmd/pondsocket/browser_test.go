package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/internal/testenv"
)

// The chat page in a real browser: Debian's Chromium, driven by
// playwright-core (testdata/js/browser-test.mjs), opens the page in two
// tabs of separate contexts; alice and bob join one room, see each other
// in the presence list, see typing and each other's messages and status;
// closing bob's tab removes him from alice's list. Screenshots go to
// $PONDSOCKET_ARTIFACTS (else a temporary folder) and are logged.
func TestBrowserChat(t *testing.T) {
	b := needBrowser(t)
	srv, logs := startInProcess(t)
	url := "http://" + srv.Addr().String() + "/"
	b.run(t, "browser-test.mjs", []string{"PONDSOCKET_URL=" + url}, logs, nil)

	// The server saw it: two joins, and every connection gone once alice
	// left and bob's tab closed.
	testenv.Eventually(t, 10*time.Second, "two joins, two leaves, no connection and no channel left", func() bool {
		st := srv.Stats()
		return st.Joins >= 2 && st.Leaves >= 2 && st.Connections == 0 && st.Channels == 0
	})
	// Chromium offered permessage-deflate and both tabs got it
	if st := srv.Stats(); st.CompressedConnections < 2 {
		t.Fatalf("connections with permessage-deflate: %d, want the two tabs", st.CompressedConnections)
	}
}

// browser is what a browser test needs: Node, playwright-core, Chromium
// and the folder screenshots go to.
type browser struct {
	node, chromium, artifacts string
}

// needBrowser finds the browser test's parts (testenv.Require: a skip by
// hand, a failure under CI=true). Screenshots go to $PONDSOCKET_ARTIFACTS,
// else a temporary folder.
func needBrowser(t *testing.T) browser {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a browser")
	}
	node := testenv.NodePath(t)
	modules := testenv.NodeModules(t)
	_, err := os.Stat(filepath.Join(modules, "playwright-core", "package.json"))
	testenv.Require(t, "playwright-core", err == nil,
		"not in testdata/js/node_modules; run ./scripts/test.sh or npm ci --prefix testdata/js")
	chromium, ok := os.LookupEnv("PONDSOCKET_CHROMIUM")
	if !ok {
		chromium = "/usr/bin/chromium"
	}
	_, err = os.Stat(chromium)
	testenv.Require(t, "chromium", err == nil,
		chromium+" not found; apt-get install -y --no-install-recommends chromium fonts-dejavu-core (.ci/run does)")

	artifacts := os.Getenv("PONDSOCKET_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.TempDir()
	} else if artifacts, err = filepath.Abs(artifacts); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	return browser{node: node, chromium: chromium, artifacts: artifacts}
}

// browserEv is one line of a driver's output (browser-lib.mjs).
type browserEv struct {
	Ev, Name, Step, Message, Path, Page, Type, Text, What string
	Ms                                                    int
	Raw                                                   json.RawMessage `json:"-"`
}

// run runs the driver script of testdata/js with env added and fails the
// test unless it reports "done" and saved its screenshots. on (may be nil)
// sees every line that is not a step, a screenshot, page output or the
// outcome: the driver's requests ("need") and reports, on the goroutine
// reading the driver. logs is the server's log, shown on failure.
func (b browser) run(t *testing.T, script string, env []string, logs *syncBuffer, on func(browserEv)) {
	t.Helper()
	// The browser's profile and caches live in a folder of the test's.
	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.node, filepath.Join(testenv.RepoRoot(), "testdata", "js", script))
	cmd.Dir = filepath.Join(testenv.RepoRoot(), "testdata", "js")
	cmd.Env = append(os.Environ(),
		"CHROMIUM="+b.chromium,
		"ARTIFACTS="+b.artifacts,
		"TIMEOUT_MS=120000",
		"TMPDIR="+tmp,
		"XDG_CONFIG_HOME="+filepath.Join(tmp, "config"),
		"XDG_CACHE_HOME="+filepath.Join(tmp, "cache"),
	)
	cmd.Env = append(cmd.Env, env...)
	// Node and Chromium in a process group of their own, killed together
	// if the run outlives its budget.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	var (
		done     bool
		failures []string
		shots    []string
	)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev browserEv
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Logf("node: %s", sc.Bytes())
			continue
		}
		ev.Raw = bytes.Clone(sc.Bytes())
		switch ev.Ev {
		case "step":
			t.Logf("ok  %-60s %5d ms", ev.Name, ev.Ms)
		case "screenshot":
			shots = append(shots, ev.Path)
		case "console", "pageerror":
			t.Logf("%s %s %s: %s", ev.Page, ev.Ev, ev.Type, ev.Text)
		case "fail":
			failures = append(failures, ev.Step+": "+ev.Message)
		case "done":
			done = true
		default:
			t.Logf("driver: %s", ev.Raw)
			if on != nil {
				on(ev)
			}
		}
	}
	werr := cmd.Wait()
	t.Logf("browser run: %v", time.Since(start).Round(time.Millisecond))
	for _, p := range shots {
		t.Logf("screenshot: %s", p)
	}
	if len(failures) > 0 || !done || werr != nil {
		t.Errorf("browser test failed (exit: %v, context: %v)", werr, ctx.Err())
		for _, f := range failures {
			t.Errorf("FAIL %s", f)
		}
		t.Logf("node stderr:\n%s", tail(stderr.Bytes(), 8<<10))
		if logs != nil {
			t.Logf("server log:\n%s", tail(logs.Bytes(), 8<<10))
		}
		t.FailNow()
	}
	if len(shots) == 0 {
		t.Error("no screenshot was saved")
	}
	for _, p := range shots {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Errorf("screenshot %s: %v", p, err)
		}
	}
}

// startInProcess starts the command's server (defaults, demo, page,
// metrics; args added to the flags) on a free loopback port and stops it
// when the test ends.
func startInProcess(t *testing.T, args ...string) (*pondsocket.Server, *syncBuffer) {
	t.Helper()
	if os.Getenv("PONDSOCKET_ADDR") != "" {
		t.Setenv("PONDSOCKET_ADDR", "") // it would override the address
	}
	// compression on: Chromium offers permessage-deflate, so the page's
	// traffic is compressed both ways
	args = append([]string{"--addr", "127.0.0.1:0", "--log-level", "debug", "--compression"}, args...)
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

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return append([]byte("…"), b[len(b)-n:]...)
	}
	return b
}
