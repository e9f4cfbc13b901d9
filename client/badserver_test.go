package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pondsocket/pondsocket/client"
)

// Servers that misbehave, written with net/http and gorilla/websocket.

func badServer(t *testing.T, serve func(n int, ws *websocket.Conn)) string {
	t.Helper()
	var up websocket.Upgrader
	var count atomic.Int32
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		go func() { <-done; ws.Close() }()
		serve(int(count.Add(1)), ws)
	}))
	t.Cleanup(func() { close(done); srv.Close() })
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/api/socket"
}

func sendJSON(ws *websocket.Conn, m map[string]any) error {
	b, _ := json.Marshal(m)
	return ws.WriteMessage(websocket.TextMessage, b)
}

func connectMsg(id string) map[string]any {
	return map[string]any{"action": "CONNECT", "event": "CONNECTION", "channelName": "ENDPOINT", "requestId": "r0", "payload": map[string]any{"connectionId": id}}
}

func TestServerThatNeverSendsConnect(t *testing.T) {
	url := badServer(t, func(_ int, ws *websocket.Conn) {
		// upgrade, then silence (reading until the client goes)
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	})
	opts := fast(nil)
	opts.ConnectTimeout = 150 * time.Millisecond
	c, err := client.New(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	err = c.Connect(ctx)
	var ce *client.ConnectError
	if !errors.As(err, &ce) || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, client.ErrNoConnectMessage) {
		t.Fatalf("want a ConnectError with DeadlineExceeded and ErrNoConnectMessage, got %v", err)
	}
	if ce.Attempts < 2 {
		t.Fatalf("attempts %d: the client should retry within the context", ce.Attempts)
	}
	if c.State() != client.StateIdle || c.ID() != "" {
		t.Fatalf("after failed connect: %v %q", c.State(), c.ID())
	}

	// without reconnection: one attempt, ended by the context
	opts = fast(nil)
	opts.Reconnect.Disabled = true
	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	_, err = client.Dial(ctx2, url, opts)
	if !errors.As(err, &ce) || ce.Attempts != 1 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no reconnect: %v", err)
	}
}

// joinAnswer reads until a JOIN_CHANNEL arrives and returns its request id.
func awaitJoin(ws *websocket.Conn) (string, bool) {
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return "", false
		}
		var m struct{ Action, RequestID string }
		_ = json.Unmarshal(data, &m)
		if m.Action == "JOIN_CHANNEL" {
			return m.RequestID, true
		}
	}
}

func TestServerThatClosesMidJoin(t *testing.T) {
	url := badServer(t, func(n int, ws *websocket.Conn) {
		if sendJSON(ws, connectMsg("conn-1")) != nil {
			return
		}
		if _, ok := awaitJoin(ws); !ok {
			return
		}
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1011, "boom"), time.Now().Add(time.Second))
		time.Sleep(50 * time.Millisecond)
	})
	opts := fast(nil)
	opts.Reconnect.Disabled = true
	c, err := client.Dial(ctxWait(t), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.ID() != "conn-1" {
		t.Fatalf("id %q", c.ID())
	}
	room := c.Channel("/chat/x", nil)
	err = room.Join(ctxWait(t))
	if !errors.Is(err, &client.CloseError{Code: client.CloseInternalError}) {
		t.Fatalf("join on a connection closed mid-join: %v", err)
	}
	var ce *client.CloseError
	if !errors.As(err, &ce) || ce.Reason != "boom" {
		t.Fatalf("close error %#v", err)
	}
	select {
	case <-c.Done():
	case <-time.After(wait):
		t.Fatal("client not closed")
	}
	if c.State() != client.StateClosed || !errors.Is(c.Err(), &client.CloseError{Code: 1011}) {
		t.Fatalf("state %v err %v", c.State(), c.Err())
	}
	if err := room.Send("x", nil); !errors.Is(err, &client.CloseError{Code: 1011}) {
		t.Fatalf("send after close: %v", err)
	}
}

func TestJoinSurvivesADroppedConnection(t *testing.T) {
	// the first connection drops without a close frame in the middle of
	// the join; the client reconnects and sends the join again
	url := badServer(t, func(n int, ws *websocket.Conn) {
		if sendJSON(ws, connectMsg("conn-"+string(rune('0'+n)))) != nil {
			return
		}
		id, ok := awaitJoin(ws)
		if !ok {
			return
		}
		if n == 1 {
			ws.NetConn().Close()
			return
		}
		sendJSON(ws, map[string]any{"action": "SYSTEM", "event": "ACKNOWLEDGE", "channelName": "/chat/x", "requestId": id, "payload": map[string]any{}})
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	})
	disconnects := make(chan error, 5)
	opts := fast(nil)
	opts.OnDisconnect = func(err error) { disconnects <- err }
	c, err := client.Dial(ctxWait(t), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Channel("/chat/x", nil).Join(ctxWait(t)); err != nil {
		t.Fatal(err)
	}
	if c.ID() != "conn-2" {
		t.Fatalf("joined on %q", c.ID())
	}
	if err := next(t, disconnects); !errors.Is(err, &client.CloseError{Code: client.CloseAbnormal}) {
		t.Fatalf("drop: %v", err)
	}
}

func TestSeveralMessagesInOneFrame(t *testing.T) {
	url := badServer(t, func(n int, ws *websocket.Conn) {
		sendJSON(ws, connectMsg("c"))
		id, ok := awaitJoin(ws)
		if !ok {
			return
		}
		var buf bytes.Buffer
		for _, m := range []map[string]any{
			{"action": "SYSTEM", "event": "ACKNOWLEDGE", "channelName": "/r", "requestId": id, "payload": map[string]any{}},
			{"action": "BROADCAST", "event": "one", "channelName": "/r", "requestId": "x", "payload": map[string]any{"n": 1}},
			{"action": "BROADCAST", "event": "bad", "channelName": "/r", "requestId": "x", "payload": []int{1}},
			{"action": "BROADCAST", "event": "two", "channelName": "/r", "requestId": "x", "payload": map[string]any{"n": 2}},
		} {
			b, _ := json.Marshal(m)
			buf.Write(b)
			buf.WriteString("\n")
		}
		buf.WriteString("not json\n")
		ws.WriteMessage(websocket.TextMessage, buf.Bytes())
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	})
	c, err := client.Dial(ctxWait(t), url, fast(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	room := c.Channel("/r", nil)
	in := record(t, room)
	if err := room.Join(ctxWait(t)); err != nil {
		t.Fatal(err)
	}
	if m, _ := in.message("one"); string(m.Payload) != `{"n":1}` {
		t.Fatalf("one: %s", m.Payload)
	}
	// a non-object payload is replaced by {} rather than passed on
	if m, _ := in.message("bad"); string(m.Payload) != `{}` {
		t.Fatalf("bad: %s", m.Payload)
	}
	if m, _ := in.message("two"); string(m.Payload) != `{"n":2}` {
		t.Fatalf("two: %s", m.Payload)
	}
}

// clientGoroutines counts goroutines running this package's code.
func clientGoroutines() (int, string) {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	var sample string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "pondsocket/client.(*") || strings.Contains(g, "pondsocket/client.(") {
			n++
			sample = g
		}
	}
	return n, sample
}

func TestNoGoroutineLeakAfterClose(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", newApp())
	before := runtime.NumGoroutine()
	var clients []*client.Client
	for i := range 10 {
		c := dial(t, srv, "u")
		room, _ := join(t, c, "/chat/leak", "u")
		if i%2 == 0 {
			if _, err := room.SendForResponse(ctxWait(t), "ping", nil); err != nil {
				t.Fatal(err)
			}
		}
		clients = append(clients, c)
	}
	// a pending request and a waiting join are released by Close
	pending := make(chan error, 2)
	go func() {
		_, err := clients[0].Channel("/chat/leak", nil).SendForResponse(context.Background(), "hang", nil)
		pending <- err
	}()
	// Close from a callback returns (it cannot wait for its own goroutine)
	closedFromCallback := make(chan struct{})
	clients[1].Channel("/chat/leak", nil).On("message", func(client.Message) {
		clients[1].Close()
		close(closedFromCallback)
	})
	clients[1].Channel("/chat/leak", nil).Send("message", map[string]any{"text": "close yourself"})
	next(t, closedFromCallback)

	if n, _ := clientGoroutines(); n < 9*4 {
		t.Fatalf("the goroutine detector sees only %d client goroutines for 9 open clients", n)
	}
	for _, c := range clients {
		c.Close()
	}
	if err := next(t, pending); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("pending request after Close: %v", err)
	}
	// Close waited for the client's goroutines (the callback goroutine of
	// the client closed from its callback may take a moment)
	deadline := time.Now().Add(wait)
	for {
		n, sample := clientGoroutines()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d client goroutines left after Close, e.g.\n%s", n, sample)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n, sample := clientGoroutines(); n != 0 {
		t.Fatalf("%d left: %s", n, sample)
	}
	// and overall, generously (the server's own goroutines come and go)
	for time.Now().Before(deadline) && runtime.NumGoroutine() > before+5 {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before+5 {
		t.Fatalf("goroutines %d before, %d after", before, after)
	}
	if err := clients[0].Connect(ctxWait(t)); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Connect after Close: %v", err)
	}
}
