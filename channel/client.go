package channel

import (
	"sync"
	"sync/atomic"

	"github.com/pondsocket/pondsocket/internal/wsframe"

	"github.com/pondsocket/pondsocket/protocol"
)

// Client is one connection as the channel layer sees it. Its id is the user
// id every channel knows it by (one per connection, PROTOCOL.md §6.1).
type Client struct {
	id     string
	conn   Conn
	ep     *Endpoint
	remote string // peer address; the request headers are not kept

	// mu guards assigns and chans. Lock order: instance.mu before Client.mu.
	mu      sync.Mutex
	assigns map[string]any
	chans   chanSet

	// mailbox: the client's messages wait here and are handled one at a
	// time, in order, by whichever pool worker holds the client. It exists
	// only while messages are pending, so an idle client carries no queue.
	mmu     sync.Mutex
	box     *mailbox
	running bool
	gone    atomic.Bool

	// buckets are only touched by the client's serial handler execution
	msgBucket  bucket
	joinBucket bucket

	st clientState // limits.go
}

type mailbox struct {
	jobs []job
	head int
}

var mailboxPool = sync.Pool{New: func() any { return &mailbox{} }}

type job struct {
	msg        protocol.ClientMessage
	disconnect bool
}

// ID is the user id (the connection id).
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
// protocol's INVALID_MESSAGE error on ENDPOINT (PROTOCOL.md §3.6), echoing
// the client's requestId when it had one.
func (c *Client) sendEndpointError(requestID string, status int, message string) {
	if requestID == "" {
		requestID = newID()
	}
	c.sendMessage(protocol.ActionError, protocol.ErrInvalidMessage, protocol.ChannelEndpoint, requestID,
		protocol.ErrorPayload(protocol.ErrInvalidMessage, message, status))
}

// enqueue adds a job to the mailbox and hands the client to a worker when
// it was idle. With InlineHandlers the job runs right here.
func (c *Client) enqueue(j job) {
	s := c.ep.srv
	if s.opts.InlineHandlers {
		c.run(j)
		return
	}
	c.mmu.Lock()
	if !j.disconnect && c.box != nil && len(c.box.jobs)-c.box.head >= s.opts.ReceiveQueue {
		c.mmu.Unlock()
		s.stats.RateLimited.Add(1)
		c.refuse(j.msg, 429, "Too many messages waiting for this connection")
		return
	}
	if c.box == nil {
		c.box = mailboxPool.Get().(*mailbox)
	}
	c.box.jobs = append(c.box.jobs, j)
	start := !c.running
	c.running = true
	c.mmu.Unlock()
	if start {
		s.pool.submit(c.drain)
	}
}

// drainBatch bounds how many jobs one worker runs for a client before
// yielding the worker to others (fairness).
const drainBatch = 32

func (c *Client) drain() {
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
			c.mmu.Unlock()
			return
		}
		if i == drainBatch {
			c.mmu.Unlock()
			c.ep.srv.pool.submit(c.drain)
			return
		}
		j := b.jobs[b.head]
		b.jobs[b.head] = job{}
		b.head++
		c.mmu.Unlock()
		c.run(j)
	}
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
	switch j.msg.Action {
	case protocol.ActionJoin:
		c.ep.join(c, &j.msg)
	case protocol.ActionLeave:
		c.ep.leave(c, &j.msg)
	case protocol.ActionBroadcast:
		c.ep.event(c, &j.msg)
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
// PROTOCOL.md §8: the event is UNAUTHORIZED so that the published npm
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
	if m := c.chans.get(name); m != nil {
		return m.in
	}
	return nil
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
