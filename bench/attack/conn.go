package attack

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pondsocket/pondsocket/bench/client"
)

// Conn is one blocking WebSocket connection speaking the PondSocket
// protocol. The attacks hold at most a few thousand of them, so a goroutine
// per connection is simpler than the load tool's event loops; the framing,
// handshake and message scanning are bench/client's.
//
// One goroutine reads (Next, Drain); writes may come from any goroutine.
type Conn struct {
	nc net.Conn

	wmu  sync.Mutex
	wbuf []byte

	in []byte // read but not yet parsed
	fr client.FrameReader
	q  []Msg // parsed messages not yet returned by Next

	// CloseCode is the code of the server's close frame (0 = none seen).
	CloseCode   int
	CloseReason string

	BytesIn  atomic.Int64
	BytesOut atomic.Int64
	Pongs    atomic.Int64

	stopped atomic.Bool // Interrupt was called
}

// Msg is one server message, copied out of the frame.
type Msg struct {
	Action, Event, Channel, RequestID string
	Payload                           []byte
}

// ErrClosed is returned by Next after the server's close frame.
var ErrClosed = errors.New("attack: server closed the connection")

// dialWS connects to t with extra query parameters and upgrades.
func dialWS(ctx context.Context, t *client.Target, query url.Values, timeout time.Duration) (*Conn, error) {
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return nil, &dialError{err}
	}
	c := &Conn{nc: nc}
	c.fr.MaxFrame = 256 << 20
	var kb [16]byte
	_, _ = rand.Read(kb[:])
	key := base64.StdEncoding.EncodeToString(kb[:])
	_ = nc.SetDeadline(time.Now().Add(timeout))
	if _, err := nc.Write(client.AppendUpgradeRequest(nil, t.Host, t.WithQuery(query), key)); err != nil {
		nc.Close()
		return nil, err
	}
	accept := client.AcceptKey(key)
	buf := make([]byte, 0, 4096)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := nc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if k, perr := client.ParseUpgradeResponse(buf, accept); perr != nil {
			nc.Close()
			return nil, perr
		} else if k > 0 {
			// Frames that came with the response head (CONNECT, often).
			c.in = append(c.in, buf[k:]...)
			if err := c.feed(true); err != nil {
				nc.Close()
				return nil, err
			}
			break
		}
		if err != nil {
			nc.Close()
			return nil, err
		}
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// dialError is a failed TCP connect, as opposed to a failed upgrade.
type dialError struct{ err error }

func (e *dialError) Error() string { return "dial: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// Interrupt makes the reader's Next or Drain return as at its deadline,
// now and from then on; the connection stays open.
func (c *Conn) Interrupt() {
	c.stopped.Store(true)
	_ = c.nc.SetReadDeadline(time.Unix(1, 0))
}

// Close closes the socket without a closing handshake.
func (c *Conn) Close() error { return c.nc.Close() }

// WriteRaw writes bytes as they are, with a deadline.
func (c *Conn) WriteRaw(b []byte, deadline time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(deadline)
	n, err := c.nc.Write(b)
	c.BytesOut.Add(int64(n))
	return err
}

func (c *Conn) writeFrame(op byte, payload []byte, deadline time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var m [4]byte
	_, _ = rand.Read(m[:])
	c.wbuf = client.AppendFrame(c.wbuf[:0], op, payload, m)
	_ = c.nc.SetWriteDeadline(deadline)
	n, err := c.nc.Write(c.wbuf)
	c.BytesOut.Add(int64(n))
	if cap(c.wbuf) > 1<<20 {
		c.wbuf = nil
	}
	return err
}

// SendText sends one text frame.
func (c *Conn) SendText(b []byte, deadline time.Time) error {
	return c.writeFrame(client.OpText, b, deadline)
}

// Send sends one PondSocket client message (docs/protocol.md §3).
func (c *Conn) Send(action, channel, event, requestID string, payload any, deadline time.Time) error {
	b, err := encodeMsg(action, channel, event, requestID, payload)
	if err != nil {
		return err
	}
	return c.SendText(b, deadline)
}

func encodeMsg(action, channel, event, requestID string, payload any) ([]byte, error) {
	if payload == nil {
		payload = struct{}{}
	}
	return json.Marshal(struct {
		Action      string `json:"action"`
		ChannelName string `json:"channelName"`
		Event       string `json:"event"`
		RequestID   string `json:"requestId"`
		Payload     any    `json:"payload"`
	}{action, channel, event, requestID, payload})
}

// Next returns the next server message, answering pings on the way. After
// the server's close frame it returns ErrClosed (CloseCode is set).
func (c *Conn) Next(deadline time.Time) (Msg, error) {
	for len(c.q) == 0 {
		if err := c.readSome(deadline, true); err != nil {
			return Msg{}, err
		}
	}
	m := c.q[0]
	c.q = c.q[1:]
	return m, nil
}

// Drain reads and discards everything until deadline or the end of the
// connection, answering pings. It returns nil at the deadline.
func (c *Conn) Drain(deadline time.Time) error {
	for {
		err := c.readSome(deadline, false)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (c *Conn) readSome(deadline time.Time, parse bool) error {
	if len(c.in) == cap(c.in) {
		c.in = append(c.in, make([]byte, max(64<<10, len(c.in)))...)[:len(c.in)]
	}
	_ = c.nc.SetReadDeadline(deadline)
	if c.stopped.Load() {
		_ = c.nc.SetReadDeadline(time.Unix(1, 0))
	}
	n, err := c.nc.Read(c.in[len(c.in):cap(c.in)])
	c.in = c.in[:len(c.in)+n]
	c.BytesIn.Add(int64(n))
	if n > 0 {
		if ferr := c.feed(parse); ferr != nil {
			return ferr
		}
	}
	if c.CloseCode != 0 && len(c.q) == 0 {
		return ErrClosed
	}
	if n > 0 {
		return nil
	}
	return err
}

// feed parses the complete frames in c.in.
func (c *Conn) feed(parse bool) error {
	k, err := c.fr.Feed(c.in, func(op byte, p []byte) error { return c.onFrame(op, p, parse) })
	rest := copy(c.in, c.in[k:])
	c.in = c.in[:rest]
	if cap(c.in) > 1<<20 && rest < 64<<10 {
		c.in = append([]byte(nil), c.in...)
	}
	return err
}

func (c *Conn) onFrame(op byte, p []byte, parse bool) error {
	switch op {
	case client.OpPing:
		_ = c.writeFrame(client.OpPong, p, time.Now().Add(time.Second))
	case client.OpPong:
		c.Pongs.Add(1)
	case client.OpClose:
		c.CloseCode = 1005
		if len(p) >= 2 {
			c.CloseCode = int(binary.BigEndian.Uint16(p))
			c.CloseReason = string(p[2:])
		}
	case client.OpText, client.OpBinary:
		if !parse {
			return nil
		}
		return client.SplitLines(p, func(line []byte) error {
			var m client.Message
			if err := client.ParseMessage(line, &m); err != nil {
				return fmt.Errorf("%w: %.80q", err, line)
			}
			c.q = append(c.q, Msg{
				Action:    string(m.Action),
				Event:     string(m.Event),
				Channel:   string(m.ChannelName),
				RequestID: string(m.RequestID),
				Payload:   bytes.Clone(m.Payload),
			})
			return nil
		})
	}
	return nil
}

// closeDesc describes how a connection ended, for the counts of a report:
// "close 1008", "reset", "eof", "timeout".
func closeDesc(c *Conn, err error) string {
	if c != nil && c.CloseCode != 0 {
		return fmt.Sprintf("close %d", c.CloseCode)
	}
	return errKind(err)
}

// errKind sorts a network error into a few words.
func errKind(err error) string {
	var se *client.StatusError
	var ne net.Error
	var de *dialError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &de):
		return "dial " + errKind(de.err)
	case errors.As(err, &se):
		return fmt.Sprintf("http %d", se.Code)
	case errors.Is(err, ErrClosed):
		return "closed"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case isReset(err):
		return "reset"
	case isEOF(err):
		return "eof"
	case isRefused(err):
		return "refused"
	}
	return "error"
}

// waitConnect reads until the CONNECT message (docs/protocol.md §1.3).
func (c *Conn) waitConnect(deadline time.Time) error {
	for {
		m, err := c.Next(deadline)
		if err != nil {
			return err
		}
		if m.Action == "CONNECT" {
			return nil
		}
	}
}

// join sends JOIN_CHANNEL and waits for its answer: nil on ACKNOWLEDGE,
// a *replyError on an ERROR. Other messages before the answer are dropped.
func (c *Conn) join(channel, reqID string, payload any, deadline time.Time) error {
	if err := c.Send("JOIN_CHANNEL", channel, "JOIN_CHANNEL", reqID, payload, deadline); err != nil {
		return err
	}
	for {
		m, err := c.Next(deadline)
		if err != nil {
			return err
		}
		if m.RequestID != reqID || m.Action == "PRESENCE" {
			continue
		}
		if m.Action == "ERROR" {
			return &replyError{m}
		}
		if m.Event == "ACKNOWLEDGE" {
			return nil
		}
	}
}

// replyError is an ERROR message answering a request.
type replyError struct{ m Msg }

func (e *replyError) Error() string {
	return fmt.Sprintf("ERROR %s: %s", e.m.Event, errorText(e.m.Payload))
}

// errorText is the message and status of an error payload (docs/protocol.md
// §5.1–§5.2, shapes A and B).
func errorText(payload []byte) string {
	var p struct {
		Message string `json:"message"`
		Status  any    `json:"status"`
		Code    any    `json:"code"`
	}
	if json.Unmarshal(payload, &p) != nil {
		return string(payload)
	}
	st := p.Status
	if st == nil {
		st = p.Code
	}
	return fmt.Sprintf("%v %q", st, p.Message)
}

// errorStatus is the numeric status of an error payload, 0 if none.
func errorStatus(payload []byte) int {
	for _, k := range []string{"status", "statusCode", "code"} {
		if v, ok := client.FieldInt(payload, k); ok && v > 0 {
			return int(v)
		}
	}
	return 0
}
