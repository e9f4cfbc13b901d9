// Command bridgeserver serves cmd/pondsocket's demo chat through an
// ordinary net/http server with Manager.HTTPHandler, so pondbench can
// compare the net/http bridge with the engine's own listener: after the
// upgrade both are the same event loops, and the figures should match.
//
//	go run ./bench/bridgeserver --addr 127.0.0.1:8090
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/internal/demochat"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	compression := flag.Bool("compression", false, "negotiate permessage-deflate")
	flag.Parse()
	opts := pondsocket.DefaultOptions()
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	opts.EnableCompression = *compression
	ctx, cancel := context.WithCancel(context.Background())
	m := pondsocket.NewManager(ctx, *opts)
	demochat.Register(m)
	mux := http.NewServeMux()
	mux.Handle("/api/socket", m.HTTPHandler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	fmt.Fprintf(os.Stderr, "listening on %s\n", ln.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	cancel()
	_ = m.Stop(5 * time.Second)
	_ = hs.Close()
}
