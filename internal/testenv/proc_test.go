package testenv

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Start waits for the ready line and hands back its rest; Log has every
// line; Stop returns the exit status after SIGTERM; a program that ignores
// SIGTERM is killed at the deadline and reported.
func TestProcHarness(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	p := Start(t, "sh", ProcOptions{
		Args:  []string{"-c", `trap 'echo bye; exit 3' TERM; echo starting; echo "listening on 127.0.0.1:1234" >&2; while :; do sleep 0.05; done`},
		Ready: "listening on ",
	})
	if p.Ready != "127.0.0.1:1234" {
		t.Fatalf("Ready = %q", p.Ready)
	}
	err := p.Stop(5 * time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("Stop: %v, want exit status 3", err)
	}
	if got := strings.Join(p.Log(), "|"); got != "starting|listening on 127.0.0.1:1234|bye" {
		t.Fatalf("log %q", got)
	}
	if p.Alive() {
		t.Fatal("alive after Stop")
	}

	stubborn := Start(t, "sh", ProcOptions{Args: []string{"-c", `trap '' TERM; echo up; while :; do sleep 0.05; done`}, Ready: "up"})
	if err := stubborn.Stop(200 * time.Millisecond); !errors.Is(err, ErrStopTimeout) {
		t.Fatalf("Stop of a program ignoring SIGTERM: %v", err)
	}
}
