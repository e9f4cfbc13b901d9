//go:build linux

package client

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Handler receives a pool's events, on the connection's loop goroutine.
type Handler interface {
	// OnOpen runs when the server accepted the upgrade (101).
	OnOpen(c *Conn, now int64)
	// OnMessage runs for each PondSocket message (each line of a text
	// frame). m and its slices are only valid during the call.
	OnMessage(c *Conn, m *Message, now int64)
	// OnClose runs once per dialled connection, whether it ever opened or
	// not (c.Opened tells), with the reason.
	OnClose(c *Conn, err error)
	// OnTick runs on every loop every Config.Tick.
	OnTick(l *Loop, now int64)
}

// Config configures a Pool.
type Config struct {
	Loops          int           // event loops (default 1)
	Handler        Handler       // required
	Tick           time.Duration // OnTick period (default 10ms)
	ConnectTimeout time.Duration // TCP connect + upgrade (default 10s)
	MaxFrame       int64         // largest accepted frame or message (default 64 MiB)
	ReadBuffer     int           // per-loop read buffer (default 256 KiB)
	SSEPostConns   int           // SSE: most connections posting client messages to one server at once (default 64)
}

// Errors passed to OnClose.
var (
	ErrConnectTimeout = errors.New("client: connect/upgrade timed out")
	ErrClosedLocally  = errors.New("client: closed by the client")
	ErrPoolClosed     = errors.New("client: pool closed")
)

// CloseError is the reason when the server sent a close frame.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("client: server closed the connection: %d %q", e.Code, e.Reason)
}

// Pool is a set of event loops.
type Pool struct {
	cfg   Config
	loops []*Loop
	wg    sync.WaitGroup
	once  sync.Once

	httpOnce sync.Once    // SSE: the client that posts messages, made on first use
	http     *http.Client // (sse.go)
}

// NewPool starts cfg.Loops event loops.
func NewPool(cfg Config) (*Pool, error) {
	if cfg.Handler == nil {
		return nil, errors.New("client: Config.Handler is required")
	}
	if cfg.Loops <= 0 {
		cfg.Loops = 1
	}
	if cfg.Tick <= 0 {
		cfg.Tick = 10 * time.Millisecond
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = 64 << 20
	}
	if cfg.ReadBuffer <= 0 {
		cfg.ReadBuffer = 256 << 10
	}
	if cfg.SSEPostConns <= 0 {
		cfg.SSEPostConns = 64
	}
	p := &Pool{cfg: cfg}
	for i := 0; i < cfg.Loops; i++ {
		l, err := newLoop(p, i)
		if err != nil {
			for _, l := range p.loops {
				l.closeFDs()
			}
			return nil, err
		}
		p.loops = append(p.loops, l)
	}
	for _, l := range p.loops {
		p.wg.Add(1)
		go l.run()
	}
	return p, nil
}

// Loops returns the pool's loops.
func (p *Pool) Loops() []*Loop { return p.loops }

// Loop returns the loop that owns connection id (id modulo the loop count).
func (p *Pool) Loop(id int) *Loop { return p.loops[id%len(p.loops)] }

// Close closes every connection (OnClose runs with ErrPoolClosed), stops
// the loops and waits for them. Safe from any goroutine except a loop's.
func (p *Pool) Close() {
	p.once.Do(func() {
		for _, l := range p.loops {
			l.Post(func() { l.stopping = true })
		}
		p.wg.Wait()
		if p.http != nil {
			p.http.CloseIdleConnections()
		}
	})
}

// Loop is one event loop: an epoll instance, its connections and a task
// queue. Its exported counters are atomic.
type Loop struct {
	Index int

	BytesIn     atomic.Uint64 // bytes read from sockets
	FramesIn    atomic.Uint64 // data messages (after reassembly)
	MessagesIn  atomic.Uint64 // JSON lines
	BadMessages atomic.Uint64 // lines that are not a JSON object

	pool    *Pool
	h       Handler
	epfd    int
	evfd    int
	conns   map[int]*Conn
	pending []*Conn
	dirty   []*Conn
	buf     []byte
	msg     Message
	rng     uint64

	mu     sync.Mutex
	tasks  []func()
	spare  []func()
	closed bool // under mu; set once when the loop stops

	stopping bool
}

func newLoop(p *Pool, i int) (*Loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("client: epoll_create: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("client: eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, fmt.Errorf("client: epoll_ctl eventfd: %w", err)
	}
	return &Loop{
		Index: i,
		pool:  p,
		h:     p.cfg.Handler,
		epfd:  epfd,
		evfd:  evfd,
		conns: make(map[int]*Conn),
		buf:   make([]byte, p.cfg.ReadBuffer),
		rng:   uint64(time.Now().UnixNano()) | 1 + uint64(i)<<32,
	}, nil
}

func (l *Loop) closeFDs() {
	unix.Close(l.evfd)
	unix.Close(l.epfd)
}

// Post runs f on the loop goroutine and reports true, or reports false
// when the loop has stopped (f will never run). Safe from any goroutine.
func (l *Loop) Post(f func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.tasks = append(l.tasks, f)
	if len(l.tasks) == 1 {
		// Under the lock: the loop closes the eventfd only after marking
		// itself closed under the same lock, so this never writes to a
		// descriptor number that has been reused.
		var one = [8]byte{1}
		_, _ = unix.Write(l.evfd, one[:])
	}
	return true
}

// Conns is the number of connections the loop holds (dialling or open).
// Loop goroutine only.
func (l *Loop) Conns() int { return len(l.conns) }

func (l *Loop) runTasks() {
	l.mu.Lock()
	tasks := l.tasks
	l.tasks = l.spare[:0]
	l.mu.Unlock()
	for i, f := range tasks {
		f()
		tasks[i] = nil
	}
	l.spare = tasks
}

func (l *Loop) run() {
	defer l.pool.wg.Done()
	defer l.closeFDs()
	events := make([]unix.EpollEvent, 1024)
	tick := l.pool.cfg.Tick
	next := time.Now().Add(tick)
	nextTimeouts := time.Now().Add(100 * time.Millisecond)
	var evbuf [8]byte
	for {
		wait := time.Until(next)
		ms := int(wait / time.Millisecond)
		if wait > 0 && ms == 0 {
			ms = 1
		}
		if ms < 0 {
			ms = 0
		}
		n, err := unix.EpollWait(l.epfd, events, ms)
		if err != nil && err != unix.EINTR {
			panic(fmt.Sprintf("client: epoll_wait: %v", err))
		}
		for i := 0; i < n; i++ {
			fd := int(events[i].Fd)
			if fd == l.evfd {
				_, _ = unix.Read(l.evfd, evbuf[:])
				continue
			}
			c := l.conns[fd]
			if c == nil {
				continue
			}
			ev := events[i].Events
			if ev&unix.EPOLLOUT != 0 {
				l.onWritable(c)
			}
			if ev&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR|unix.EPOLLRDHUP) != 0 && c.fd == fd && c.state != stateClosed {
				if c.state == stateConnecting {
					l.finishConnect(c)
				} else {
					l.onReadable(c)
				}
			}
		}
		l.runTasks()
		if l.stopping {
			l.flushDirty()
			for _, c := range l.conns {
				l.closeConn(c, ErrPoolClosed)
			}
			l.mu.Lock()
			l.closed = true
			l.mu.Unlock()
			// Tasks posted before the close still run (someone may wait
			// for them); a dial among them fails with ErrPoolClosed.
			l.runTasks()
			return
		}
		now := time.Now()
		if !now.Before(next) {
			l.h.OnTick(l, now.UnixNano())
			next = now.Add(tick)
		}
		if !now.Before(nextTimeouts) {
			l.checkTimeouts(now)
			nextTimeouts = now.Add(100 * time.Millisecond)
		}
		l.flushDirty()
	}
}

func (l *Loop) nextRand() uint64 {
	x := l.rng
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	l.rng = x
	return x
}

func (l *Loop) nextMask() (m [4]byte) {
	r := l.nextRand()
	m[0], m[1], m[2], m[3] = byte(r), byte(r>>8), byte(r>>16), byte(r>>24)
	return m
}

// Dial describes one connection to open.
type Dial struct {
	ID      int     // the caller's index, available as Conn.ID
	Target  *Target // server
	Path    string  // request target (path and query); Target.Path if empty
	LocalIP net.IP  // optional source address (to use more than one port range)
	SSE     bool    // open an event stream (docs/protocol.md §9) instead of a WebSocket
}

// Dial opens a connection on this loop. Safe from any goroutine; the
// result arrives as OnOpen or OnClose (nothing, if the pool is closed).
func (l *Loop) Dial(d Dial) { l.Post(func() { l.DialNow(d) }) }

// DialNow is Dial for the loop goroutine.
func (l *Loop) DialNow(d Dial) {
	c := &Conn{ID: d.ID, loop: l, fd: -1, DialStart: time.Now().UnixNano()}
	c.fr.MaxFrame = l.pool.cfg.MaxFrame
	c.sse = d.SSE
	if l.stopping {
		c.state = stateClosed
		c.Err = ErrPoolClosed
		l.h.OnClose(c, ErrPoolClosed)
		return
	}
	path := d.Path
	if path == "" {
		path = d.Target.Path
	}
	if err := l.startConnect(c, d, path); err != nil {
		c.state = stateClosed
		c.Err = err
		if c.fd >= 0 {
			unix.Close(c.fd)
		}
		l.h.OnClose(c, err)
	}
}

func sockaddrOf(addr string) (unix.Sockaddr, int, error) {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, 0, err
	}
	if ip4 := ta.IP.To4(); ip4 != nil {
		sa := &unix.SockaddrInet4{Port: ta.Port}
		copy(sa.Addr[:], ip4)
		return sa, unix.AF_INET, nil
	}
	sa := &unix.SockaddrInet6{Port: ta.Port}
	copy(sa.Addr[:], ta.IP.To16())
	return sa, unix.AF_INET6, nil
}

func (l *Loop) startConnect(c *Conn, d Dial, path string) error {
	sa, family, err := d.Target.sockaddr()
	if err != nil {
		return err
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	c.fd = fd
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	if d.LocalIP != nil {
		if ip4 := d.LocalIP.To4(); ip4 != nil && family == unix.AF_INET {
			// Let connect() pick the port for the full 4-tuple, so each
			// source address gives its own ephemeral port range.
			_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
			la := &unix.SockaddrInet4{}
			copy(la.Addr[:], ip4)
			if err := unix.Bind(fd, la); err != nil {
				return fmt.Errorf("bind %s: %w", d.LocalIP, err)
			}
		}
	}
	if c.sse {
		c.outbox = &sseOutbox{}
		c.postURL = "http://" + d.Target.Host + path
		c.out = AppendStreamRequest(c.out[:0], d.Target.Host, path)
	} else {
		key := make([]byte, 16)
		for i := 0; i < 16; i += 8 {
			r := l.nextRand()
			for j := 0; j < 8; j++ {
				key[i+j] = byte(r >> (8 * j))
			}
		}
		k := base64.StdEncoding.EncodeToString(key)
		c.accept = AcceptKey(k)
		c.out = AppendUpgradeRequest(c.out[:0], d.Target.Host, path, k)
	}
	err = unix.Connect(fd, sa)
	if err != nil && err != unix.EINPROGRESS {
		return fmt.Errorf("connect %s: %w", d.Target.Addr, err)
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}); err != nil {
		return fmt.Errorf("epoll_ctl add: %w", err)
	}
	c.state = stateConnecting
	l.conns[fd] = c
	l.pending = append(l.pending, c)
	return nil
}

func (l *Loop) finishConnect(c *Conn) {
	errno, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err == nil && errno != 0 {
		err = unix.Errno(errno)
	}
	if err != nil {
		l.closeConn(c, fmt.Errorf("connect: %w", err))
		return
	}
	c.state = stateHandshake
	c.ConnectedAt = time.Now().UnixNano()
	c.outArmed = false
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.fd)}); err != nil {
		l.closeConn(c, fmt.Errorf("epoll_ctl mod: %w", err))
		return
	}
	l.flush(c)
}

func (l *Loop) onWritable(c *Conn) {
	if c.state == stateConnecting {
		l.finishConnect(c)
		return
	}
	if c.state == stateClosed {
		return
	}
	l.flush(c)
}

func (l *Loop) onReadable(c *Conn) {
	n, err := unix.Read(c.fd, l.buf)
	if err != nil {
		if err == unix.EAGAIN || err == unix.EINTR {
			return
		}
		l.closeConn(c, fmt.Errorf("read: %w", err))
		return
	}
	if n == 0 {
		l.closeConn(c, io.EOF)
		return
	}
	now := time.Now().UnixNano()
	l.BytesIn.Add(uint64(n))
	c.BytesIn += uint64(n)
	data := l.buf[:n]
	held := len(c.in) > 0
	if held {
		c.in = append(c.in, data...)
		data = c.in
	}
	consumed, err := l.process(c, data, now)
	if c.state == stateClosed {
		return
	}
	if err != nil {
		l.closeConn(c, err)
		return
	}
	rest := data[consumed:]
	switch {
	case len(rest) == 0:
		c.in = c.in[:0]
		if cap(c.in) > 64<<10 {
			c.in = nil
		}
	case held:
		m := copy(c.in, rest)
		c.in = c.in[:m]
	default:
		c.in = append(c.in[:0], rest...)
	}
}

// open marks c open once its response head (upgrade or event stream) is
// in, and tells the handler. It reports false when OnOpen closed c.
func (l *Loop) open(c *Conn, now int64) bool {
	c.state = stateOpen
	c.OpenedAt = now
	c.Opened = true
	l.h.OnOpen(c, now)
	return c.state == stateOpen
}

func (l *Loop) process(c *Conn, data []byte, now int64) (int, error) {
	if c.sse {
		return l.processSSE(c, data, now)
	}
	consumed := 0
	if c.state == stateHandshake {
		n, err := ParseUpgradeResponse(data, c.accept)
		if err != nil || n == 0 {
			return 0, err
		}
		consumed = n
		if !l.open(c, now) {
			return consumed, nil
		}
	}
	k, err := c.fr.Feed(data[consumed:], func(op byte, payload []byte) error {
		return l.onFrame(c, op, payload, now)
	})
	return consumed + k, err
}

func (l *Loop) onFrame(c *Conn, op byte, payload []byte, now int64) error {
	switch op {
	case OpText, OpBinary:
		l.FramesIn.Add(1)
		return SplitLines(payload, func(line []byte) error {
			if c.state != stateOpen {
				return errStop
			}
			if err := ParseMessage(line, &l.msg); err != nil {
				l.BadMessages.Add(1)
				return nil
			}
			l.MessagesIn.Add(1)
			l.h.OnMessage(c, &l.msg, now)
			return nil
		})
	case OpPing:
		c.writeFrame(OpPong, payload)
	case OpClose:
		ce := &CloseError{Code: 1005}
		if len(payload) >= 2 {
			ce.Code = int(payload[0])<<8 | int(payload[1])
			ce.Reason = string(payload[2:])
		}
		var body []byte
		if len(payload) >= 2 {
			body = payload[:2]
		}
		c.writeFrame(OpClose, body)
		l.flush(c)
		l.closeConn(c, ce)
		return errStop
	}
	return nil
}

func (l *Loop) flushDirty() {
	for i, c := range l.dirty {
		c.dirty = false
		l.dirty[i] = nil
		if c.state != stateClosed {
			l.flush(c)
		}
	}
	l.dirty = l.dirty[:0]
}

func (l *Loop) flush(c *Conn) {
	if c.state == stateConnecting || c.state == stateClosed {
		return
	}
	if len(c.out) > 0 {
		n, err := unix.Write(c.fd, c.out)
		if err != nil {
			if err != unix.EAGAIN && err != unix.EINTR {
				l.closeConn(c, fmt.Errorf("write: %w", err))
				return
			}
			n = 0
		}
		c.BytesOut += uint64(n)
		if n < len(c.out) {
			m := copy(c.out, c.out[n:])
			c.out = c.out[:m]
			if !c.outArmed {
				l.arm(c, true)
			}
			return
		}
		c.out = c.out[:0]
		if cap(c.out) > 64<<10 {
			c.out = nil
		}
	}
	if c.outArmed {
		l.arm(c, false)
	}
}

// arm adds or removes EPOLLOUT interest: only while bytes wait for the
// kernel, since a level-triggered EPOLLOUT on an idle socket fires forever.
func (l *Loop) arm(c *Conn, out bool) {
	ev := uint32(unix.EPOLLIN | unix.EPOLLRDHUP)
	if out {
		ev |= unix.EPOLLOUT
	}
	c.outArmed = out
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: ev, Fd: int32(c.fd)}); err != nil {
		l.closeConn(c, fmt.Errorf("epoll_ctl mod: %w", err))
	}
}

func (l *Loop) checkTimeouts(now time.Time) {
	limit := now.Add(-l.pool.cfg.ConnectTimeout).UnixNano()
	kept := l.pending[:0]
	for _, c := range l.pending {
		if c.state != stateConnecting && c.state != stateHandshake {
			continue
		}
		if c.DialStart < limit {
			l.closeConn(c, ErrConnectTimeout)
			continue
		}
		kept = append(kept, c)
	}
	clear(l.pending[len(kept):])
	l.pending = kept
}

func (l *Loop) closeConn(c *Conn, err error) {
	if c.state == stateClosed {
		return
	}
	c.state = stateClosed
	c.Err = err
	if c.fd >= 0 {
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
		unix.Close(c.fd)
		delete(l.conns, c.fd)
		c.fd = -1
	}
	c.in, c.out = nil, nil
	c.closeOutbox()
	l.h.OnClose(c, err)
}
