package ceiling

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Main is the `pondbench ceiling-server` command: it serves until SIGINT or
// SIGTERM, or, with --stdin-eof, until its standard input closes (so a
// parent that started it cannot leave it behind).
func Main(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("ceiling-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9100", "listen address (host:port; port 0 picks a free one)")
	loops := fs.Int("event-loops", 2, "gnet event loops")
	batch := fs.Bool("batch", false, "write the frames waiting for a loop together, one write per connection")
	echo := fs.Bool("echo", false, "answer each message to its sender only (the ceiling of the echo scenario)")
	stdinEOF := fs.Bool("stdin-eof", false, "exit when standard input closes")
	maxLife := fs.Duration("max-lifetime", 0, "exit after this long (0 = never)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := Start(Config{Addr: *addr, EventLoops: *loops, Batch: *batch, Echo: *echo})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "listening on %s\n", s.Addr())
	quit := make(chan os.Signal, 1)
	signal.Notify(quit, syscall.SIGINT, syscall.SIGTERM)
	eof := make(chan struct{})
	if *stdinEOF {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			close(eof)
		}()
	}
	var life <-chan time.Time
	if *maxLife > 0 {
		life = time.After(*maxLife)
	}
	select {
	case <-quit:
	case <-eof:
	case <-life:
	}
	return s.Stop()
}
