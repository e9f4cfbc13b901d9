package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/client"
	"github.com/pondsocket/pondsocket/internal/demochat"
	"github.com/pondsocket/pondsocket/internal/testenv"
)

// examples/bot (its own module) against the demo chat of cmd/pondsocket,
// observed by a member that uses the Go client.
func TestBotExampleAnswersMentions(t *testing.T) {
	srv, _ := startApp(t, nil, func(s *pondsocket.Server) { demochat.Register(s) })
	bin := testenv.Build(t, "examples/bot")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	alice, err := client.Dial(ctx, "ws://"+srv.Addr().String()+"/api/socket", &client.Options{Params: map[string]string{"username": "alice"}})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	room := alice.Channel("/chat/lobby", map[string]any{"username": "alice"})
	botHere := make(chan struct{}, 1)
	room.OnJoin(func(p client.PresenceEvent) {
		if p.Changed["username"] == "bot" {
			botHere <- struct{}{}
		}
	})
	fromBot := make(chan string, 10)
	room.On("message", func(m client.Message) {
		var p struct{ Text, From string }
		if m.Decode(&p) == nil && p.From == "bot" {
			fromBot <- p.Text
		}
	})
	if err := room.Join(ctx); err != nil {
		t.Fatal(err)
	}

	testenv.Start(t, bin, testenv.ProcOptions{
		Args: []string{"-room", "lobby"},
		Env:  []string{"BOT_URL=ws://" + srv.Addr().String() + "/api/socket"},
	})
	select {
	case <-botHere:
	case <-ctx.Done():
		t.Fatal("the bot did not join")
	}

	say := func(text string) {
		t.Helper()
		if err := room.Send("message", map[string]any{"text": text, "from": "alice", "id": alice.ID()}); err != nil {
			t.Fatal(err)
		}
	}
	// not mentioned: no answer (the answer to the next message comes first)
	say("hello everyone")
	say("@bot who is here?")
	select {
	case text := <-fromBot:
		if !strings.Contains(text, "@alice") || !strings.Contains(text, "alice, bot") {
			t.Fatalf("bot answered %q", text)
		}
	case <-ctx.Done():
		t.Fatal("the bot did not answer")
	}
}
