package redis

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket/internal/testenv"
)

// redisServer is a real redis-server process on 127.0.0.1, started by the
// test without persistence.
type redisServer struct {
	path string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

func redisServerPath(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/redis-server"); serr == nil {
			p, err = "/usr/bin/redis-server", nil
		}
	}
	testenv.Require(t, "redis-server", err == nil,
		"redis-server is not on PATH nor /usr/bin; install it with apt-get install -y redis-server (or run .ci/run)")
	return p
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRedis starts redis-server on a free port and stops it at cleanup.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	s := &redisServer{path: redisServerPath(t), port: freePort(t)}
	s.start(t)
	t.Cleanup(func() { s.kill(t) })
	return s
}

func (s *redisServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// start runs redis-server and waits for it to log that it accepts
// connections.
func (s *redisServer) start(t testing.TB) {
	t.Helper()
	s.cmd = exec.Command(s.path, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no", "--loglevel", "notice")
	out := &readyWriter{ready: make(chan struct{})}
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(s.cmd, s.done)
	select {
	case <-out.ready:
	case <-s.done:
		t.Fatalf("redis-server on port %d exited at start-up:\n%s", s.port, out.String())
	case <-time.After(10 * time.Second):
		s.kill(t)
		t.Fatalf("redis-server on port %d not ready within 10s:\n%s", s.port, out.String())
	}
}

// readyWriter keeps redis-server's log and signals readiness.
type readyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan struct{}
	once  sync.Once
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if bytes.Contains(w.buf.Bytes(), []byte("Ready to accept connections")) {
		w.once.Do(func() { close(w.ready) })
	}
	return len(p), nil
}

func (w *readyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// kill stops the server with SIGKILL (no goodbye to clients) and waits for
// it to exit.
func (s *redisServer) kill(t testing.TB) {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Errorf("redis-server did not exit")
	}
	s.cmd = nil
}
