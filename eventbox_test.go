package pondsocket

import (
	"strings"
	"testing"
	"unsafe"
)

// An event's context and its message's copies are one allocation, of a
// size the allocator has a class for (no bytes lost to rounding up).
func TestEventBoxesFillTheirSizeClass(t *testing.T) {
	for _, b := range []struct {
		name string
		size uintptr
		want uintptr
	}{
		{"S", unsafe.Sizeof(eventBoxS{}), 208},
		{"M", unsafe.Sizeof(eventBoxM{}), 256},
		{"L", unsafe.Sizeof(eventBoxL{}), 384},
	} {
		if b.size != b.want {
			t.Errorf("eventBox%s is %d bytes, want %d", b.name, b.size, b.want)
		}
	}
}

// The strings and payload an event handler sees lie beside its context
// when they fit, and in an allocation of their own when they do not.
func TestEventContextHoldsItsMessage(t *testing.T) {
	s := newHub(Options{Logger: quietLog(), Handlers: HandlerOptions{Inline: true}, Inbound: InboundOptions{JoinRate: -1, MessageRate: -1}}, nil)
	defer s.Close()
	ep := s.CreateEndpoint("/api/socket", func(ctx *ConnectionContext) error { return ctx.Accept() })
	ch := ep.CreateChannel("/room/:id", func(ctx *JoinContext) error { return ctx.Accept().Err() })
	type seen struct {
		inside      bool
		name, reqID string
		payload     string
	}
	var got seen
	ch.OnEvent("e", func(ctx *EventContext) error {
		base := uintptr(unsafe.Pointer(ctx))
		in := func(p unsafe.Pointer) bool { a := uintptr(p); return a > base && a < base+384 }
		got = seen{in(unsafe.Pointer(unsafe.StringData(ctx.EventName()))) && in(unsafe.Pointer(unsafe.SliceData(ctx.RawPayload()))),
			ctx.EventName(), ctx.reqID, string(ctx.RawPayload())}
		return nil
	})
	c, _ := connectVirtual(t, s)
	s.Message(c, joinMsg("/room/a"))
	for _, tc := range []struct {
		payload string
		inside  bool
	}{
		{`{"n":1}`, true},
		{`{"t":"` + strings.Repeat("x", 150) + `"}`, true},
		{`{"t":"` + strings.Repeat("x", 400) + `"}`, false},
	} {
		got = seen{}
		s.Message(c, []byte(`{"action":"BROADCAST","event":"e","channelName":"/room/a","requestId":"r1","payload":`+tc.payload+`}`))
		if got.name != "e" || got.reqID != "r1" || got.payload != tc.payload {
			t.Fatalf("handler saw %+v, want the message with payload %s", got, tc.payload)
		}
		if got.inside != tc.inside {
			t.Errorf("a %d-byte payload inside its context's allocation: %v, want %v", len(tc.payload), got.inside, tc.inside)
		}
	}
}
