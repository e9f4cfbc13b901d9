package engine

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestSmokeEcho(t *testing.T) {
	h := newEchoHandler()
	e := startEngine(t, Config{}, h)
	c, _, err := websocket.DefaultDialer.Dial(wsURL(e, "/echo?greet=1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, m, err := c.ReadMessage()
	if err != nil || string(m) != "hello" {
		t.Fatalf("greeting %q %v", m, err)
	}
	for i := 0; i < 100; i++ {
		if err := c.WriteMessage(websocket.TextMessage, []byte("ping-me")); err != nil {
			t.Fatal(err)
		}
		_, m, err := c.ReadMessage()
		if err != nil || string(m) != "ping-me" {
			t.Fatalf("echo %q %v", m, err)
		}
	}
}
