// Command chi mounts PondSocket on a go-chi/chi router, next to a plain
// JSON API, behind chi's logger and recoverer middleware.
//
//	PONDSOCKET_ADDR=:8080 go run .
//	curl localhost:8080/api/users
//	ws://localhost:8080/ws/api/socket?token=alice
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/pondsocket/pondsocket"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The manager stops (closing every WebSocket with 1001) when ctx ends.
	manager := pondsocket.NewManager(ctx, *pondsocket.DefaultOptions())
	setupPond(manager)

	r := chi.NewRouter()
	r.Use(middleware.RequestID)
	r.Use(middleware.Logger)
	r.Use(middleware.Recoverer)

	r.Get("/api/users", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(users)
	})
	// Mount keeps the full path (/ws/api/socket) in r.URL.Path, which is
	// what the endpoint is matched against.
	r.Mount("/ws", manager.HTTPHandler())

	l, err := net.Listen("tcp", listenAddr())
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		log.Printf("listening on %s", l.Addr())
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()

	<-ctx.Done()
	log.Print("shutting down")
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Shutdown stops the listener and waits for plain requests; upgraded
	// connections are not the http.Server's any more: Stop closes them.
	_ = srv.Shutdown(shutdown)
	_ = manager.Stop(5 * time.Second)
}

// setupPond registers the WebSocket endpoint and its chat channel. The
// endpoint path is the full request path the router hands over: the
// WebSocket route is mounted on /ws/, so clients connect to
// ws://host/ws/api/socket.
func setupPond(manager *pondsocket.Manager) {
	endpoint := manager.CreateEndpoint("/ws/api/socket", func(ctx *pondsocket.ConnectionContext) error {
		token := ctx.Route.Query.Get("token")
		if token == "" {
			// declined before the upgrade: the client gets a plain 401
			return ctx.Decline(401, "Missing token")
		}
		// A real application verifies the token (a JWT, a session id…);
		// the demo takes it as the user's name.
		return ctx.SetAssigns("username", token).Accept()
	})

	chat := endpoint.CreateChannel("/chat/:roomId", func(ctx *pondsocket.JoinContext) error {
		username, _ := ctx.GetAssigns("username").(string)
		return ctx.Accept().
			Track(map[string]any{"username": username, "status": "online"}).
			Err()
	})

	chat.OnEvent("message", func(ctx *pondsocket.EventContext) error {
		var msg struct {
			Text string `json:"text"`
		}
		if err := ctx.ParsePayload(&msg); err != nil || msg.Text == "" {
			return ctx.Reply("error", map[string]any{"message": "text is required"}).Err()
		}
		username, _ := ctx.GetAssign("username")
		return ctx.Broadcast("message", map[string]any{"text": msg.Text, "username": username}).Err()
	})
}

// users is the plain HTTP API the router serves next to the WebSocket route.
var users = []map[string]any{
	{"id": "1", "username": "john_doe", "status": "online"},
	{"id": "2", "username": "jane_smith", "status": "away"},
}

func listenAddr() string {
	if a := os.Getenv("PONDSOCKET_ADDR"); a != "" {
		return a
	}
	return ":8080"
}
