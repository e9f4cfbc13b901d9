package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pondsocket/pondsocket/internal/testenv"
)

// startLimited runs the binary under `ulimit -n fds` and returns it and
// its address once it listens.
func startLimited(t *testing.T, bin string, fds int, args ...string) (*testenv.Proc, string) {
	t.Helper()
	script := fmt.Sprintf("ulimit -n %d && exec %q --addr 127.0.0.1:0 --log-level warn %s", fds, bin, strings.Join(args, " "))
	p := testenv.Start(t, "sh", testenv.ProcOptions{Args: []string{"-c", script}, Ready: "listening on "})
	return p, p.Ready
}

func getStatus(url string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// A burst of TCP connections beyond the open-files limit: the process must
// stay up, the connections beyond the limit must be answered (503) or
// closed at once rather than left hanging, /healthz must answer while the
// burst's sockets are still held, and WebSocket clients must be served again
// once they are gone. Before the engine accepted by itself, gnet's acceptor
// hit EMFILE and the whole server exited.
func TestConnectionBurstAtFDLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("burst test")
	}
	cmd, addr := startLimited(t, buildBinary(t), 1100)

	const n = 1400
	var (
		mu       sync.Mutex
		held     []net.Conn
		refused  atomic.Int64 // answered 503
		closed   atomic.Int64 // closed by the server without an answer
		dialFail atomic.Int64
	)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 200)
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", addr, 3*time.Second)
			if err != nil {
				dialFail.Add(1)
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}()
	}
	wg.Wait()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	if !cmd.Alive() {
		t.Fatal("the server exited during the connection burst")
	}
	// Connections beyond the limit are answered at once; read each held
	// socket briefly to classify it.
	var rg sync.WaitGroup
	for _, c := range held {
		rg.Add(1)
		go func(c net.Conn) {
			defer rg.Done()
			_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			b := make([]byte, 64)
			k, err := c.Read(b)
			switch {
			case k > 0 && strings.Contains(string(b[:k]), " 503 "):
				refused.Add(1)
			case err != nil && !isTimeout(err):
				closed.Add(1)
			}
		}(c)
	}
	rg.Wait()
	t.Logf("burst of %d: %d held, %d refused with 503, %d closed, %d dials failed", n, len(held), refused.Load(), closed.Load(), dialFail.Load())
	if refused.Load()+closed.Load() < n-1100 {
		t.Errorf("only %d connections were refused or closed; beyond the limit each must be answered", refused.Load()+closed.Load())
	}
	// /healthz answers while the burst's sockets are still open.
	testenv.Eventually(t, 10*time.Second, "/healthz answers 200 while the burst is held", func() bool {
		return getStatus("http://"+addr+"/healthz") == 200
	})
	mu.Lock()
	for _, c := range held {
		c.Close()
	}
	held = nil
	mu.Unlock()
	if !cmd.Alive() {
		t.Fatal("the server exited")
	}
	// Served again: a WebSocket client connects and joins.
	var ws *websocket.Conn
	testenv.Eventually(t, 10*time.Second, "a WebSocket connection after the burst", func() bool {
		var err error
		ws, _, err = websocket.DefaultDialer.Dial("ws://"+addr+"/api/socket?username=after", nil)
		return err == nil
	})
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, m, err := ws.ReadMessage()
	ws.Close()
	if err != nil || !strings.Contains(string(m), `"CONNECT"`) {
		t.Fatalf("after the burst: %v %s", err, m)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
