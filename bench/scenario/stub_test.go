package scenario_test

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

// stubHub is a test-only PondSocket server speaking the subset the demo
// server offers (docs/protocol.md §1–§6): CONNECT on open, JOIN_CHANNEL →
// ACKNOWLEDGE plus presence unless the join says "presence": false,
// "message" → broadcast to the channel (sender included, same payload),
// "echo" → reply to the sender only. Goroutine per connection: it is a
// reference to check the generator against, not something to measure.
// Several listeners may share one hub, which makes a two-node "cluster".
type stubHub struct {
	mu       sync.Mutex
	channels map[string]*stubChannel
	nextID   int
}

type stubChannel struct {
	members  map[*stubConn]bool
	presence []*stubConn // tracked members in join order
}

type stubConn struct {
	ws       *websocket.Conn
	wmu      sync.Mutex
	id       int
	username string
}

func (c *stubConn) send(v any) {
	b, _ := json.Marshal(v)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.WriteMessage(websocket.TextMessage, b)
}

type wireMsg struct {
	Action      string          `json:"action"`
	Event       string          `json:"event"`
	ChannelName string          `json:"channelName"`
	RequestID   string          `json:"requestId"`
	Payload     json.RawMessage `json:"payload"`
}

func newStubHub() *stubHub { return &stubHub{channels: map[string]*stubChannel{}} }

// serve starts a listener on 127.0.0.1 for the hub and returns its ws URL.
func (h *stubHub) serve(t *testing.T) string {
	t.Helper()
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/socket", func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		h.mu.Lock()
		h.nextID++
		c := &stubConn{ws: ws, id: h.nextID, username: r.URL.Query().Get("username")}
		h.mu.Unlock()
		h.run(c)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "ws://" + l.Addr().String() + "/api/socket"
}

func presenceList(ch *stubChannel) []map[string]string {
	out := make([]map[string]string, 0, len(ch.presence))
	for _, m := range ch.presence {
		out = append(out, map[string]string{"username": m.username, "status": "online"})
	}
	return out
}

func (h *stubHub) run(c *stubConn) {
	c.send(wireMsg{Action: "CONNECT", Event: "CONNECTION", ChannelName: "ENDPOINT", RequestID: "stub", Payload: json.RawMessage(`{}`)})
	joined := map[string]bool{}
	defer func() {
		h.mu.Lock()
		for name := range joined {
			ch := h.channels[name]
			delete(ch.members, c)
			for i, m := range ch.presence {
				if m == c {
					ch.presence = append(ch.presence[:i], ch.presence[i+1:]...)
					break
				}
			}
			if len(ch.members) == 0 {
				delete(h.channels, name)
			}
		}
		h.mu.Unlock()
		c.ws.Close()
	}()
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var m wireMsg
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		switch m.Action {
		case "JOIN_CHANNEL":
			track := !strings.Contains(string(m.Payload), `"presence":false`)
			h.mu.Lock()
			ch := h.channels[m.ChannelName]
			if ch == nil {
				ch = &stubChannel{members: map[*stubConn]bool{}}
				h.channels[m.ChannelName] = ch
			}
			ch.members[c] = true
			joined[m.ChannelName] = true
			c.send(wireMsg{Action: "SYSTEM", Event: "ACKNOWLEDGE", ChannelName: m.ChannelName, RequestID: m.RequestID, Payload: json.RawMessage(`{}`)})
			if track {
				ch.presence = append(ch.presence, c)
				list, _ := json.Marshal(map[string]any{
					"changed":  map[string]string{"username": c.username, "status": "online"},
					"presence": presenceList(ch),
				})
				for _, p := range ch.presence {
					p.send(wireMsg{Action: "PRESENCE", Event: "JOIN", ChannelName: m.ChannelName, RequestID: "p", Payload: list})
				}
			}
			h.mu.Unlock()
		case "BROADCAST":
			h.mu.Lock()
			ch := h.channels[m.ChannelName]
			var to []*stubConn
			if ch != nil && ch.members[c] {
				for mem := range ch.members {
					to = append(to, mem)
				}
			}
			h.mu.Unlock()
			switch m.Event {
			case "message":
				for _, mem := range to {
					mem.send(m)
				}
			case "echo":
				c.send(wireMsg{Action: "SYSTEM", Event: "echo", ChannelName: m.ChannelName, RequestID: m.RequestID, Payload: m.Payload})
			}
		}
	}
}
