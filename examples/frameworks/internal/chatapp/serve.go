package chatapp

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/pondsocket/pondsocket"
)

// Addr is the address to listen on: $PONDSOCKET_ADDR, or :8080.
func Addr() string {
	if a := os.Getenv("PONDSOCKET_ADDR"); a != "" {
		return a
	}
	return ":8080"
}

// Serve listens on Addr and hands the listener to serve (the router's own
// server) until ctx ends; then shutdown stops that server, given 10s, and
// the manager closes every WebSocket with 1001, given 5s. Shutdown first:
// it stops the listener and waits for plain requests, while upgraded
// connections are no longer the router's server's (they live in
// PondSocket's event loops), so only manager.Stop closes them.
//
// A listen or serve error ends the program.
func Serve(ctx context.Context, manager *pondsocket.Manager, serve func(net.Listener) error, shutdown func(context.Context) error) {
	l, err := net.Listen("tcp", Addr())
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		log.Printf("listening on %s", l.Addr())
		if err := serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()

	<-ctx.Done()
	log.Print("shutting down")
	stopping, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = shutdown(stopping)
	_ = manager.Stop(5 * time.Second)
}
