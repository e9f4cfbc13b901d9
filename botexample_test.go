package pondsocket_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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
	bin := filepath.Join(t.TempDir(), "bot")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join(testenv.RepoRoot(), "examples", "bot")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build examples/bot: %v\n%s", err, out)
	}

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

	cmd := exec.Command(bin, "-room", "lobby")
	cmd.Env = append(os.Environ(), "BOT_URL=ws://"+srv.Addr().String()+"/api/socket")
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Log("bot output:\n" + logs.String())
		}
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
