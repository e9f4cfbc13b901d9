package pondsocket

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pondsocket/pondsocket/internal/wsframe"

	"github.com/pondsocket/pondsocket/internal/protocol"
)

// Client is one connection as the channel layer sees it. Its id is the user
// id every channel knows it by (one per connection, docs/protocol.md §0).
type Client struct {
	// The fields every message reads come first, so that a message costs
	// the fewest cache lines of its client: with thousands of connections
	// their state is rarely still cached when the next message arrives.
	id   string
	conn memberConn
	ep   *Endpoint

	// mu guards assigns and chans. Lock order: instance.mu before Client.mu.
	mu    sync.Mutex
	chans chanSet
	// hint is chans.oneIn, readable without mu: the transport prefetches
	// the channel a message will most likely need while it decodes it.
	hint atomic.Pointer[instance]
	// shard is the slot of shared counters this client's work adds to:
	// its transport's event loop, where its messages are handled.
	shard int
	// inline is conn when it takes replies made on its own loop
	// directly (engine.Conn.SendInline); nil otherwise
	inline inlineSink

	// mailbox: the client's messages wait here and are handled one at a
	// time, in order, by whichever pool worker holds the client. It exists
	// only while messages are pending, so an idle client carries no queue.
	mmu     sync.Mutex
	box     *mailbox
	running bool
	closing bool
	gone    atomic.Bool
	// hasCtx: the running handler asked for its context (see hctx)
	hasCtx atomic.Bool
	// buckets are only touched by the client's serial handler execution
	msgBucket  bucket
	joinBucket bucket

	// nextSame is the user's next connection on the endpoint (userid.go);
	// multi is set once the user has had two connections at a time, so a
	// user with one connection skips the per-user lookups
	nextSame atomic.Pointer[Client]
	multi    atomic.Bool
	remote   string         // peer address; the request headers are not kept
	assigns  map[string]any // guarded by mu

	// queued is the bytes of the messages in box (counted against
	// MaxQueuedBytes and, summed over clients, MaxTotalQueuedBytes);
	// strikes and refused count the refusals since box last emptied.
	queued  int
	strikes int
	refused int

	// parked is the gate the client waits on (gate.go); held is a gate
	// slot handed to it while parked. held is only touched by the worker
	// that serves the client.
	parked atomic.Pointer[gate]
	held   *gate
	// the gate of the last event, by channel and event name: a client
	// usually sends the same event on the same channel. Only the serving
	// worker touches it; a stale answer (the client left, a handler was
	// added) only counts one call against another handler's share.
	lastChan, lastEvent string
	lastGate            *gate

	// the running handler's context, made on first use (Context()):
	// runStart is when the running job started (Handlers.Timeout), hcancel
	// cancels the context when the job ends or the connection goes away.
	runStart time.Time
	hctx     context.Context
	hcancel  context.CancelFunc

	st clientState // limits.go
}

type mailbox struct {
	jobs []job
	head int
}

var mailboxPool = sync.Pool{New: func() any { return &mailbox{} }}

type job struct {
	msg  protocol.ClientMessage
	size int   // bytes of the message as delivered to the channel layer
	at   int64 // when it was read (Unix ns), 0 when not known
	// ctx is an event's context, made with the message's copies (nil:
	// ep.event makes one)
	ctx        *EventContext
	disconnect bool
	// in is the channel runInline already looked up (nil: ep.event looks)
	in *instance
	// onLoop: the job runs where its message arrived (runInline, or
	// Handlers.Inline), inside the transport's delivery of that message,
	// so a reply to the sender may be queued there directly (SendInline)
	onLoop bool
}

// ID is the user id (shared by the user's connections, see SetUserID).
func (c *Client) ID() string { return c.id }

// RemoteAddr is the peer address.
func (c *Client) RemoteAddr() string { return c.remote }

// Endpoint is the endpoint the client connected to.
func (c *Client) Endpoint() *Endpoint { return c.ep }

// Assigns returns a copy of the connection-level assigns.
func (c *Client) Assigns() map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return copyMap(c.assigns)
}

// Channels lists the names of the channels the client is in.
func (c *Client) Channels() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, c.chans.len())
	for _, m := range c.chans.all() {
		out = append(out, m.in.name)
	}
	return out
}

// Close closes the client's connection with a WebSocket close code.
func (c *Client) Close(code int, reason string) {
	if c.conn != nil {
		c.conn.Close(code, reason)
	}
}

// send delivers one frame to this client.
func (c *Client) send(f *wsframe.Frame) {
	if c.conn != nil {
		c.conn.Send(f)
	}
}

func (c *Client) sendMessage(action, event, channel, requestID string, payload []byte) {
	f := protocol.Encode(action, event, channel, requestID, payload)
	c.send(f)
	f.Release()
}

// sendEndpointError answers a message that could not be routed with the
// protocol's INVALID_MESSAGE error on ENDPOINT (docs/protocol.md §6.10), echoing
// the client's requestId when it had one.
func (c *Client) sendEndpointError(requestID string, status int, message string) {
	if requestID == "" {
		requestID = newID()
	}
	c.sendMessage(protocol.ActionError, protocol.ErrInvalidMessage, protocol.ChannelEndpoint, requestID,
		protocol.ErrorPayload(protocol.ErrInvalidMessage, message, status))
}

// A connection whose messages keep being refused because its own queue is
// full — more than maxStrikes refusals, or more than MaxQueuedBytes
// refused, since its queue last emptied — is closed with 1008.
const maxStrikes = 64

// firstMessageAllowance: a connection with nothing queued may queue one
// message of up to this many bytes even when MaxTotalQueuedBytes is
// reached, so ordinary request/reply traffic goes on while bulk senders
// are refused. The total may thus overshoot by this much per connection.
const firstMessageAllowance = 4 << 10

// enqueue adds a job to the mailbox and hands the client to a worker when
// it was idle. With Handlers.Inline, or for an event whose handler was
// registered with OnEventInline, the job runs right here.
func (c *Client) enqueue(j job) {
	s := c.ep.srv
	if s.opts.Handlers.Inline {
		j.onLoop = true
		c.run(j)
		c.endRun()
		return
	}
	if !j.disconnect && j.msg.Action == protocol.ActionBroadcast && c.runInline(j) {
		return
	}
	c.mmu.Lock()
	if !j.disconnect {
		if c.gone.Load() {
			c.mmu.Unlock()
			return
		}
		pending := 0
		if c.box != nil {
			pending = len(c.box.jobs) - c.box.head
		}
		text, own := "", true
		switch {
		case pending >= s.opts.ReceiveChannelBuffer:
			text = "Too many messages waiting for this connection"
		case c.queued+j.size > s.opts.Inbound.MaxQueuedBytes:
			text = "Too many bytes waiting for this connection's handlers"
		case s.queued.Add(int64(j.size)) > int64(s.opts.Inbound.MaxTotalQueuedBytes) && (pending > 0 || j.size > firstMessageAllowance):
			s.queued.Add(-int64(j.size))
			text, own = "Server busy: too many bytes waiting for handlers", false
		}
		if text != "" {
			cut := false
			if own {
				c.strikes++
				c.refused += j.size
				cut = !c.closing && (c.strikes > maxStrikes || c.refused > s.opts.Inbound.MaxQueuedBytes)
				c.closing = c.closing || cut
			}
			c.mmu.Unlock()
			s.stats.RateLimited.Add(1)
			c.refuse(j.msg, 429, text)
			if cut {
				s.stats.QueueClosed.Add(1)
				s.rlog.Warn("connection closed: its receive queue stayed full", "user", c.id, "remote", c.remote,
					"queued_bytes", s.opts.Inbound.MaxQueuedBytes)
				c.Close(1008, "receive queue full: messages keep arriving faster than the handlers run")
			}
			return
		}
		c.queued += j.size
	}
	if c.box == nil {
		c.box = mailboxPool.Get().(*mailbox)
	}
	c.box.jobs = append(c.box.jobs, j)
	start := !c.running
	c.running = true
	c.mmu.Unlock()
	if start {
		s.pool.submit(c)
	}
}

// runInline runs j on the calling goroutine (the client's event loop)
// when its handler never blocks and nothing of the client's waits for a
// worker or runs on one; it reports whether it did. While it runs the
// client counts as running, so anything queued meanwhile waits behind it
// and goes to a worker after.
func (c *Client) runInline(j job) bool {
	in := c.channel(j.msg.ChannelName)
	if in == nil || !in.lobby.runsInline(j.msg.Event) {
		return false
	}
	c.mmu.Lock()
	if c.running || c.gone.Load() {
		c.mmu.Unlock()
		return false
	}
	c.running = true
	j.in, j.onLoop = in, true
	if c.ep.srv.opts.Handlers.Timeout > 0 {
		c.runStart = time.Now() // as pop does for a worker's job
	}
	c.mmu.Unlock()
	c.run(j)
	c.endRun()
	c.mmu.Lock()
	more := c.box != nil && c.box.head < len(c.box.jobs)
	c.running = more
	c.mmu.Unlock()
	if more {
		c.ep.srv.pool.submit(c)
	}
	return true
}

// drainBatch bounds how many jobs one worker runs for a client before
// yielding the worker to others (fairness).
const drainBatch = 32

// serve runs the client's queued jobs, in order, on the calling worker: up
// to drainBatch of them, then the client goes to the back of the pool's
// queue. A job whose handler's gate is full parks the client (the worker
// moves on); messages of a connection that has closed are dropped.
func (c *Client) serve() {
	s := c.ep.srv
	for i := 0; ; i++ {
		c.mmu.Lock()
		b := c.box
		if b == nil || b.head == len(b.jobs) {
			if b != nil {
				b.jobs, b.head = b.jobs[:0], 0
				if cap(b.jobs) <= 64 {
					mailboxPool.Put(b)
				}
				c.box = nil
			}
			c.running = false
			c.strikes, c.refused = 0, 0
			c.mmu.Unlock()
			return
		}
		if i == drainBatch {
			c.mmu.Unlock()
			s.pool.submit(c)
			return
		}
		j := b.jobs[b.head]
		c.mmu.Unlock()
		if s.pool.stopped.Load() {
			return // shutdown gave up: nothing more runs
		}
		var g *gate
		if !j.disconnect {
			if c.gone.Load() {
				c.pop(j.size)
				c.acquire(nil)
				continue
			}
			g = c.gateFor(&j.msg)
			if !c.acquire(g) {
				return // parked: the gate submits c again when a slot frees
			}
		}
		c.pop(j.size)
		c.run(j)
		c.endRun()
		if g != nil {
			g.release(s.pool)
		}
	}
}

// pop removes the head job, releasing its bytes, and marks the start of
// the job that runs next.
func (c *Client) pop(size int) {
	s := c.ep.srv
	c.mmu.Lock()
	b := c.box
	b.jobs[b.head] = job{}
	b.head++
	c.queued -= size
	if s.opts.Handlers.Timeout > 0 {
		c.runStart = time.Now()
	}
	c.mmu.Unlock()
	if size != 0 {
		s.queued.Add(-int64(size))
	}
}

// acquire takes a slot of g for the next job (nil: none needed), using a
// slot handed over while parked when it is g's, and releasing it when not.
// It reports false when c was parked on g.
func (c *Client) acquire(g *gate) bool {
	if h := c.held; h != nil {
		c.held = nil
		if h == g {
			return true
		}
		h.release(c.ep.srv.pool)
	}
	if g == nil {
		return true
	}
	return g.acquire(c, c.ep.srv.opts.Handlers.MaxPerHandler)
}

// gateFor names the gate of the user code m would run: the matching event
// handler of the channel's pattern (events no handler matches share one
// gate per pattern, for its middleware), the pattern's join handler, or
// its leave handler. Nil when m runs no user code.
func (c *Client) gateFor(m *protocol.ClientMessage) *gate {
	switch m.Action {
	case protocol.ActionBroadcast:
		if c.lastGate != nil && m.ChannelName == c.lastChan && m.Event == c.lastEvent {
			return c.lastGate
		}
		if in := c.channel(m.ChannelName); in != nil {
			g := in.lobby.eventGate(m.Event)
			// copies: the names may share memory with a large message
			c.lastChan, c.lastEvent, c.lastGate = strings.Clone(m.ChannelName), strings.Clone(m.Event), g
			return g
		}
	case protocol.ActionJoin:
		if l, _, ok := c.ep.matchLobby(m.ChannelName); ok {
			return &l.joinGate
		}
	case protocol.ActionLeave:
		if in := c.channel(m.ChannelName); in != nil {
			return &in.lobby.leaveGate
		}
	}
	return nil
}

// unpark hands a client parked on a gate back to the pool (its connection
// closed: its queued messages are to be dropped, its leave handlers run).
func (c *Client) unpark() {
	if g := c.parked.Load(); g != nil && g.unpark(c) {
		c.ep.srv.pool.submit(c)
	}
}

// runContext is the context of the job running for c: cancelled when the
// connection goes away, when the job ends, when shutdown abandons it, and
// at Handlers.Timeout after the job started.
func (c *Client) runContext() context.Context {
	s := c.ep.srv
	c.mmu.Lock()
	defer c.mmu.Unlock()
	if c.hctx != nil {
		return c.hctx
	}
	if t := s.opts.Handlers.Timeout; t > 0 {
		start := c.runStart
		if start.IsZero() {
			start = time.Now()
		}
		c.hctx, c.hcancel = context.WithDeadline(s.base, start.Add(t))
	} else {
		c.hctx, c.hcancel = context.WithCancel(s.base)
	}
	if c.gone.Load() {
		c.hcancel()
	}
	c.hasCtx.Store(true)
	return c.hctx
}

// endRun cancels the finished job's context.
func (c *Client) endRun() {
	if !c.hasCtx.Load() {
		return
	}
	c.mmu.Lock()
	if c.hcancel != nil {
		c.hcancel()
	}
	c.hctx, c.hcancel = nil, nil
	c.hasCtx.Store(false)
	c.mmu.Unlock()
}

// cancelRun cancels the running job's context (the connection went away).
func (c *Client) cancelRun() {
	if !c.hasCtx.Load() {
		return
	}
	c.mmu.Lock()
	if c.hcancel != nil {
		c.hcancel()
	}
	c.mmu.Unlock()
}

// overran reports whether the running job has passed Handlers.Timeout.
func (c *Client) overran() bool {
	t := c.ep.srv.opts.Handlers.Timeout
	if t <= 0 {
		return false
	}
	c.mmu.Lock()
	start := c.runStart
	c.mmu.Unlock()
	return !start.IsZero() && time.Since(start) > t
}

func (c *Client) run(j job) {
	defer func() {
		if p := recover(); p != nil {
			e := c.ep.srv.recovered(p, "message", "user", c.id, "channel", j.msg.ChannelName, "event", j.msg.Event)
			if !j.disconnect && j.msg.Action == protocol.ActionBroadcast {
				c.sendMessage(protocol.ActionError, protocol.ErrHandlerNotFound, j.msg.ChannelName, j.msg.RequestID,
					protocol.HandlerErrorPayload(e.Message, e.Status))
			}
		}
	}()
	if j.disconnect {
		c.ep.disconnect(c)
		return
	}
	if c.gone.Load() {
		return // InlineHandlers: the connection closed meanwhile
	}
	switch j.msg.Action {
	case protocol.ActionJoin:
		c.ep.join(c, &j.msg)
	case protocol.ActionLeave:
		c.ep.leave(c, &j.msg)
	case protocol.ActionBroadcast:
		c.ep.event(c, &j.msg, j.in, j.onLoop, j.at, j.ctx)
	}
}

// refuse answers a message that was rate limited or could not be queued,
// in the form the client can tie to its request.
func (c *Client) refuse(m protocol.ClientMessage, status int, text string) {
	switch m.Action {
	case protocol.ActionJoin:
		c.declineJoin(m.ChannelName, m.RequestID, protocol.ErrChannelError, text, status)
	case protocol.ActionBroadcast:
		if c.inChannel(m.ChannelName) {
			c.sendMessage(protocol.ActionError, protocol.ErrHandlerNotFound, m.ChannelName, m.RequestID,
				protocol.HandlerErrorPayload(text, status))
			return
		}
		c.sendEndpointError(m.RequestID, status, text)
	default:
		c.sendEndpointError(m.RequestID, status, text)
	}
}

// declineJoin answers a join that did not succeed. Decision (a) of
// docs/protocol.md §10: the event is UNAUTHORIZED so that the published npm
// client (which only recognises that event) reaches DECLINED, while the
// payload keeps the reference's error code for the newer client.
func (c *Client) declineJoin(channel, requestID, code, message string, status int) {
	c.ep.srv.stats.JoinsDeclined.Add(1)
	c.sendMessage(protocol.ActionError, protocol.EventUnauthorized, channel, requestID,
		protocol.ErrorPayload(code, message, status))
}

func (c *Client) inChannel(name string) bool { return c.channel(name) != nil }

// channel returns the live channel name the client is in, or nil.
func (c *Client) channel(name string) *instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.chans.instance(name)
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
