// Command nethttp mounts PondSocket on the standard library's
// http.ServeMux, next to a plain JSON API, behind logging and recovery
// middleware.
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

	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/users", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(chatapp.Users)
	})
	// Every path under /ws/ goes to PondSocket; it answers the upgrade itself.
	mux.Handle("/ws/", manager.HTTPHandler())

	// Serve until SIGINT/SIGTERM, then shut the http.Server down before the
	// manager: see chatapp.Serve.
	srv := &http.Server{Handler: recoverer(logger(mux)), ReadHeaderTimeout: 10 * time.Second}
	chatapp.Serve(ctx, manager, srv.Serve, srv.Shutdown)
}

// statusWriter records the status for the access log. Unwrap lets
// http.ResponseController (which PondSocket uses to hijack the connection
// for the upgrade) reach the server's own ResponseWriter.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func logger(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		// an upgraded request logs 200 here: the 101 was written on the
		// hijacked connection, not through the ResponseWriter
		log.Printf("%s %s %d %s", r.Method, r.URL.Path, sw.status, time.Since(start))
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
