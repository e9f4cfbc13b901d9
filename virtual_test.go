package pondsocket

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket/internal/wsframe"
)

// vconn is a virtual connection: it counts what it is sent. The channel
// layer cannot tell it from a socket, which is how it is measured with a
// million members on a machine that holds ~19k sockets per process.
type vconn struct {
	frames atomic.Int64
	bytes  atomic.Int64
}

func (v *vconn) Send(f *wsframe.Frame) {
	v.frames.Add(1)
	v.bytes.Add(int64(len(f.Bytes())))
}
func (v *vconn) Close(int, string) {}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newVirtualServer builds a server whose handlers run inline (synchronous),
// with the limits lifted for bulk joins.
func newVirtualServer() (*hub, *Endpoint, *Channel) {
	s := newHub(Options{Logger: quietLog(), Handlers: HandlerOptions{Inline: true}, Inbound: InboundOptions{JoinRate: -1, MessageRate: -1}}, nil)
	ep := s.CreateEndpoint("/api/socket", func(ctx *ConnectionContext) error { return ctx.Accept() })
	lobby := ep.CreateChannel("/room/:id", func(ctx *JoinContext) error { return ctx.Accept().Err() })
	lobby.OnEvent("say", func(ctx *EventContext) error { return ctx.Broadcast("said", ctx.RawPayload()).Err() })
	return s, ep, lobby
}

func connectVirtual(t testing.TB, s *hub) (*Client, *vconn) {
	d := s.Connect(&handshake{Path: "/api/socket"})
	if d.Client == nil {
		t.Fatalf("connect declined: %d %s", d.Status, d.Message)
	}
	for _, f := range d.Greeting {
		f.Release()
	}
	v := &vconn{}
	s.Open(d.Client, v)
	return d.Client, v
}

func joinMsg(room string) []byte {
	return []byte(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"` + room + `","requestId":"j","payload":{}}`)
}

func TestVirtualMembersBroadcast(t *testing.T) {
	s, ep, lobby := newVirtualServer()
	defer s.Close()
	const n = 20000
	vs := make([]*vconn, n)
	cs := make([]*Client, n)
	for i := range vs {
		cs[i], vs[i] = connectVirtual(t, s)
		s.Message(cs[i], joinMsg("/room/big"))
	}
	ch, ok := ep.Channel("/room/big")
	if !ok || len(ch.Users()) != n {
		t.Fatalf("members: %v", ok)
	}
	if err := lobby.Broadcast("hello", map[string]any{"n": 1}); err != nil {
		t.Fatal(err)
	}
	for i, v := range vs {
		// CONNECT is not counted (the greeting goes through the engine);
		// ACKNOWLEDGE + one broadcast
		if got := v.frames.Load(); got != 2 {
			t.Fatalf("member %d got %d frames", i, got)
		}
	}
	// BroadcastFrom reuses the bytes and skips the sender
	if err := ch.BroadcastFrom("again", map[string]any{}, cs[0].ID()); err != nil {
		t.Fatal(err)
	}
	if vs[0].frames.Load() != 2 || vs[1].frames.Load() != 3 {
		t.Fatalf("broadcastFrom: %d %d", vs[0].frames.Load(), vs[1].frames.Load())
	}
	// everyone leaves: the channel is gone
	for _, c := range cs {
		s.Disconnect(c)
	}
	if _, ok := ep.Channel("/room/big"); ok || s.Stats().Channels.Load() != 0 {
		t.Fatalf("channel survived its members")
	}
}

// BenchmarkVirtualMillion reports, for 1 000 000 virtual members of one
// channel: heap bytes per member, the time of one broadcast to all of them
// (ns/op), and join/leave throughput.
//
//	go test -run=^$ -bench=VirtualMillion -benchtime=10x ./channel/
func BenchmarkVirtualMillion(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(getenv("PONDSOCKET_VIRTUAL_MEMBERS")); err == nil && v > 0 {
		n = v
	}
	s, ep, lobby := newVirtualServer()
	defer s.Close()
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cs := make([]*Client, n)
	vs := make([]*vconn, n)
	msg := joinMsg("/room/million")
	start := time.Now()
	for i := range cs {
		cs[i], vs[i] = connectVirtual(b, s)
		s.Message(cs[i], msg)
	}
	joinDur := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&m1)
	perMember := float64(m1.HeapAlloc-m0.HeapAlloc) / float64(n)
	// the vconn and the test's own slices are not server memory
	perMember -= float64(16 + 8 + 8)
	ch, _ := ep.Channel("/room/million")
	if len(ch.Users()) != n {
		b.Fatalf("members %d", len(ch.Users()))
	}
	payload := map[string]any{"text": "hello everyone"}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := lobby.Broadcast("news", payload); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if got := vs[n-1].frames.Load(); got != int64(1+b.N) {
		b.Fatalf("last member got %d frames", got)
	}
	start = time.Now()
	for _, c := range cs {
		s.Disconnect(c)
	}
	leaveDur := time.Since(start)
	b.ReportMetric(perMember, "bytes/member")
	b.ReportMetric(float64(n)/joinDur.Seconds(), "joins/s")
	b.ReportMetric(float64(n)/leaveDur.Seconds(), "leaves/s")
	b.ReportMetric(float64(n), "members")
}

func getenv(k string) string {
	return fmt.Sprint(lookupEnv(k))
}

func lookupEnv(k string) string { return os.Getenv(k) }

// A message for named users that meets one who is no longer a member: by
// default the whole message fails (ErrNotMember, as BroadcastTo promises);
// with skipAbsent (the bus, the server API, a pattern's handle) the others
// still get it.
func TestNamedRecipientsSkipAbsent(t *testing.T) {
	s, ep, _ := newVirtualServer()
	defer s.Close()
	c, v := connectVirtual(t, s)
	s.Message(c, joinMsg("/room/x"))
	in, ok := ep.instances.get("/room/x")
	if !ok {
		t.Fatal("no channel")
	}
	before := v.frames.Load()
	f := wsframe.NewStaticFrame(wsframe.OpText, []byte(`{}`))
	defer f.Release()
	if _, err := in.deliver(f, recipients{only: []string{c.ID(), "gone"}}); !errors.Is(err, ErrNotMember) {
		t.Fatalf("strict: %v, want ErrNotMember", err)
	}
	if v.frames.Load() != before {
		t.Fatal("strict delivery sent to a member despite the absent one")
	}
	if n, err := in.deliver(f, recipients{only: []string{"gone", c.ID()}, skipAbsent: true}); err != nil || n != 1 {
		t.Fatalf("skipAbsent: %d %v, want 1 delivery", n, err)
	}
	if v.frames.Load() != before+1 {
		t.Fatal("the present member did not get the message")
	}
}
