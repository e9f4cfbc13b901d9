package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// waitForSignal blocks until SIGINT or SIGTERM and returns it. A second
// signal during the drain that follows ends the process at once (exit 1).
func waitForSignal(log *slog.Logger) os.Signal {
	c := make(chan os.Signal, 2)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	sig := <-c
	go func() {
		s := <-c
		log.Warn("second signal: exiting without finishing the drain", "signal", s.String())
		os.Exit(1)
	}()
	return sig
}
