package engine

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pondsocket/pondsocket/internal/wsframe"
)

// The write path.
//
// Any goroutine hands work to a loop through its inbox (post): a mutex, an
// append, and at most one gnet Execute per batch — the first post into an
// empty inbox schedules a drain, later posts ride along. On the loop, drain
// links every frame to its recipients' queues (a linked list threaded
// through one loop-wide slice, so an idle connection owns no queue memory),
// then flushes each dirty connection with a single writev. A broadcast to a
// room therefore costs one task per loop, not one per recipient, and frames
// that pile up for one connection between two drains leave in one syscall.
//
// Frames are reference counted: the poster's reference travels with the
// command and is dropped after the flush, because gnet copies whatever the
// kernel did not take into the connection's outbound buffer.

type cmdKind uint8

const (
	cmdSend cmdKind = iota + 1
	cmdFanout
	cmdClose
	cmdSweep
	cmdDrain
	cmdFunc
)

type cmd struct {
	kind   cmdKind
	code   uint16
	c      *Conn
	cs     *connList
	f      *wsframe.Frame
	reason string
	fn     func()
}

type qent struct {
	b      []byte
	next   int32
	frames int32 // whole frames in b
}

type loop struct {
	e      *Engine
	el     executor
	idx    int
	stream bool // a fallback connection's own loop (stream.go)

	mu        sync.Mutex
	inbox     []cmd
	scheduled bool
	// posted is len(inbox), written under mu: refill reads it without the
	// lock, to skip it when nothing waits (the common case for a reply)
	posted atomic.Int32

	// loop-owned
	spare    []cmd
	held     []cmd   // the batch being written
	heldMore [][]cmd // commands refill took during the write
	free     [][]cmd // emptied inbox slices for refill to hand back
	conns    []*Conn
	arena    []byte           // the joined frames of this batch's runs (applyRun)
	inline   []*wsframe.Frame // frames queued by SendInline, written after the read
	q        []qent
	dirty    []*Conn
	iov      [][]byte
	closing  []*Conn

	pending atomic.Int64 // sum of conns' pending outbound bytes
	now     int64        // loop clock (unix ns): read once per batch and per sweep

	// writes, frames and bytes written since the last publish: counted
	// here and added to the engine's shared counters once per batch, so
	// that two loops writing at once do not contend on those counters'
	// cache line for every socket written
	writes, frames, bytes int64
}

func newLoop(e *Engine, el executor, idx int) *loop {
	return &loop{e: e, el: el, idx: idx, free: make([][]cmd, 0, 4)}
}

func (l *loop) add(c *Conn) {
	c.slot = int32(len(l.conns))
	l.conns = append(l.conns, c)
}

func (l *loop) remove(c *Conn) {
	i := c.slot
	if i < 0 || int(i) >= len(l.conns) || l.conns[i] != c {
		return
	}
	last := len(l.conns) - 1
	l.conns[i] = l.conns[last]
	l.conns[i].slot = i
	l.conns[last] = nil
	l.conns = l.conns[:last]
	c.slot = -1
}

// post hands a command to the loop; safe from any goroutine.
func (l *loop) post(c cmd) {
	l.mu.Lock()
	l.inbox = append(l.inbox, c)
	l.posted.Store(int32(len(l.inbox)))
	sched := !l.scheduled
	l.scheduled = true
	l.mu.Unlock()
	if !sched {
		return
	}
	if err := l.el.Execute(l.e.ctx, l); err != nil {
		// The engine is shutting down: nobody will drain this inbox.
		l.mu.Lock()
		pending := l.inbox
		l.inbox = nil
		l.posted.Store(0)
		l.scheduled = false
		l.mu.Unlock()
		for _, c := range pending {
			c.release()
		}
	}
}

func (c *cmd) release() {
	if c.f != nil {
		c.f.Release()
	}
	if c.cs != nil {
		putConnList(c.cs)
	}
}

// Run drains the inbox; it is the gnet task and runs on the loop.
func (l *loop) Run(context.Context) error {
	l.mu.Lock()
	batch := l.inbox
	l.inbox = l.spare[:0]
	l.posted.Store(0)
	l.scheduled = false
	l.mu.Unlock()
	// One clock read per batch, not one per connection flushed: the slow
	// consumer check only needs it to the tick (SlowConsumerTimeout is
	// seconds), and a sweep refreshes it at least every tick.
	l.now = time.Now().UnixNano()

	for i := 0; i < len(batch); i++ {
		c := &batch[i]
		switch c.kind {
		case cmdFanout:
			if n := l.sameRecipients(batch[i:]); n > 1 {
				l.applyRun(batch[i : i+n])
				i += n - 1
				continue
			}
			l.apply(c)
		case cmdSend:
			l.apply(c)
		case cmdClose:
			if c.c.state == stateOpen {
				l.flushConn(c.c)
				c.c.startClose(c.code, c.reason)
			}
		case cmdSweep:
			l.flush()
			l.sweep()
		case cmdDrain:
			l.flush()
			l.drainAll()
		case cmdFunc:
			l.flush()
			c.fn()
		}
	}
	l.held = batch
	l.flushRefilling()
	l.releaseMore()
	l.spare = l.release(l.held)
	l.held = nil
	l.publish()
	if cap(l.arena) > maxArena {
		l.arena = nil
	} else {
		l.arena = l.arena[:0]
	}
	return nil
}

// releaseMore drops the commands refill took, now written.
func (l *loop) releaseMore() {
	for _, b := range l.heldMore {
		if b = l.release(b); len(l.free) < cap(l.free) {
			l.free = append(l.free, b)
		}
	}
	clear(l.heldMore)
	l.heldMore = l.heldMore[:0]
}

// flushInline writes what SendInline queued during one read (and what
// refill took with it), then drops the frames' references. The loop clock
// is the read's (parseFrames set it).
func (l *loop) flushInline() {
	l.flush()
	for i, f := range l.inline {
		f.Release()
		l.inline[i] = nil
	}
	l.inline = l.inline[:0]
	l.releaseMore()
	l.publish()
}

// publish adds the loop's write counts to the engine's counters.
func (l *loop) publish() {
	if l.writes == 0 {
		return
	}
	st := &l.e.stats
	st.Writes.Add(l.idx, l.writes)
	st.FramesOut.Add(l.idx, l.frames)
	st.BytesOut.Add(l.idx, l.bytes)
	l.writes, l.frames, l.bytes = 0, 0, 0
}

// Runs of broadcasts to one room. A room that broadcasts faster than the
// loop writes leaves several fan-outs in one batch with the same
// recipients (the hub lists a room's members in the same order every
// time). Their frames are joined once into one buffer per form (plain,
// compressed, SSE) and each recipient queues that buffer once: one queue
// entry and one contiguous write per recipient instead of one entry per
// frame, which matters most when the queues of thousands of connections no
// longer fit in the cache.

// maxRunBytes bounds the frames joined for one run; maxArena the buffer
// the loop keeps between batches for them.
const (
	maxRunBytes = 64 << 10
	maxArena    = 256 << 10
)

// sameRecipients is how many fan-outs at the head of cmds (at least 1) go
// to the same connections of this loop and fit together in maxRunBytes.
func (l *loop) sameRecipients(cmds []cmd) int {
	first := cmds[0].cs.conns
	size := cmds[0].f.Len()
	n := 1
	for ; n < len(cmds); n++ {
		c := &cmds[n]
		if c.kind != cmdFanout || len(c.cs.conns) != len(first) || size+c.f.Len() > maxRunBytes {
			break
		}
		if !slices.Equal(c.cs.conns, first) {
			break
		}
		size += c.f.Len()
	}
	return n
}

// applyRun queues the frames of fan-outs that share their recipients, each
// form joined into one buffer of the loop's arena (valid until the batch's
// writes are done: gnet copies what the kernel does not take).
func (l *loop) applyRun(cmds []cmd) {
	var plain, z, ev []byte
	frames := int32(len(cmds))
	for _, cn := range cmds[0].cs.conns {
		switch {
		case cn.sse:
			if ev == nil {
				ev = l.join(cmds, sseFrame)
			}
			l.enqueueN(cn, ev, frames)
		case cn.deflate && l.e.cfg.EnableCompression:
			if z == nil {
				z = l.join(cmds, func(f *wsframe.Frame) []byte {
					if l.e.compressible(f) {
						return deflatedFrame(f)
					}
					return f.Bytes()
				})
			}
			l.enqueueN(cn, z, frames)
		default:
			if plain == nil {
				plain = l.join(cmds, (*wsframe.Frame).Bytes)
			}
			l.enqueueN(cn, plain, frames)
		}
	}
}

// join appends form(f) of every command's frame to the arena and returns
// those bytes.
func (l *loop) join(cmds []cmd, form func(*wsframe.Frame) []byte) []byte {
	start := len(l.arena)
	for i := range cmds {
		l.arena = append(l.arena, form(cmds[i].f)...)
	}
	return l.arena[start:len(l.arena):len(l.arena)]
}

// apply queues a send or a fan-out's frame for its recipients.
func (l *loop) apply(c *cmd) {
	if c.kind == cmdSend {
		l.enqueue(c.c, c.c.frameBytes(c.f))
		return
	}
	// both forms resolved once per command, not per recipient
	plain, z, ev := c.f.Bytes(), []byte(nil), []byte(nil)
	compressible := l.e.compressible(c.f)
	for _, cn := range c.cs.conns {
		if cn.sse {
			if ev == nil {
				ev = sseFrame(c.f)
			}
			l.enqueue(cn, ev)
		} else if compressible && cn.deflate {
			if z == nil {
				z = deflatedFrame(c.f)
			}
			l.enqueue(cn, z)
		} else {
			l.enqueue(cn, plain)
		}
	}
}

// release drops the commands' references once their frames are written
// (gnet copied whatever the kernel did not take) and returns the emptied
// slice for reuse.
func (l *loop) release(batch []cmd) []cmd {
	for i := range batch {
		batch[i].release()
		batch[i] = cmd{}
	}
	return batch[:0]
}

// refillEvery is how many connections a flush writes between two looks at
// the inbox.
const refillEvery = 256

// flushRefilling writes every dirty connection's queue, like flush, and
// every refillEvery connections takes the sends and fan-outs posted since
// the batch began. A broadcast that arrives while the loop is writing an
// earlier one to thousands of connections then joins the queues of the
// connections not yet written, and leaves in the same writev instead of
// waiting for a pass of its own: under a stream of broadcasts each socket
// write carries more frames (fewer syscalls and TCP segments per
// delivery), the way a loop that produces its broadcasts itself batches
// them. Order per connection holds because a queue only grows at its
// tail. Only the connections dirty when the pass began are refilled, so
// the pass ends: one written before a refill is queued again and written
// once more at the end of the pass.
func (l *loop) flushRefilling() {
	first := len(l.dirty)
	for i := 0; i < len(l.dirty); i++ {
		if i < first && i%refillEvery == refillEvery-1 {
			l.refill()
		}
		c := l.dirty[i]
		l.dirty[i] = nil
		l.flushConn(c)
	}
	l.dirty = l.dirty[:0]
	clear(l.q)
	l.q = l.q[:0]
}

// refill takes the inbox if it holds only sends and fan-outs (closes,
// sweeps and functions wait for the next Run, which orders them against
// the flush) and queues their frames. The scheduled Run, if any, finds
// what was posted after this. It reports whether the inbox was left
// empty.
func (l *loop) refill() bool {
	// Nothing posted: nothing to queue first. A post made before the
	// caller's message reached the layer above (the only posts a reply
	// must follow) happened before this load.
	if l.posted.Load() == 0 {
		return true
	}
	l.mu.Lock()
	if len(l.inbox) == 0 {
		l.mu.Unlock()
		return true
	}
	for i := range l.inbox {
		if k := l.inbox[i].kind; k != cmdSend && k != cmdFanout {
			l.mu.Unlock()
			return false
		}
	}
	more := l.inbox
	l.inbox = nil
	l.posted.Store(0)
	if n := len(l.free); n > 0 {
		l.inbox = l.free[n-1]
		l.free = l.free[:n-1]
	}
	l.mu.Unlock()
	for i := range more {
		l.apply(&more[i])
	}
	l.heldMore = append(l.heldMore, more)
	return true
}

func (l *loop) enqueue(c *Conn, b []byte) { l.enqueueN(c, b, 1) }

// enqueueN queues b, which holds frames whole frames, for c.
func (l *loop) enqueueN(c *Conn, b []byte, frames int32) {
	if c.state != stateOpen || len(b) == 0 {
		return
	}
	i := int32(len(l.q))
	l.q = append(l.q, qent{b: b, next: -1, frames: frames})
	if c.qhead < 0 {
		c.qhead = i
		l.dirty = append(l.dirty, c)
	} else {
		l.q[c.qtail].next = i
	}
	c.qtail = i
	c.qbytes += len(b)
}

// flush writes every dirty connection's queue.
func (l *loop) flush() {
	if len(l.dirty) == 0 {
		return
	}
	for i, c := range l.dirty {
		l.flushConn(c)
		l.dirty[i] = nil
	}
	l.dirty = l.dirty[:0]
	clear(l.q)
	l.q = l.q[:0]
}

// maxIOV keeps each writev under the kernel's IOV_MAX.
const maxIOV = 1024

func (l *loop) flushConn(c *Conn) {
	if c.qhead < 0 {
		return
	}
	head := c.qhead
	n := c.qbytes
	c.qhead, c.qtail, c.qbytes = -1, -1, 0
	if c.state != stateOpen {
		return
	}
	e := l.e
	if c.pending > e.cfg.MaxOutboundBurst {
		c.slowConsumer("pending bytes over MaxOutboundBurst")
		return
	}
	iov := l.iov[:0]
	frames := 0
	for i := head; i >= 0; i = l.q[i].next {
		iov = append(iov, l.q[i].b)
		frames += int(l.q[i].frames)
		if len(iov) == maxIOV {
			l.writev(c, iov)
			iov = iov[:0]
			if c.state != stateOpen {
				break
			}
		}
	}
	if len(iov) > 0 && c.state == stateOpen {
		l.writev(c, iov)
	}
	clear(iov)
	l.iov = iov[:0]
	l.frames += int64(frames)
	l.bytes += int64(n)
	c.observe(l.now)
}

// Slow consumers. A connection is slow when the kernel does not take what
// is written to it: what gnet could not write stays in its outbound buffer
// (OutboundBuffered). That is measured after each write and at each sweep,
// never from what is merely queued, so a burst to a reader that keeps up
// is not mistaken for slowness. Over MaxOutboundBytes for longer than
// SlowConsumerTimeout, over MaxOutboundBurst at any time, or over
// MaxOutboundBytes while all connections together hold more than
// MaxTotalOutboundBytes: the connection is closed with 1008.

// observe records c's pending outbound bytes and judges them.
func (c *Conn) observe(now int64) {
	p := c.gc.OutboundBuffered()
	if d := p - c.pending; d != 0 {
		c.loop.pending.Add(int64(d))
		c.pending = p
	}
	cfg := &c.e.cfg
	switch {
	case p <= cfg.MaxOutboundBytes:
		c.overSince = 0
		return
	case c.state != stateOpen:
		return
	case p > cfg.MaxOutboundBurst:
		c.slowConsumer("pending bytes over MaxOutboundBurst")
	case c.e.pendingTotal() > cfg.MaxTotalOutboundBytes:
		c.slowConsumer("all connections together over MaxTotalOutboundBytes")
	case c.overSince == 0:
		c.overSince = now
	case now-c.overSince > int64(cfg.SlowConsumerTimeout):
		c.slowConsumer("over MaxOutboundBytes for SlowConsumerTimeout")
	}
}

// forget removes a closed connection's pending bytes from the totals.
func (c *Conn) forget() {
	if c.pending != 0 {
		c.loop.pending.Add(-int64(c.pending))
		c.pending = 0
	}
}

func (c *Conn) slowConsumer(why string) {
	e := c.e
	e.stats.SlowConsumers.Add(1)
	e.rlog.Warn("slow consumer closed", "remote", c.remote, "pending", c.pending, "limit", e.cfg.MaxOutboundBytes, "why", why)
	c.startClose(1008, "slow consumer: outbound buffer limit exceeded")
}

// pendingTotal is the outbound bytes pending on every loop.
func (e *Engine) pendingTotal() int64 {
	var n int64
	for _, l := range e.loopSnapshot() {
		n += l.pending.Load()
	}
	return n
}

func (l *loop) writev(c *Conn, iov [][]byte) {
	l.writes++
	if len(iov) == 1 {
		_, _ = c.gc.Write(iov[0])
		return
	}
	_, _ = c.gc.Writev(iov)
}

// writeNow writes b to c immediately (control frames, handshake answers).
// Queued data for c is flushed first so order holds.
func (c *Conn) writeNow(b []byte) {
	c.loop.flushConn(c)
	c.loop.writes++
	_, _ = c.gc.Write(b)
	c.loop.publish()
}

// Pongs. A ping is not answered on its own: the latest ping's payload is
// kept and one pong leaves after the bytes of one read are parsed (RFC
// 6455 §5.5.3 allows answering only the most recent ping), so a ping
// flood costs one write per read, not one per ping. A pong is written only
// while the connection is under its outbound limit: a peer that sends
// pings and never reads gets no more bytes than any other slow consumer.

func (c *Conn) setPong(payload []byte) {
	if c.pong == nil {
		c.pong = new([2 + 125]byte)
	}
	if c.pongDue {
		c.e.stats.PongsCollapsed.Add(1)
	}
	n := len(wsframe.Append(c.pong[:0], wsframe.Fin|wsframe.OpPong, payload))
	c.pongLen = uint8(n)
	c.pongDue = true
}

// flushPong writes the due pong, if the connection has room for it.
func (c *Conn) flushPong() {
	if !c.pongDue || c.state != stateOpen {
		return
	}
	if c.gc.OutboundBuffered() > c.e.cfg.MaxOutboundBytes {
		c.observe(time.Now().UnixNano())
		return // stays due; the sweep retries or cuts
	}
	c.pongDue = false
	c.writeNow(c.pong[:c.pongLen])
	c.observe(time.Now().UnixNano())
}

// connList is a pooled slice of recipients for one loop of a fan-out.
type connList struct{ conns []*Conn }

var connListPool = sync.Pool{New: func() any { return &connList{} }}

func getConnList() *connList { return connListPool.Get().(*connList) }

func putConnList(l *connList) {
	clear(l.conns)
	l.conns = l.conns[:0]
	connListPool.Put(l)
}

// Fanout sends one sealed frame to many connections: the engine's own
// connections on the event loops are grouped by loop and each loop gets one
// task; any other sink (a fallback connection, a test's virtual one) gets
// its own Send. The caller keeps its own reference to f. Safe from any
// goroutine.
func (e *Engine) Fanout(f *wsframe.Frame, conns []wsframe.Sink) {
	if len(conns) == 1 {
		conns[0].Send(f)
		return
	}
	var small [8]*connList
	groups := small[:0]
	for _, s := range conns {
		c, ok := s.(*Conn)
		if !ok || c.loop.stream {
			s.Send(f)
			continue
		}
		idx := c.loop.idx
		for len(groups) <= idx {
			groups = append(groups, nil)
		}
		g := groups[idx]
		if g == nil {
			g = getConnList()
			groups[idx] = g
		}
		g.conns = append(g.conns, c)
	}
	e.postGroups(f, groups)
}

func (e *Engine) postGroups(f *wsframe.Frame, groups []*connList) {
	for _, g := range groups {
		if g == nil {
			continue
		}
		f.Retain(1)
		g.conns[0].loop.post(cmd{kind: cmdFanout, f: f, cs: g})
	}
}

// Exec runs fn on c's event loop after the frames already queued for it.
func (c *Conn) exec(fn func()) {
	c.loop.post(cmd{kind: cmdFunc, fn: fn})
}
