// Command gorillamux mounts PondSocket on a gorilla/mux router, next to a
// plain JSON API, behind logging and recovery middleware (mux has no
// built-in ones; gorilla/handlers provides LoggingHandler and
// RecoveryHandler if you prefer) and mux's CORS method middleware.
//
//	PONDSOCKET_ADDR=:8080 go run .
//	curl localhost:8080/api/users
//	ws://localhost:8080/ws/api/socket?token=alice
package main

import (
	"context"
	"encoding/json"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gorilla/mux"

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

	r := mux.NewRouter()
	r.Use(recoverer, logger, mux.CORSMethodMiddleware(r))

	r.HandleFunc("/api/users", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(chatapp.Users)
	}).Methods(http.MethodGet, http.MethodOptions)
	// Every path under /ws/ goes to PondSocket; it answers the upgrade itself.
	r.PathPrefix("/ws/").Handler(manager.HTTPHandler())

	// Serve until SIGINT/SIGTERM, then shut the http.Server down before the
	// manager: see chatapp.Serve.
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	chatapp.Serve(ctx, manager, srv.Serve, srv.Shutdown)
}

// logger is a mux.MiddlewareFunc. It passes the ResponseWriter through
// unchanged, so the upgrade can still hijack the connection (a wrapper
// must implement Unwrap, or http.Hijacker, for that).
func logger(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next.ServeHTTP(w, r)
		log.Printf("%s %s %s", r.Method, r.URL.Path, time.Since(start))
	})
}

func recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Printf("panic serving %s: %v", r.URL.Path, v)
				http.Error(w, "Internal Server Error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}
