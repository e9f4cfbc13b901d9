package pondsocket

import "testing"

// Client.hint, which the transport prefetches while it decodes a message,
// follows the client's first channel through joins and leaves.
func TestClientHintFollowsFirstChannel(t *testing.T) {
	s, ep, _ := newVirtualServer()
	defer s.Close()
	c, _ := connectVirtual(t, s)
	if c.hint.Load() != nil {
		t.Fatal("a client in no channel has a hint")
	}
	s.Message(c, joinMsg("/room/a"))
	a, ok := ep.instances.get("/room/a")
	if !ok || c.hint.Load() != a {
		t.Fatalf("after the first join: hint %p, channel %p", c.hint.Load(), a)
	}
	s.Message(c, joinMsg("/room/b"))
	if c.hint.Load() != a {
		t.Fatal("a second join moved the hint off the first channel")
	}
	s.Message(c, []byte(`{"action":"LEAVE_CHANNEL","event":"LEAVE_CHANNEL","channelName":"/room/a","requestId":"l","payload":{}}`))
	c.mu.Lock()
	first := c.chans.oneIn
	c.mu.Unlock()
	if c.hint.Load() != first {
		t.Fatalf("after leaving the first channel: hint %p, first channel %p", c.hint.Load(), first)
	}
	s.Message(c, []byte(`{"action":"LEAVE_CHANNEL","event":"LEAVE_CHANNEL","channelName":"/room/b","requestId":"l","payload":{}}`))
	if c.hint.Load() != nil {
		t.Fatal("a client that left every channel still has a hint")
	}
}
