package engine

import (
	"context"
	"sync"

	"github.com/panjf2000/gnet/v2"

	"github.com/pondsocket/pondsocket/protocol"
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
	f      *protocol.Frame
	reason string
	fn     func()
}

type qent struct {
	b    []byte
	next int32
}

type loop struct {
	e      *Engine
	el     gnet.EventLoop
	idx    int
	stream bool // a fallback connection's own loop (stream.go)

	mu        sync.Mutex
	inbox     []cmd
	scheduled bool

	// loop-owned
	spare   []cmd
	conns   []*Conn
	q       []qent
	dirty   []*Conn
	iov     [][]byte
	closing []*Conn
}

func newLoop(e *Engine, el gnet.EventLoop, idx int) *loop {
	return &loop{e: e, el: el, idx: idx}
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
	l.scheduled = false
	l.mu.Unlock()

	for i := range batch {
		c := &batch[i]
		switch c.kind {
		case cmdSend:
			l.enqueue(c.c, c.c.frameBytes(c.f))
		case cmdFanout:
			// both forms resolved once per batch, not per recipient
			plain, z := c.f.Bytes(), []byte(nil)
			compressible := l.e.compressible(c.f)
			for _, cn := range c.cs.conns {
				if compressible && cn.deflate {
					if z == nil {
						z = deflatedFrame(c.f)
					}
					l.enqueue(cn, z)
				} else {
					l.enqueue(cn, plain)
				}
			}
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
	l.flush()
	for i := range batch {
		batch[i].release()
		batch[i] = cmd{}
	}
	l.spare = batch[:0]
	return nil
}

func (l *loop) enqueue(c *Conn, b []byte) {
	if c.state != stateOpen {
		return
	}
	i := int32(len(l.q))
	l.q = append(l.q, qent{b: b, next: -1})
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
	if c.gc.OutboundBuffered()+n > e.cfg.MaxOutboundBytes {
		e.stats.SlowConsumers.Add(1)
		e.log.Warn("slow consumer closed", "remote", c.remote, "buffered", c.gc.OutboundBuffered(), "queued", n, "limit", e.cfg.MaxOutboundBytes)
		c.startClose(1008, "slow consumer: outbound buffer limit exceeded")
		return
	}
	iov := l.iov[:0]
	frames := 0
	for i := head; i >= 0; i = l.q[i].next {
		iov = append(iov, l.q[i].b)
		frames++
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
	e.stats.FramesOut.Add(int64(frames))
	e.stats.BytesOut.Add(int64(n))
}

func (l *loop) writev(c *Conn, iov [][]byte) {
	l.e.stats.Writes.Add(1)
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
	c.e.stats.Writes.Add(1)
	_, _ = c.gc.Write(b)
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

// Fanout sends one sealed frame to many connections: the recipients are
// grouped by event loop and each loop gets one task. The caller keeps its
// own reference to f. Safe from any goroutine.
func (e *Engine) Fanout(f *protocol.Frame, conns []*Conn) {
	switch len(conns) {
	case 0:
		return
	case 1:
		conns[0].Send(f)
		return
	}
	var small [8]*connList
	groups := small[:0]
	for _, c := range conns {
		if c.loop.stream {
			c.Send(f)
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

func (e *Engine) postGroups(f *protocol.Frame, groups []*connList) {
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
