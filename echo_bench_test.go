package pondsocket

import (
	"fmt"
	"sync"
	"testing"

	"github.com/pondsocket/pondsocket/internal/wsframe"
)

// echoConn counts the replies it is sent.
type echoConn struct{ wg *sync.WaitGroup }

func (e echoConn) Send(*wsframe.Frame) { e.wg.Done() }
func (echoConn) Close(int, string)     {}

// BenchmarkEchoHandoff is the channel layer's share of a request/reply
// round trip: decode, mailbox, hand-off to a worker (pool) or not (inline),
// routing, the handler, encoding the reply. 1 000 clients, each with one
// request in flight per round, as in `pondbench echo`.
//
//	pool:          OnEvent, on a worker
//	OnEventInline: on the calling goroutine (the loop in a server)
//	Inline:        OnEvent with Options.Handlers.Inline
func BenchmarkEchoHandoff(b *testing.B) {
	b.Run("pool", func(b *testing.B) { benchEcho(b, false, false) })
	b.Run("OnEventInline", func(b *testing.B) { benchEcho(b, false, true) })
	b.Run("Inline", func(b *testing.B) { benchEcho(b, true, false) })
}

func benchEcho(b *testing.B, inlineAll, inlineOne bool) {
	s := newHub(Options{Logger: quietLog(), Handlers: HandlerOptions{Inline: inlineAll}, Inbound: InboundOptions{MessageRate: -1, JoinRate: -1}}, nil)
	defer s.Close()
	ep := s.CreateEndpoint("/api/socket", func(ctx *ConnectionContext) error { return ctx.Accept() })
	ch := ep.CreateChannel("/chat/:room", func(ctx *JoinContext) error { return ctx.Accept().Err() })
	on := ch.OnEvent
	if inlineOne {
		on = ch.OnEventInline
	}
	on("echo", func(ctx *EventContext) error { return ctx.Reply("echo", ctx.RawPayload()).Err() })
	const n = 1000
	var wg sync.WaitGroup
	clients := make([]*Client, n)
	msgs := make([][]byte, n)
	for i := range clients {
		d := s.Connect(&handshake{Path: "/api/socket"})
		for _, f := range d.Greeting {
			f.Release()
		}
		c := d.Client
		s.Open(c, echoConn{&wg})
		room := fmt.Sprintf("/chat/r%d", i%10)
		wg.Add(1)
		s.Message(c, []byte(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"`+room+`","requestId":"j","payload":{}}`))
		clients[i] = c
		msgs[i] = []byte(`{"action":"BROADCAST","event":"echo","channelName":"` + room + `","requestId":"m1","payload":{"ts":123456789,"seq":1,"src":42}}`)
	}
	wg.Wait()
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += n {
		wg.Add(n)
		for i, c := range clients {
			s.Message(c, msgs[i])
		}
		wg.Wait()
	}
}
