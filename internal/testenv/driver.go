package testenv

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Event is one event reported by a Driver. Data is the payload of a
// "message" or "pong" event, already decoded from base64 when Binary is set.
type Event struct {
	Ev      string `json:"ev"`
	Data    string `json:"data,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	Op      string `json:"op,omitempty"`
	Binary  bool   `json:"binary,omitempty"`
	Code    int    `json:"code,omitempty"`
	Status  int    `json:"status,omitempty"`
	// Raw is the whole event line, for drivers whose events carry more
	// fields (the PondSocket client driver); see Decode.
	Raw json.RawMessage `json:"-"`
}

// Decode unmarshals the whole event line into v.
func (e Event) Decode(v any) error { return json.Unmarshal(e.Raw, v) }

// String renders the event compactly for test logs.
func (e Event) String() string {
	var b strings.Builder
	b.WriteString(e.Ev)
	if e.Op != "" {
		fmt.Fprintf(&b, " op=%s", e.Op)
	}
	if e.Ev == "message" || e.Ev == "pong" || e.Data != "" {
		d := e.Data
		if len(d) > 200 {
			d = d[:200] + fmt.Sprintf("...(%d bytes)", len(e.Data))
		}
		fmt.Fprintf(&b, " data=%q", d)
	}
	if e.Binary {
		b.WriteString(" binary")
	}
	if e.Code != 0 || e.Ev == "close" {
		fmt.Fprintf(&b, " code=%d", e.Code)
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, " reason=%q", e.Reason)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, " message=%q", e.Message)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, " status=%d", e.Status)
	}
	return b.String()
}

// DriverKind names one client library and starts drivers for it.
type DriverKind struct {
	Name  string
	Start func(t testing.TB) *Driver
}

// AllDrivers returns every driver kind: "node-ws", "python-websockets" and
// "go-gorilla". A kind whose tools are missing skips the test when started
// (or fails it under CI=true); see Require.
func AllDrivers() []DriverKind {
	return []DriverKind{
		{Name: "node-ws", Start: func(t testing.TB) *Driver { t.Helper(); return StartNodeWS(t) }},
		{Name: "python-websockets", Start: StartPythonWS},
		{Name: "go-gorilla", Start: StartGoWS},
	}
}

// Driver is one WebSocket client connection controlled through the line
// protocol described in the package documentation. Send queues commands;
// Expect and Next consume events. Methods are safe for concurrent use, but
// events are meant to be consumed by one goroutine (the test's).
type Driver struct {
	// Name is the driver kind's name, e.g. "node-ws".
	Name string

	mu      sync.Mutex
	pending []Event       // received, not yet consumed
	history []Event       // everything received, for failure messages
	changed chan struct{} // closed and replaced whenever pending or done changes
	done    bool
	doneWhy string

	write     func(line []byte) error  // process drivers
	exec      func(cmd map[string]any) // in-process drivers
	stop      func()
	closeOnce sync.Once
	stderr    *tailBuffer
}

func newDriver(name string) *Driver {
	return &Driver{Name: name, changed: make(chan struct{})}
}

func (d *Driver) push(ev Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pending = append(d.pending, ev)
	d.history = append(d.history, ev)
	close(d.changed)
	d.changed = make(chan struct{})
}

func (d *Driver) finish(why string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done {
		return
	}
	d.done = true
	d.doneWhy = why
	close(d.changed)
	d.changed = make(chan struct{})
}

// Send hands one command to the driver, e.g.
// map[string]any{"op": "send", "data": "hi"}. It does not wait for the
// command to be carried out: its "ack" or "error" event says that. If the
// command cannot be delivered at all, an "error" event with Op set reports
// it.
func (d *Driver) Send(cmd map[string]any) {
	if d.exec != nil {
		d.exec(cmd)
		return
	}
	line, err := json.Marshal(cmd)
	if err == nil {
		err = d.write(append(line, '\n'))
	}
	if err != nil {
		op, _ := cmd["op"].(string)
		d.push(Event{Ev: "error", Op: op, Message: "testenv: cannot deliver command: " + err.Error()})
	}
}

// Expect returns the next event of kind ev ("open", "message", "pong",
// "close", "error" or "ack"). Events of other kinds received before it stay
// queued, in order, for later calls. If none comes within timeout, or the
// driver has stopped without sending one, Expect fails the test with every
// event received so far.
func (d *Driver) Expect(t testing.TB, ev string, timeout time.Duration) Event {
	t.Helper()
	return d.expect(t, ev, nil, timeout)
}

// ExpectMatch is Expect for the first event of kind ev that also
// satisfies match; other events stay queued.
func (d *Driver) ExpectMatch(t testing.TB, ev string, match func(Event) bool, timeout time.Duration) Event {
	t.Helper()
	return d.expect(t, ev, match, timeout)
}

// expect takes the first queued event of kind ev that satisfies match (any,
// when match is nil), waiting for it as Expect says.
func (d *Driver) expect(t testing.TB, ev string, match func(Event) bool, timeout time.Duration) Event {
	t.Helper()
	what := strconv.Quote(ev)
	if match != nil {
		what = "matching " + what
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		d.mu.Lock()
		for i, e := range d.pending {
			if e.Ev == ev && (match == nil || match(e)) {
				d.pending = append(d.pending[:i:i], d.pending[i+1:]...)
				d.mu.Unlock()
				return e
			}
		}
		done, why, changed := d.done, d.doneWhy, d.changed
		d.mu.Unlock()
		if done {
			t.Fatalf("%s: expected a %s event, but the driver stopped (%s)\n%s", d.Name, what, why, d.report())
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("%s: no %s event within %v\n%s", d.Name, what, timeout, d.report())
		}
	}
}

// Next returns the oldest unconsumed event, waiting up to timeout for one.
// It returns false if none arrives in time or the driver has stopped.
func (d *Driver) Next(timeout time.Duration) (Event, bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		d.mu.Lock()
		if len(d.pending) > 0 {
			e := d.pending[0]
			d.pending = d.pending[1:]
			d.mu.Unlock()
			return e, true
		}
		done, changed := d.done, d.changed
		d.mu.Unlock()
		if done {
			return Event{}, false
		}
		select {
		case <-changed:
		case <-deadline.C:
			return Event{}, false
		}
	}
}

// History returns a copy of every event received so far, consumed or not.
func (d *Driver) History() []Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Event(nil), d.history...)
}

// Close stops the driver: it kills the driver process (or tears down the
// in-process connection) and waits for it. It is idempotent and is
// registered with t.Cleanup by the Start functions.
func (d *Driver) Close() {
	d.closeOnce.Do(func() {
		if d.stop != nil {
			d.stop()
		}
		d.finish("closed by the test")
	})
}

func (d *Driver) report() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "events received by %s (%d):\n", d.Name, len(d.history))
	for i, e := range d.history {
		fmt.Fprintf(&b, "  %3d %s\n", i, e)
	}
	if len(d.history) == 0 {
		b.WriteString("  (none)\n")
	}
	if d.stderr != nil {
		if s := d.stderr.String(); s != "" {
			fmt.Fprintf(&b, "driver stderr:\n%s", s)
		}
	}
	return b.String()
}

// StartProcess runs cmd as a driver speaking the line protocol on its
// stdin and stdout, and registers Close with t.Cleanup. cmd's Stdin, Stdout
// and Stderr must be unset. It is the building block of StartNodeWS and
// StartPythonWS, usable for other drivers (e.g. PondSocket's JS client).
func StartProcess(t testing.TB, name string, cmd *exec.Cmd) *Driver {
	t.Helper()
	d := newDriver(name)
	d.stderr = &tailBuffer{max: 64 << 10}
	cmd.Stderr = d.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("%s: stdin pipe: %v", name, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("%s: stdout pipe: %v", name, err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: start %v: %v", name, cmd.Args, err)
	}

	var wmu sync.Mutex
	d.write = func(line []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		_, err := stdin.Write(line)
		return err
	}

	exited := make(chan struct{})
	go func() {
		defer close(exited)
		r := bufio.NewReaderSize(stdout, 64<<10)
		for {
			line, err := r.ReadBytes('\n')
			if len(bytes.TrimSpace(line)) > 0 {
				d.push(decodeEvent(line))
			}
			if err != nil {
				break
			}
		}
		werr := cmd.Wait()
		why := "driver process exited"
		if werr != nil {
			why += ": " + werr.Error()
		}
		d.finish(why)
	}()

	d.stop = func() {
		wmu.Lock()
		stdin.Close()
		wmu.Unlock()
		if cmd.Process != nil {
			cmd.Process.Kill()
		}
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
		}
	}
	t.Cleanup(func() {
		d.Close()
		if t.Failed() {
			if s := d.stderr.String(); s != "" {
				t.Logf("%s stderr:\n%s", name, s)
			}
		}
	})
	return d
}

func decodeEvent(line []byte) Event {
	var ev Event
	if err := json.Unmarshal(line, &ev); err != nil || ev.Ev == "" {
		return Event{Ev: "error", Message: fmt.Sprintf("testenv: bad event line %q", bytes.TrimSpace(line))}
	}
	ev.Raw = append(json.RawMessage(nil), bytes.TrimSpace(line)...)
	if ev.Binary && ev.Data != "" {
		raw, err := base64.StdEncoding.DecodeString(ev.Data)
		if err != nil {
			ev.Message = "testenv: bad base64 in data: " + err.Error()
		} else {
			ev.Data = string(raw)
		}
	}
	return ev
}

// StartNode runs a Node.js driver script from testdata/js (script is
// relative to that folder) with extra arguments; see StartProcess.
func StartNode(t testing.TB, name, script string, args ...string) *Driver {
	t.Helper()
	return StartNodeFlags(t, name, nil, script, args...)
}

// StartNodeFlags is StartNode with options for node itself (before the
// script), e.g. --experimental-eventsource.
func StartNodeFlags(t testing.TB, name string, flags []string, script string, args ...string) *Driver {
	t.Helper()
	node := NodePath(t)
	NodeModules(t)
	dir := filepath.Join(RepoRoot(), "testdata", "js")
	argv := append(append(append([]string(nil), flags...), filepath.Join(dir, script)), args...)
	cmd := exec.Command(node, argv...)
	cmd.Dir = dir
	return StartProcess(t, name, cmd)
}

// StartNodeWS starts a driver on the npm ws client
// (testdata/js/ws-driver.mjs); args are passed to the script.
func StartNodeWS(t testing.TB, args ...string) *Driver {
	t.Helper()
	return StartNode(t, "node-ws", "ws-driver.mjs", args...)
}

// StartPythonWS starts a driver on Python's websockets client
// (testdata/py/ws_driver.py run by /usr/bin/python3).
func StartPythonWS(t testing.TB) *Driver {
	t.Helper()
	py := PythonWebsockets(t)
	script := filepath.Join(RepoRoot(), "testdata", "py", "ws_driver.py")
	cmd := exec.Command(py, script)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1")
	return StartProcess(t, "python-websockets", cmd)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

var _ io.Writer = (*tailBuffer)(nil)

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
