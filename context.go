package pondsocket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
	"unsafe"

	"github.com/pondsocket/pondsocket/internal/wsframe"

	"github.com/pondsocket/pondsocket/internal/protocol"
)

// ConnectionContext is given to an endpoint's connection handler. The
// handler accepts (optionally with assigns) or declines. It is used by one
// goroutine (the handler's).
type ConnectionContext struct {
	// Route holds the endpoint's path params and the URL's query.
	Route Route

	ep       *Endpoint
	hs       *handshake
	id       string
	customID bool // set by SetUserID
	assigns  map[string]any
	accepted bool
	declined bool
	status   int
	message  string
	replies  []*wsframe.Frame
	err      error
}

// ID is the user id the connection will have.
func (ctx *ConnectionContext) ID() string { return ctx.id }

// Headers are the upgrade request's headers.
func (ctx *ConnectionContext) Headers() http.Header { return ctx.hs.Header }

// Cookies parses the request's cookies.
func (ctx *ConnectionContext) Cookies() []*http.Cookie {
	r := http.Request{Header: ctx.hs.Header}
	return r.Cookies()
}

// Cookie returns the named cookie.
func (ctx *ConnectionContext) Cookie(name string) (*http.Cookie, error) {
	r := http.Request{Header: ctx.hs.Header}
	return r.Cookie(name)
}

// RemoteAddr is the peer address.
func (ctx *ConnectionContext) RemoteAddr() string { return ctx.hs.RemoteAddr }

// SetAssigns sets a connection assign (copied into every channel the user
// joins).
func (ctx *ConnectionContext) SetAssigns(key string, value any) *ConnectionContext {
	if ctx.assigns == nil {
		ctx.assigns = map[string]any{}
	}
	ctx.assigns[key] = value
	return ctx
}

// GetAssigns returns a connection assign or nil.
func (ctx *ConnectionContext) GetAssigns(key string) any { return ctx.assigns[key] }

// GetAssign is GetAssigns with an error: ErrNoAssign when key is not set.
func (ctx *ConnectionContext) GetAssign(key string) (any, error) {
	return lookupAssign(ctx.assigns, key)
}

// Accept accepts the connection, merging the given assigns.
func (ctx *ConnectionContext) Accept(assigns ...map[string]any) error {
	if ctx.accepted || ctx.declined {
		return ErrAlreadyDecided
	}
	if ctx.err != nil { // a bad SetUserID
		return ctx.err
	}
	for _, a := range assigns {
		for k, v := range a {
			ctx.SetAssigns(k, v)
		}
	}
	if _, err := ctx.ep.srv.checkAssigns(ctx.assigns); err != nil {
		return err
	}
	ctx.accepted = true
	return nil
}

// Decline refuses the connection with an HTTP status and message.
func (ctx *ConnectionContext) Decline(code int, message string) error {
	if ctx.accepted || ctx.declined {
		return ErrAlreadyDecided
	}
	if code < 400 || code > 599 {
		code = 400
	}
	if message == "" {
		message = "Unauthorized connection"
	}
	ctx.declined, ctx.status, ctx.message = true, code, message
	return nil
}

// Reply queues a message on channel ENDPOINT sent right after the CONNECT
// frame (the JS clients ignore it; other clients may use it).
func (ctx *ConnectionContext) Reply(event string, payload any) *ConnectionContext {
	if !ctx.accepted {
		ctx.err = ErrNotAccepted
		return ctx
	}
	f, err := protocol.EncodeValue(protocol.ActionServerBroadcast, event, protocol.ChannelEndpoint, ctx.id, payload)
	if err != nil {
		ctx.err = err
		return ctx
	}
	ctx.replies = append(ctx.replies, f)
	return ctx
}

// Err is the first error of a chain.
func (ctx *ConnectionContext) Err() error { return ctx.err }

// JoinContext is given to a channel's join handler. Its methods chain and
// remember the first error, returned by Err.
type JoinContext struct {
	// Route holds the channel name's params and query.
	Route Route

	c        *Client
	l        *lobby
	msg      *protocol.ClientMessage // &m
	m        protocol.ClientMessage  // a copy, so the caller's job stays on its stack
	event    *Event
	pending  map[string]any
	accepted bool
	declined bool
	in       *instance
	replies  [][2]any
	err      error
}

func newJoinContext(c *Client, l *lobby, route Route, msg *protocol.ClientMessage) *JoinContext {
	ctx := &JoinContext{Route: route, c: c, l: l, m: *msg}
	ctx.msg = &ctx.m
	return ctx
}

func (ctx *JoinContext) fail(err error) *JoinContext {
	if ctx.err == nil {
		ctx.err = err
	}
	return ctx
}

// Err is the first error of the chain.
func (ctx *JoinContext) Err() error { return ctx.err }

// Context is cancelled when the joining connection goes away, when the
// handler returns, when a shutdown abandons it, and at Options.HandlerTimeout.
func (ctx *JoinContext) Context() context.Context { return ctx.c.runContext() }

// ChannelName is the name of the channel being joined.
func (ctx *JoinContext) ChannelName() string { return ctx.msg.ChannelName }

// Event is the join request: payload (the join parameters), params, query.
func (ctx *JoinContext) Event() *Event {
	if ctx.event == nil {
		ctx.event = &Event{Event: protocol.ActionJoin, RequestID: ctx.msg.RequestID, Params: ctx.Route.Params, Query: ctx.Route.Query}
		var p map[string]any
		_ = json.Unmarshal(ctx.msg.Payload, &p)
		ctx.event.Payload = p
	}
	return ctx.event
}

// User is the joining user: id and current assigns.
func (ctx *JoinContext) User() *User {
	return &User{UserID: ctx.c.id, Assigns: ctx.assignsNow()}
}

// GetUser is User.
func (ctx *JoinContext) GetUser() *User { return ctx.User() }

func (ctx *JoinContext) assignsNow() map[string]any {
	if ctx.in != nil {
		a, _ := ctx.in.assignsOf(ctx.c, "")
		return a
	}
	ctx.c.mu.Lock()
	a := copyMap(ctx.c.assigns)
	ctx.c.mu.Unlock()
	for k, v := range ctx.pending {
		a[k] = v
	}
	return a
}

// GetAssigns returns one assign of the user (connection assigns merged
// with what the join set so far), or nil.
func (ctx *JoinContext) GetAssigns(key string) any { return ctx.assignsNow()[key] }

// GetAssign is GetAssigns with an error: ErrNoAssign when key is not set.
func (ctx *JoinContext) GetAssign(key string) (any, error) {
	return lookupAssign(ctx.assignsNow(), key)
}

// ParseAssigns decodes the user's assigns (as a JSON object) into v.
func (ctx *JoinContext) ParseAssigns(v any) error { return remarshal(ctx.assignsNow(), v) }

// ParsePayload decodes the join parameters into v.
func (ctx *JoinContext) ParsePayload(v any) error { return json.Unmarshal(ctx.msg.Payload, v) }

// SetAssigns sets a channel assign of the user (before Accept it is
// applied at Accept).
func (ctx *JoinContext) SetAssigns(key string, value any) *JoinContext {
	if ctx.in != nil {
		if err := ctx.in.setAssigns(ctx.c, "", map[string]any{key: value}); err != nil {
			return ctx.fail(err)
		}
		return ctx
	}
	if ctx.pending == nil {
		ctx.pending = map[string]any{}
	}
	ctx.pending[key] = value
	return ctx
}

// Accept admits the user: it becomes a member with its connection assigns
// merged with the given ones, and receives the ACKNOWLEDGE before anything
// else of the channel.
func (ctx *JoinContext) Accept(assigns ...map[string]any) *JoinContext {
	if ctx.accepted || ctx.declined {
		return ctx.fail(ErrAlreadyDecided)
	}
	c := ctx.c
	c.mu.Lock()
	base := c.assigns
	c.mu.Unlock()
	merged, shared, abytes := base, true, int64(0)
	if len(ctx.pending) > 0 || len(assigns) > 0 {
		merged, shared = copyMap(base), false
		for k, v := range ctx.pending {
			merged[k] = v
		}
		for _, a := range assigns {
			for k, v := range a {
				merged[k] = v
			}
		}
		var err error
		if abytes, err = ctx.l.ep.srv.checkAssigns(merged); err != nil {
			return ctx.fail(err)
		}
	}
	in, err := ctx.l.ep.admit(c, ctx.l, ctx.msg.ChannelName, ctx.Route, ctx.msg.RequestID, merged, shared, abytes)
	if err != nil {
		return ctx.fail(err)
	}
	ctx.accepted, ctx.in, ctx.pending = true, in, nil
	for _, r := range ctx.replies {
		ctx.Reply(r[0].(string), r[1])
	}
	ctx.replies = nil
	return ctx
}

// Decline refuses the join with a status and message.
func (ctx *JoinContext) Decline(code int, message string) error {
	if ctx.accepted || ctx.declined {
		return ErrAlreadyDecided
	}
	if code <= 0 {
		code = 401
	}
	if message == "" {
		message = "Unauthorized connection"
	}
	ctx.declined = true
	ctx.c.declineJoin(ctx.msg.ChannelName, ctx.msg.RequestID, protocol.ErrUnauthorizedJoinRequest, message, code)
	return nil
}

// Track starts presence for the joining user (after Accept).
func (ctx *JoinContext) Track(presence any) *JoinContext {
	if ctx.in == nil {
		return ctx.fail(ErrNotAccepted)
	}
	raw, err := encodePresence(presence)
	if err != nil {
		return ctx.fail(err)
	}
	if err := ctx.in.setPresence(ctx.c, "", raw, presenceTrack); err != nil {
		return ctx.fail(err)
	}
	return ctx
}

// TrackPresence is Track.
func (ctx *JoinContext) TrackPresence(presence any) *JoinContext { return ctx.Track(presence) }

// Reply sends a SYSTEM message to the joining user carrying the join's
// requestId. Before Accept it is held back and sent right after the
// ACKNOWLEDGE (the clients drop anything that precedes it).
func (ctx *JoinContext) Reply(event string, payload any) *JoinContext {
	if ctx.declined {
		return ctx.fail(ErrAlreadyDecided)
	}
	if ctx.in == nil {
		ctx.replies = append(ctx.replies, [2]any{event, payload})
		return ctx
	}
	f, err := protocol.EncodeValue(protocol.ActionSystem, event, ctx.in.name, ctx.msg.RequestID, payload)
	if err != nil {
		return ctx.fail(err)
	}
	ctx.c.send(f)
	f.Release()
	return ctx
}

func (ctx *JoinContext) bcast(event string, payload any, r recipients) *JoinContext {
	if ctx.in == nil {
		return ctx.fail(ErrNotAccepted)
	}
	raw, err := protocol.MarshalPayload(payload)
	if err != nil {
		return ctx.fail(err)
	}
	r.from = ctx.c.id // USER_MESSAGE.fromUserId names the sender, as the reference does
	if err := ctx.l.send(ctx.in, protocol.ActionServerBroadcast, event, ctx.msg.RequestID, raw, r); err != nil {
		return ctx.fail(err)
	}
	return ctx
}

// Broadcast sends to every member (after Accept), with the join's requestId.
func (ctx *JoinContext) Broadcast(event string, payload any) *JoinContext {
	return ctx.bcast(event, payload, recipients{all: true})
}

// BroadcastFrom sends to every member but the joining user.
func (ctx *JoinContext) BroadcastFrom(event string, payload any) *JoinContext {
	return ctx.bcast(event, payload, recipients{all: true, except: ctx.c.id})
}

// BroadcastTo sends to the listed members.
func (ctx *JoinContext) BroadcastTo(event string, payload any, userIDs ...string) *JoinContext {
	return ctx.bcast(event, payload, recipients{only: nonNil(userIDs)})
}

// Channel is the joined channel (nil before Accept).
func (ctx *JoinContext) Channel() *Channel {
	if ctx.in == nil {
		return nil
	}
	return &Channel{l: ctx.l, in: ctx.in}
}

// GetAllPresence returns the channel's presence by user id (empty before
// Accept when the channel does not exist yet).
func (ctx *JoinContext) GetAllPresence() map[string]any {
	if ch, ok := ctx.l.ep.Channel(ctx.msg.ChannelName); ok {
		return ch.GetPresence()
	}
	return map[string]any{}
}

// GetAllAssigns returns the channel's assigns by user id.
func (ctx *JoinContext) GetAllAssigns() map[string]any {
	if ch, ok := ctx.l.ep.Channel(ctx.msg.ChannelName); ok {
		return ch.GetAssigns()
	}
	return map[string]any{}
}

func nonNil(ids []string) []string {
	if ids == nil {
		return []string{}
	}
	return ids
}

// EventContext is given to event handlers. Its action methods chain and
// remember the first error, returned by Err. Broadcasts and replies carry
// the event's requestId (docs/protocol.md §2.3).
type EventContext struct {
	// Route holds the channel name's params and query.
	Route Route

	// One context is made per event, so it holds only what every event
	// needs: the message's channel is in.name, its action BROADCAST, and
	// the Event record is made when asked for (Event) or when the event
	// pattern captures something (runEvent).
	c       *Client
	in      *instance
	name    string          // the event's name
	reqID   string          // its requestId
	payload json.RawMessage // as decoded: compact JSON
	event   *Event
	err     error
	// onLoop: the handler runs inside the delivery of its message
	// (job.onLoop), so its replies may skip the hand-off to the loop
	onLoop bool
}

// An event's context is allocated with the copies of its message (the
// strings and payload it points to), in a size that fills a size class of
// the allocator (eventBoxSizes); larger messages get their own allocation.
type eventBox[B any] struct {
	ctx EventContext
	buf B // a byte array: room for the copies
}

const ctxSize = unsafe.Sizeof(EventContext{})

// eventBoxSizes are the sizes of the boxes newEventBox makes: size classes
// of the Go allocator, so that no byte is lost to rounding up.
var eventBoxSizes = [...]uintptr{208, 256, 288, 320, 384, 448, 512}

func newBox[B any]() (*EventContext, []byte) {
	b := new(eventBox[B])
	return &b.ctx, unsafe.Slice((*byte)(unsafe.Pointer(&b.buf)), unsafe.Sizeof(b.buf))[:0]
}

// newEventBox returns a context and, when they fit beside it, room for
// size bytes of its message's copies (nil otherwise).
func newEventBox(size int) (*EventContext, []byte) {
	switch n := uintptr(size); {
	case n <= 208-ctxSize:
		return newBox[[208 - ctxSize]byte]()
	case n <= 256-ctxSize:
		return newBox[[256 - ctxSize]byte]()
	case n <= 288-ctxSize:
		return newBox[[288 - ctxSize]byte]()
	case n <= 320-ctxSize:
		return newBox[[320 - ctxSize]byte]()
	case n <= 384-ctxSize:
		return newBox[[384 - ctxSize]byte]()
	case n <= 448-ctxSize:
		return newBox[[448 - ctxSize]byte]()
	case n <= 512-ctxSize:
		return newBox[[512 - ctxSize]byte]()
	}
	return new(EventContext), nil
}

// eventRecord is the context's Event, made on first use, with its payload
// not yet decoded.
func (ctx *EventContext) eventRecord() *Event {
	if ctx.event == nil {
		ctx.event = &Event{Event: ctx.name, RequestID: ctx.reqID}
	}
	return ctx.event
}

func (ctx *EventContext) fail(err error) *EventContext {
	if ctx.err == nil {
		ctx.err = err
	}
	return ctx
}

// Err is the first error of the chain.
func (ctx *EventContext) Err() error { return ctx.err }

// Context is cancelled when the sender's connection goes away, when the
// handler returns, when a shutdown abandons it, and at Options.HandlerTimeout.
// Middleware receives the same context.
func (ctx *EventContext) Context() context.Context { return ctx.c.runContext() }

// Event is the incoming event: name, decoded payload, params and query of
// the matched event pattern.
func (ctx *EventContext) Event() *Event {
	ev := ctx.eventRecord()
	if ev.Payload == nil {
		var p map[string]any
		_ = json.Unmarshal(ctx.payload, &p)
		if p == nil {
			p = map[string]any{}
		}
		ev.Payload = p
	}
	return ev
}

// RawPayload is the event payload as received: a compact JSON object. It
// must not be modified. Passed back unchanged to Broadcast, Reply and the
// like it is sent as it is, without being checked and copied again.
func (ctx *EventContext) RawPayload() json.RawMessage { return ctx.payload }

// EventName is the event's name, as Event().Event, without decoding the
// payload that Event() decodes.
func (ctx *EventContext) EventName() string { return ctx.name }

// marshal is protocol.MarshalPayload, except for the payload as received
// (RawPayload): it was checked and compacted when it was decoded, so it is
// used as it is.
func (ctx *EventContext) marshal(payload any) (json.RawMessage, error) {
	if p, ok := payload.(json.RawMessage); ok && len(p) > 0 && len(p) == len(ctx.payload) &&
		unsafe.SliceData(p) == unsafe.SliceData(ctx.payload) {
		return p, nil
	}
	return protocol.MarshalPayload(payload)
}

// ParsePayload decodes the event payload into v.
func (ctx *EventContext) ParsePayload(v any) error { return json.Unmarshal(ctx.payload, v) }

// ParseAssigns decodes the sender's channel assigns into v.
func (ctx *EventContext) ParseAssigns(v any) error {
	a, ok := ctx.in.assignsOf(ctx.c, "")
	if !ok {
		return ErrNotMember
	}
	return remarshal(a, v)
}

// ParsePresence decodes the sender's presence into v (ErrNoPresence when
// it is not tracked).
func (ctx *EventContext) ParsePresence(v any) error {
	p, ok := ctx.in.presenceOf(ctx.c, "")
	if !ok {
		return ErrNoPresence
	}
	return json.Unmarshal(p, v)
}

// GetAssign returns one of the sender's channel assigns: ErrNoAssign when
// key is not set, ErrNotMember when the sender has left.
func (ctx *EventContext) GetAssign(key string) (any, error) {
	a, ok := ctx.in.assignsOf(ctx.c, "")
	if !ok {
		return nil, ErrNotMember
	}
	return lookupAssign(a, key)
}

// GetAssigns is GetAssign without the error: nil when key is not set.
func (ctx *EventContext) GetAssigns(key string) any {
	v, _ := ctx.GetAssign(key)
	return v
}

// lookupAssign is the one lookup behind every GetAssign.
func lookupAssign(a map[string]any, key string) (any, error) {
	v, ok := a[key]
	if !ok {
		return nil, fmt.Errorf("assign %q: %w", key, ErrNoAssign)
	}
	return v, nil
}

// GetUser is the sender: id, channel assigns and presence.
func (ctx *EventContext) GetUser() *User {
	if m := ctx.in.memberOf(ctx.c); m != nil {
		ctx.in.mu.RLock()
		u := m.user()
		ctx.in.mu.RUnlock()
		return u
	}
	return &User{UserID: ctx.c.id}
}

// User is GetUser.
func (ctx *EventContext) User() *User { return ctx.GetUser() }

// Channel is the channel the event was sent on.
func (ctx *EventContext) Channel() *Channel { return &Channel{l: ctx.in.lobby, in: ctx.in} }

// ChannelName is the channel's name.
func (ctx *EventContext) ChannelName() string { return ctx.in.name }

func (ctx *EventContext) bcast(action, event string, payload any, r recipients) *EventContext {
	raw, err := ctx.marshal(payload)
	if err != nil {
		return ctx.fail(err)
	}
	r.from = ctx.c.id // USER_MESSAGE.fromUserId names the sender, as the reference does
	if err := ctx.in.lobby.send(ctx.in, action, event, ctx.reqID, raw, r); err != nil {
		return ctx.fail(err)
	}
	return ctx
}

// Broadcast sends to every member, the sender included.
func (ctx *EventContext) Broadcast(event string, payload any) *EventContext {
	return ctx.bcast(protocol.ActionServerBroadcast, event, payload, recipients{all: true})
}

// BroadcastFrom sends to every member but the sender.
func (ctx *EventContext) BroadcastFrom(event string, payload any) *EventContext {
	return ctx.bcast(protocol.ActionServerBroadcast, event, payload, recipients{all: true, except: ctx.c.id})
}

// BroadcastTo sends to the listed members; an id that is not a member is an
// error (status 400) and nothing is sent.
func (ctx *EventContext) BroadcastTo(event string, payload any, userIDs ...string) *EventContext {
	ctx.bcast(protocol.ActionServerBroadcast, event, payload, recipients{only: nonNil(userIDs)})
	if errors.Is(ctx.err, ErrNotMember) {
		ctx.err = BadRequest("BroadcastTo: a recipient is not a member of the channel")
	}
	return ctx
}

// Reply sends a SYSTEM message to the sender.
func (ctx *EventContext) Reply(event string, payload any) *EventContext {
	return ctx.bcast(protocol.ActionSystem, event, payload, recipients{self: ctx.c, onLoop: ctx.onLoop})
}

// SetAssigns sets one of the sender's channel assigns.
func (ctx *EventContext) SetAssigns(key string, value any) *EventContext {
	if err := ctx.in.setAssigns(ctx.c, "", map[string]any{key: value}); err != nil {
		return ctx.fail(err)
	}
	return ctx
}

// presenceAllowed spends one token of the sender's presence bucket.
func (ctx *EventContext) presenceAllowed() bool {
	o := &ctx.in.ep.srv.opts
	if ctx.c.st.presence.allow(o.Presence.Rate, o.Presence.Burst, o.now()) {
		return true
	}
	ctx.in.ep.srv.stats.RateLimited.Add(1)
	return false
}

// UpdatePresence replaces the sender's presence, tracking it when it was
// not tracked yet. Presence changes of a sender are rate limited
// (Options.PresenceRate: ErrPresenceRate) and bounded in size
// (ErrPresenceTooLarge).
func (ctx *EventContext) UpdatePresence(presence any) *EventContext {
	return ctx.setPresence(presence, presenceUpsert)
}

// Track starts presence for the sender (ErrPresenceExists when tracked).
func (ctx *EventContext) Track(presence any) *EventContext {
	return ctx.setPresence(presence, presenceTrack)
}

// RemovePresence stops the sender's presence.
func (ctx *EventContext) RemovePresence() *EventContext {
	return ctx.setPresence(nil, presenceRemove)
}

// setPresence is the one path of the sender's presence changes: rate,
// encoding (size) and the change itself.
func (ctx *EventContext) setPresence(presence any, mode presenceMode) *EventContext {
	if !ctx.presenceAllowed() {
		return ctx.fail(ErrPresenceRate)
	}
	var raw json.RawMessage
	if mode != presenceRemove {
		var err error
		if raw, err = encodePresence(presence); err != nil {
			return ctx.fail(err)
		}
	}
	if err := ctx.in.setPresence(ctx.c, "", raw, mode); err != nil {
		return ctx.fail(err)
	}
	return ctx
}

// EvictUser evicts the sender from the channel (see Channel.EvictUser).
func (ctx *EventContext) EvictUser(reason string) *EventContext {
	if err := ctx.Channel().EvictUser(ctx.c.id, reason); err != nil {
		return ctx.fail(err)
	}
	return ctx
}

// GetAllPresence returns the channel's presence by user id.
func (ctx *EventContext) GetAllPresence() map[string]any { return ctx.Channel().GetPresence() }

// GetAllAssigns returns the channel's assigns by user id.
func (ctx *EventContext) GetAllAssigns() map[string]any { return ctx.Channel().GetAssigns() }

// LeaveContext is given to a leave handler after the user was removed.
type LeaveContext struct {
	User   *User
	Reason string
	// Route holds the channel name's params and query.
	Route Route
	ch    *Channel

	srv   *hub
	start time.Time
	hctx  context.Context
	stop  context.CancelFunc
}

// Channel is the channel the user left (it may have no members left).
func (ctx *LeaveContext) Channel() *Channel { return ctx.ch }

// Context is cancelled when the leave handler returns, when a shutdown
// abandons it, and at Options.HandlerTimeout. (The user's connection may
// already be gone: that is often why it left.)
func (ctx *LeaveContext) Context() context.Context {
	if ctx.hctx == nil {
		if ctx.srv == nil {
			return context.Background()
		}
		if t := ctx.srv.opts.Handlers.Timeout; t > 0 {
			ctx.hctx, ctx.stop = context.WithDeadline(ctx.srv.base, ctx.start.Add(t))
		} else {
			ctx.hctx, ctx.stop = context.WithCancel(ctx.srv.base)
		}
	}
	return ctx.hctx
}

// OutgoingContext is given to outgoing hooks, once per recipient.
type OutgoingContext struct {
	Action string
	Event  *Event

	raw         json.RawMessage
	ch          *Channel
	recipient   *member
	transformed json.RawMessage
	blocked     bool
}

// User is the recipient.
func (ctx *OutgoingContext) User() *User {
	ctx.ch.in.mu.RLock()
	defer ctx.ch.in.mu.RUnlock()
	return ctx.recipient.user()
}

// Channel is the channel the message goes through.
func (ctx *OutgoingContext) Channel() *Channel { return ctx.ch }

// Payload is the decoded payload.
func (ctx *OutgoingContext) Payload() map[string]any {
	var p map[string]any
	_ = json.Unmarshal(ctx.raw, &p)
	return p
}

// ParsePayload decodes the payload into v.
func (ctx *OutgoingContext) ParsePayload(v any) error { return json.Unmarshal(ctx.raw, v) }

// Transform replaces the payload for this recipient.
func (ctx *OutgoingContext) Transform(payload any) error {
	raw, err := protocol.MarshalPayload(payload)
	if err != nil {
		return err
	}
	ctx.transformed = raw
	return nil
}

// Block drops the message for this recipient.
func (ctx *OutgoingContext) Block() { ctx.blocked = true }

func remarshal(from any, to any) error {
	b, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, to)
}
