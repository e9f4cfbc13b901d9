package ceiling

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pondsocket/pondsocket/bench/client"
)

type counter struct {
	mu      sync.Mutex
	conns   map[int]*client.Conn
	ready   atomic.Int64
	got     atomic.Int64
	acks    atomic.Int64
	badSeq  atomic.Int64
	lastSeq map[int]int64
}

func (c *counter) OnOpen(cn *client.Conn, _ int64) {
	c.mu.Lock()
	c.conns[cn.ID] = cn
	c.mu.Unlock()
}
func (c *counter) OnMessage(cn *client.Conn, m *client.Message, _ int64) {
	switch {
	case m.Is("CONNECT", "CONNECTION"):
		cn.WriteText([]byte(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/x","requestId":"j` + strconv.Itoa(cn.ID) + `","payload":{}}`))
	case m.Is("SYSTEM", "ACKNOWLEDGE"):
		if string(m.RequestID) == "j"+strconv.Itoa(cn.ID) && string(m.ChannelName) == "/chat/x" {
			c.acks.Add(1)
			c.ready.Add(1)
		}
	case m.Is("BROADCAST", "message"):
		seq, _ := client.FieldInt(m.Payload, "seq")
		c.mu.Lock()
		if seq != c.lastSeq[cn.ID]+1 {
			c.badSeq.Add(1)
		}
		c.lastSeq[cn.ID] = seq
		c.mu.Unlock()
		c.got.Add(1)
	}
}
func (c *counter) OnClose(*client.Conn, error) {}
func (c *counter) OnTick(*client.Loop, int64)  {}

// TestBroadcastReachesEveryConnectionOnce checks the ceiling server's whole
// contract: CONNECT, JOIN → ACKNOWLEDGE, and each message written to every
// connection exactly once, in order, with one write per connection.
func TestBroadcastReachesEveryConnectionOnce(t *testing.T) {
	for _, mode := range []struct {
		name  string
		batch bool
	}{{"one write per message", false}, {"batched", true}} {
		t.Run(mode.name, func(t *testing.T) { testBroadcast(t, mode.batch) })
	}
}

func testBroadcast(t *testing.T, batch bool) {
	s, err := Start(Config{Addr: "127.0.0.1:0", EventLoops: 2, Batch: batch})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	rec := &counter{conns: map[int]*client.Conn{}, lastSeq: map[int]int64{}}
	p, err := client.NewPool(client.Config{Loops: 2, Handler: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tg, _ := client.ParseTarget("ws://" + s.Addr() + "/")
	const n, msgs = 50, 20
	for i := 0; i < n; i++ {
		p.Loop(i).Dial(client.Dial{ID: i, Target: tg})
	}
	wait := func(cond func() bool, what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	wait(func() bool { return rec.ready.Load() == n }, "joins")
	if s.Conns() != n {
		t.Fatalf("server holds %d connections, want %d", s.Conns(), n)
	}
	for seq := 1; seq <= msgs; seq++ {
		msg := []byte(`{"action":"BROADCAST","event":"message","channelName":"/chat/x","requestId":"m","payload":{"seq":` + strconv.Itoa(seq) + `}}`)
		rec.mu.Lock()
		pub := rec.conns[0]
		rec.mu.Unlock()
		p.Loop(0).Post(func() { pub.WriteText(msg) })
		want := int64(seq * n)
		wait(func() bool { return rec.got.Load() >= want }, "deliveries")
	}
	time.Sleep(50 * time.Millisecond)
	if rec.got.Load() != n*msgs || rec.badSeq.Load() != 0 {
		t.Fatalf("got %d deliveries (%d out of order), want %d", rec.got.Load(), rec.badSeq.Load(), n*msgs)
	}
	// One message at a time: even the batched mode has one frame per write.
	if s.broadcasts.Load() != msgs || s.writes.Load() != n*msgs {
		t.Fatalf("server: %d broadcasts, %d writes; want %d and %d", s.broadcasts.Load(), s.writes.Load(), msgs, n*msgs)
	}
	// A burst: every frame still arrives once and in order.
	rec.mu.Lock()
	pub := rec.conns[0]
	rec.mu.Unlock()
	p.Loop(0).Post(func() {
		for seq := msgs + 1; seq <= 2*msgs; seq++ {
			pub.WriteText([]byte(`{"action":"BROADCAST","event":"message","channelName":"/chat/x","requestId":"m","payload":{"seq":` + strconv.Itoa(seq) + `}}`))
		}
	})
	wait(func() bool { return rec.got.Load() >= 2*n*msgs }, "burst deliveries")
	time.Sleep(50 * time.Millisecond)
	if rec.got.Load() != 2*n*msgs || rec.badSeq.Load() != 0 {
		t.Fatalf("burst: got %d deliveries (%d out of order), want %d", rec.got.Load(), rec.badSeq.Load(), 2*n*msgs)
	}
	if w := s.writes.Load() - n*msgs; (!batch && w != n*msgs) || (batch && w > n*msgs) {
		t.Fatalf("burst: %d writes for %d frames (batch=%v)", w, n*msgs, batch)
	}
}

// Echo mode answers each message to its sender only.
func TestEchoAnswersTheSenderOnly(t *testing.T) {
	s, err := Start(Config{Addr: "127.0.0.1:0", EventLoops: 2, Echo: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	dial := func() *websocket.Conn {
		c, _, err := websocket.DefaultDialer.Dial("ws://"+s.Addr()+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, m, err := c.ReadMessage(); err != nil || !strings.Contains(string(m), `"CONNECT"`) {
			t.Fatalf("greeting %q %v", m, err)
		}
		return c
	}
	a, b := dial(), dial()
	defer a.Close()
	defer b.Close()
	req := `{"action":"BROADCAST","event":"echo","channelName":"/r","requestId":"1","payload":{"ts":1}}`
	if err := a.WriteMessage(websocket.TextMessage, []byte(req)); err != nil {
		t.Fatal(err)
	}
	_ = a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, m, err := a.ReadMessage(); err != nil || string(m) != req {
		t.Fatalf("echo %q %v", m, err)
	}
	_ = b.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, m, err := b.ReadMessage(); err == nil {
		t.Fatalf("another connection got %q", m)
	}
}
