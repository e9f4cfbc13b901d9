package cluster

import (
	"regexp"
	"testing"
)

func TestTopics(t *testing.T) {
	for _, c := range []struct{ pattern, want string }{
		{"/api/socket", "api/socket"}, {"api/socket", "api/socket"}, {"//x/", "x/"}, {"/", ""}, {"/chat/:id", "chat/:id"},
	} {
		if got := EndpointName(c.pattern); got != c.want {
			t.Errorf("EndpointName(%q) = %q, want %q", c.pattern, got, c.want)
		}
	}
	if got := ChannelTopic("pondsocket", "demo", "/api/socket", "/chat/lobby"); got != "pondsocket:v1:demo:api/socket:/chat/lobby" {
		t.Errorf("ChannelTopic = %q", got)
	}
	if got := ChannelTopic("p", "n", "/e", "/chat/[a]*?x=1"); got != "p:v1:n:e:/chat/[a]*?x=1" {
		t.Errorf("ChannelTopic keeps the channel verbatim: %q", got)
	}
	if got := HeartbeatTopic("pondsocket", "demo"); got != "pondsocket:v1:demo:__heartbeat__" {
		t.Errorf("HeartbeatTopic = %q", got)
	}
	seen := map[string]bool{}
	for range 1000 {
		id := NewMessageID()
		if !regexp.MustCompile(`^[0-9a-z]{8,9}-[0-9a-z]{1,11}$`).MatchString(id) || seen[id] {
			t.Fatalf("NewMessageID %q (or a repeat)", id)
		}
		seen[id] = true
		if n := NewNodeID(); !regexp.MustCompile(`^[0-9a-z]{10,13}$`).MatchString(n) {
			t.Fatalf("NewNodeID %q", n)
		}
	}
}
