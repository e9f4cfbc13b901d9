// Package testenv gives PondSocket's tests real third-party WebSocket
// clients to drive, and the helpers that find (or politely fail to find)
// what those clients need on the machine.
//
// # Drivers
//
// A Driver is one client connection controlled through a common line
// protocol, so a test can run the same scenario against every client
// library (a matrix):
//
//	for _, k := range testenv.AllDrivers() {
//		t.Run(k.Name, func(t *testing.T) {
//			d := k.Start(t)
//			d.Send(map[string]any{"op": "connect", "url": url})
//			d.Expect(t, "open", 5*time.Second)
//			d.Send(map[string]any{"op": "send", "data": "hi"})
//			ev := d.Expect(t, "message", 5*time.Second)
//			...
//		})
//	}
//
// The kinds are "node-ws" (npm ws, testdata/js/ws-driver.mjs),
// "python-websockets" (Debian's python3-websockets, testdata/py/ws_driver.py)
// and "go-gorilla" (gorilla/websocket, in process).
//
// Commands, written as one JSON object per line:
//
//	{"op":"connect","url":"ws://127.0.0.1:1234/x","headers":{"Origin":"http://a"},"deflate":false}
//	{"op":"send","data":"text","binary":false,"fin":true}   // "b64":true: data is base64
//	{"op":"ping","data":"x"}
//	{"op":"close","code":1000,"reason":"bye"}               // no code: the library's default
//	{"op":"raw","b64":"..."}                                // bytes written to the TCP socket
//	{"op":"exit"}
//
// Events, one JSON object per line (see Event):
//
//	{"ev":"open"}
//	{"ev":"message","data":"...","binary":false}  // binary data is base64 on the wire
//	{"ev":"pong","data":"..."}
//	{"ev":"close","code":1009,"reason":"..."}     // 1005 and 1006 as the library reports them
//	{"ev":"error","message":"...","status":401}   // status: HTTP status of a refused upgrade
//	{"ev":"ack","op":"send"}
//
// Every driver handles commands one at a time and in order; a command that
// follows "connect" waits until the opening handshake has finished. Each
// command is answered by exactly one "ack" or one "error" carrying its op.
// A connection that fails to open reports "error" (with Status set when the
// upgrade was refused with an HTTP response) and then "close" with code 1006.
// Every driver bounds itself: it exits on its own after 120 s.
//
// Per library:
//
//   - All three expose the HTTP status of a refused upgrade and allow raw
//     writes on the TCP socket.
//   - Fragments ("fin":false, then continuations ending with "fin":true)
//     are written as one frame per send by node-ws and go-gorilla.
//     python-websockets streams them the same way, then ends the message
//     with an empty FIN continuation frame, so N sends are N+1 frames.
//     Continuations take the type (text/binary) of the first fragment.
//   - "pong" events: node-ws and go-gorilla report every pong received;
//     python-websockets reports the pong answering each "ping" command
//     (unsolicited pongs are not visible through its API).
//
// # Requirements
//
// Require skips a test when a needed tool is missing, or fails it when the
// environment variable CI is "true", so CI can never pass by skipping.
// scripts/test.sh installs the npm packages; .ci/run installs the Debian
// packages.
//
// # Programs
//
// Tests that run a program of this repository as a process (cmd/pondsocket,
// cmd/devkafka, the examples) build it with Build, once per test binary,
// and start it with Start:
//
//	bin := testenv.Build(t, "cmd/pondsocket")
//	p := testenv.Start(t, bin, testenv.ProcOptions{
//		Args:  []string{"--addr", "127.0.0.1:0"},
//		Ready: "listening on ",
//	})
//	addr := p.Ready // the rest of the ready line
//
// Start waits until the program is ready, captures everything it writes
// to stdout and stderr (printed with the test's log when the test fails)
// and stops it with SIGTERM when the test ends. A test binary that builds
// programs should clean the build folder up with Main in its TestMain.
//
// Where a test must wait for state that sends no signal, Eventually polls
// it; it is the one wait-until helper of the tests.
package testenv

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Require checks that a piece of the test environment is present. If ok is
// false it fails the test (t.Fatalf) when the environment variable CI is
// "true", and skips it (t.Skipf) otherwise. what names the missing part;
// why says what is wrong and how to install it.
func Require(t testing.TB, what string, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("testenv: %s is required (CI=true) but missing: %s", what, why)
	}
	t.Skipf("testenv: %s is missing, skipping: %s", what, why)
}

var (
	rootOnce sync.Once
	rootDir  string
)

// RepoRoot returns the absolute path of the repository root (the folder of
// the go.mod of github.com/pondsocket/pondsocket). It is found from this
// source file's location, falling back to walking up from the working
// directory when the binary was built with -trimpath.
func RepoRoot() string {
	rootOnce.Do(func() {
		if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
			dir := filepath.Dir(filepath.Dir(filepath.Dir(file)))
			if isRepoRoot(dir) {
				rootDir = dir
				return
			}
		}
		dir, err := os.Getwd()
		if err != nil {
			return
		}
		for {
			if isRepoRoot(dir) {
				rootDir = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				return
			}
			dir = parent
		}
	})
	if rootDir == "" {
		panic("testenv: cannot find the repository root (go.mod of github.com/pondsocket/pondsocket)")
	}
	return rootDir
}

func isRepoRoot(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "module ") {
			return strings.TrimSpace(strings.TrimPrefix(line, "module ")) == "github.com/pondsocket/pondsocket"
		}
	}
	return false
}

// NodePath returns the path of the node executable, or skips/fails the test
// (see Require) when there is none.
func NodePath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("node")
	Require(t, "node", err == nil, "node is not on PATH; install Node.js 20+ (Debian: apt-get install nodejs npm)")
	return p
}

// NodeModules returns the absolute path of testdata/js/node_modules, or
// skips/fails the test (see Require) when the npm packages the drivers need
// are not installed there.
func NodeModules(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(RepoRoot(), "testdata", "js", "node_modules")
	_, errWS := os.Stat(filepath.Join(dir, "ws", "package.json"))
	_, errPond := os.Stat(filepath.Join(dir, "@eleven-am", "pondsocket-client", "package.json"))
	Require(t, "testdata/js/node_modules", errWS == nil && errPond == nil,
		"npm packages are not installed; run ./scripts/test.sh or npm ci --prefix testdata/js")
	return dir
}

const systemPython = "/usr/bin/python3"

var (
	pyOnce sync.Once
	pyErr  string
)

// PythonWebsockets returns /usr/bin/python3 after checking that it can
// import the websockets package, or skips/fails the test (see Require).
func PythonWebsockets(t testing.TB) string {
	t.Helper()
	pyOnce.Do(func() {
		if _, err := os.Stat(systemPython); err != nil {
			pyErr = systemPython + " not found"
			return
		}
		out, err := exec.Command(systemPython, "-c", "import websockets").CombinedOutput()
		if err != nil {
			pyErr = strings.TrimSpace(err.Error() + ": " + string(out))
		}
	})
	Require(t, "python3-websockets", pyErr == "",
		pyErr+"; install it with apt-get install -y python3-websockets (or run .ci/run)")
	return systemPython
}

// Eventually polls cond until it holds or timeout passes, then fails the
// test with what. It is for state that has no signal to wait on (a
// counter incremented after the peer already saw the effect); where a
// signal exists, wait on the signal.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	pause := 5 * time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(pause)
		if pause < 50*time.Millisecond {
			pause += pause / 2 // polls that cost a request back off a little
		}
	}
}
