package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
)

// State is the state of a Client's connection.
type State int

const (
	// StateIdle: created, Connect not called yet.
	StateIdle State = iota
	// StateConnecting: the first connection is being established.
	StateConnecting
	// StateConnected: the server's CONNECT message arrived; ID is set.
	StateConnected
	// StateReconnecting: the connection was lost; a new one is being
	// established with back-off.
	StateReconnecting
	// StateClosed: Close was called, or the connection ended and
	// reconnection is disabled (Err tells why).
	StateClosed
)

func (s State) String() string {
	switch s {
	case StateIdle:
		return "idle"
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateReconnecting:
		return "reconnecting"
	case StateClosed:
		return "closed"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Reconnect configures automatic reconnection. The delay before attempt n
// (counting from 0 after each successful connection) is
// min(MinDelay·2ⁿ, MaxDelay), shortened by a random fraction of up to
// Jitter so that many clients cut at once do not return at once.
type Reconnect struct {
	// Disabled turns reconnection off: when the connection ends the client
	// closes, and Err returns the *CloseError. Connect then makes a single
	// attempt.
	Disabled bool
	// MinDelay is the first delay (default 1 s).
	MinDelay time.Duration
	// MaxDelay caps the delay (default 30 s).
	MaxDelay time.Duration
	// Jitter is the largest fraction of a delay taken off at random, in
	// [0, 1] (default 0.3; negative means no jitter).
	Jitter float64
}

// Options configure a Client. The zero value is usable; zero fields take
// the defaults documented on each field.
type Options struct {
	// Params are the connection parameters, sent as the URL's query
	// string (merged over any query already in the URL).
	Params map[string]string
	// Header is sent with the WebSocket upgrade (cookies, Authorization).
	Header http.Header
	// TLSConfig is used for wss:// URLs.
	TLSConfig *tls.Config
	// ConnectTimeout bounds one connection attempt: dial, upgrade and the
	// server's CONNECT message (default 10 s).
	ConnectTimeout time.Duration
	// Reconnect configures automatic reconnection (on by default).
	Reconnect Reconnect
	// MaxQueuedMessages and MaxQueuedBytes bound the messages accepted by
	// Send/SendForResponse and not yet written to the socket, over all
	// channels: messages waiting for a join or a reconnection, and
	// messages waiting for the socket. Beyond either, Send returns a
	// *QueueFullError (defaults 1000 messages, 1 MiB).
	MaxQueuedMessages int
	MaxQueuedBytes    int
	// MaxMessageSize is the largest server message accepted; a larger one
	// closes the connection with 1009 (default 16 MiB).
	MaxMessageSize int64
	// KeepAlive is the interval of the client's WebSocket pings; a
	// connection on which nothing arrives for KeepAlive+KeepAliveTimeout is
	// considered dead and reconnected (defaults 30 s and 30 s; a negative
	// KeepAlive disables both).
	KeepAlive        time.Duration
	KeepAliveTimeout time.Duration
	// WriteTimeout bounds the write of one message (default 10 s); a
	// socket that takes longer is considered dead.
	WriteTimeout time.Duration
	// DispatchBuffer is how many received messages may wait for the
	// callback goroutine before the reader stops reading (default 1024).
	DispatchBuffer int
	// OnConnect runs (on the callback goroutine) after each successful
	// connection, with the new connection id.
	OnConnect func(id string)
	// OnDisconnect runs (on the callback goroutine) when a connection
	// ends, with a *CloseError (or ErrClosed after Close).
	OnDisconnect func(err error)
	// OnServerMessage receives connection-level messages (channel
	// "ENDPOINT"): connection-handler replies and INVALID_MESSAGE errors
	// that answer no pending request.
	OnServerMessage func(Message)
	// Logger receives debug lines about malformed frames (default: none).
	Logger *slog.Logger
}

func (o *Options) withDefaults() Options {
	r := *o
	if r.ConnectTimeout <= 0 {
		r.ConnectTimeout = 10 * time.Second
	}
	if r.Reconnect.MinDelay <= 0 {
		r.Reconnect.MinDelay = time.Second
	}
	if r.Reconnect.MaxDelay <= 0 {
		r.Reconnect.MaxDelay = 30 * time.Second
	}
	if r.Reconnect.MaxDelay < r.Reconnect.MinDelay {
		r.Reconnect.MaxDelay = r.Reconnect.MinDelay
	}
	switch {
	case r.Reconnect.Jitter == 0:
		r.Reconnect.Jitter = 0.3
	case r.Reconnect.Jitter < 0:
		r.Reconnect.Jitter = 0
	case r.Reconnect.Jitter > 1:
		r.Reconnect.Jitter = 1
	}
	if r.MaxQueuedMessages <= 0 {
		r.MaxQueuedMessages = 1000
	}
	if r.MaxQueuedBytes <= 0 {
		r.MaxQueuedBytes = 1 << 20
	}
	if r.MaxMessageSize <= 0 {
		r.MaxMessageSize = 16 << 20
	}
	if r.KeepAlive == 0 {
		r.KeepAlive = 30 * time.Second
	}
	if r.KeepAliveTimeout <= 0 {
		r.KeepAliveTimeout = 30 * time.Second
	}
	if r.WriteTimeout <= 0 {
		r.WriteTimeout = 10 * time.Second
	}
	if r.DispatchBuffer <= 0 {
		r.DispatchBuffer = 1024
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	return r
}

// Client is a connection to a PondSocket endpoint that survives
// reconnections. See the package documentation for the concurrency
// contract.
type Client struct {
	url    string
	opts   Options
	dialer *websocket.Dialer
	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // supervisor, readers, writers
	disp   dispatcher
	done   chan struct{} // closed when the client reaches StateClosed

	mu          sync.Mutex
	state       State
	started     bool
	supervised  bool // the supervisor goroutine runs
	id          string
	cur         *conn
	err         error // why the client closed
	stateWait   chan struct{}
	channels    map[string]*Channel
	outbox      []outEntry
	queuedMsgs  int
	queuedBytes int
	pending     map[string]*pendingRequest

	closeOnce sync.Once
}

// conn is one WebSocket connection of a Client.
type conn struct {
	ws   *websocket.Conn
	wake chan struct{} // something was added to the outbox
	done chan struct{} // closed by lost(): the connection is over
	// set under Client.mu
	cause    error
	writeErr error
}

// outEntry is one message accepted for sending.
type outEntry struct {
	ch      *Channel // nil for control messages (join, leave)
	data    []byte
	reqID   string // for SendForResponse
	counted bool   // counted in the queue budget
}

type pendingRequest struct {
	ch      *Channel
	done    chan result // capacity 1
	written bool
}

type result struct {
	msg Message
	err error
}

// New creates a client for the endpoint URL (ws://, wss://, http:// or
// https://). It does not connect: call Connect. Call Close when done, even
// if Connect failed: it releases the callback goroutine.
func New(rawURL string, opts *Options) (*Client, error) {
	if opts == nil {
		opts = &Options{}
	}
	o := opts.withDefaults()
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("client: bad URL: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return nil, fmt.Errorf("client: URL scheme %q is not ws, wss, http or https", u.Scheme)
	}
	if len(o.Params) > 0 {
		q := u.Query()
		for k, v := range o.Params {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		url:       u.String(),
		opts:      o,
		ctx:       ctx,
		cancel:    cancel,
		done:      make(chan struct{}),
		stateWait: make(chan struct{}),
		channels:  make(map[string]*Channel),
		pending:   make(map[string]*pendingRequest),
		dialer: &websocket.Dialer{
			Proxy:            http.ProxyFromEnvironment,
			HandshakeTimeout: o.ConnectTimeout,
			TLSClientConfig:  o.TLSConfig,
		},
	}
	c.disp.init(o.DispatchBuffer, ctx.Done())
	go c.disp.run(ctx)
	return c, nil
}

// Dial creates a client and connects it: New followed by Connect. On error
// the client is closed.
func Dial(ctx context.Context, rawURL string, opts *Options) (*Client, error) {
	c, err := New(rawURL, opts)
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Connect establishes the connection and returns once the server's CONNECT
// message arrived (ID is then set). Failed attempts are retried with the
// reconnect back-off until ctx ends, except a refused upgrade with a
// permanent status (4xx other than 408/429: see HandshakeError.Temporary)
// and any failure when reconnection is disabled. The error is then a
// *ConnectError. After a successful Connect the client keeps itself
// connected until Close. A second Connect waits until the client is
// connected.
func (c *Client) Connect(ctx context.Context) error {
	c.mu.Lock()
	if c.state == StateClosed {
		c.mu.Unlock()
		return c.closedErr()
	}
	if c.started {
		c.mu.Unlock()
		return c.waitConnected(ctx)
	}
	c.started = true
	c.setStateLocked(StateConnecting)
	c.mu.Unlock()

	_, err := c.connectLoop(ctx, true)
	if err != nil {
		c.mu.Lock()
		if c.state == StateConnecting {
			c.started = false
			c.setStateLocked(StateIdle)
		}
		c.mu.Unlock()
		return err
	}
	return nil
}

func (c *Client) waitConnected(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		switch c.state {
		case StateConnected:
			return nil
		case StateClosed:
			return c.closedErr()
		case StateIdle:
			return errors.New("client: the concurrent Connect failed")
		}
		if err := c.waitLocked(ctx, c.stateWait); err != nil {
			return err
		}
	}
}

// waitLocked releases c.mu until w is closed or ctx ends, and takes it
// back either way; the caller re-checks the state it waits for.
func (c *Client) waitLocked(ctx context.Context, w <-chan struct{}) error {
	c.mu.Unlock()
	defer c.mu.Lock()
	select {
	case <-w:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ID is the connection id the server gave the current connection (the id
// other members' handlers see), or "" while not connected. It changes on
// every reconnection.
func (c *Client) ID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.id
}

// State is the connection's state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// URL is the URL the client dials, parameters included.
func (c *Client) URL() string { return c.url }

// Done is closed when the client is closed: by Close, or because the
// connection ended with reconnection disabled.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is why the client closed: ErrClosed after Close, the *CloseError of
// the last connection when reconnection is disabled; nil while open.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Client) closedErr() error {
	if c.err != nil {
		return c.err
	}
	return ErrClosed
}

// Close closes the connection (close code 1000), fails every pending call
// with ErrClosed, and waits until the client's goroutines have exited. It
// may be called from a callback (it then does not wait for the callback
// goroutine, which exits when the callback returns). Close is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		cn := c.cur
		c.finishLocked(ErrClosed)
		c.mu.Unlock()
		c.cancel()
		if cn != nil {
			_ = cn.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			// give the server a moment to answer the close frame
			select {
			case <-cn.done:
			case <-time.After(time.Second):
			}
			_ = cn.ws.Close()
		}
		c.wg.Wait()
		if !c.disp.onDispatcher() {
			<-c.disp.exited
		}
	})
	return nil
}

// finishLocked moves the client to StateClosed for good: channels close,
// queues drop, waiters wake.
func (c *Client) finishLocked(cause error) (fire []func()) {
	if c.state == StateClosed {
		return nil
	}
	c.err = cause
	c.id = ""
	c.setStateLocked(StateClosed)
	close(c.done)
	for _, ch := range c.channels {
		fire = append(fire, ch.terminateLocked(ChannelClosed, cause)...)
	}
	for id, p := range c.pending {
		p.done <- result{err: cause}
		delete(c.pending, id)
	}
	c.outbox = nil
	c.queuedMsgs, c.queuedBytes = 0, 0
	return fire
}

func (c *Client) setStateLocked(s State) {
	c.state = s
	close(c.stateWait)
	c.stateWait = make(chan struct{})
}

// connectLoop makes attempts until one succeeds, ctx ends or (see Connect)
// the failure is final.
func (c *Client) connectLoop(ctx context.Context, initial bool) (*conn, error) {
	var last error
	for attempt := 0; ; attempt++ {
		cn, err := c.attempt(ctx)
		if err == nil {
			return cn, nil
		}
		last = err
		if c.ctx.Err() != nil {
			return nil, ErrClosed
		}
		if ctx.Err() != nil {
			return nil, &ConnectError{URL: c.url, Attempts: attempt + 1, Last: last, Ctx: ctx.Err()}
		}
		var he *HandshakeError
		if c.opts.Reconnect.Disabled || (initial && errors.As(err, &he) && !he.Temporary()) {
			return nil, &ConnectError{URL: c.url, Attempts: attempt + 1, Last: last}
		}
		t := time.NewTimer(c.backoff(attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			if c.ctx.Err() != nil {
				return nil, ErrClosed
			}
			return nil, &ConnectError{URL: c.url, Attempts: attempt + 1, Last: last, Ctx: ctx.Err()}
		case <-c.ctx.Done():
			t.Stop()
			return nil, ErrClosed
		}
	}
}

func (c *Client) backoff(attempt int) time.Duration {
	r := c.opts.Reconnect
	d := r.MaxDelay
	if attempt < 30 {
		d = min(r.MinDelay<<attempt, r.MaxDelay)
	}
	return d - time.Duration(float64(d)*r.Jitter*rand.Float64())
}

// attempt dials once and waits for CONNECT; on success the connection is
// installed and its reader and writer run.
func (c *Client) attempt(ctx context.Context) (*conn, error) {
	actx, cancel := context.WithTimeout(ctx, c.opts.ConnectTimeout)
	defer cancel()
	stop := context.AfterFunc(c.ctx, cancel)
	defer stop()

	ws, resp, err := c.dialer.DialContext(actx, c.url, c.opts.Header)
	if err != nil {
		if errors.Is(err, websocket.ErrBadHandshake) && resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			return nil, &HandshakeError{StatusCode: resp.StatusCode, Message: string(bytes.TrimSpace(body))}
		}
		return nil, err
	}
	ws.SetReadLimit(c.opts.MaxMessageSize)
	// Wait for CONNECT; the context's end cuts the read (only the context:
	// a deadline of its own could fire before the context reports Done).
	unblock := context.AfterFunc(actx, func() { _ = ws.SetReadDeadline(time.Unix(1, 0)) })
	id, err := c.awaitConnect(ws)
	if !unblock() || err != nil {
		_ = ws.Close()
		if err == nil || actx.Err() != nil {
			return nil, fmt.Errorf("%w within the attempt: %w", ErrNoConnectMessage, actx.Err())
		}
		return nil, err
	}
	_ = ws.SetReadDeadline(time.Time{})
	return c.install(ws, id)
}

func (c *Client) awaitConnect(ws *websocket.Conn) (string, error) {
	for {
		typ, data, err := ws.ReadMessage()
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrNoConnectMessage, closeError(err))
		}
		if typ != websocket.TextMessage {
			continue
		}
		id, found := "", false
		splitFrame(data, func(m *Message) {
			if !found && m.Action == actionConnect && m.Event == eventConnection {
				var p struct {
					ConnectionID string `json:"connectionId"`
				}
				_ = json.Unmarshal(m.Payload, &p)
				id, found = p.ConnectionID, true
			}
		})
		if found {
			return id, nil
		}
	}
}

// install makes ws the client's connection: channels that were joined or
// joining send a new join, and the reader and writer start.
func (c *Client) install(ws *websocket.Conn, id string) (*conn, error) {
	cn := &conn{ws: ws, wake: make(chan struct{}, 1), done: make(chan struct{})}
	c.mu.Lock()
	if c.state == StateClosed {
		c.mu.Unlock()
		_ = ws.Close()
		return nil, ErrClosed
	}
	c.cur = cn
	c.id = id
	c.setStateLocked(StateConnected)
	for _, ch := range c.channels {
		if ch.state == ChannelJoining || ch.state == ChannelStalled {
			c.sendJoinLocked(ch)
		}
	}
	first := !c.supervised
	c.supervised = true
	if first {
		c.wg.Add(3)
	} else {
		c.wg.Add(2)
	}
	c.mu.Unlock()

	c.keepAlive(ws)
	if first {
		go c.supervise(cn)
	}
	go c.reader(cn)
	go c.writer(cn)
	if f := c.opts.OnConnect; f != nil {
		c.disp.push(func() { f(id) }, false, nil)
	}
	return cn, nil
}

func (c *Client) keepAlive(ws *websocket.Conn) {
	if c.opts.KeepAlive < 0 {
		return
	}
	extend := func() { _ = ws.SetReadDeadline(time.Now().Add(c.opts.KeepAlive + c.opts.KeepAliveTimeout)) }
	extend()
	ws.SetPongHandler(func(string) error { extend(); return nil })
	ws.SetPingHandler(func(data string) error {
		extend()
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(c.opts.WriteTimeout))
		if err == websocket.ErrCloseSent {
			return nil
		}
		return err
	})
}

// supervise reconnects after each lost connection until Close (or, with
// reconnection disabled, closes the client).
func (c *Client) supervise(cn *conn) {
	defer c.wg.Done()
	for {
		select {
		case <-cn.done:
		case <-c.ctx.Done():
			return
		}
		if c.ctx.Err() != nil {
			return
		}
		if c.opts.Reconnect.Disabled {
			return // lost closed the client
		}
		next, err := c.connectLoop(c.ctx, false)
		if err != nil {
			return
		}
		cn = next
	}
}

func (c *Client) reader(cn *conn) {
	defer c.wg.Done()
	for {
		typ, data, err := cn.ws.ReadMessage()
		if err != nil {
			c.lost(cn, closeError(err))
			return
		}
		if c.opts.KeepAlive >= 0 {
			_ = cn.ws.SetReadDeadline(time.Now().Add(c.opts.KeepAlive + c.opts.KeepAliveTimeout))
		}
		if typ != websocket.TextMessage {
			continue
		}
		if bad := splitFrame(data, func(m *Message) { c.handle(cn, m) }); bad > 0 {
			c.opts.Logger.Debug("pondsocket client: ignored malformed server messages", "count", bad)
		}
	}
}

// closeError turns a read error into a *CloseError.
func closeError(err error) error {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return &CloseError{Code: ce.Code, Reason: ce.Text}
	}
	return &CloseError{Code: CloseAbnormal, Err: err}
}

// lost handles the end of cn: queued messages go back to their channels
// (they are sent again after the rejoin), joined channels stall, requests
// already written fail with ErrConnectionLost.
func (c *Client) lost(cn *conn, cause error) {
	c.mu.Lock()
	if cn.writeErr != nil {
		cause = &CloseError{Code: CloseAbnormal, Err: cn.writeErr}
	}
	cn.cause = cause
	var fire []func()
	if c.cur == cn {
		c.cur = nil
		c.id = ""
		if c.state != StateClosed && c.opts.Reconnect.Disabled {
			fire = c.finishLocked(cause)
		} else if c.state != StateClosed {
			c.setStateLocked(StateReconnecting)
			c.requeueLocked()
			for _, ch := range c.channels {
				if ch.state == ChannelJoined {
					fire = append(fire, ch.setStateLocked(ChannelStalled, nil)...)
				}
			}
			for id, p := range c.pending {
				if p.written {
					p.done <- result{err: fmt.Errorf("%w: %w", ErrConnectionLost, cause)}
					delete(c.pending, id)
				}
			}
		}
	}
	closed := c.state == StateClosed
	c.mu.Unlock()
	close(cn.done)
	_ = cn.ws.Close()
	for _, f := range fire {
		c.disp.push(f, false, nil)
	}
	if f := c.opts.OnDisconnect; f != nil {
		if closed && cause != nil && c.ctx.Err() != nil {
			cause = ErrClosed
		}
		c.disp.push(func() { f(cause) }, false, nil)
	}
}

// requeueLocked moves the unwritten broadcasts of the outbox back to the
// front of their channels' queues; control messages are dropped (joins are
// sent again on the next connection).
func (c *Client) requeueLocked() {
	byCh := map[*Channel][]outEntry{}
	var order []*Channel
	for _, e := range c.outbox {
		if e.ch == nil {
			continue
		}
		if e.ch.state == ChannelClosed || e.ch.state == ChannelDeclined {
			c.uncountLocked(e)
			continue
		}
		if _, ok := byCh[e.ch]; !ok {
			order = append(order, e.ch)
		}
		byCh[e.ch] = append(byCh[e.ch], e)
	}
	for _, ch := range order {
		ch.queue = append(byCh[ch], ch.queue...)
	}
	c.outbox = nil
}

func (c *Client) uncountLocked(e outEntry) {
	if e.counted {
		c.queuedMsgs--
		c.queuedBytes -= len(e.data)
	}
}

// writer writes the outbox and the keep-alive pings.
func (c *Client) writer(cn *conn) {
	defer c.wg.Done()
	var tick <-chan time.Time
	if c.opts.KeepAlive > 0 {
		t := time.NewTicker(c.opts.KeepAlive)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-cn.done:
			return
		case <-tick:
			if err := cn.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.opts.WriteTimeout)); err != nil {
				c.writeFailed(cn, err)
				return
			}
			continue
		case <-cn.wake:
		}
		for {
			batch := c.take(cn)
			if len(batch) == 0 {
				break
			}
			for _, e := range batch {
				_ = cn.ws.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
				if err := cn.ws.WriteMessage(websocket.TextMessage, e.data); err != nil {
					c.writeFailed(cn, err)
					return
				}
			}
		}
	}
}

func (c *Client) writeFailed(cn *conn, err error) {
	c.mu.Lock()
	if cn.writeErr == nil && c.state != StateClosed {
		cn.writeErr = err
	}
	c.mu.Unlock()
	// the reader fails next and calls lost
	_ = cn.ws.NetConn().Close()
}

// take hands the writer everything queued for cn.
func (c *Client) take(cn *conn) []outEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != cn || len(c.outbox) == 0 {
		return nil
	}
	batch := c.outbox
	c.outbox = nil
	for _, e := range batch {
		c.uncountLocked(e)
		if e.reqID != "" {
			if p := c.pending[e.reqID]; p != nil {
				p.written = true
			}
		}
	}
	return batch
}

// enqueueLocked adds entries to the outbox of the current connection.
func (c *Client) enqueueLocked(es ...outEntry) {
	c.outbox = append(c.outbox, es...)
	if c.cur != nil {
		select {
		case c.cur.wake <- struct{}{}:
		default:
		}
	}
}

func (c *Client) sendJoinLocked(ch *Channel) {
	ch.joinID = uuid.NewString()
	c.enqueueLocked(outEntry{data: encodeMessage(actionJoin, actionJoin, ch.name, ch.joinID, ch.params)})
}

// handle routes one server message (on the reader goroutine).
func (c *Client) handle(cn *conn, m *Message) {
	var fire []func()
	c.mu.Lock()
	if c.cur != cn {
		c.mu.Unlock()
		return
	}
	if m.Channel == endpointChannel {
		fire = c.handleEndpointLocked(m)
	} else if ch := c.channels[m.Channel]; ch != nil {
		fire = ch.handleLocked(m)
	}
	c.mu.Unlock()
	for _, f := range fire {
		if !c.disp.push(f, true, cn.done) {
			return
		}
	}
}

func (c *Client) handleEndpointLocked(m *Message) []func() {
	if m.Action == actionError && m.RequestID != "" {
		if p := c.pending[m.RequestID]; p != nil {
			delete(c.pending, m.RequestID)
			p.done <- result{msg: *m, err: serverError(m)}
			return nil
		}
		for _, ch := range c.channels {
			if (ch.state == ChannelJoining || ch.state == ChannelStalled) && ch.joinID == m.RequestID {
				return ch.terminateLocked(ChannelDeclined, serverError(m))
			}
		}
	}
	if f := c.opts.OnServerMessage; f != nil {
		msg := *m
		return []func(){func() { f(msg) }}
	}
	return nil
}

// resolveLocked completes the SendForResponse waiting for m's request id.
func (c *Client) resolveLocked(ch *Channel, m *Message) {
	p := c.pending[m.RequestID]
	if p == nil || p.ch != ch {
		return
	}
	delete(c.pending, m.RequestID)
	r := result{msg: *m}
	if m.Action == actionError {
		r.err = serverError(m)
	}
	p.done <- r
}

// dispatcher runs callbacks on one goroutine, in order. Its queue is
// unbounded for callers that must not wait (state changes made by API
// calls, which may come from callbacks); the reader waits while the queue
// holds more than max entries, so a slow callback slows reading instead of
// growing memory.
type dispatcher struct {
	mu     sync.Mutex
	q      []func()
	max    int
	wake   chan struct{}
	space  chan struct{}
	exited chan struct{}
	closed <-chan struct{} // the client's Close
	gid    uint64
}

func (d *dispatcher) init(max int, closed <-chan struct{}) {
	d.max = max
	d.closed = closed
	d.wake = make(chan struct{}, 1)
	d.space = make(chan struct{}, 1)
	d.exited = make(chan struct{})
}

// push queues f. With wait, it blocks while the queue is full, until cancel
// is closed (then it returns false).
func (d *dispatcher) push(f func(), wait bool, cancel <-chan struct{}) bool {
	d.mu.Lock()
	for wait && len(d.q) >= d.max {
		d.mu.Unlock()
		select {
		case <-d.space:
		case <-cancel:
			return false
		case <-d.closed:
			return false
		}
		d.mu.Lock()
	}
	d.q = append(d.q, f)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
	return true
}

func (d *dispatcher) run(ctx context.Context) {
	d.mu.Lock()
	d.gid = goroutineID()
	d.mu.Unlock()
	defer close(d.exited)
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		}
		for {
			d.mu.Lock()
			batch := d.q
			d.q = nil
			d.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			select {
			case d.space <- struct{}{}:
			default:
			}
			for _, f := range batch {
				if ctx.Err() != nil {
					return
				}
				f()
			}
		}
	}
}

func (d *dispatcher) onDispatcher() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gid != 0 && d.gid == goroutineID()
}

// goroutineID parses the running goroutine's id from its stack header
// ("goroutine 42 [running]:"). It is used only to let Close know whether it
// was called from a callback, where waiting for the callback goroutine
// would wait for itself.
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseUint(string(b), 10, 64)
	return id
}
