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
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/examples/frameworks/internal/chatapp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The manager stops (closing every WebSocket with 1001) when ctx ends.
	manager := pondsocket.NewManager(ctx, *pondsocket.DefaultOptions())
	// the chat application every framework example serves (../internal/chatapp)
	chatapp.Setup(manager)

	r := chi.NewRouter()
	r.Use(middleware.RequestID)
	r.Use(middleware.Logger)
	r.Use(middleware.Recoverer)

	r.Get("/api/users", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(chatapp.Users)
	})
	// Mount keeps the full path (/ws/api/socket) in r.URL.Path, which is
	// what the endpoint is matched against.
	r.Mount("/ws", manager.HTTPHandler())

	// Serve until SIGINT/SIGTERM, then shut the http.Server down before the
	// manager: see chatapp.Serve.
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	chatapp.Serve(ctx, manager, srv.Serve, srv.Shutdown)
}
