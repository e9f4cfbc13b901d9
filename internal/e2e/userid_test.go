package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/internal/testenv"
)

// ConnectionContext.SetUserID: the id is CONNECT's connectionId and what
// presence shows; a user's connections beyond MaxConnectionsPerUser (here
// 2) are declined 409 while a bystander with another id connects and
// chats; a bad id declines the upgrade with a generic error.
func TestSetUserID(t *testing.T) {
	srv, _ := startApp(t, func(o *pondsocket.Options) { o.Transport.MaxConnectionsPerUser = 2 }, func(srv *pondsocket.Server) {
		ep := srv.CreateEndpoint("/api/socket", func(ctx *pondsocket.ConnectionContext) error {
			return ctx.SetUserID(ctx.Route.Query.Get("user")).Accept()
		})
		ep.CreateChannel("/room/:id", func(ctx *pondsocket.JoinContext) error {
			return ctx.Accept().Track(map[string]any{"id": ctx.User().UserID}).Err()
		})
	})
	dial := func(user string) (*websocket.Conn, int, error) {
		c, resp, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://%s/api/socket?user=%s", srv.Addr(), user), nil)
		if resp != nil {
			return c, resp.StatusCode, err
		}
		return c, 0, err
	}
	read := func(c *websocket.Conn) string {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, m, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		return string(m)
	}
	ann, _, err := dial("ann")
	if err != nil {
		t.Fatal(err)
	}
	defer ann.Close()
	if m := read(ann); !strings.Contains(m, `"connectionId":"ann"`) {
		t.Fatalf("CONNECT %s, want connectionId ann", m)
	}
	ann2, _, err := dial("ann")
	if err != nil {
		t.Fatalf("second connection of ann: %v", err)
	}
	if m := read(ann2); !strings.Contains(m, `"connectionId":"ann"`) {
		t.Fatalf("CONNECT %s, want connectionId ann", m)
	}
	if _, status, err := dial("ann"); err == nil || status != pondsocket.StatusUserConnected {
		t.Fatalf("third connection of ann: status %d err %v, want %d", status, err, pondsocket.StatusUserConnected)
	}
	if _, status, err := dial(strings.Repeat("x", pondsocket.MaxUserIDBytes+1)); err == nil || status != 500 {
		t.Fatalf("oversized id: status %d err %v, want 500", status, err)
	}
	bob, _, err := dial("bob")
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	read(bob)
	for _, c := range []*websocket.Conn{ann, bob} {
		c.WriteMessage(websocket.TextMessage, []byte(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/room/1","requestId":"j","payload":{}}`))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := read(bob)
		if strings.Contains(m, `"presence":[`) && strings.Contains(m, `{"id":"ann"}`) && strings.Contains(m, `{"id":"bob"}`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no presence with ann and bob; last %s", m)
		}
	}
	// a place is free again once one of her connections is gone
	ann2.Close()
	// polling a server-side release; no signal reaches the client
	testenv.Eventually(t, 5*time.Second, "ann reconnects after closing", func() bool {
		c, _, err := dial("ann")
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}
