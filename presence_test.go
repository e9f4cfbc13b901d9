package pondsocket

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket/internal/testenv"
	"github.com/pondsocket/pondsocket/internal/wsframe"
)

// presenceConn keeps the presence messages it is sent.
type presenceConn struct {
	mu   sync.Mutex
	msgs [][]byte
}

func (p *presenceConn) Send(f *wsframe.Frame) {
	if bytes.Contains(f.Payload(), []byte(`"action":"PRESENCE"`)) {
		p.mu.Lock()
		p.msgs = append(p.msgs, append([]byte(nil), f.Payload()...))
		p.mu.Unlock()
	}
}
func (p *presenceConn) Close(int, string) {}

func (p *presenceConn) last() (n int, list int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.msgs) == 0 {
		return 0, 0
	}
	var m struct {
		Payload struct {
			Presence []json.RawMessage `json:"presence"`
		} `json:"payload"`
	}
	_ = json.Unmarshal(p.msgs[len(p.msgs)-1], &m)
	return len(p.msgs), len(m.Payload.Presence)
}

// A presence storm crosses the channel's byte budget: changes are
// coalesced (far fewer messages than changes), and every member still ends
// with the complete list.
func TestPresenceStormCoalesces(t *testing.T) {
	s := newHub(Options{Logger: quietLog(), Handlers: HandlerOptions{Inline: true}, Inbound: InboundOptions{JoinRate: -1}, Presence: PresenceOptions{Budget: 1 << 20}}, nil)
	defer s.Close()
	ep := s.CreateEndpoint("/api/socket", func(ctx *ConnectionContext) error { return ctx.Accept() })
	ep.CreateChannel("/room/:id", func(ctx *JoinContext) error {
		return ctx.Accept().Track(map[string]any{"user": ctx.User().UserID}).Err()
	})
	const n = 60
	conns := make([]*presenceConn, n)
	for i := range conns {
		d := s.Connect(&handshake{Path: "/api/socket"})
		for _, f := range d.Greeting {
			f.Release()
		}
		conns[i] = &presenceConn{}
		s.Open(d.Client, conns[i])
		s.Message(d.Client, joinMsg("/room/storm"))
	}
	testenv.Eventually(t, 5*time.Second, fmt.Sprintf("every member's last presence list has all %d entries", n), func() bool {
		for _, c := range conns {
			if _, l := c.last(); l != n {
				return false
			}
		}
		return true
	})
	total := 0
	for _, c := range conns {
		m, _ := c.last()
		total += m
	}
	// without coalescing member i would get n-i messages: n(n+1)/2 in all
	if all := n * (n + 1) / 2; total >= all/2 {
		t.Fatalf("%d presence messages for a %d-join storm (%d uncoalesced): the budget did not coalesce", total, n, all)
	}
	if got := s.Stats().PresenceSent.Load(); got >= n {
		t.Fatalf("%d presence flushes for %d changes", got, n)
	}
}
