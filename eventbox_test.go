package pondsocket

import (
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// An event's context and its message's copies are one allocation, of a
// size the allocator has a class for (no bytes lost to rounding up), and
// every message that fits in the largest gets the smallest that fits.
func TestEventBoxesFillTheirSizeClass(t *testing.T) {
	for size := 0; size <= 600; size++ {
		ctx, buf := newEventBox(size)
		got := uintptr(0)
		if buf != nil {
			got = ctxSize + uintptr(cap(buf))
			if uintptr(unsafe.Pointer(unsafe.SliceData(buf[:1]))) != uintptr(unsafe.Pointer(ctx))+ctxSize {
				t.Fatalf("size %d: the room is not right after the context", size)
			}
		}
		want := uintptr(0)
		for _, c := range eventBoxSizes {
			if uintptr(size) <= c-ctxSize {
				want = c
				break
			}
		}
		if got != want {
			t.Fatalf("a %d-byte message gets a %d-byte box, want %d", size, got, want)
		}
	}
	// The allocator counts what it really hands out: a box whose size
	// is not a class would count as the next class up, at least 16 bytes
	// more. Other goroutines of the test process allocate too, so the
	// least of a few tries is taken.
	keep := make([]*EventContext, 1000)
	for _, c := range eventBoxSizes {
		least := uint64(1 << 62)
		for range 5 {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for i := range keep {
				keep[i], _ = newEventBox(int(c - ctxSize))
			}
			runtime.ReadMemStats(&after)
			least = min(least, (after.TotalAlloc-before.TotalAlloc)/uint64(len(keep)))
		}
		if least < uint64(c) || least >= uint64(c)+16 {
			t.Errorf("a %d-byte box costs %d bytes of the heap", c, least)
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
		in := func(p unsafe.Pointer) bool {
			a := uintptr(p)
			return a > base && a < base+eventBoxSizes[len(eventBoxSizes)-1]
		}
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
