package pondsocket

import (
	"strings"
	"testing"
	"unsafe"
)

// A short channel name is kept inside its instance (so that comparing it
// reads no other allocation); a long one is the caller's string.
func TestInstanceKeepsShortNameInline(t *testing.T) {
	s := newHub(Options{Logger: quietLog()}, nil)
	defer s.Close()
	ep := s.CreateEndpoint("/api/socket", func(ctx *ConnectionContext) error { return ctx.Accept() })
	ch := ep.CreateChannel("/chat/:room", func(ctx *JoinContext) error { return ctx.Accept().Err() })
	inside := func(in *instance) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(in.name)))
		base := uintptr(unsafe.Pointer(in))
		return p >= base && p < base+unsafe.Sizeof(*in)
	}
	short := "/chat/" + strings.Repeat("s", nameInline-len("/chat/"))
	in := newInstance(ch.l, strings.Clone(short), Route{})
	if in.name != short || !inside(in) {
		t.Fatalf("a %d-byte name: %q, inside the instance: %v", len(short), in.name, inside(in))
	}
	long := short + "x"
	in = newInstance(ch.l, long, Route{})
	if in.name != long || inside(in) || unsafe.StringData(in.name) != unsafe.StringData(long) {
		t.Fatalf("a %d-byte name: %q, inside the instance: %v", len(long), in.name, inside(in))
	}
}
