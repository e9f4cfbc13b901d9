package engine

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket/internal/wsframe"
)

// echoHandler accepts every upgrade except paths starting with /deny, and
// echoes every message back with the same opcode.
type echoHandler struct {
	mu     sync.Mutex
	opened []*Conn
	closed map[*Conn]int
	closeC chan int
	delay  time.Duration
}

func newEchoHandler() *echoHandler {
	return &echoHandler{closed: map[*Conn]int{}, closeC: make(chan int, 1024)}
}

func (h *echoHandler) Upgrade(r *Request) Decision {
	if h.delay > 0 {
		time.Sleep(h.delay)
	}
	if strings.HasPrefix(r.Path, "/deny") {
		return Decision{Status: 401, Message: "Invalid token"}
	}
	var greet []*wsframe.Frame
	if r.RawQuery == "greet=1" {
		greet = append(greet, wsframe.NewStaticFrame(wsframe.OpText, []byte("hello")))
	}
	return Decision{Accept: true, Context: r.Path, Greeting: greet}
}

func (h *echoHandler) OnOpen(c *Conn) {
	h.mu.Lock()
	h.opened = append(h.opened, c)
	h.mu.Unlock()
}

func (h *echoHandler) OnMessage(c *Conn, op byte, data []byte) {
	f := wsframe.NewStaticFrame(op, data)
	c.Send(f)
	f.Release()
}

func (h *echoHandler) OnClose(c *Conn, code int, err error) {
	h.mu.Lock()
	h.closed[c] = code
	h.mu.Unlock()
	select {
	case h.closeC <- code:
	default:
	}
}

func (h *echoHandler) conns() []*Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*Conn(nil), h.opened...)
}

// sinks is conns as the recipient list of a fan-out.
func (h *echoHandler) sinks() []wsframe.Sink {
	var out []wsframe.Sink
	for _, c := range h.conns() {
		out = append(out, c)
	}
	return out
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startEngine(t testing.TB, cfg Config, h Handler) *Engine {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	e := New(cfg, h)
	if err := e.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Stop(ctx)
	})
	return e
}

func wsURL(e *Engine, path string) string { return "ws://" + e.Addr().String() + path }

var _ = http.StatusOK
