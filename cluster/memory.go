package cluster

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/pondsocket/pondsocket/cluster/internal/lifecycle"
)

// ErrBusDown is returned by a MemoryBus connection while SetDown(true).
var ErrBusDown = errors.New("cluster: memory bus is down")

// memoryInboxLimit bounds each connection's undelivered messages; past it a
// message is dropped and counted (MemoryBus.Dropped).
const memoryInboxLimit = 1 << 16

// MemoryBus is an in-process bus with Redis PUBLISH/SUBSCRIBE semantics:
// several nodes in one process each take a connection (Connect); a message
// published to a topic reaches every started connection subscribed to it,
// the publisher's own included, in publish order per topic. SetDown
// simulates an outage for fault tests.
type MemoryBus struct {
	mu      sync.Mutex // serialises publishes: one global order
	conns   map[*memoryConn]struct{}
	down    atomic.Bool
	dropped atomic.Uint64
}

// NewMemoryBus returns an empty bus.
func NewMemoryBus() *MemoryBus {
	return &MemoryBus{conns: make(map[*memoryConn]struct{})}
}

// Connect returns a new connection to the bus (one per node).
func (b *MemoryBus) Connect() PubSub {
	return &memoryConn{bus: b, subs: make(map[string]struct{}), wake: make(chan struct{}, 1)}
}

// SetDown simulates an outage (true) or its end (false). While down, Start
// and Publish fail with ErrBusDown and nothing is delivered (messages
// already on their way are lost); subscriptions are kept.
func (b *MemoryBus) SetDown(down bool) { b.down.Store(down) }

// Dropped is the number of messages dropped because a connection's inbox
// was full.
func (b *MemoryBus) Dropped() uint64 { return b.dropped.Load() }

type memoryConn struct {
	bus *MemoryBus

	mu      sync.Mutex
	subs    map[string]struct{}
	inbox   []Message
	deliver func(string, []byte)
	state   lifecycle.State

	wake chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
}

func (c *memoryConn) Start(ctx context.Context, deliver func(string, []byte)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.bus.down.Load() {
		return ErrBusDown
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.state.CanStart(); err != nil {
		return err
	}
	c.state.SetStarted()
	c.deliver, c.done = deliver, make(chan struct{})
	c.bus.mu.Lock()
	c.bus.conns[c] = struct{}{}
	c.bus.mu.Unlock()
	c.wg.Add(1)
	go c.run()
	return nil
}

func (c *memoryConn) run() {
	defer c.wg.Done()
	var batch []Message
	for {
		select {
		case <-c.done:
			return
		case <-c.wake:
		}
		c.mu.Lock()
		batch, c.inbox = c.inbox, batch[:0]
		c.mu.Unlock()
		for i, m := range batch {
			if c.bus.down.Load() {
				break // in-flight messages are lost in an outage
			}
			c.mu.Lock()
			_, ok := c.subs[m.Topic]
			closed := c.state.Closed()
			c.mu.Unlock()
			if closed {
				return
			}
			if ok {
				c.deliver(m.Topic, m.Data)
			}
			batch[i] = Message{}
		}
	}
}

func (c *memoryConn) Subscribe(_ context.Context, topic string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state.Closed() {
		return ErrClosed
	}
	c.subs[topic] = struct{}{}
	return nil
}

func (c *memoryConn) Unsubscribe(_ context.Context, topic string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.subs, topic)
	return nil
}

func (c *memoryConn) Publish(ctx context.Context, topic string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	err := c.state.CanUse()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	b := c.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down.Load() {
		return ErrBusDown
	}
	for rc := range b.conns {
		rc.enqueue(topic, data)
	}
	return nil
}

func (c *memoryConn) enqueue(topic string, data []byte) {
	c.mu.Lock()
	if _, ok := c.subs[topic]; !ok || c.state.Closed() {
		c.mu.Unlock()
		return
	}
	if len(c.inbox) >= memoryInboxLimit {
		c.mu.Unlock()
		c.bus.dropped.Add(1)
		return
	}
	c.inbox = append(c.inbox, Message{Topic: topic, Data: data})
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *memoryConn) Close() error {
	c.mu.Lock()
	release := c.state.Close()
	c.inbox = nil
	c.mu.Unlock()
	if release {
		c.bus.mu.Lock()
		delete(c.bus.conns, c)
		c.bus.mu.Unlock()
		close(c.done)
		c.wg.Wait()
	}
	return nil
}
