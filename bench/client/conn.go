//go:build linux

package client

type connState uint8

const (
	stateConnecting connState = iota
	stateHandshake
	stateOpen
	stateClosed
)

// Conn is one client connection. Its methods and fields belong to its loop
// goroutine (Handler callbacks run there).
type Conn struct {
	ID int // the caller's index (Dial.ID)

	DialStart   int64 // unix ns when the dial began
	ConnectedAt int64 // TCP connected
	OpenedAt    int64 // upgrade (101) received
	Opened      bool  // the upgrade succeeded at some point
	Err         error // why it closed
	BytesIn     uint64
	BytesOut    uint64 // bytes written on this socket (an SSE stream's POSTs are not counted)
	SSEID       string // an event stream's X-Connection-ID

	loop     *Loop
	fd       int
	state    connState
	accept   string
	in       []byte // unparsed tail (a frame split across reads)
	out      []byte // unsent bytes
	dirty    bool
	outArmed bool // EPOLLOUT is in the epoll interest set
	fr       FrameReader

	sse     bool       // an event stream (sse.go)
	sseData bool       // a data line of the current event was seen
	outbox  *sseOutbox // messages waiting to be posted
	postURL string     // where they are posted: the stream's own URL
}

// Loop returns the connection's loop.
func (c *Conn) Loop() *Loop { return c.loop }

// IsSSE reports whether the connection is an event stream.
func (c *Conn) IsSSE() bool { return c.sse }

// IsOpen reports whether the connection is upgraded (or its event stream
// open) and not closed.
func (c *Conn) IsOpen() bool { return c.state == stateOpen }

// Closed reports whether the connection is closed.
func (c *Conn) Closed() bool { return c.state == stateClosed }

// WriteText queues a masked text frame; it leaves at the end of the loop
// iteration together with anything else queued for the connection. On an
// event stream it queues payload as one POST instead (sse.go).
func (c *Conn) WriteText(payload []byte) {
	if c.sse {
		if c.state == stateOpen {
			c.postText(payload)
		}
		return
	}
	c.writeFrame(OpText, payload)
}

// Buffered is the number of bytes queued and not yet accepted by the kernel.
func (c *Conn) Buffered() int { return len(c.out) }

func (c *Conn) writeFrame(op byte, payload []byte) {
	if c.state != stateOpen {
		return
	}
	c.out = AppendFrame(c.out, op, payload, c.loop.nextMask())
	if !c.dirty {
		c.dirty = true
		c.loop.dirty = append(c.loop.dirty, c)
	}
}

// Close sends a close frame (1000) and closes the socket. OnClose runs with
// ErrClosedLocally.
func (c *Conn) Close() {
	if c.state == stateClosed {
		return
	}
	if c.state == stateOpen && !c.sse {
		c.writeFrame(OpClose, []byte{0x03, 0xe8})
		c.loop.flush(c)
	}
	c.loop.closeConn(c, ErrClosedLocally)
}
