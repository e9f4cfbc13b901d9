package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Node. Zero fields take the defaults shown.
type Options struct {
	NodeID            string        // default: NewNodeID() (12 base-36 characters)
	KeyPrefix         string        // default "pondsocket"
	Namespace         string        // default "default"
	HeartbeatInterval time.Duration // default 30s
	HeartbeatTimeout  time.Duration // default 90s; a node silent this long is down
	PublishQueue      int           // default 8192 messages; when full, Publish drops (counted, logged)
	PublishRetry      time.Duration // default 5s; a message not accepted within this of being queued is dropped
	Logger            *slog.Logger  // default slog.Default()

	// FailFast makes Start return the error of its first connection attempt
	// (and close the Node) instead of retrying in the background.
	FailFast bool
	// ConnectTimeout bounds one connection attempt (PubSub.Start). Default 10s.
	ConnectTimeout time.Duration
	// FlushTimeout is how long Close keeps publishing what is still queued
	// before dropping it. Default 2s.
	FlushTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.NodeID == "" {
		o.NodeID = NewNodeID()
	}
	if o.KeyPrefix == "" {
		o.KeyPrefix = "pondsocket"
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = 30 * time.Second
	}
	if o.HeartbeatTimeout <= 0 {
		o.HeartbeatTimeout = 90 * time.Second
	}
	if o.PublishQueue <= 0 {
		o.PublishQueue = 8192
	}
	if o.PublishRetry <= 0 {
		o.PublishRetry = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.FlushTimeout <= 0 {
		o.FlushTimeout = 2 * time.Second
	}
	return o
}

// Handler receives what other nodes send. Its methods are called from the
// Node's and the backend's goroutines: HandleMessage for different topics
// may run concurrently, for one topic sequentially in publish order;
// NodeDown runs on the liveness goroutine. Neither is called after Close
// has returned.
type Handler interface {
	// HandleMessage gets every valid message of a subscribed topic sent by
	// another node. The node's own messages (same sourceNodeId) are dropped
	// before, and heartbeats are consumed by the Node.
	HandleMessage(e *Envelope)
	// NodeDown reports that nodeID was not heard from for HeartbeatTimeout:
	// its users must be forgotten. If it is heard from again later it is
	// treated as a new node.
	NodeDown(nodeID string)
}

// NodeStats is a snapshot of a Node's counters.
type NodeStats struct {
	Published          uint64 // messages the backend accepted (heartbeats included)
	PublishFailures    uint64 // failed publish attempts (a retried message counts each time)
	Dropped            uint64 // messages given up: queue full, retry window over, or Close
	QueueFull          uint64 // of Dropped: refused because the queue was full
	Received           uint64 // messages the backend delivered
	DecodeErrors       uint64 // received messages failing the §5.2 checks (dropped)
	OwnDropped         uint64 // received messages this node sent itself (dropped)
	Unsubscribed       uint64 // received messages of topics no longer subscribed (dropped)
	Handled            uint64 // messages passed to Handler.HandleMessage
	HeartbeatsSent     uint64
	NodesAlive         int           // other nodes heard from within HeartbeatTimeout
	Queued             int           // messages waiting in the outbound queue
	Connected          bool          // the backend's Start has succeeded
	LastPublishLatency time.Duration // Publish call to backend acceptance, last message
}

// Node is this process's presence on the bus: it owns the PubSub, one
// ordered outbound queue, the heartbeats and the liveness of the other
// nodes. All methods are safe for concurrent use.
type Node struct {
	ps      PubSub
	o       Options
	log     *slog.Logger
	hbTopic string

	mu        sync.Mutex
	h         Handler
	started   bool
	closed    bool
	connected bool
	subs      map[string]struct{} // desired channel topics
	peers     map[string]time.Time

	queue    chan outMessage
	stop     chan struct{} // closed by Close: loops end, the sender flushes
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	senderWG sync.WaitGroup

	published, publishFailures, dropped, queueFull atomic.Uint64
	received, decodeErrors, ownDropped             atomic.Uint64
	unsubscribed, handled, heartbeats              atomic.Uint64
	lastLatency                                    atomic.Int64

	dropLog, failLog rateLog
}

// NewNode returns a Node over ps; nothing happens until Start.
func NewNode(ps PubSub, o Options) *Node {
	o = o.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Node{
		ps:      ps,
		o:       o,
		log:     o.Logger.With("component", "cluster", "node", o.NodeID),
		hbTopic: HeartbeatTopic(o.KeyPrefix, o.Namespace),
		subs:    make(map[string]struct{}),
		peers:   make(map[string]time.Time),
		queue:   make(chan outMessage, o.PublishQueue),
		stop:    make(chan struct{}),
		ctx:     ctx,
		cancel:  cancel,
	}
}

// ID is this node's id (sourceNodeId of everything it sends).
func (n *Node) ID() string { return n.o.NodeID }

// Options returns the options in effect (defaults filled).
func (n *Node) Options() Options { return n.o }

// Start connects the backend and starts the heartbeats, the liveness sweep
// and the outbound queue. ctx bounds the first connection attempt only.
//
// If that attempt fails, Start logs the error and returns nil: the Node
// keeps retrying in the background with exponential back-off (100 ms
// doubling to 5 s) until it connects or is closed; meanwhile Publish queues
// (and drops after PublishRetry) and Subscribe records. With
// Options.FailFast, Start instead closes the Node and returns the error.
func (n *Node) Start(ctx context.Context, h Handler) error {
	if h == nil {
		return errors.New("cluster: Start needs a Handler")
	}
	n.mu.Lock()
	switch {
	case n.closed:
		n.mu.Unlock()
		return ErrClosed
	case n.started:
		n.mu.Unlock()
		return ErrStarted
	}
	n.started, n.h = true, h
	n.senderWG.Add(1)
	n.mu.Unlock()
	go n.sender()

	err := n.connect(ctx)
	if err == nil {
		return nil
	}
	if n.o.FailFast {
		n.Close()
		return err
	}
	n.log.Error("cluster: cannot connect to the bus; retrying in the background", "err", err)
	n.spawn(n.reconnect)
	return nil
}

// connect makes one connection attempt and, on success, subscribes and
// starts the heartbeat and liveness loops.
func (n *Node) connect(ctx context.Context) error {
	actx, cancel := context.WithTimeout(ctx, n.o.ConnectTimeout)
	defer cancel()
	stop := context.AfterFunc(n.ctx, cancel) // Close aborts the attempt
	defer stop()
	if err := n.ps.Start(actx, n.deliver); err != nil {
		return fmt.Errorf("cluster: node %s: connect: %w", n.o.NodeID, err)
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	n.connected = true
	topics := make([]string, 0, len(n.subs)+1)
	topics = append(topics, n.hbTopic)
	for t := range n.subs {
		topics = append(topics, t)
	}
	n.mu.Unlock()
	for _, t := range topics {
		if err := n.ps.Subscribe(actx, t); err != nil {
			n.log.Warn("cluster: subscribe failed; the backend resubscribes when it reconnects", "topic", t, "err", err)
		}
	}
	n.spawn(n.heartbeatLoop)
	n.spawn(n.livenessLoop)
	return nil
}

// spawn runs fn on a goroutine Close waits for, unless Close has begun.
func (n *Node) spawn(fn func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		fn()
	}()
}

func (n *Node) reconnect() {
	delay := 100 * time.Millisecond
	for attempt := 2; ; attempt++ {
		t := time.NewTimer(delay)
		select {
		case <-n.stop:
			t.Stop()
			return
		case <-t.C:
		}
		err := n.connect(n.ctx)
		if err == nil {
			n.log.Info("cluster: connected to the bus", "attempt", attempt)
			return
		}
		if errors.Is(err, ErrClosed) || n.ctx.Err() != nil {
			return
		}
		n.log.Error("cluster: cannot connect to the bus", "attempt", attempt, "retry_in", delay, "err", err)
		delay = min(delay*2, 5*time.Second)
	}
}

// Subscribe starts receiving the messages of one channel (idempotent, not
// reference-counted). Before the backend is connected it only records the
// channel, which is subscribed once connected. An error means the backend
// refused or could not reach the bus; the subscription is kept and made
// again when the backend reconnects.
func (n *Node) Subscribe(endpointPattern, channelName string) error {
	topic := ChannelTopic(n.o.KeyPrefix, n.o.Namespace, endpointPattern, channelName)
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	n.subs[topic] = struct{}{}
	connected := n.connected
	n.mu.Unlock()
	if !connected {
		return nil
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.o.ConnectTimeout)
	defer cancel()
	if err := n.ps.Subscribe(ctx, topic); err != nil {
		return fmt.Errorf("cluster: subscribe %s: %w", topic, err)
	}
	return nil
}

// Unsubscribe stops receiving one channel: HandleMessage sees none of its
// messages once Unsubscribe has returned.
func (n *Node) Unsubscribe(endpointPattern, channelName string) error {
	topic := ChannelTopic(n.o.KeyPrefix, n.o.Namespace, endpointPattern, channelName)
	n.mu.Lock()
	delete(n.subs, topic)
	connected := n.connected && !n.closed
	n.mu.Unlock()
	if !connected {
		return nil
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.o.ConnectTimeout)
	defer cancel()
	if err := n.ps.Unsubscribe(ctx, topic); err != nil {
		return fmt.Errorf("cluster: unsubscribe %s: %w", topic, err)
	}
	return nil
}

// deliver is the PubSub's deliver callback.
func (n *Node) deliver(topic string, data []byte) {
	n.received.Add(1)
	e, err := Decode(data)
	if err != nil {
		n.decodeErrors.Add(1)
		n.log.Debug("cluster: dropped an invalid message", "topic", topic, "err", err)
		return
	}
	if e.SourceNodeID == n.o.NodeID {
		n.ownDropped.Add(1)
		return
	}
	now := time.Now()
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	if e.SourceNodeID != "" {
		n.peers[e.SourceNodeID] = now
	}
	_, subscribed := n.subs[topic]
	h := n.h
	n.mu.Unlock()
	if e.Type == NodeHeartbeat || topic == n.hbTopic {
		return
	}
	if !subscribed {
		n.unsubscribed.Add(1)
		return
	}
	n.handled.Add(1)
	h.HandleMessage(e)
}

// Nodes returns the ids of the other nodes heard from within
// HeartbeatTimeout.
func (n *Node) Nodes() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	ids := make([]string, 0, len(n.peers))
	for id := range n.peers {
		ids = append(ids, id)
	}
	return ids
}

func (n *Node) heartbeatLoop() {
	t := time.NewTicker(n.o.HeartbeatInterval)
	defer t.Stop()
	for {
		n.sendHeartbeat()
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
	}
}

// sendHeartbeat publishes directly, not through the queue: a heartbeat is
// not ordered with channel traffic, must not wait behind a full queue, and
// is simply skipped when the bus is down (the next one follows).
func (n *Node) sendHeartbeat() {
	data, err := Encode(&Envelope{
		Type:         NodeHeartbeat,
		MessageID:    NewMessageID(),
		SourceNodeID: n.o.NodeID,
		EndpointName: HeartbeatName,
		ChannelName:  HeartbeatName,
		Timestamp:    time.Now().UnixMilli(),
		NodeID:       n.o.NodeID,
	})
	if err != nil {
		panic(err) // a heartbeat always encodes
	}
	ctx, cancel := context.WithTimeout(n.ctx, min(n.o.HeartbeatInterval, n.o.PublishRetry))
	defer cancel()
	if err := n.ps.Publish(ctx, n.hbTopic, data); err != nil {
		n.publishFailures.Add(1)
		n.failLog.log(n.log, "cluster: heartbeat not published", err)
		return
	}
	n.published.Add(1)
	n.heartbeats.Add(1)
}

// livenessLoop declares nodes down after HeartbeatTimeout of silence,
// checking every min(interval, timeout/4).
func (n *Node) livenessLoop() {
	t := time.NewTicker(min(n.o.HeartbeatInterval, n.o.HeartbeatTimeout/4))
	defer t.Stop()
	var down []string
	for {
		select {
		case <-n.stop:
			return
		case now := <-t.C:
			down = down[:0]
			n.mu.Lock()
			for id, seen := range n.peers {
				if now.Sub(seen) >= n.o.HeartbeatTimeout {
					delete(n.peers, id)
					down = append(down, id)
				}
			}
			h := n.h
			n.mu.Unlock()
			for _, id := range down {
				n.log.Warn("cluster: node is down", "peer", id, "timeout", n.o.HeartbeatTimeout)
				h.NodeDown(id)
			}
		}
	}
}

// Stats returns a snapshot of the counters.
func (n *Node) Stats() NodeStats {
	n.mu.Lock()
	alive, connected := len(n.peers), n.connected
	n.mu.Unlock()
	return NodeStats{
		Published:          n.published.Load(),
		PublishFailures:    n.publishFailures.Load(),
		Dropped:            n.dropped.Load(),
		QueueFull:          n.queueFull.Load(),
		Received:           n.received.Load(),
		DecodeErrors:       n.decodeErrors.Load(),
		OwnDropped:         n.ownDropped.Load(),
		Unsubscribed:       n.unsubscribed.Load(),
		Handled:            n.handled.Load(),
		HeartbeatsSent:     n.heartbeats.Load(),
		NodesAlive:         alive,
		Queued:             len(n.queue),
		Connected:          connected,
		LastPublishLatency: time.Duration(n.lastLatency.Load()),
	}
}

// Close stops the heartbeats and the liveness sweep, publishes what is
// still queued for up to FlushTimeout (dropping the rest, counted), closes
// the backend and waits for every goroutine. The Handler is not called
// after Close returns. It is idempotent; it does not send anything that
// tells other nodes to forget this node's users (they time it out).
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	close(n.stop)
	n.senderWG.Wait() // flushes, bounded by FlushTimeout
	n.cancel()        // aborts a connection attempt in progress
	n.wg.Wait()
	return n.ps.Close() // after it, no deliver runs

}
