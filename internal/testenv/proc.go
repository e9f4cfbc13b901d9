package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var (
	buildMu   sync.Mutex
	buildDir  string
	buildErr  error
	buildDone = map[string]*built{}
)

type built struct {
	once sync.Once
	path string
	err  error
}

// Build compiles the Go main package in dir (relative to the repository
// root, e.g. "cmd/pondsocket" or "examples/frameworks/chi") and returns the
// executable's path, or fails the test. Each package is built once per test
// binary; later calls, also from other tests, return the same executable. A
// package with its own go.mod is built in its own module (GOWORK=off).
func Build(t testing.TB, dir string) string {
	t.Helper()
	path, err := build(dir)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// Prebuild builds several packages concurrently (see Build) and returns
// when all are built, successful or not; later Build calls for them return
// at once, each failing its own test if its build failed.
func Prebuild(dirs ...string) {
	var wg sync.WaitGroup
	for _, d := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = build(d)
		}()
	}
	wg.Wait()
}

func build(dir string) (string, error) {
	dir = filepath.ToSlash(filepath.Clean(dir))
	buildMu.Lock()
	if buildDir == "" && buildErr == nil {
		buildDir, buildErr = os.MkdirTemp("", "pondsocket-testbin-")
	}
	out, err := buildDir, buildErr
	b := buildDone[dir]
	if b == nil {
		b = &built{}
		buildDone[dir] = b
	}
	buildMu.Unlock()
	if err != nil {
		return "", fmt.Errorf("testenv: build folder: %v", err)
	}
	b.once.Do(func() {
		b.path = filepath.Join(out, strings.ReplaceAll(dir, "/", "_"))
		src := filepath.Join(RepoRoot(), filepath.FromSlash(dir))
		cmd := exec.Command("go", "build", "-o", b.path, ".")
		cmd.Dir = src
		cmd.Env = os.Environ()
		if dir != "." {
			if _, err := os.Stat(filepath.Join(src, "go.mod")); err == nil {
				cmd.Env = append(cmd.Env, "GOWORK=off")
			}
		}
		if msg, err := cmd.CombinedOutput(); err != nil {
			hint := ""
			if bytes.Contains(msg, []byte("go mod tidy")) || bytes.Contains(msg, []byte("missing go.sum entry")) {
				hint = fmt.Sprintf("\n(the root module's requirements changed: run `go mod tidy` in %s)", dir)
			}
			b.err = fmt.Errorf("testenv: build %s: %v\n%s%s", dir, err, msg, hint)
		}
	})
	return b.path, b.err
}

// Main runs the tests of m, removes the executables Build made and exits
// with the tests' status. Use it as the body of TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	buildMu.Lock()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	buildMu.Unlock()
	os.Exit(code)
}

// ProcOptions says how Start runs a program and how it knows it is ready.
type ProcOptions struct {
	// Args are the program's arguments.
	Args []string
	// Env is added to the test process's environment (later entries win).
	Env []string
	// Dir is the working directory; empty means the test's.
	Dir string
	// Ready, when set, is text the program writes (to stdout or stderr)
	// once it is ready; Start returns when a line contains it, and the
	// first word after it is Proc.Ready (e.g. the address after
	// "listening on "): the text up to the next space or double quote, so
	// that a structured log line (msg="listening on ADDR" in slog's text
	// format, "msg":"listening on ADDR" in JSON) gives the bare address.
	Ready string
	// Dial, when set, is a TCP address Start dials until it accepts a
	// connection. With neither Ready nor Dial, Start returns once the
	// program has started.
	Dial string
	// Timeout bounds the wait for readiness; 0 means 30 s.
	Timeout time.Duration
	// StopTimeout is how long the cleanup waits after SIGTERM before it
	// kills the program; 0 means 10 s.
	StopTimeout time.Duration
}

// Proc is a running program started by Start.
type Proc struct {
	// Name is the executable's base name, used in log lines.
	Name string
	// Ready is the rest of the ready line (see ProcOptions.Ready).
	Ready string

	cmd      *exec.Cmd
	exited   chan struct{}
	termSent atomic.Bool
	err      error // the exit status, once exited is closed

	mu      sync.Mutex
	lines   []string
	partial []byte
	marker  string
	ready   chan string
}

// ErrStopTimeout is returned by Stop when the program did not exit within
// the deadline after SIGTERM and had to be killed.
var ErrStopTimeout = errors.New("testenv: the program did not exit after SIGTERM and was killed")

// Start runs the executable at path as opts says, waits until it is ready
// and returns it; it fails the test when the program exits or does not
// become ready in time (with the program's output). The program is stopped
// (SIGTERM, then SIGKILL after opts.StopTimeout) when the test ends, and
// its output is added to the test's log if the test failed.
func Start(t testing.TB, path string, opts ProcOptions) *Proc {
	t.Helper()
	p := &Proc{
		Name:   filepath.Base(path),
		cmd:    exec.Command(path, opts.Args...),
		exited: make(chan struct{}),
		marker: opts.Ready,
		ready:  make(chan string, 1),
	}
	p.cmd.Dir = opts.Dir
	p.cmd.Env = append(os.Environ(), opts.Env...)
	p.cmd.Stdout = (*procLog)(p)
	p.cmd.Stderr = (*procLog)(p)
	// a grandchild holding the output open must not hold Wait forever
	p.cmd.WaitDelay = 2 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("testenv: start %s: %v", path, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	stopTimeout := opts.StopTimeout
	if stopTimeout <= 0 {
		stopTimeout = 10 * time.Second
	}
	t.Cleanup(func() {
		_ = p.Stop(stopTimeout)
		if t.Failed() {
			for _, l := range p.Log() {
				t.Logf("%s: %s", p.Name, l)
			}
		}
	})
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	if opts.Ready != "" {
		select {
		case p.Ready = <-p.ready:
		case <-p.exited:
			t.Fatalf("testenv: %s exited before it was ready (%v); output:\n%s", p.Name, p.err, strings.Join(p.Log(), "\n"))
		case <-deadline.C:
			t.Fatalf("testenv: %s wrote no line with %q within %v; output:\n%s", p.Name, opts.Ready, timeout, strings.Join(p.Log(), "\n"))
		}
	}
	if opts.Dial != "" {
		for {
			c, err := net.DialTimeout("tcp", opts.Dial, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-p.exited:
				t.Fatalf("testenv: %s exited before it listened on %s (%v); output:\n%s", p.Name, opts.Dial, p.err, strings.Join(p.Log(), "\n"))
			case <-deadline.C:
				t.Fatalf("testenv: %s did not listen on %s within %v; output:\n%s", p.Name, opts.Dial, timeout, strings.Join(p.Log(), "\n"))
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return p
}

// procLog receives the program's stdout and stderr.
type procLog Proc

func (l *procLog) Write(b []byte) (int, error) {
	p := (*Proc)(l)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		line := string(bytes.TrimRight(p.partial[:i], "\r"))
		p.partial = p.partial[i+1:]
		p.lines = append(p.lines, line)
		if p.marker != "" {
			if j := strings.Index(line, p.marker); j >= 0 {
				rest := strings.TrimSpace(line[j+len(p.marker):])
				if k := strings.IndexAny(rest, " \""); k >= 0 {
					rest = rest[:k]
				}
				p.ready <- rest
				p.marker = ""
			}
		}
	}
	return len(b), nil
}

// Log returns the lines the program has written so far (stdout and stderr
// together).
func (p *Proc) Log() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := append([]string(nil), p.lines...)
	if len(p.partial) > 0 {
		out = append(out, string(p.partial))
	}
	return out
}

// Pid returns the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited is closed when the program has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Alive reports whether the program is still running.
func (p *Proc) Alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM (unless Signal already sent it) and waits up to
// timeout for the program to exit, then kills it; see Wait. Stopping a
// program that has exited returns its exit status again.
func (p *Proc) Stop(timeout time.Duration) error {
	select {
	case <-p.exited:
		return p.err
	default:
	}
	if !p.termSent.Swap(true) {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	return p.Wait(timeout)
}

// Wait waits up to timeout for the program to exit, then kills it. It
// returns the exit status (nil for status 0), or ErrStopTimeout if the
// program had to be killed.
func (p *Proc) Wait(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.exited:
		return p.err
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
		return ErrStopTimeout
	}
}

// Signal sends sig to the program (e.g. SIGSTOP to pause it). A SIGTERM
// sent here is not repeated by Stop (a second one may mean "exit now").
func (p *Proc) Signal(sig os.Signal) error {
	if sig == syscall.SIGTERM {
		p.termSent.Store(true)
	}
	return p.cmd.Process.Signal(sig)
}

// Kill kills the program at once (SIGKILL) and waits for it to exit.
func (p *Proc) Kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// FreeAddr returns a loopback address ("127.0.0.1:port") whose port was
// free a moment ago, for a program that must be told its port.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
