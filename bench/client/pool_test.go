package client

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// gorillaServer sends, after the upgrade: CONNECT, a 200 KB message (it
// arrives over several reads), one frame holding three messages and a ping.
// It echoes every text message back; "bye" makes it close with 4000.
func gorillaServer(t *testing.T) (url string, pongs *atomic.Int64) {
	t.Helper()
	pongs = new(atomic.Int64)
	up := websocket.Upgrader{}
	big := `{"action":"BROADCAST","event":"big","channelName":"c","requestId":"r","payload":{"pad":"` + strings.Repeat("y", 200<<10) + `"}}`
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		ws.SetPongHandler(func(string) error { pongs.Add(1); return nil })
		var mu sync.Mutex
		write := func(op int, b string) {
			mu.Lock()
			defer mu.Unlock()
			_ = ws.WriteMessage(op, []byte(b))
		}
		write(websocket.TextMessage, `{"action":"CONNECT","event":"CONNECTION","channelName":"ENDPOINT","requestId":"x","payload":{}}`)
		write(websocket.TextMessage, big)
		write(websocket.TextMessage, "{\"action\":\"SYSTEM\",\"event\":\"a\",\"channelName\":\"c\",\"requestId\":\"1\",\"payload\":{}}\n"+
			"{\"action\":\"SYSTEM\",\"event\":\"b\",\"channelName\":\"c\",\"requestId\":\"2\",\"payload\":{}}\n\n"+
			"{\"action\":\"SYSTEM\",\"event\":\"c\",\"channelName\":\"c\",\"requestId\":\"3\",\"payload\":{}}\n")
		mu.Lock()
		_ = ws.WriteControl(websocket.PingMessage, []byte("hb"), time.Now().Add(time.Second))
		mu.Unlock()
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if string(data) == "bye" {
				mu.Lock()
				_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "bye"), time.Now().Add(time.Second))
				mu.Unlock()
				_, _, _ = ws.ReadMessage()
				return
			}
			write(websocket.TextMessage, string(data))
		}
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "ws://" + l.Addr().String() + "/", pongs
}

type recorder struct {
	mu      sync.Mutex
	events  map[int][]string
	closeBy map[int]error
	opened  atomic.Int64
	closed  atomic.Int64
}

func (r *recorder) OnOpen(c *Conn, _ int64) { r.opened.Add(1) }
func (r *recorder) OnMessage(c *Conn, m *Message, _ int64) {
	r.mu.Lock()
	r.events[c.ID] = append(r.events[c.ID], string(m.Event))
	r.mu.Unlock()
	switch string(m.Event) {
	case "c":
		c.WriteText([]byte(`{"action":"SYSTEM","event":"echoed","channelName":"c","requestId":"4","payload":{}}`))
	case "echoed":
		c.WriteText([]byte("bye"))
	}
}
func (r *recorder) OnClose(c *Conn, err error) {
	r.mu.Lock()
	r.closeBy[c.ID] = err
	r.mu.Unlock()
	r.closed.Add(1)
}
func (r *recorder) OnTick(*Loop, int64) {}

func TestPoolAgainstGorilla(t *testing.T) {
	url, pongs := gorillaServer(t)
	tg, err := ParseTarget(url)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{events: map[int][]string{}, closeBy: map[int]error{}}
	p, err := NewPool(Config{Loops: 2, Handler: rec, ReadBuffer: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const n = 30
	for i := 0; i < n; i++ {
		p.Loop(i).Dial(Dial{ID: i, Target: tg})
	}
	deadline := time.Now().Add(20 * time.Second)
	for rec.closed.Load() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if rec.opened.Load() != n || rec.closed.Load() != n {
		t.Fatalf("opened %d closed %d, want %d", rec.opened.Load(), rec.closed.Load(), n)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i := 0; i < n; i++ {
		if got := strings.Join(rec.events[i], ","); got != "CONNECTION,big,a,b,c,echoed" {
			t.Errorf("conn %d saw %s", i, got)
		}
		var ce *CloseError
		if !errors.As(rec.closeBy[i], &ce) || ce.Code != 4000 || ce.Reason != "bye" {
			t.Errorf("conn %d closed by %v, want close 4000 bye", i, rec.closeBy[i])
		}
	}
	if pongs.Load() != n {
		t.Errorf("server got %d pongs, want %d", pongs.Load(), n)
	}
}

func TestPoolConnectErrors(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := l.Addr().String()
	l.Close()
	// A listener that accepts and never answers the upgrade.
	silent, _ := net.Listen("tcp", "127.0.0.1:0")
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	rec := &recorder{events: map[int][]string{}, closeBy: map[int]error{}}
	p, err := NewPool(Config{Loops: 1, Handler: rec, ConnectTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	t1, _ := ParseTarget("ws://" + refused + "/")
	t2, _ := ParseTarget("ws://" + silent.Addr().String() + "/")
	p.Loop(0).Dial(Dial{ID: 1, Target: t1})
	p.Loop(0).Dial(Dial{ID: 2, Target: t2})
	deadline := time.Now().Add(5 * time.Second)
	for rec.closed.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if err := rec.closeBy[1]; err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("refused dial: %v", err)
	}
	if err := rec.closeBy[2]; !errors.Is(err, ErrConnectTimeout) {
		t.Errorf("silent server: %v, want ErrConnectTimeout", err)
	}
	if rec.opened.Load() != 0 {
		t.Errorf("opened %d", rec.opened.Load())
	}
}
