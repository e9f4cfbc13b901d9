package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// waitForSignal blocks until SIGINT or SIGTERM and returns it. A second
// signal during the drain that follows ends the process at once (exit 1).
// waitForSignal returns on SIGINT/SIGTERM, or exits the process if the
// server stops by itself (its listener failed), so a supervisor restarts it
// instead of keeping a process that serves nothing.
func waitForSignal(log *slog.Logger, done <-chan struct{}) os.Signal {
	c := make(chan os.Signal, 2)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	var sig os.Signal
	select {
	case sig = <-c:
	case <-done:
		log.Error("the server stopped unexpectedly; exiting")
		os.Exit(1)
	}
	go func() {
		s := <-c
		log.Warn("second signal: exiting without finishing the drain", "signal", s.String())
		os.Exit(1)
	}()
	return sig
}
