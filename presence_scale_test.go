package pondsocket

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket/internal/testenv"
	"github.com/pondsocket/pondsocket/internal/wsframe"
)

// pconn is a virtual member that records the presence traffic it is sent:
// bytes, the largest frame, the time of its first and last frame, and (for
// a few sampled members) a copy of its latest frame.
type pconn struct {
	mu          sync.Mutex
	bytes       int64
	largest     int
	first, last time.Time
	keep        bool
	latest      []byte
}

func (p *pconn) Send(f *wsframe.Frame) {
	b := f.Bytes()
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.first.IsZero() {
		p.first = now
	}
	p.last = now
	p.bytes += int64(len(b))
	p.largest = max(p.largest, len(b))
	if p.keep {
		p.latest = append(p.latest[:0], b...)
	}
}
func (p *pconn) Close(int, string) {}

// A room of 100 000 members with tracked presence, and one member changing
// its presence ten times a second for five seconds: the protocol sends the
// whole list (megabytes here) with every change, so a list every second
// would feed each member faster than the slow-consumer rule tolerates and
// cut readers that keep up. Each member must be sent presence no faster
// than memberPresenceRate, and still end with the complete, newest list.
// Virtual members: this machine holds ~19k sockets per process.
func TestPresenceInAHundredThousandMemberRoom(t *testing.T) {
	if testing.Short() {
		t.Skip("100 000 members")
	}
	const n = 100_000
	opts := Options{Logger: quietLog(),
		Handlers: HandlerOptions{Inline: true},
		Inbound:  InboundOptions{JoinRate: -1, MessageRate: -1},
		// 8 MiB for 5 s: members may be sent 410 KiB/s of presence, the
		// ~2 MB list every ~5 s (with the default 4 MiB, every ~10 s).
		Outbound: OutboundOptions{MaxBytes: 8 << 20, SlowConsumerTimeout: 5 * time.Second},
		Presence: PresenceOptions{Rate: -1}}
	s := newHub(opts, nil)
	defer s.Close()
	ep := s.CreateEndpoint("/api/socket", func(ctx *ConnectionContext) error { return ctx.Accept() })
	var seq atomic.Int64
	ep.CreateChannel("/room/:id", func(ctx *JoinContext) error {
		return ctx.Accept().Track(map[string]any{"name": fmt.Sprintf("u%d", seq.Add(1))}).Err()
	})
	members := make([]*pconn, n)
	var first *Client
	for i := range members {
		d := s.Connect(&handshake{Path: "/api/socket"})
		for _, f := range d.Greeting {
			f.Release()
		}
		members[i] = &pconn{keep: i%(n/4) == 0}
		s.Open(d.Client, members[i])
		s.Message(d.Client, joinMsg("/room/big"))
		if i == 0 {
			first = d.Client
		}
	}
	ch, ok := ep.Channel("/room/big")
	if !ok {
		t.Fatal("no channel")
	}
	for i := range 50 {
		if err := ch.UpdatePresence(first.ID(), map[string]any{"name": "u1", "mood": i}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // the churn being simulated, not a wait for a result
	}

	rate := memberPresenceRate(&s.opts)
	testenv.Eventually(t, 60*time.Second, "every sampled member has the complete, newest list", func() bool {
		for _, m := range members {
			m.mu.Lock()
			done := !m.keep || completeList(m.latest, n)
			m.mu.Unlock()
			if !done {
				return false
			}
		}
		return true
	})
	for i, m := range members {
		m.mu.Lock()
		elapsed := m.last.Sub(m.first).Seconds()
		bound := memberPresenceBurst(&s.opts) + rate*elapsed*1.1 + float64(m.largest) + 64<<10
		got, largest := m.bytes, m.largest
		m.mu.Unlock()
		if float64(got) > bound {
			t.Fatalf("member %d was sent %d bytes of presence in %.1fs (largest list %d bytes): more than %.0f, the burst and rate of %.0f B/s a reader is allowed",
				i, got, elapsed, largest, bound, rate)
		}
	}
}

// completeList reports whether frame (header and JSON) is a presence
// message listing n members, member u1 with the last change (mood 49).
func completeList(frame []byte, n int) bool {
	i := bytes.IndexByte(frame, '{')
	if i < 0 {
		return false
	}
	var m struct {
		Payload struct {
			Presence []struct {
				Name string `json:"name"`
				Mood *int   `json:"mood"`
			} `json:"presence"`
		} `json:"payload"`
	}
	if json.Unmarshal(frame[i:], &m) != nil || len(m.Payload.Presence) != n {
		return false
	}
	for _, p := range m.Payload.Presence {
		if p.Name == "u1" {
			return p.Mood != nil && *p.Mood == 49
		}
	}
	return false
}
