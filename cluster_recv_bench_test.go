package pondsocket

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket/cluster"
	"github.com/pondsocket/pondsocket/internal/wsframe"
)

// tapBus is a PubSub that gives the benchmark the Node's deliver callback,
// the exact function a backend calls for each message it reads, and
// swallows what the node publishes: the receiving side without sockets.
type tapBus struct {
	deliver func(topic string, data []byte)
}

func (b *tapBus) Start(_ context.Context, d func(string, []byte)) error { b.deliver = d; return nil }
func (*tapBus) Subscribe(context.Context, string) error                 { return nil }
func (*tapBus) Unsubscribe(context.Context, string) error               { return nil }
func (*tapBus) Publish(context.Context, string, []byte) error           { return nil }
func (*tapBus) Close() error                                            { return nil }

// countConn counts the frames it is sent.
type countConn struct{ n *atomic.Int64 }

func (c countConn) Send(*wsframe.Frame) { c.n.Add(1) }
func (countConn) Close(int, string)     {}

// BenchmarkClusterReceive is the receiving node's CPU cost per cross-node
// message, as in `pondbench cluster` (one sender on node A, 100 receivers
// on node B): from the backend's deliver call through the envelope's
// decode, the liveness bookkeeping, the hub's channel lookup and the
// fan-out (one frame encoded, handed to each of the 100 connections; the
// socket writes themselves are the transport's and not counted). The
// payload is pondbench's 100-byte object.
//
//	hosted:       a channel with 100 local members
//	not-hosted:   a channel this node does not serve, handed to the Node
//	              anyway (what a backend without a filter would cost; the
//	              Kafka backend, which reads every partition, filters by
//	              key before this, and Redis never sends it)
//	empty:        a channel the node still subscribes but has no member in
//
//	go test -run '^$' -bench ClusterReceive -benchmem -count 6 .
func BenchmarkClusterReceive(b *testing.B) {
	s := newHub(Options{Logger: quietLog(), Inbound: InboundOptions{MessageRate: -1, JoinRate: -1}}, nil)
	defer s.Close()
	ep := s.CreateEndpoint("/api/socket", func(ctx *ConnectionContext) error { return ctx.Accept() })
	ep.CreateChannel("/chat/:room", func(ctx *JoinContext) error { return ctx.Accept().Err() })
	bus := &tapBus{}
	node := cluster.NewNode(bus, cluster.Options{NodeID: "receiver", Logger: quietLog(),
		HeartbeatInterval: time.Hour, HeartbeatTimeout: 2 * time.Hour})
	s.AttachCluster(node)
	if err := node.Start(context.Background(), s); err != nil {
		b.Fatal(err)
	}
	defer node.Close()

	var sent atomic.Int64
	const members = 100
	for i := 0; i < members; i++ {
		d := s.Connect(&handshake{Path: "/api/socket"})
		for _, f := range d.Greeting {
			f.Release()
		}
		s.Open(d.Client, countConn{&sent})
		s.Message(d.Client, []byte(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/hosted","requestId":"j","payload":{"presence":false}}`))
	}
	// a second channel that the node subscribes to but where nobody is left
	d := s.Connect(&handshake{Path: "/api/socket"})
	s.Open(d.Client, countConn{&sent})
	if err := node.Subscribe("/api/socket", "/chat/empty"); err != nil {
		b.Fatal(err)
	}
	ch, ok := ep.Channel("/chat/hosted")
	for !ok || len(ch.Users()) != members {
		time.Sleep(time.Millisecond) // joins run on the worker pool
		ch, ok = ep.Channel("/chat/hosted")
	}

	envelope := func(channel string) (string, []byte) {
		payload := `{"ts":"1764763200000000000","seq":1,"src":0,"pad":"` + strings.Repeat("x", 47) + `"}`
		data, err := cluster.Encode(&cluster.Envelope{Protocol: cluster.Protocol, Version: cluster.Version,
			Type: cluster.UserMessage, MessageID: cluster.NewMessageID(), SourceNodeID: "sender",
			EndpointName: "api/socket", ChannelName: channel, Timestamp: time.Now().UnixMilli(),
			FromUserID: "u0", Event: "message", Payload: []byte(payload), RequestID: "m0.1",
			Recipients: cluster.AllUsers()})
		if err != nil {
			b.Fatal(err)
		}
		return cluster.ChannelTopic("pondsocket", "default", "api/socket", channel), data
	}
	for _, c := range []struct {
		name, channel string
		fanout        int64
	}{
		{"hosted", "/chat/hosted", members},
		{"not-hosted", "/chat/elsewhere", 0},
		{"empty", "/chat/empty", 0},
	} {
		b.Run(c.name, func(b *testing.B) {
			topic, data := envelope(c.channel)
			before := sent.Load()
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				bus.deliver(topic, data)
			}
			b.StopTimer()
			if got := sent.Load() - before; got != c.fanout*int64(b.N) {
				b.Fatalf("%d frames sent for %d messages, want %d each", got, b.N, c.fanout)
			}
		})
	}
}
