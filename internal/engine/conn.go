package engine

import (
	"context"
	"net"
	"sync/atomic"

	"github.com/pondsocket/pondsocket/internal/wsframe"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/bytebufferpool"

	"github.com/pondsocket/pondsocket/internal/counter"
)

// socket is what the engine uses of a connection: gnet's connection on
// the event loops, streamConn on the fallback transport (stream.go). Both
// implement it, so the compiler checks that the fallback keeps up with
// every method the engine calls.
type socket interface {
	Peek(n int) ([]byte, error)
	Discard(n int) (int, error)
	Write(b []byte) (int, error)
	Writev(bs [][]byte) (int, error)
	OutboundBuffered() int
	RemoteAddr() net.Addr
}

// executor is what the engine uses of an event loop: a gnet loop
// (gnetLoop) or a fallback connection's own goroutine (streamLoop).
type executor interface {
	Execute(ctx context.Context, r gnet.Runnable) error
	closeSocket(s socket) error
}

// gnetLoop adapts a gnet event loop to executor.
type gnetLoop struct{ el gnet.EventLoop }

func (g gnetLoop) Execute(ctx context.Context, r gnet.Runnable) error { return g.el.Execute(ctx, r) }
func (g gnetLoop) closeSocket(s socket) error                         { return g.el.Close(s.(gnet.Conn)) }

var (
	_ socket   = gnet.Conn(nil)
	_ socket   = (*streamConn)(nil)
	_ executor = gnetLoop{}
	_ executor = (*streamLoop)(nil)
)

type connState uint8

const (
	stateHandshake connState = iota // reading the HTTP request head
	stateDeciding                   // waiting for Handler.Upgrade
	stateHTTP                       // a plain HTTP request is being served
	stateOpen                       // WebSocket open
	stateClosing                    // close frame sent, waiting for the peer's
	stateDone                       // answered; the socket closes after the write
	stateClosed                     // gnet closed it
)

// Conn is one client connection. It is a small struct owned by its event
// loop: every field below except ctx is touched only on that loop.
//
// Safe from any goroutine: Send, Close, Context, RemoteAddr.
type Conn struct {
	// What a data message reads and writes comes first, in as few cache
	// lines as it can: with thousands of connections a connection's
	// state has usually left the cache by its next message.
	gc    socket
	loop  *loop
	e     *Engine
	ctx   any
	state connState
	slot  int32 // index in loop.conns

	// outbound queue: a linked list through loop.q, drained at each flush
	qhead, qtail int32
	qbytes       int
	pending      int   // gnet's outbound buffer as last observed (writer.go)
	overSince    int64 // since when pending has exceeded MaxOutboundBytes

	lastRead int64  // any frame from the peer (loop clock, unix ns)
	lastData int64  // last data message from the peer
	pre      []byte // adopted connections: bytes read before the hand-over
	skip     uint64 // closing: payload bytes of a rejected frame still to drop
	fragOp   byte
	pongDue  bool
	inMsg    bool // the loop is handing this connection's read to the Handler (SendInline)
	deflate  bool // permessage-deflate negotiated
	sse      bool // a Server-Sent Events stream (sse.go), not a WebSocket
	fragRSV1 bool // the message being reassembled is compressed
	pongLen  uint8

	// timers (unix nanoseconds, loop clock)
	since    int64 // entered current state
	lastPing int64 // last server ping

	// inbound
	scanned int // handshake: bytes already searched for the head's end
	bodyEnd int // handshake: a request's head and body end here; 0 until the head is parsed

	ssePending atomic.Int64               // SSE: bytes of POSTed messages not yet handed to the Handler (sse.go)
	frag       *bytebufferpool.ByteBuffer // lazily taken for fragmented messages
	pong       *[2 + 125]byte             // the pong for the latest ping, if due
	inflate    *inflateBudget             // permessage-deflate connections only

	closeCode uint16
	opened    bool // upgraded: Handler.OnOpen ran, OnClose will
	notified  bool // Handler.OnClose ran
	reserved  bool // holds one MaxConnections slot
	overCap   bool // accepted near the open-files limit: plain HTTP only
	sseID     string
	remote    net.Addr
	req       *Request
	closed    atomic.Bool // Close requested (any goroutine)
}

// Context is the value the Handler attached with Decision.Context.
func (c *Conn) Context() any { return c.ctx }

// LoopIndex is the index of the event loop the connection lives on: a
// shard for counters its messages add to, which no other loop's share.
func (c *Conn) LoopIndex() int { return c.loop.idx }

// ReadTime is when the message being delivered (Handler.OnMessage) was
// read, in Unix nanoseconds: the loop's clock of that read, so that the
// layer above need not read the clock again for each message.
func (c *Conn) ReadTime() int64 { return c.lastData }

// RemoteAddr is the peer address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// Request is the upgrade request that opened this connection.
// It is available during Handler.OnOpen only: the engine lets go of the
// request head afterwards, so an open connection does not carry its
// headers (about a kilobyte each) for its whole life.
func (c *Conn) Request() *Request { return c.req }

// Send queues one sealed frame for this connection. It takes its own
// reference to f; the caller keeps (and must release) its own. Frames sent
// to one connection leave in the order of the Send calls made by one
// goroutine, and frames queued in the same loop iteration leave in one
// writev.
func (c *Conn) Send(f *wsframe.Frame) {
	f.Retain(1)
	c.loop.post(cmd{kind: cmdSend, c: c, f: f})
}

// SendInline is Send for a frame that answers a message of this
// connection, made while Handler.OnMessage runs for it (on the
// connection's event loop, which is where OnMessage runs). The frame is
// queued on the loop at once, with no hand-off, and leaves in one write
// with the other answers to the same read, right after it. Order holds:
// whatever was sent to the connection before is queued ahead of it, or,
// when the loop has commands that must run first (a close, say), the
// frame is simply Sent behind them. It must be called on the
// connection's loop; there, outside OnMessage for this connection, it is
// Send.
func (c *Conn) SendInline(f *wsframe.Frame) {
	l := c.loop
	if !c.inMsg || !l.refill() {
		c.Send(f)
		return
	}
	f.Retain(1)
	l.inline = append(l.inline, f)
	l.enqueue(c, c.frameBytes(f))
}

// Close starts the closing handshake with code and reason (code 0 sends a
// close frame without a code). Frames queued before Close are written first.
func (c *Conn) Close(code int, reason string) {
	if c.closed.Swap(true) {
		return
	}
	c.loop.post(cmd{kind: cmdClose, c: c, code: uint16(code), reason: reason})
}

func (c *Conn) releaseFrag() {
	if c.frag != nil {
		fragPool.Put(c.frag)
		c.frag = nil
	}
	c.fragOp = 0
}

var fragPool bytebufferpool.Pool

// Stats are cumulative engine counters, safe to read at any time.
type Stats struct {
	Accepted          atomic.Int64    // upgrades completed
	Declined          atomic.Int64    // upgrades refused by the handler or a limit
	HTTPRequests      atomic.Int64    // plain HTTP requests served
	MessagesIn        counter.Sharded // added to per loop: every message counts
	BytesIn           counter.Sharded
	FramesOut         counter.Sharded // by loop, like the two above
	BytesOut          counter.Sharded
	Writes            counter.Sharded // write/writev calls on sockets
	SlowConsumers     atomic.Int64
	PongsCollapsed    atomic.Int64 // pings answered by a later pong (RFC 6455 §5.5.3)
	ProtocolErrors    atomic.Int64
	PongTimeouts      atomic.Int64
	HandshakeTimeouts atomic.Int64
	IdleTimeouts      atomic.Int64
	Deflate           atomic.Int64 // connections that negotiated permessage-deflate
	AcceptErrors      atomic.Int64 // accepts that failed (e.g. out of descriptors)
	TLSFailures       atomic.Int64 // TLS handshakes that failed or timed out
}

// Stats exposes the engine counters.
func (e *Engine) Stats() *Stats { return &e.stats }
