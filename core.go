package pondsocket

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/pondsocket/pondsocket/cluster"
	"github.com/pondsocket/pondsocket/internal/engine"
)

// core is what a Server and a Manager are made of: the hub (endpoints,
// channels, handlers), the engine (sockets), the cluster node when
// Options.PubSub is set, the logger, and one start/stop lifecycle. The two
// differ only in where connections come from: the Server's own listener,
// or an application's HTTP server through Manager.HTTPHandler.
type core struct {
	o   Options
	log *slog.Logger
	hub *hub
	eng *engine.Engine
	br  *bridge

	mu      sync.Mutex
	state   int // 0 new, 1 running, 2 stopping or stopped
	err     error
	node    *cluster.Node
	stopped chan struct{} // closed when stop has finished
	stopErr error
}

func newCore(o Options, cfg engine.Config) *core {
	br := &bridge{log: o.Logger}
	c := &core{o: o, log: o.Logger, br: br, stopped: make(chan struct{})}
	c.hub = newHub(o, br)
	br.ch = c.hub
	// every endpoint path also serves the SSE transport (docs/protocol.md §9)
	cfg.SSEPath = c.hub.hasEndpoint
	cfg.MaxSSEBody = int(o.MaxMessageSize)
	c.eng = engine.New(cfg, br)
	br.eng = c.eng
	return c
}

// start joins the cluster (when configured), then starts the engine and,
// with tls set, serves it on the fallback transport. A failed start leaves
// nothing running; a second start returns the first one's error.
func (c *core) start(tls net.Listener) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.state {
	case 1:
		return nil
	case 2:
		if c.err != nil {
			return c.err
		}
		return errors.New("pondsocket: stopped")
	}
	c.err = c.startLocked(tls)
	if c.err != nil {
		c.state = 2
		close(c.stopped)
		return c.err
	}
	c.state = 1
	return nil
}

func (c *core) startLocked(tls net.Listener) error {
	if ps := c.o.PubSub; ps != nil {
		co := c.o.Cluster
		node := cluster.NewNode(ps, cluster.Options{NodeID: co.NodeID, KeyPrefix: co.KeyPrefix, Namespace: co.Namespace,
			HeartbeatInterval: co.HeartbeatInterval, HeartbeatTimeout: co.HeartbeatTimeout, PublishBuffer: co.PublishBuffer,
			Logger: c.log})
		c.hub.AttachCluster(node)
		if err := c.hub.subscribeControl(); err != nil {
			return fmt.Errorf("pondsocket: cluster: %w", err)
		}
		if err := node.Start(context.Background(), c.hub); err != nil {
			return fmt.Errorf("pondsocket: cluster: %w", err)
		}
		c.node = node
		c.log.Info("cluster node started", "node", node.ID())
	}
	if err := c.eng.Start(); err != nil {
		if c.node != nil {
			_ = c.node.Close()
		}
		return err
	}
	if tls != nil {
		c.eng.ServeListener(tls)
	}
	return nil
}

// running reports whether start succeeded and stop has not begun.
func (c *core) running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == 1
}

// stop shuts down within timeout: every connection gets close 1001, the
// handler workers finish or are abandoned, and the cluster node leaves
// (other nodes see this node's users leave at once, not after the
// heartbeat timeout).
func (c *core) stop(timeout time.Duration) error {
	c.mu.Lock()
	switch c.state {
	case 0:
		c.state = 2
		close(c.stopped)
		c.mu.Unlock()
		return nil
	case 2:
		// stopping or stopped: wait for the call that does it (a Manager
		// is stopped by its context and, often, by the program too)
		c.mu.Unlock()
		<-c.stopped
		return c.stopErr
	}
	c.state = 2
	c.mu.Unlock()
	defer close(c.stopped)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var errs []error
	if err := c.eng.Stop(ctx); errors.Is(err, context.DeadlineExceeded) {
		errs = append(errs, fmt.Errorf("pondsocket: stop: some connections did not close within %v and were cut", timeout))
	} else if err != nil {
		errs = append(errs, err)
	}
	if err := c.hub.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("pondsocket: stop: %w", err))
	}
	if c.node != nil {
		if err := c.node.Close(); err != nil {
			errs = append(errs, fmt.Errorf("pondsocket: stop: cluster: %w", err))
		}
	}
	c.stopErr = errors.Join(errs...)
	return c.stopErr
}

// ready is nil while running and, with a cluster, while the bus is
// reachable.
func (c *core) ready() error {
	if !c.running() {
		return errors.New("pondsocket: not running")
	}
	if c.node != nil {
		return c.node.Ready()
	}
	return nil
}

// stats is a snapshot of every counter the engine and the hub keep.
func (c *core) stats() Stats { return collectStats(c.eng, c.hub) }
