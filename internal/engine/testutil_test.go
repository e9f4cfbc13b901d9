package engine

import (
	"bufio"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func goroutines() int { return runtime.NumGoroutine() }

func openFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}
