package e2e

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket"
)

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A handler that finishes after its client left (its broadcast then fails
// with ErrNotMember) is not a server error: nothing is logged at ERROR.
// The attack kit's slowhandlers run wrote one ERROR line per such call.
func TestHandlerErrorAfterDisconnectIsNotAnError(t *testing.T) {
	var logs lockedBuffer
	done := make(chan error, 1)
	started := make(chan struct{})
	srv := startWith(t, func(o *pondsocket.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}, func(room *pondsocket.Channel) {
		room.OnEvent("late", func(ctx *pondsocket.EventContext) error {
			close(started)
			<-ctx.Context().Done() // cancelled when the connection goes away
			err := ctx.Reply("late", map[string]any{}).Err()
			done <- err
			return err
		})
	})
	c := dialWS(t, srv)
	c.join(t, "/room/late")
	if err := c.send(t, `{"action":"BROADCAST","event":"late","channelName":"/room/late","requestId":"l","payload":{}}`); err != nil {
		t.Fatal(err)
	}
	<-started
	c.c.Close()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler's context was not cancelled by the disconnect")
	}
	if err == nil {
		t.Fatal("the late Reply succeeded; the test does not exercise the error path")
	}
	_ = srv.Stop(5 * time.Second) // handler results are handled before Stop returns
	if bytes.Contains([]byte(logs.String()), []byte("level=ERROR")) {
		t.Fatalf("ERROR logged for a handler that outlived its client:\n%s", logs.String())
	}
}
