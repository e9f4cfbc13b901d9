//go:build linux

package client

import (
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/internal/testenv"
)

func TestParseStreamResponse(t *testing.T) {
	resp := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nX-Connection-ID: abc123\r\n\r\ndata: {}\n\n"
	for i := 0; i < len(resp)-len("data: {}\n\n"); i++ {
		if n, _, err := ParseStreamResponse([]byte(resp[:i])); err != nil || n != 0 {
			t.Fatalf("prefix %d: n=%d err=%v", i, n, err)
		}
	}
	n, id, err := ParseStreamResponse([]byte(resp))
	if err != nil || id != "abc123" || resp[n:] != "data: {}\n\n" {
		t.Fatalf("n=%d id=%q err=%v", n, id, err)
	}
	_, _, err = ParseStreamResponse([]byte("HTTP/1.1 401 Unauthorized\r\nContent-Length: 13\r\n\r\nInvalid token"))
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 401 || !errors.Is(err, ErrStream) || errors.Is(err, ErrHandshake) {
		t.Fatalf("401: err = %v, want a stream StatusError with code 401", err)
	}
	for _, bad := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n",                                                     // no id
		"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Connection-ID: a\r\n\r\n",                                       // not a stream
		"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Connection-ID: a\r\nTransfer-Encoding: chunked\r\n\r\n", // framed
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
	} {
		if _, _, err := ParseStreamResponse([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// sseRecorder is a Handler that records what its streams see.
type sseRecorder struct {
	mu     sync.Mutex
	opened map[int]string // id → SSEID at OnOpen
	msgs   map[int][]string
	closed map[int]error
	conns  map[int]*Conn
}

func newSSERecorder() *sseRecorder {
	return &sseRecorder{opened: map[int]string{}, msgs: map[int][]string{}, closed: map[int]error{}, conns: map[int]*Conn{}}
}

func (r *sseRecorder) OnOpen(c *Conn, _ int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.opened[c.ID] = c.SSEID
	r.conns[c.ID] = c
}

func (r *sseRecorder) OnMessage(c *Conn, m *Message, _ int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := string(m.Action) + " " + string(m.Event) + " " + string(m.RequestID)
	if string(m.Action) == "CONNECT" {
		id, _ := Field(m.Payload, "connectionId")
		s += " " + string(trimQuoted(id))
	}
	r.msgs[c.ID] = append(r.msgs[c.ID], s)
}

func trimQuoted(b []byte) []byte {
	if len(b) >= 2 && b[0] == '"' {
		return b[1 : len(b)-1]
	}
	return b
}

func (r *sseRecorder) OnClose(c *Conn, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed[c.ID] = err
}

func (r *sseRecorder) OnTick(*Loop, int64) {}

func (r *sseRecorder) count(id int, prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.msgs[id] {
		if strings.HasPrefix(m, prefix) {
			n++
		}
	}
	return n
}

// The generator's event streams against the real server: the stream id,
// CONNECT, a join and broadcasts POSTed in order, a declined stream.
func TestSSEAgainstServer(t *testing.T) {
	opts := pondsocket.DefaultOptions()
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	opts.Transport.EventLoops = 2
	srv := pondsocket.NewServer(&pondsocket.ServerOptions{ServerAddr: "127.0.0.1:0", Options: opts})
	ep := srv.CreateEndpoint("/api/socket", func(ctx *pondsocket.ConnectionContext) error {
		if ctx.Route.Query.Get("token") == "bad" {
			return ctx.Decline(401, "Invalid token")
		}
		return ctx.Accept()
	})
	ch := ep.CreateChannel("/room/:id", func(ctx *pondsocket.JoinContext) error { return ctx.Accept().Err() })
	ch.OnEvent("message", func(ctx *pondsocket.EventContext) error {
		return ctx.Broadcast("message", ctx.RawPayload()).Err()
	})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(5 * time.Second) })

	rec := newSSERecorder()
	pool, err := NewPool(Config{Loops: 2, Handler: rec, SSEPostConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	tg, err := ParseTarget("ws://" + srv.Addr().String() + "/api/socket")
	if err != nil {
		t.Fatal(err)
	}
	const streams = 6
	for i := 0; i < streams; i++ {
		pool.Loop(i).Dial(Dial{ID: i, Target: tg, Path: tg.Path + "?token=u" + strconv.Itoa(i), SSE: true})
	}
	pool.Loop(streams).Dial(Dial{ID: streams, Target: tg, Path: tg.Path + "?token=bad", SSE: true})
	testenv.Eventually(t, 10*time.Second, "every stream's CONNECT", func() bool {
		for i := 0; i < streams; i++ {
			if rec.count(i, "CONNECT") != 1 {
				return false
			}
		}
		return true
	})
	rec.mu.Lock()
	for i := 0; i < streams; i++ {
		if want := "CONNECT CONNECTION"; !strings.HasPrefix(rec.msgs[i][0], want) || !strings.HasSuffix(rec.msgs[i][0], " "+rec.opened[i]) || rec.opened[i] == "" {
			t.Errorf("stream %d: first message %q, stream id %q", i, rec.msgs[i][0], rec.opened[i])
		}
	}
	rec.mu.Unlock()
	if got := srv.Stats().Connections; got != streams {
		t.Fatalf("server connections %d, want %d", got, streams)
	}

	// join every stream; stream 0 then posts 50 broadcasts in one go
	for i := 0; i < streams; i++ {
		i := i
		pool.Loop(i).Post(func() {
			rec.mu.Lock()
			c := rec.conns[i]
			rec.mu.Unlock()
			c.WriteText([]byte(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/room/a","requestId":"j` + strconv.Itoa(i) + `","payload":{}}`))
		})
	}
	testenv.Eventually(t, 10*time.Second, "every join acknowledged", func() bool {
		for i := 0; i < streams; i++ {
			if rec.count(i, "SYSTEM ACKNOWLEDGE") != 1 {
				return false
			}
		}
		return true
	})
	const msgs = 50
	pool.Loop(0).Post(func() {
		rec.mu.Lock()
		c := rec.conns[0]
		rec.mu.Unlock()
		for k := 0; k < msgs; k++ {
			c.WriteText([]byte(`{"action":"BROADCAST","event":"message","channelName":"/room/a","requestId":"m` + strconv.Itoa(k) + `","payload":{"k":` + strconv.Itoa(k) + `}}`))
		}
	})
	testenv.Eventually(t, 10*time.Second, "every broadcast on every stream", func() bool {
		for i := 0; i < streams; i++ {
			if rec.count(i, "BROADCAST message") != msgs {
				return false
			}
		}
		return true
	})
	// posted one after another, so they arrive in order
	rec.mu.Lock()
	k := 0
	for _, m := range rec.msgs[3] {
		if strings.HasPrefix(m, "BROADCAST message") {
			if want := "BROADCAST message m" + strconv.Itoa(k); m != want {
				t.Errorf("broadcast %d on stream 3: %q, want %q", k, m, want)
			}
			k++
		}
	}
	declined := rec.closed[streams]
	rec.mu.Unlock()
	var se *StatusError
	if !errors.As(declined, &se) || se.Code != 401 || !errors.Is(declined, ErrStream) {
		t.Fatalf("declined stream closed with %v, want a 401 StatusError", declined)
	}

	// a stream the client closes is gone on the server
	pool.Loop(1).Post(func() {
		rec.mu.Lock()
		c := rec.conns[1]
		rec.mu.Unlock()
		c.Close()
	})
	testenv.Eventually(t, 10*time.Second, "the closed stream to leave the server", func() bool { return srv.Stats().Connections == streams-1 })
}
