package pondsocket

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pondsocket/pondsocket/internal/wsframe"

	"github.com/pondsocket/pondsocket/internal/protocol"
)

// Endpoint is one WebSocket URL pattern with its connection handler and its
// channel patterns ("lobbies"). Channel instances and clients live in
// xxhash-sharded tables owned by the endpoint.
type Endpoint struct {
	srv     *hub
	pattern *pattern
	path    string
	handler func(*ConnectionContext) error

	mu      sync.RWMutex
	lobbies []*lobby

	clients   *table[*Client] // by user id: its first connection (userid.go)
	instances *table[*instance]
	nconns    atomic.Int64 // live connections
}

// Path is the endpoint's pattern.
func (ep *Endpoint) Path() string { return ep.path }

// CreateChannel registers a channel pattern with its join handler and
// returns the handle to register event handlers on. Patterns are tried in
// registration order; registering the same pattern twice panics (a
// programming error, as in the reference).
func (ep *Endpoint) CreateChannel(pattern string, join func(*JoinContext) error) *Channel {
	p, err := compilePattern(pattern)
	if err != nil {
		panic(err)
	}
	ep.mu.Lock()
	defer ep.mu.Unlock()
	for _, l := range ep.lobbies {
		if l.pattern.String() == pattern {
			panic(fmt.Sprintf("channel: pattern %q registered twice on endpoint %q", pattern, ep.path))
		}
	}
	l := &lobby{ep: ep, pattern: p, join: join}
	ep.lobbies = append(ep.lobbies, l)
	return &Channel{l: l}
}

// matchLobby finds the first channel pattern matching name.
func (ep *Endpoint) matchLobby(name string) (*lobby, Route, bool) {
	ep.mu.RLock()
	ls := ep.lobbies
	ep.mu.RUnlock()
	for _, l := range ls {
		if r, ok := l.pattern.Match(name); ok {
			return l, r, true
		}
	}
	return nil, Route{}, false
}

// Channel returns the live channel with exactly this name.
func (ep *Endpoint) Channel(name string) (*Channel, bool) {
	in, ok := ep.instances.get(name)
	if !ok || in.isDead() {
		return nil, false
	}
	return &Channel{l: in.lobby, in: in}, true
}

// Channels lists the live channels.
func (ep *Endpoint) Channels() []*Channel {
	var out []*Channel
	ep.instances.each(func(_ string, in *instance) bool {
		if !in.isDead() {
			out = append(out, &Channel{l: in.lobby, in: in})
		}
		return true
	})
	return out
}

// Client returns a connected client by user id: the user's first live
// connection when it has several (Clients lists them all).
func (ep *Endpoint) Client(id string) (*Client, bool) {
	c, ok := ep.clients.get(id)
	return c, ok && c != nil
}

// Clients lists the live connections of a user id, first to last.
func (ep *Endpoint) Clients(id string) []*Client {
	var out []*Client
	ep.eachConn(id, func(c *Client) bool { out = append(out, c); return true })
	return out
}

// ClientCount is the number of connected clients (connections, not users).
func (ep *Endpoint) ClientCount() int { return int(ep.nconns.Load()) }

// UserCount is the number of distinct user ids connected.
func (ep *Endpoint) UserCount() int { return ep.clients.len() }

// CloseConnection closes every connection of the given users.
func (ep *Endpoint) CloseConnection(code int, reason string, ids ...string) {
	for _, id := range ids {
		ep.eachConn(id, func(c *Client) bool { c.Close(code, reason); return true })
	}
}

func (in *instance) isDead() bool {
	in.mu.RLock()
	defer in.mu.RUnlock()
	return in.dead
}

// connect runs the connection handler.
func (ep *Endpoint) connect(h *handshake, route Route) (d decision) {
	ctx := &ConnectionContext{Route: route, ep: ep, hs: h, id: newID()}
	err := func() (err error) {
		defer ep.srv.catch(&err, "connection", "path", h.Path)
		return ep.handler(ctx)
	}()
	if ctx.accepted { // assigns set after Accept count too
		if _, err := ep.srv.checkAssigns(ctx.assigns); err != nil {
			e := err.(*Error)
			return decision{Status: e.Status, Message: e.Message}
		}
	}
	switch {
	case ctx.accepted && ctx.userFull():
		return decision{Status: StatusUserConnected,
			Message: fmt.Sprintf("Too many connections for this user (limit %d)", ep.srv.opts.Transport.MaxConnectionsPerUser)}
	case ctx.accepted:
		c := &Client{id: ctx.id, ep: ep, remote: h.RemoteAddr, assigns: ctx.assigns}
		connID := ctx.id
		if h.SSEID != "" {
			connID = h.SSEID // docs/protocol.md §9.2
		}
		connect := protocol.Encode(protocol.ActionConnect, protocol.EventConnection, protocol.ChannelEndpoint, newID(),
			connectPayload(connID))
		d.Client = c
		d.Greeting = append([]*wsframe.Frame{connect}, ctx.replies...)
		return d
	case ctx.declined:
		return decision{Status: ctx.status, Message: ctx.message}
	case err != nil:
		status, msg := ep.srv.clientError(err, "connection", "path", h.Path)
		return decision{Status: status, Message: msg}
	default:
		return decision{Status: 500, Message: "Connection handler completed without accepting or declining the request"}
	}
}

func connectPayload(id string) json.RawMessage {
	b := append([]byte(`{"connectionId":`), protocol.AppendString(nil, id)...)
	return append(b, '}')
}

// join handles JOIN_CHANNEL (docs/protocol.md §6.2–§6.3).
func (ep *Endpoint) join(c *Client, msg *protocol.ClientMessage) {
	s := ep.srv
	name, reqID := msg.ChannelName, msg.RequestID
	if c.gone.Load() {
		return // the connection is closing: it joins nothing
	}
	if !c.joinBucket.allow(s.opts.Inbound.JoinRate, s.opts.Inbound.JoinBurst, s.opts.now()) {
		s.stats.RateLimited.Add(1)
		c.declineJoin(name, reqID, protocol.ErrChannelError, "Too many join requests", 429)
		return
	}
	c.mu.Lock()
	dup := c.chans.get(name) != nil
	count := c.chans.len()
	c.mu.Unlock()
	if dup {
		c.sendMessage(protocol.ActionError, protocol.ErrChannelError, name, reqID, protocol.ErrorPayload(protocol.ErrChannelError,
			fmt.Sprintf("ChannelEngine: User with id %s already exists in channel %s", c.id, name), 400))
		return
	}
	if count >= s.opts.State.MaxChannelsPerConnection {
		s.stats.RateLimited.Add(1)
		c.declineJoin(name, reqID, protocol.ErrChannelError,
			fmt.Sprintf("Too many channels for this connection (limit %d)", s.opts.State.MaxChannelsPerConnection), 429)
		return
	}
	if c.st.bytes.Load()+int64(len(name)) > int64(s.opts.State.MaxPerConnectionBytes) {
		s.stats.RateLimited.Add(1)
		c.declineJoin(name, reqID, protocol.ErrChannelError, ErrConnectionStateFull.Message, ErrConnectionStateFull.Status)
		return
	}
	l, route, ok := ep.matchLobby(name)
	if !ok {
		c.declineJoin(name, reqID, protocol.ErrChannelNotFound, fmt.Sprintf("GatewayEngine: Channel %s does not exist", name), 404)
		return
	}
	ctx := newJoinContext(c, l, route, msg)
	err := func() (err error) {
		defer s.catch(&err, "join", "channel", name, "user", c.id)
		err = l.join(ctx)
		if c.overran() && !ctx.accepted && !ctx.declined {
			s.stats.TimedOut.Add(1)
			s.rlog.Warn("join handler overran HandlerTimeout", "channel", name, "timeout", s.opts.Handlers.Timeout.String())
			err = errHandlerTimeout
		}
		return err
	}()
	switch {
	case ctx.accepted:
		s.stats.Joins.Add(1)
		if err != nil {
			// the user is in, but something the handler did after Accept
			// failed (a presence too large, a broken reply): say so
			status, text := s.clientError(err, "join", "channel", name, "user", c.id)
			c.sendMessage(protocol.ActionError, protocol.ErrChannelError, name, reqID,
				protocol.ErrorPayload(protocol.ErrChannelError, text, status))
		}
	case ctx.declined:
	case err != nil:
		status, text := s.clientError(err, "join", "channel", name, "user", c.id)
		c.declineJoin(name, reqID, protocol.ErrChannelError, text, status)
	default:
		c.declineJoin(name, reqID, protocol.ErrUnauthorizedJoinRequest, "Join handler completed without accepting or declining the request", 500)
	}
}

// admit makes c a member of the channel name (creating the instance when
// needed) and sends the ACKNOWLEDGE.
// abytes is the JSON size of assigns when they are not shared.
func (ep *Endpoint) admit(c *Client, l *lobby, name string, route Route, reqID string, assigns map[string]any, shared bool, abytes int64) (*instance, error) {
	ack := protocol.Encode(protocol.ActionSystem, protocol.EventAcknowledge, name, reqID, emptyObject)
	defer ack.Release()
	for {
		// the gauge counts an instance from its creation until it dies
		// (instance.remove, instance.add), once each
		in := ep.instances.getOrCreate(name, func() *instance {
			ep.srv.stats.Channels.Add(1)
			return newInstance(l, name, route)
		}, (*instance).isDead)
		m, first, firstOfUser, killed, err := in.add(c, assigns, shared, abytes, ack)
		if killed {
			ep.instances.deleteIf(in.name, func(v *instance) bool { return v == in })
		}
		switch {
		case m != nil:
			ep.clusterJoined(in, m, first, firstOfUser)
			return in, nil
		case err == errDuplicate:
			return nil, BadRequest(fmt.Sprintf("ChannelEngine: User with id %s already exists in channel %s", c.id, name))
		case err == errClosing:
			return nil, ServiceUnavailable("The connection is closing")
		case err != nil:
			return nil, err
		}
		// the instance emptied and died between lookup and add: retry
	}
}

var emptyObject = json.RawMessage(`{}`)

// leave handles LEAVE_CHANNEL (docs/protocol.md §6.8).
func (ep *Endpoint) leave(c *Client, msg *protocol.ClientMessage) {
	in := c.channel(msg.ChannelName)
	if in == nil {
		if live, ok := ep.instances.get(msg.ChannelName); ok && !live.isDead() {
			return // a live channel the client is not in: nothing is sent
		}
		c.sendEndpointError(msg.RequestID, 404, fmt.Sprintf("Channel %s not found", msg.ChannelName))
		return
	}
	ep.removeConn(in, c, LeaveExplicit)
}

// leaveAll removes a closing connection from every channel at once (see
// Server.Disconnect); the leave handlers and cluster notifications wait for
// disconnect, on the worker pool.
func (ep *Endpoint) leaveAll(c *Client) {
	c.mu.Lock()
	ms := c.chans.all()
	c.mu.Unlock()
	var left []leftMember
	for _, m := range ms {
		if rm, empty, last, presGone := m.in.remove(c); rm != nil {
			left = append(left, leftMember{in: m.in, m: rm, how: leftHow{empty, last, presGone}})
		}
	}
	c.mu.Lock()
	c.st.left = append(c.st.left, left...)
	c.mu.Unlock()
}

// Leave reasons given to leave handlers.
const (
	LeaveExplicit = "explicit_leave"
	LeaveClosed   = "connection_closed"
	LeaveEvicted  = "evicted"
	LeaveRemoved  = "removed"
)

// removeMember removes a user (each of its connections) from a channel,
// notifies presence, runs the leave handlers and destroys the channel when
// it emptied.
func (ep *Endpoint) removeMember(in *instance, id, reason string) bool {
	found := false
	for _, c := range ep.Clients(id) {
		found = ep.removeConn(in, c, reason) || found
	}
	return found
}

// removeConn removes one connection from a channel (see removeMember).
func (ep *Endpoint) removeConn(in *instance, c *Client, reason string) bool {
	m, empty, last, presGone := in.remove(c)
	if m == nil {
		return false
	}
	ep.left(in, m, leftHow{empty, last, presGone}, reason)
	return true
}

// left finishes a removal: the table, the cluster, the leave handler.
func (ep *Endpoint) left(in *instance, m *member, how leftHow, reason string) {
	id := m.c.id
	ep.srv.stats.Leaves.Add(1)
	if how.empty {
		ep.instances.deleteIf(in.name, func(v *instance) bool { return v == in })
	}
	ep.clusterLeft(in, id, how)
	if fn := in.lobby.leaveHandler(); fn != nil {
		ctx := &LeaveContext{User: m.user(), Reason: reason, Route: in.route, ch: &Channel{l: in.lobby, in: in}, srv: ep.srv, start: time.Now()}
		defer func() {
			if ctx.stop != nil {
				ctx.stop()
			}
		}()
		func() {
			defer func() {
				if p := recover(); p != nil {
					ep.srv.recovered(p, "leave", "channel", in.name, "user", id)
				}
			}()
			fn(ctx)
		}()
	}
}

// disconnect finishes a closed connection's removal (leaveAll did the
// immediate part): leave handlers, cluster, the client table.
func (ep *Endpoint) disconnect(c *Client) {
	ep.leaveAll(c) // memberships a racing join may have added: none, but cheap
	c.mu.Lock()
	left := c.st.left
	c.st.left = nil
	c.mu.Unlock()
	for _, l := range left {
		ep.left(l.in, l.m, l.how, LeaveClosed)
	}
	if ep.unclaim(c) {
		ep.srv.stats.Connections.Add(-1)
	}
}

// errNoHandler marks an event no handler answered.
var errNoHandler = errors.New("A handler did not respond to the event")

// event handles a client BROADCAST: routing checks, rate limit, middleware,
// then the first event handler whose pattern matches. in is the channel
// the message names when the caller already looked it up (nil: looked up
// here).
func (ep *Endpoint) event(c *Client, msg *protocol.ClientMessage, in *instance, onLoop bool, at int64, ctx *EventContext) {
	s := ep.srv
	if in == nil {
		in = c.channel(msg.ChannelName)
	}
	if in == nil {
		name := msg.ChannelName
		_, _, matched := ep.matchLobby(name)
		switch live, ok := ep.instances.get(name); {
		case !matched:
			c.sendEndpointError(msg.RequestID, 404, fmt.Sprintf("GatewayEngine: Channel %s does not exist", name))
		case ok && !live.isDead():
			c.sendEndpointError(msg.RequestID, 404, fmt.Sprintf("ChannelEngine: User with id %s does not exist in channel %s", c.id, name))
		default:
			c.sendEndpointError(msg.RequestID, 404, fmt.Sprintf("Channel %s not found", name))
		}
		return
	}
	if rate := s.opts.Inbound.MessageRate; rate > 0 && !c.msgBucket.allow(rate, s.opts.Inbound.MessageBurst, s.opts.timeOf(at)) {
		s.stats.RateLimited.Add(1)
		c.sendMessage(protocol.ActionError, protocol.ErrHandlerNotFound, in.name, msg.RequestID,
			protocol.HandlerErrorPayload("Too many messages: rate limit exceeded", 429))
		return
	}
	if ctx == nil {
		ctx = new(EventContext)
	}
	*ctx = EventContext{Route: in.route, c: c, in: in, name: msg.Event, reqID: msg.RequestID, payload: msg.Payload, onLoop: onLoop}
	err := in.lobby.dispatch(ctx)
	if err == nil {
		return
	}
	if c.gone.Load() {
		// The connection closed while the handler ran (its broadcasts then
		// fail with ErrNotMember): nobody is left to tell, and it is not
		// the server's fault, so it is no ERROR line a client can trigger.
		s.log.Debug("handler error after its connection closed", "channel", in.name, "event", msg.Event, "user", c.id, "err", err)
		return
	}
	status, text := 500, errNoHandler.Error() // the reference's answer to an unknown event
	if !errors.Is(err, errNoHandler) {
		status, text = s.clientError(err, "event", "channel", in.name, "event", msg.Event, "user", c.id)
	}
	// goes through the channel (outgoing hooks apply), to the sender only
	in.lobby.send(in, protocol.ActionError, protocol.ErrHandlerNotFound, msg.RequestID,
		protocol.HandlerErrorPayload(text, status), recipients{self: c, onLoop: onLoop})
}
