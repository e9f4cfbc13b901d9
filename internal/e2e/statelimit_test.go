package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pondsocket/pondsocket"
)

// State.MaxTotalBytes bounds the channel state of all connections together:
// when two connections have filled it, a third one's join is refused with
// status 503 (ErrServerStateFull) while a bystander that joined earlier
// keeps being served.
func TestServerStateBudget(t *testing.T) {
	srv := startDemo(t, func(o *pondsocket.Options) {
		o.State.MaxTotalBytes = 48 << 10
		o.Inbound.JoinRate = -1
	})
	by := dialRawPond(t, srv, "token=bystander")
	joinRaw(by, "/chat/bystander", "jb")
	by.sync("/chat/bystander")

	name := strings.Repeat("n", 1000)
	fill := func(who string) {
		p := dialRawPond(t, srv, "token="+who)
		for i := 0; i < 30; i++ {
			p.send(fmt.Sprintf(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/%s-%s%d","requestId":"j%d","payload":{"username":"%s"}}`, who, name, i, i, who))
		}
		for answered := 0; answered < 30; {
			m := p.next()
			if id, _ := m["requestId"].(string); strings.HasPrefix(id, "j") && m["event"] != "JOIN" {
				answered++ // ACKNOWLEDGE, or UNAUTHORIZED once the budget is spent
			}
		}
	}
	fill("alice")
	fill("bob")
	if sb := srv.Stats().StateBytes; sb > 48<<10 {
		t.Fatalf("state bytes %d over the 48 KiB bound", sb)
	}
	c := dialRawPond(t, srv, "token=carol")
	c.send(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/carol-` + name + `","requestId":"jc","payload":{"username":"carol"}}`)
	for {
		m := c.next()
		if m["requestId"] != "jc" {
			continue
		}
		p, _ := m["payload"].(map[string]any)
		if m["event"] != "UNAUTHORIZED" || p["status"] != float64(503) {
			t.Fatalf("join with the server's state full: %v", m)
		}
		break
	}
	by.sync("/chat/bystander")
}
