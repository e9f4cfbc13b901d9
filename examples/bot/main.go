// Command bot is a PondSocket bot written with the Go client
// (github.com/pondsocket/pondsocket/client): it joins a room of the demo
// chat served by cmd/pondsocket and answers the messages that mention it.
//
//	go run ./cmd/pondsocket &                 # from the repository root
//	cd examples/bot && go run . -room lobby   # then write "@bot help" in the page
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/pondsocket/pondsocket/client"
)

func main() {
	url := flag.String("url", envOr("BOT_URL", "ws://localhost:8080/api/socket"), "PondSocket endpoint (env BOT_URL)")
	room := flag.String("room", envOr("BOT_ROOM", "lobby"), "room to join: channel /chat/<room> (env BOT_ROOM)")
	name := flag.String("name", envOr("BOT_NAME", "bot"), "the bot's user name; messages mentioning @<name> are answered (env BOT_NAME)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, *url, *room, *name); err != nil {
		log.Error("bot stopped", "err", err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// chatMessage is the payload of the demo chat's "message" event, as the
// demo page sends it (the server broadcasts it unchanged).
type chatMessage struct {
	Text string `json:"text"`
	From string `json:"from"`
	ID   string `json:"id"`
	At   int64  `json:"at"`
}

func run(ctx context.Context, log *slog.Logger, url, room, name string) error {
	c, err := client.New(url, &client.Options{
		Params:       map[string]string{"username": name},
		OnConnect:    func(id string) { log.Info("connected", "id", id) },
		OnDisconnect: func(err error) { log.Warn("disconnected; reconnecting", "err", err) },
	})
	if err != nil {
		return err
	}
	defer c.Close()
	// Connect retries (with back-off) until the server is up or ctx ends.
	if err := c.Connect(ctx); err != nil {
		return err
	}

	ch := c.Channel("/chat/"+room, map[string]any{"username": name})
	ch.OnStateChange(func(s client.ChannelState, err error) {
		log.Info("room state", "room", room, "state", s, "err", err)
	})
	ch.On("message", func(m client.Message) {
		var msg chatMessage
		if err := m.Decode(&msg); err != nil || msg.ID == c.ID() || msg.From == name {
			return // not a chat message, or our own
		}
		answer, ok := reply(name, msg, ch.Presence())
		if !ok {
			return
		}
		out := chatMessage{Text: answer, From: name, ID: c.ID(), At: time.Now().UnixMilli()}
		if err := ch.Send("message", out); err != nil {
			log.Warn("could not answer", "err", err)
		}
	})
	if err := ch.Join(ctx); err != nil {
		return fmt.Errorf("join %s: %w", ch.Name(), err)
	}
	log.Info("joined; mention @"+name+" in the room", "room", ch.Name())
	<-ctx.Done()
	return ch.Leave()
}

// reply decides the answer to msg: only messages that mention @name are
// answered.
func reply(name string, msg chatMessage, presence []map[string]any) (string, bool) {
	text := strings.ToLower(msg.Text)
	if !strings.Contains(text, "@"+strings.ToLower(name)) {
		return "", false
	}
	from := msg.From
	if from == "" {
		from = "stranger"
	}
	switch {
	case strings.Contains(text, "who"):
		var names []string
		for _, p := range presence {
			if n, ok := p["username"].(string); ok {
				names = append(names, n)
			}
		}
		slices.Sort(names)
		return fmt.Sprintf("@%s here now: %s", from, strings.Join(names, ", ")), true
	case strings.Contains(text, "time"):
		return fmt.Sprintf("@%s it is %s", from, time.Now().UTC().Format("15:04:05 UTC")), true
	default:
		return fmt.Sprintf("Hello @%s! Ask me \"@%s who\" or \"@%s time\".", from, name, name), true
	}
}
