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
	Logger            *slog.Logger  // default slog.Default()

	// PublishBuffer bounds, in bytes, the messages waiting for the bus
	// (encoded envelope plus topic plus 64 bytes of bookkeeping each).
	// While the bus is unreachable messages are kept and sent in order when
	// it returns; past this bound the oldest are dropped, counted and
	// logged, and the node resynchronises its channels' membership once the
	// bus accepts messages again. Default 16 MiB.
	PublishBuffer int

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
	if o.PublishBuffer <= 0 {
		o.PublishBuffer = DefaultPublishBuffer
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

// DefaultPublishBuffer is Options.PublishBuffer's default.
const DefaultPublishBuffer = 16 << 20

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
	// its users must be forgotten. If it is heard from again later, a
	// Resyncer gets Resync with Reason ResyncPeerBack.
	NodeDown(nodeID string)
}

// Resyncer is implemented by Handlers that can restate their membership
// (the channel layer does). The Node calls Resync, one call at a time, from
// its own goroutine, when this node's view of the cluster or the cluster's
// view of this node may be wrong: see the package doc, "Healing".
type Resyncer interface {
	Resync(r Resync)
}

// Resync says why a resynchronisation is needed.
type Resync struct {
	Reason ResyncReason
	// Peer is the node that came back (ResyncPeerBack only).
	Peer string
	// Sweep: this node may have missed messages, so remote users that no
	// STATE_RESPONSE, USER_JOINED or PRESENCE_UPDATE confirms within Window
	// are ghosts and must be forgotten.
	Sweep  bool
	Window time.Duration
}

// ResyncReason is what triggered a Resync.
type ResyncReason string

const (
	// ResyncPeerBack: a node declared down was heard from again.
	ResyncPeerBack ResyncReason = "peer back"
	// ResyncBusBack: the bus is reachable again after an outage.
	ResyncBusBack ResyncReason = "bus back"
	// ResyncStalled: this process did not run for longer than half the
	// heartbeat timeout (a GC pause, SIGSTOP, a VM migration); the others
	// may have declared it down.
	ResyncStalled ResyncReason = "stalled"
	// ResyncDropped: outbound messages were dropped (the buffer overflowed
	// or the backend refused them); membership messages may be among them.
	ResyncDropped ResyncReason = "messages dropped"
)

// ConnectionNotifier is implemented by backends that know when their
// receiving side loses and regains the bus (Redis: the subscriber
// connection). The Node counts the bus as unreachable while it is lost,
// holds its outbound messages, and resynchronises when it returns.
type ConnectionNotifier interface {
	// NotifyConnection registers f, called with false when the receiving
	// side is lost and with true when it is back (subscriptions restored).
	// Called before Start.
	NotifyConnection(f func(up bool))
}

// SubscriberCounter is implemented by backends that can tell how many
// receivers a topic has right now (Redis: PUBSUB NUMSUB). After a
// ConnectionNotifier backend is back, the Node uses it to stop holding its
// buffer as soon as every node it knows is subscribed again.
type SubscriberCounter interface {
	Subscribers(ctx context.Context, topic string) (int, error)
}

// reconnectGrace is the longest the Node waits, after a ConnectionNotifier
// backend is back, before it publishes what it buffered: the other nodes'
// subscribers reconnect at about the same time (Redis: within 200 ms of
// the server's return), and Redis does not keep messages for a subscriber
// that is not connected. With a SubscriberCounter the wait ends as soon as
// the heartbeat topic has a subscriber for this node and every peer it
// knows; the grace bounds it for a peer that is slower (a reference node
// backs off up to 5 s) or gone.
const reconnectGrace = 600 * time.Millisecond

// peerPoll is how often the Node asks a SubscriberCounter during the hold.
const peerPoll = 20 * time.Millisecond

// busProbe is how often heartbeats are retried while they fail, when the
// heartbeat interval is longer: the first heartbeat that passes tells the
// Node (and the others) that the bus is back.
const busProbe = 250 * time.Millisecond

// maxDownPeers bounds the set of nodes remembered as declared down.
const maxDownPeers = 1024

// NodeStats is a snapshot of a Node's counters.
type NodeStats struct {
	Published          uint64 // messages the backend accepted (heartbeats included)
	PublishFailures    uint64 // failed publish attempts (a retried message counts each time)
	Dropped            uint64 // messages given up: buffer overflow, unencodable, or Close
	Overflowed         uint64 // of Dropped: the oldest dropped because PublishBuffer was full
	Received           uint64 // messages the backend delivered
	DecodeErrors       uint64 // received messages failing the §5.2 checks (dropped)
	OwnDropped         uint64 // received messages this node sent itself (dropped)
	Unsubscribed       uint64 // received messages of topics no longer subscribed (dropped)
	Handled            uint64 // messages passed to Handler.HandleMessage
	HeartbeatsSent     uint64
	NodesAlive         int           // other nodes heard from within HeartbeatTimeout
	NodesDown          int           // nodes declared down and not heard from since
	NodesDeclaredDown  uint64        // times a node was declared down
	NodesBack          uint64        // times a node declared down was heard from again
	Resyncs            uint64        // resynchronisations started (Resyncer.Resync calls)
	Stalls             uint64        // times this process was found to have stalled
	Buffered           int           // messages waiting for the bus
	BufferedBytes      int           // their size, as counted against PublishBuffer
	Connected          bool          // the bus is reachable (see Ready)
	LastPublishLatency time.Duration // Publish call to backend acceptance, last message
}

// Node is this process's presence on the bus: it owns the PubSub, one
// ordered outbound buffer, the heartbeats and the liveness of the other
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
	connected bool // the first connection succeeded
	pubOK     bool // the last publish attempt succeeded
	subOK     bool // the backend's receiving side is up (ConnectionNotifier)
	online    bool // connected && pubOK && subOK, as last reported
	cutOff    bool // went offline since the last resync for it
	lostSince time.Time
	holdUntil time.Time // at most reconnectGrace after the receiving side returned
	holdGen   uint64    // counts the holds; ends only the current one
	// resyncDue: back online while holding; the "bus back" resync waits
	// for the hold to end, so that its answers can reach this node and its
	// sweep window starts when its messages leave.
	resyncDue bool
	hbNow     chan struct{}       // asks the heartbeat loop for a heartbeat now
	subs      map[string]struct{} // desired channel topics
	peers     map[string]time.Time
	down      map[string]time.Time // declared down, not heard from since

	// outbound buffer (outbound.go)
	obMu    sync.Mutex
	ob      []outMessage
	obHead  uint64 // seq of ob[0]
	obSeq   uint64 // seq of the next message
	obBytes int
	obLost  bool // messages were dropped since the last resync for it
	obDone  bool // Close began: Publish drops
	wake    chan struct{}

	resyncs  chan Resync
	stop     chan struct{} // closed by Close: loops end, the sender flushes
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	senderWG sync.WaitGroup

	published, publishFailures, dropped, overflowed atomic.Uint64
	received, decodeErrors, ownDropped              atomic.Uint64
	unsubscribed, handled, heartbeats               atomic.Uint64
	declaredDown, back, resyncCount, stalls         atomic.Uint64
	lastLatency                                     atomic.Int64

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
		down:    make(map[string]time.Time),
		pubOK:   true,
		subOK:   true,
		wake:    make(chan struct{}, 1),
		hbNow:   make(chan struct{}, 1),
		resyncs: make(chan Resync, 16),
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
// and the outbound buffer. ctx bounds the first connection attempt only.
//
// If that attempt fails, Start logs the error and returns nil: the Node
// keeps retrying in the background with exponential back-off (100 ms
// doubling to 5 s) until it connects or is closed; meanwhile Publish buffers
// (bounded by PublishBuffer) and Subscribe records. With
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
	if cn, ok := n.ps.(ConnectionNotifier); ok {
		cn.NotifyConnection(n.setSubOK)
	}
	go n.sender()
	n.spawn(n.resyncLoop)

	err := n.connect(ctx)
	if err == nil {
		return nil
	}
	if n.o.FailFast || errors.Is(err, ErrRefused) {
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
	n.pubOK, n.subOK = true, true
	n.updateOnlineLocked(time.Now())
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
	wasDown := false
	if id := e.SourceNodeID; id != "" {
		if _, wasDown = n.down[id]; wasDown {
			delete(n.down, id)
		}
		n.peers[id] = now
	}
	_, subscribed := n.subs[topic]
	h := n.h
	n.mu.Unlock()
	if wasDown {
		n.back.Add(1)
		n.log.Info("cluster: node is back; resynchronising", "peer", e.SourceNodeID)
		n.requestResync(Resync{Reason: ResyncPeerBack, Peer: e.SourceNodeID})
	}
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
	last := time.Now()
	var retry *time.Timer
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		var again <-chan time.Time
		if !n.sendHeartbeat() && n.o.HeartbeatInterval > busProbe {
			// the bus is down: probe it more often than the interval, so
			// its return is seen (and announced) within busProbe
			if retry == nil {
				retry = time.NewTimer(busProbe)
			} else {
				retry.Reset(busProbe)
			}
			again = retry.C
		}
		select {
		case <-n.stop:
			return
		case <-n.hbNow:
		case <-again:
		case now := <-t.C:
			// A tick this late means the process did not run (SIGSTOP, a
			// long GC pause, a VM migration): the others may have
			// declared it down and forgotten its users.
			if gap := now.Sub(last); gap > n.o.HeartbeatTimeout/2 {
				n.stalls.Add(1)
				n.log.Warn("cluster: this node stalled; re-announcing its state", "stalled_for", gap.Round(time.Millisecond))
				n.requestResync(Resync{Reason: ResyncStalled, Sweep: true})
			}
			last = now
		}
	}
}

// sendHeartbeat publishes directly, not through the buffer: a heartbeat is
// not ordered with channel traffic, must not wait behind a full queue, and
// is simply skipped when the bus is down (the next one follows).
func (n *Node) sendHeartbeat() bool {
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
	ctx, cancel := context.WithTimeout(n.ctx, min(n.o.HeartbeatInterval, attemptTimeout))
	defer cancel()
	if err := n.ps.Publish(ctx, n.hbTopic, data); err != nil {
		n.publishFailures.Add(1)
		n.failLog.log(n.log, "cluster: heartbeat not published", err)
		if n.ctx.Err() == nil {
			n.setPubOK(false)
		}
		return false
	}
	n.setPubOK(true)
	n.published.Add(1)
	n.heartbeats.Add(1)
	return true
}

// livenessLoop declares nodes down after HeartbeatTimeout of silence,
// checking every min(interval, timeout/4). It judges nobody while this
// node cannot hear the bus, nor after it stalled itself: silence it could
// not have heard is no evidence; every peer then gets a fresh timeout.
func (n *Node) livenessLoop() {
	every := min(n.o.HeartbeatInterval, n.o.HeartbeatTimeout/4)
	t := time.NewTicker(every)
	defer t.Stop()
	var down []string
	last := time.Now()
	for {
		select {
		case <-n.stop:
			return
		case now := <-t.C:
			stalled := now.Sub(last) > n.o.HeartbeatTimeout/2
			last = now
			down = down[:0]
			n.mu.Lock()
			if stalled || !n.online {
				for id := range n.peers {
					n.peers[id] = now
				}
				n.mu.Unlock()
				continue
			}
			for id, seen := range n.peers {
				if now.Sub(seen) >= n.o.HeartbeatTimeout {
					delete(n.peers, id)
					n.markDownLocked(id, now)
					down = append(down, id)
				}
			}
			h := n.h
			n.mu.Unlock()
			for _, id := range down {
				n.declaredDown.Add(1)
				n.log.Warn("cluster: node is down; forgetting its users", "peer", id, "timeout", n.o.HeartbeatTimeout)
				h.NodeDown(id)
			}
		}
	}
}

// markDownLocked remembers id as declared down, forgetting the oldest
// entry past maxDownPeers (n.mu held).
func (n *Node) markDownLocked(id string, now time.Time) {
	if len(n.down) >= maxDownPeers {
		oldest, at := "", now
		for k, v := range n.down {
			if v.Before(at) {
				oldest, at = k, v
			}
		}
		delete(n.down, oldest)
	}
	n.down[id] = now
}

// Alone reports that, as far as this node can know, no other node exists:
// the bus is reachable, no node was heard from within HeartbeatTimeout and
// none declared down has come back or been forgotten. Only then may the
// channel layer skip publishing a message whose recipients it knows only
// locally.
func (n *Node) Alone() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.online && len(n.peers) == 0 && len(n.down) == 0
}

// Ready returns nil when the bus is reachable: the first connection
// succeeded, the last publish attempt succeeded and the backend's receiving
// side is up. Otherwise it says what is wrong and since when.
func (n *Node) Ready() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.closed:
		return ErrClosed
	case !n.connected:
		return errors.New("cluster: not connected to the bus yet")
	case !n.online:
		return fmt.Errorf("cluster: bus unreachable for %v", time.Since(n.lostSince).Round(time.Millisecond))
	}
	return nil
}

// setPubOK records the outcome of a publish attempt.
func (n *Node) setPubOK(ok bool) {
	n.mu.Lock()
	if n.pubOK != ok {
		n.pubOK = ok
		n.updateOnlineLocked(time.Now())
	}
	n.mu.Unlock()
}

// setSubOK is the ConnectionNotifier callback. When the receiving side is
// back it starts a hold (see awaitPeers) and asks for a heartbeat at once:
// a successful one shows the sending side works too, and tells the others
// that this node is alive without waiting for the next tick.
func (n *Node) setSubOK(ok bool) {
	n.mu.Lock()
	changed := n.subOK != ok
	var gen uint64
	if changed {
		n.subOK = ok
		now := time.Now()
		if ok {
			n.holdUntil = now.Add(reconnectGrace)
			n.holdGen++
			gen = n.holdGen
		}
		n.updateOnlineLocked(now)
	}
	n.mu.Unlock()
	if changed && ok {
		n.spawn(func() { n.awaitPeers(gen) })
		select {
		case n.hbNow <- struct{}{}:
		default:
		}
	}
	n.wakeSender()
}

func (n *Node) wakeSender() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// awaitPeers ends hold gen: as soon as the backend (a SubscriberCounter)
// counts a subscriber on the heartbeat topic for this node and for every
// peer it knows, at the latest after reconnectGrace. Then it starts the
// "bus back" resync if it was waiting for the hold.
func (n *Node) awaitPeers(gen uint64) {
	sc, _ := n.ps.(SubscriberCounter)
	for {
		n.mu.Lock()
		if n.holdGen != gen || !n.subOK || n.closed {
			n.mu.Unlock()
			return // superseded or lost again
		}
		left := time.Until(n.holdUntil)
		want := 1 + len(n.peers)
		n.mu.Unlock()
		if left <= 0 {
			break
		}
		if sc != nil {
			ctx, cancel := context.WithTimeout(n.ctx, left)
			got, err := sc.Subscribers(ctx, n.hbTopic)
			cancel()
			if err == nil && got >= want {
				break
			}
		}
		d := left
		if sc != nil {
			d = min(left, peerPoll)
		}
		t := time.NewTimer(d)
		select {
		case <-n.stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
	n.mu.Lock()
	if n.holdGen == gen {
		n.holdUntil = time.Time{}
		if n.resyncDue && n.online {
			n.resyncDue = false
			n.requestResync(Resync{Reason: ResyncBusBack, Sweep: true})
		}
	}
	n.mu.Unlock()
	n.wakeSender()
}

// updateOnlineLocked derives online and logs and reacts to its changes
// (n.mu held).
func (n *Node) updateOnlineLocked(now time.Time) {
	on := n.connected && n.pubOK && n.subOK && !n.closed
	if on == n.online {
		return
	}
	n.online = on
	if !on {
		n.lostSince, n.cutOff = now, true
		n.log.Warn("cluster: bus unreachable; buffering outbound messages", "buffer_bytes", n.o.PublishBuffer)
		return
	}
	if n.cutOff {
		n.cutOff = false
		// peers could not be heard meanwhile: a fresh timeout for each
		for id := range n.peers {
			n.peers[id] = now
		}
		n.log.Info("cluster: bus reachable again; resynchronising", "after", now.Sub(n.lostSince).Round(time.Millisecond))
		if n.holdUntil.After(now) {
			n.resyncDue = true // awaitPeers requests it when the hold ends
			return
		}
		n.resyncDue = false
		n.requestResync(Resync{Reason: ResyncBusBack, Sweep: true})
	}
}

// requestResync hands r to the resync goroutine without blocking; when
// requests pile up, one sweeping request stands for them all.
func (n *Node) requestResync(r Resync) {
	r.Window = n.resyncWindow()
	select {
	case n.resyncs <- r:
	default:
		n.log.Debug("cluster: resync requests piling up; coalesced")
	}
}

// resyncWindow is how long a resync waits for other nodes' answers:
// the heartbeat interval, between 200 ms and 5 s.
func (n *Node) resyncWindow() time.Duration {
	return min(max(n.o.HeartbeatInterval, 200*time.Millisecond), 5*time.Second)
}

func (n *Node) resyncLoop() {
	for {
		select {
		case <-n.stop:
			return
		case r := <-n.resyncs:
			n.mu.Lock()
			rs, ok := n.h.(Resyncer)
			n.mu.Unlock()
			if ok {
				n.resyncCount.Add(1)
				rs.Resync(r)
			}
		}
	}
}

// Stats returns a snapshot of the counters.
func (n *Node) Stats() NodeStats {
	n.mu.Lock()
	alive, down, online := len(n.peers), len(n.down), n.online
	n.mu.Unlock()
	n.obMu.Lock()
	buffered, bytes := len(n.ob), n.obBytes
	n.obMu.Unlock()
	return NodeStats{
		Published:          n.published.Load(),
		PublishFailures:    n.publishFailures.Load(),
		Dropped:            n.dropped.Load(),
		Overflowed:         n.overflowed.Load(),
		Received:           n.received.Load(),
		DecodeErrors:       n.decodeErrors.Load(),
		OwnDropped:         n.ownDropped.Load(),
		Unsubscribed:       n.unsubscribed.Load(),
		Handled:            n.handled.Load(),
		HeartbeatsSent:     n.heartbeats.Load(),
		NodesAlive:         alive,
		NodesDown:          down,
		NodesDeclaredDown:  n.declaredDown.Load(),
		NodesBack:          n.back.Load(),
		Resyncs:            n.resyncCount.Load(),
		Stalls:             n.stalls.Load(),
		Buffered:           buffered,
		BufferedBytes:      bytes,
		Connected:          online,
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
	n.online = false
	n.mu.Unlock()
	close(n.stop)
	n.senderWG.Wait() // flushes, bounded by FlushTimeout
	n.cancel()        // aborts a connection attempt in progress
	n.wg.Wait()
	return n.ps.Close() // after it, no deliver runs

}
