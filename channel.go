package pondsocket

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/pondsocket/pondsocket/internal/wsframe"

	"github.com/pondsocket/pondsocket/cluster"
	"github.com/pondsocket/pondsocket/internal/protocol"
)

// lobby is a channel pattern with its handlers (docs/protocol.md §0).
type lobby struct {
	ep      *Endpoint
	pattern *pattern
	join    func(*JoinContext) error

	// h holds the handlers, replaced whole when one is added (mu
	// serialises the writers): every event of every channel of the
	// pattern reads them, with one atomic load rather than a lock whose
	// count each reader would write (on a cache line the loops share)
	mu sync.Mutex
	h  atomic.Pointer[handlers]

	// the share of workers each handler may hold (gate.go)
	joinGate, leaveGate, unmatchedGate gate
}

// handlers are a lobby's handler lists; never modified once published.
type handlers struct {
	events     []eventHandler
	middleware []MiddlewareFunc
	leave      func(*LeaveContext)
	outgoing   []outgoingHandler
}

var noHandlers handlers

// handlers returns the lobby's current handlers.
func (l *lobby) handlers() *handlers {
	if h := l.h.Load(); h != nil {
		return h
	}
	return &noHandlers
}

// change publishes a copy of the handlers with edit applied. The lists
// are clipped first, so an append in edit copies instead of writing into
// an array a reader may hold.
func (l *lobby) change(edit func(h *handlers)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := *l.handlers()
	h.events, h.middleware, h.outgoing = slices.Clip(h.events), slices.Clip(h.middleware), slices.Clip(h.outgoing)
	edit(&h)
	l.h.Store(&h)
}

type eventHandler struct {
	pattern *pattern
	fn      func(*EventContext) error
	gate    *gate
	inline  bool // OnEventInline: it never blocks
}

type outgoingHandler struct {
	pattern *pattern
	fn      func(*OutgoingContext) error
}

// MiddlewareFunc runs before the event handlers of a channel pattern, in
// registration order; it continues the chain by calling next and stops it by
// returning without calling next (an error it returns reaches the client).
type MiddlewareFunc func(ctx context.Context, req *MessageEvent, res *Channel, next NextFunc) error

// NextFunc continues a middleware chain.
type NextFunc func() error

// MessageEvent is what middleware sees of an incoming event.
type MessageEvent struct {
	User  *User
	Event *Event
}

// Event is an incoming client event (or a join request's payload).
type Event struct {
	Event     string
	RequestID string
	// Payload is the decoded JSON object (map[string]any).
	Payload any
	// Params and Query come from matching the event name against the
	// handler's pattern (for a join: the channel pattern). An event
	// matched by a pattern without parameters, and with no query, leaves
	// both nil (reading a nil map is fine).
	Params map[string]string
	Query  Query
}

// User is a member as handlers see it.
type User struct {
	UserID   string
	Assigns  map[string]any
	Presence map[string]any
}

func (m *member) user() *User {
	u := &User{UserID: m.c.id, Assigns: copyMap(m.assigns)}
	if m.pres != nil {
		_ = json.Unmarshal(m.pres.raw, &u.Presence)
	}
	return u
}

// Channel is the handle users program against. The value returned by
// CreateChannel stands for the channel pattern: handlers registered on it
// apply to every channel the pattern matches, and its Broadcast, presence
// and assigns methods act on every live channel of the pattern. Handlers
// receive handles bound to one live channel (for example EventContext's
// Channel()), whose methods act on that channel only.
//
// All methods are safe from any goroutine.
type Channel struct {
	l  *lobby
	in *instance
}

// Name is the channel's name, or the pattern for a pattern handle.
func (ch *Channel) Name() string {
	if ch.in != nil {
		return ch.in.name
	}
	return ch.l.pattern.String()
}

// Pattern is the channel pattern.
func (ch *Channel) Pattern() string { return ch.l.pattern.String() }

// OnEvent registers a handler for events whose name matches pattern (route
// syntax: "message", "message/:id", "*"). The first matching handler runs.
func (ch *Channel) OnEvent(pattern string, fn func(*EventContext) error) *Channel {
	p, err := compilePattern(pattern)
	if err != nil {
		panic(err)
	}
	ch.l.change(func(h *handlers) { h.events = append(h.events, eventHandler{pattern: p, fn: fn, gate: &gate{}}) })
	return ch
}

// OnEventInline is OnEvent for a handler that never blocks: no I/O, no
// waiting on locks, channels or timers, only short work (validate,
// transform, Broadcast, Reply; presence changes, which are encoded for the
// whole room, are better left to OnEvent in large rooms). It runs
// on the event loop that read the message, so an event costs no hand-off
// to a worker and back; the standalone server's broadcast and reply modes
// are such handlers. A handler registered here that blocks stalls every
// connection of its loop: anything that may wait belongs in OnEvent.
//
// It runs on a worker like any other handler while the connection has
// messages waiting there (order per connection holds), and whenever the
// channel has middleware or outgoing hooks (user code that may block).
func (ch *Channel) OnEventInline(pattern string, fn func(*EventContext) error) *Channel {
	p, err := compilePattern(pattern)
	if err != nil {
		panic(err)
	}
	ch.l.change(func(h *handlers) {
		h.events = append(h.events, eventHandler{pattern: p, fn: fn, gate: &gate{}, inline: true})
	})
	return ch
}

// Use appends a middleware that runs before the event handlers.
func (ch *Channel) Use(mw MiddlewareFunc) *Channel {
	ch.l.change(func(h *handlers) { h.middleware = append(h.middleware, mw) })
	return ch
}

// OnLeave sets the handler called after a user left a channel of this
// pattern (explicit leave, disconnect, eviction).
func (ch *Channel) OnLeave(fn func(*LeaveContext)) *Channel {
	ch.l.change(func(h *handlers) { h.leave = fn })
	return ch
}

// OnOutgoing registers a per-recipient hook for outgoing events matching
// pattern: it may transform the payload for one recipient or block it.
// Only the first matching hook runs. Channels with hooks pay one encoding
// per recipient; others encode each message once.
func (ch *Channel) OnOutgoing(pattern string, fn func(*OutgoingContext) error) *Channel {
	p, err := compilePattern(pattern)
	if err != nil {
		panic(err)
	}
	ch.l.change(func(h *handlers) { h.outgoing = append(h.outgoing, outgoingHandler{pattern: p, fn: fn}) })
	return ch
}

func (l *lobby) leaveHandler() func(*LeaveContext) { return l.handlers().leave }

// instances is the set of live channels the handle acts on.
func (ch *Channel) instances() []*instance {
	if ch.in != nil {
		if ch.in.isDead() {
			return nil
		}
		return []*instance{ch.in}
	}
	var out []*instance
	ch.l.ep.instances.each(func(_ string, in *instance) bool {
		if in.lobby == ch.l && !in.isDead() {
			out = append(out, in)
		}
		return true
	})
	return out
}

// Channels lists the live channels of this pattern.
func (ch *Channel) Channels() []*Channel {
	var out []*Channel
	for _, in := range ch.instances() {
		out = append(out, &Channel{l: ch.l, in: in})
	}
	return out
}

// Broadcast sends event to every member.
func (ch *Channel) Broadcast(event string, payload any) error {
	return ch.broadcast(event, payload, newID(), recipients{all: true})
}

// BroadcastTo sends event to the listed members only. A user id that is
// not a member is an error and nothing is sent.
func (ch *Channel) BroadcastTo(event string, payload any, userIDs ...string) error {
	if len(userIDs) == 0 {
		return nil
	}
	return ch.broadcast(event, payload, newID(), recipients{only: userIDs})
}

// BroadcastFrom sends event to every member except senderUserID.
func (ch *Channel) BroadcastFrom(event string, payload any, senderUserID string) error {
	return ch.broadcast(event, payload, newID(), recipients{all: true, except: senderUserID})
}

func (ch *Channel) broadcast(event string, payload any, reqID string, r recipients) error {
	raw, err := protocol.MarshalPayload(payload)
	if err != nil {
		return err
	}
	ins := ch.instances()
	if ch.in != nil && len(ins) == 0 {
		return ErrChannelClosed
	}
	var firstErr error
	for _, in := range ins {
		rr := r
		if r.only != nil && ch.in == nil {
			// a pattern's handle: each live channel gets the named users it
			// has (any that leave meanwhile are skipped, not an error)
			rr.only, rr.skipAbsent = in.presentIDs(r.only), true
			if len(rr.only) == 0 {
				continue
			}
		}
		if err := ch.l.send(in, protocol.ActionServerBroadcast, event, reqID, raw, rr); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// presentIDs filters ids to the members of in.
func (in *instance) presentIDs(ids []string) []string {
	in.mu.RLock()
	defer in.mu.RUnlock()
	var out []string
	for _, id := range ids {
		if in.lookupLocked(id) != nil {
			out = append(out, id)
		}
	}
	return out
}

// send delivers one message through the channel to its members on this
// node and, in a cluster, on the others.
func (l *lobby) send(in *instance, action, event, reqID string, payload json.RawMessage, r recipients) error {
	if err := l.sendLocal(in, action, event, reqID, payload, r); err != nil {
		return err
	}
	l.ep.publishMessage(in, event, reqID, r.from, payload, r)
	return nil
}

// sendLocal delivers to the local members: encoded once for all of them,
// or per recipient when outgoing hooks exist. Remote ids in r.only are
// skipped here (publishMessage carries them).
func (l *lobby) sendLocal(in *instance, action, event, reqID string, payload json.RawMessage, r recipients) error {
	hooks := l.handlers().outgoing
	if len(hooks) == 0 {
		f := protocol.Encode(action, event, in.name, reqID, payload)
		_, err := in.deliver(f, r)
		f.Release()
		return err
	}
	members, err := in.snapshot(r)
	if err != nil {
		return err
	}
	var shared *wsframe.Frame
	defer func() {
		if shared != nil {
			shared.Release()
		}
	}()
	for _, m := range members {
		var h *outgoingHandler
		var route Route
		for i := range hooks {
			if rt, ok := hooks[i].pattern.Match(event); ok {
				h, route = &hooks[i], rt
				break
			}
		}
		if h == nil {
			if shared == nil {
				shared = protocol.Encode(action, event, in.name, reqID, payload)
			}
			m.c.send(shared)
			continue
		}
		ctx := &OutgoingContext{Action: action, Event: &Event{Event: event, RequestID: reqID, Params: route.Params, Query: route.Query},
			raw: payload, ch: &Channel{l: l, in: in}, recipient: m}
		if err := l.ep.srv.runOutgoing(h.fn, ctx); err != nil {
			l.ep.srv.clientError(err, "outgoing", "channel", in.name, "event", event, "user", m.c.id)
			continue
		}
		if ctx.blocked {
			continue
		}
		out := payload
		if ctx.transformed != nil {
			out = ctx.transformed
		}
		f := protocol.Encode(action, event, in.name, reqID, out)
		m.c.send(f)
		f.Release()
	}
	return nil
}

func (s *hub) runOutgoing(fn func(*OutgoingContext) error, ctx *OutgoingContext) (err error) {
	defer s.catch(&err, "outgoing", "channel", ctx.ch.in.name, "event", ctx.Event.Event)
	return fn(ctx)
}

// runsInline reports whether an event named event may run on the loop:
// its handler was registered with OnEventInline and no user code that may
// block (middleware, outgoing hooks) runs with it.
func (l *lobby) runsInline(event string) bool {
	h := l.handlers()
	if len(h.middleware) > 0 || len(h.outgoing) > 0 {
		return false
	}
	for i := range h.events {
		if h.events[i].pattern.Matches(event) {
			return h.events[i].inline
		}
	}
	return false
}

// eventGate is the gate of the handler an event named event runs.
func (l *lobby) eventGate(event string) *gate {
	hs := l.handlers().events
	for i := range hs {
		if hs[i].pattern.Matches(event) {
			return hs[i].gate
		}
	}
	return &l.unmatchedGate
}

// errHandlerTimeout replaces the result of a handler that overran
// Options.HandlerTimeout.
var errHandlerTimeout = NewError(504, "The handler did not finish in time")

// dispatch runs the middleware chain and then the first matching handler.
func (l *lobby) dispatch(ctx *EventContext) error {
	err := l.dispatchChain(ctx)
	if ctx.c.overran() {
		s := l.ep.srv
		s.stats.TimedOut.Add(1)
		s.rlog.Warn("handler overran HandlerTimeout", "channel", ctx.in.name, "event", ctx.name,
			"timeout", s.opts.Handlers.Timeout.String())
		return errHandlerTimeout
	}
	return err
}

func (l *lobby) dispatchChain(ctx *EventContext) error {
	h := l.handlers()
	mws, hs := h.middleware, h.events
	s := l.ep.srv
	if len(mws) == 0 {
		return s.runHandler(ctx, hs, nil)
	}
	req := &MessageEvent{User: ctx.GetUser(), Event: ctx.Event()}
	var step func(i int) error
	step = func(i int) error {
		if i == len(mws) {
			return runEvent(ctx, hs)
		}
		return mws[i](ctx.Context(), req, ctx.Channel(), func() error { return step(i + 1) })
	}
	return s.runHandler(ctx, hs, func() error { return step(0) })
}

// runEvent runs the first of hs whose pattern matches the event.
func runEvent(ctx *EventContext, hs []eventHandler) error {
	for i := range hs {
		p := hs[i].pattern
		if p.IsLiteral() && p.raw == ctx.name {
			// the common case: nothing to capture, so no maps to make
			return hs[i].fn(ctx)
		}
		if r, ok := p.Match(ctx.name); ok {
			ev := ctx.eventRecord()
			ev.Params, ev.Query = r.Params, r.Query
			return hs[i].fn(ctx)
		}
	}
	return errNoHandler
}

// runHandler runs an event's middleware chain (or, without middleware, its
// handler) under the panic policy. The log attributes are built only when
// there is a panic to log.
func (s *hub) runHandler(ctx *EventContext, hs []eventHandler, chain func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = s.recovered(p, "event", "channel", ctx.in.name, "event", ctx.name, "user", ctx.c.id)
		}
	}()
	if chain != nil {
		return chain()
	}
	return runEvent(ctx, hs)
}

// --- presence and assigns through a handle ------------------------------

// memberInstances returns the live channels of the handle userID is in.
func (ch *Channel) memberInstances(userID string) []*instance {
	var out []*instance
	for _, in := range ch.instances() {
		if in.member(userID) != nil {
			out = append(out, in)
		}
	}
	return out
}

func (ch *Channel) presenceOp(userID string, presence any, mode presenceMode) error {
	var raw json.RawMessage
	if mode != presenceRemove {
		var err error
		if raw, err = encodePresence(presence); err != nil {
			return err
		}
	}
	ins := ch.memberInstances(userID)
	if len(ins) == 0 {
		return ErrNotMember
	}
	var firstErr error
	for _, in := range ins {
		if err := in.setPresence(nil, userID, raw, mode); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

// TrackPresence starts presence for a member.
func (ch *Channel) TrackPresence(userID string, presence any) error {
	return ch.presenceOp(userID, presence, presenceTrack)
}

// UpdatePresence sets a member's presence: it replaces it, or starts it
// when the member is not tracked yet (as EventContext.UpdatePresence does
// for the sender). ErrNotMember when userID is not in the channel.
func (ch *Channel) UpdatePresence(userID string, presence any) error {
	return ch.presenceOp(userID, presence, presenceUpsert)
}

// RemovePresence stops presence for a member (it stays a member).
func (ch *Channel) RemovePresence(userID string) error {
	return ch.presenceOp(userID, nil, presenceRemove)
}

// GetPresence returns the presence of every tracked member, by user id,
// on every node of a cluster (remote members are replicated here).
func (ch *Channel) GetPresence() map[string]any {
	out := map[string]any{}
	for _, in := range ch.instances() {
		for id, raw := range in.allPresence() {
			var v map[string]any
			_ = json.Unmarshal(raw, &v)
			out[id] = v
		}
	}
	return out
}

// GetDistributedPresence is GetPresence under the name the original PondSocket Go README
// uses. Both are the cluster's presence: members on other nodes are
// replicated into every node that hosts the channel (USER_JOINED,
// PRESENCE_UPDATE, STATE_RESPONSE), so no extra round trip is needed.
func (ch *Channel) GetDistributedPresence() map[string]any { return ch.GetPresence() }

// GetAssigns returns every member's assigns, by user id.
func (ch *Channel) GetAssigns() map[string]any {
	out := map[string]any{}
	for _, in := range ch.instances() {
		for id, a := range in.allAssigns() {
			out[id] = a
		}
	}
	return out
}

// UpdateAssigns sets one assign of a member.
func (ch *Channel) UpdateAssigns(userID, key string, value any) error {
	ins := ch.memberInstances(userID)
	if len(ins) == 0 {
		return ErrNotMember
	}
	for _, in := range ins {
		if err := in.setAssigns(nil, userID, map[string]any{key: value}); err != nil {
			return err
		}
	}
	return nil
}

// GetUser returns a member's id, assigns and presence.
func (ch *Channel) GetUser(userID string) (*User, error) {
	for _, in := range ch.instances() {
		in.mu.RLock()
		m := in.lookupLocked(userID)
		var u *User
		if m != nil {
			u = m.user()
		}
		if u == nil {
			if ru := in.remote[userID]; ru != nil {
				u = &User{UserID: userID}
				_ = json.Unmarshal(ru.assigns, &u.Assigns)
				if ru.pres != nil {
					_ = json.Unmarshal(ru.pres.raw, &u.Presence)
				}
			}
		}
		in.mu.RUnlock()
		if u != nil {
			return u, nil
		}
	}
	return nil, ErrNotMember
}

// Users lists the member ids (a user with several connections once).
func (ch *Channel) Users() []string {
	var out []string
	for _, in := range ch.instances() {
		in.mu.RLock()
		for _, m := range in.list {
			if m.c.alone() || in.lookupLocked(m.c.id) == m { // a user once: its first connection
				out = append(out, m.c.id)
			}
		}
		in.mu.RUnlock()
	}
	return out
}

// DefaultEvictReason is the reason given when EvictUser gets none.
const DefaultEvictReason = "You have been banned from the channel"

// EvictUser removes a member (docs/protocol.md §6.7): the user gets SYSTEM
// kicked_out {message, code: 403}, every member (the user included) gets
// SYSTEM kicked {userId, reason}, then the user is removed (presence LEAVE
// to the others, leave handler). The connection stays open.
func (ch *Channel) EvictUser(userID, reason string) error {
	if reason == "" {
		reason = DefaultEvictReason
	}
	found := false
	for _, in := range ch.instances() {
		if in.member(userID) != nil {
			evict(in, userID, reason)
			found = true
		} else if in.isRemote(userID) {
			evictRemote(in, userID, reason)
			found = true
		}
	}
	if !found {
		return ErrNotMember
	}
	return nil
}

func (in *instance) isRemote(id string) bool {
	in.mu.RLock()
	defer in.mu.RUnlock()
	_, ok := in.remote[id]
	return ok
}

func evict(in *instance, userID, reason string) {
	l := in.lobby
	out, _ := json.Marshal(map[string]any{"message": reason, "code": 403})
	_ = l.sendLocal(in, protocol.ActionSystem, "kicked_out", newID(), out, recipients{only: []string{userID}})
	all, _ := json.Marshal(map[string]any{"userId": userID, "reason": reason})
	_ = l.send(in, protocol.ActionSystem, "kicked", newID(), all, recipients{all: true})
	in.ep.publish(in, &cluster.Envelope{Type: cluster.EvictUser, UserID: userID, Reason: reason})
	in.ep.removeMember(in, userID, LeaveEvicted+":"+reason)
}

// evictRemote evicts a user held by another node: everyone gets "kicked",
// the owning node sends kicked_out and removes it (EVICT_USER), and this
// node forgets it at once.
func evictRemote(in *instance, userID, reason string) {
	all, _ := json.Marshal(map[string]any{"userId": userID, "reason": reason})
	_ = in.lobby.send(in, protocol.ActionSystem, "kicked", newID(), all, recipients{all: true})
	in.ep.publish(in, &cluster.Envelope{Type: cluster.EvictUser, UserID: userID, Reason: reason})
	in.mu.Lock()
	in.forgetLocked(userID)
	in.mu.Unlock()
}

// Close evicts every member of the channel(s) with reason.
func (ch *Channel) Close(reason string) {
	for _, in := range ch.instances() {
		for _, id := range (&Channel{l: ch.l, in: in}).Users() {
			evict(in, id, reason)
		}
	}
}
