package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/uuid"
)

// ChannelState is the state of a Channel's membership.
type ChannelState int

const (
	// ChannelIdle: created, Join not called yet.
	ChannelIdle ChannelState = iota
	// ChannelJoining: the join was asked for (or waits for the
	// connection); messages sent now wait in the queue.
	ChannelJoining
	// ChannelJoined: the server acknowledged the join.
	ChannelJoined
	// ChannelStalled: the channel was joined and the connection was lost;
	// it joins again by itself after the reconnection (with a new user
	// id: the server keeps no session). Messages sent now wait.
	ChannelStalled
	// ChannelDeclined: the server refused the join; Err is the
	// *ServerError with its status and message.
	ChannelDeclined
	// ChannelClosed: left, evicted (Err is the eviction's *ServerError) or
	// the client closed.
	ChannelClosed
)

func (s ChannelState) String() string {
	switch s {
	case ChannelIdle:
		return "IDLE"
	case ChannelJoining:
		return "JOINING"
	case ChannelJoined:
		return "JOINED"
	case ChannelStalled:
		return "STALLED"
	case ChannelDeclined:
		return "DECLINED"
	case ChannelClosed:
		return "CLOSED"
	}
	return "ChannelState(" + strconv.Itoa(int(s)) + ")"
}

// Channel is the client's side of one PondSocket channel. Get one with
// Client.Channel; all methods are safe for concurrent use.
type Channel struct {
	c         *Client
	name      string
	params    json.RawMessage
	paramsErr error

	// guarded by c.mu
	state    ChannelState
	err      error
	joinID   string
	queue    []outEntry
	presence []map[string]any
	subs     map[int]*subscription
	nextSub  int
	wait     chan struct{}
}

type subscription struct {
	event      string // "" = every event
	onMsg      func(Message)
	onPresence func(PresenceEvent)
	presType   string // "" = every presence change
	onState    func(ChannelState, error)
}

// Channel returns the channel called name (the exact string the server
// sees, query included), with the join parameters params (any value that
// encodes as a JSON object; nil means {}). If the client already has an
// active Channel (not left, declined or evicted) with that name, that one
// is returned and params is ignored. Nothing is sent until Join.
func (c *Client) Channel(name string, params any) *Channel {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch := c.channels[name]; ch != nil {
		return ch
	}
	ch := &Channel{c: c, name: name, subs: map[int]*subscription{}, wait: make(chan struct{})}
	ch.params, ch.paramsErr = encodePayload(params)
	if ch.paramsErr != nil {
		ch.paramsErr = fmt.Errorf("client: join params of %s: %w", name, ch.paramsErr)
	}
	if c.state != StateClosed {
		c.channels[name] = ch
	}
	return ch
}

// Name is the channel's name.
func (ch *Channel) Name() string { return ch.name }

// State is the channel's state.
func (ch *Channel) State() ChannelState {
	ch.c.mu.Lock()
	defer ch.c.mu.Unlock()
	return ch.state
}

// Err is why the channel is declined or closed: a *ServerError for a
// refused join or an eviction, the client's error when it closed, nil after
// Leave or while active.
func (ch *Channel) Err() error {
	ch.c.mu.Lock()
	defer ch.c.mu.Unlock()
	return ch.err
}

// Presence is the channel's current presence list (a copy): the complete
// list of the last presence message, empty if this member's presence is
// not tracked or nothing arrived yet.
func (ch *Channel) Presence() []map[string]any {
	ch.c.mu.Lock()
	defer ch.c.mu.Unlock()
	out := make([]map[string]any, len(ch.presence))
	copy(out, ch.presence)
	return out
}

// Join asks to join the channel and waits until the server accepts
// (nil) or refuses (a *ServerError with the refusal's status and message,
// also kept as Err), the client closes, or ctx ends. Join may be called
// before Connect: the join is sent once connected. If ctx ends first, Join
// returns ctx.Err() and the join continues in the background (Leave
// cancels it). Joining a joined channel returns nil at once; a declined or
// closed channel may be joined again.
func (ch *Channel) Join(ctx context.Context) error {
	c := ch.c
	if ch.paramsErr != nil {
		return ch.paramsErr
	}
	c.mu.Lock()
	if c.state == StateClosed {
		err := c.closedErr()
		c.mu.Unlock()
		return err
	}
	var fire []func()
	switch ch.state {
	case ChannelJoined, ChannelJoining, ChannelStalled:
	default:
		if other := c.channels[ch.name]; other != nil && other != ch {
			c.mu.Unlock()
			return ErrDuplicateChannel
		}
		c.channels[ch.name] = ch
		fire = ch.setStateLocked(ChannelJoining, nil)
		if c.state == StateConnected {
			c.sendJoinLocked(ch)
		}
	}
	c.mu.Unlock()
	c.fire(fire)

	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		switch ch.state {
		case ChannelJoined:
			return nil
		case ChannelDeclined:
			return ch.err
		case ChannelClosed:
			if ch.err != nil {
				return ch.err
			}
			return ErrNotJoined
		}
		if err := c.waitLocked(ctx, ch.wait); err != nil {
			return err
		}
	}
}

// Leave leaves the channel: LEAVE_CHANNEL is sent (after the messages
// already written or being written), queued messages are dropped, pending
// SendForResponse calls fail with ErrNotJoined, and the channel is CLOSED
// and no longer rejoined after reconnections. Leaving a channel that is not
// active does nothing.
func (ch *Channel) Leave() error {
	c := ch.c
	c.mu.Lock()
	var fire []func()
	switch ch.state {
	case ChannelJoined, ChannelJoining, ChannelStalled:
		if c.state == StateConnected && (ch.state == ChannelJoined || ch.joinID != "") {
			c.enqueueLocked(outEntry{data: encodeMessage(actionLeave, actionLeave, ch.name, uuid.NewString(), json.RawMessage("{}"))})
		}
		fire = ch.terminateLocked(ChannelClosed, nil)
	case ChannelIdle:
		if c.channels[ch.name] == ch {
			delete(c.channels, ch.name)
		}
	}
	c.mu.Unlock()
	c.fire(fire)
	return nil
}

// Send sends an event to the channel's handlers (a BROADCAST message,
// docs/protocol.md §3.3). payload must encode as a JSON object (nil means
// {}). While the channel is joining or stalled the message waits in the
// queue and goes out after the join; Send returns a *QueueFullError when
// the queue is at its limit, ErrNotJoined when the channel is idle,
// declined or closed, ErrClosed after Close. A nil error means the message
// was queued, not that it was delivered.
func (ch *Channel) Send(event string, payload any) error {
	return ch.send(event, payload, "", nil)
}

// SendForResponse sends an event and waits for the first message on this
// channel that carries the request's id (docs/protocol.md §2.3): usually
// the handler's reply, but a broadcast the handler sends before replying
// wins. If that answer is an error (HANDLER_NOT_FOUND, or INVALID_MESSAGE
// on ENDPOINT), the message is returned with a *ServerError. The wait ends
// with ctx (ctx.Err()), when the channel is left, declined or evicted
// (ErrNotJoined or Err), when the client closes (ErrClosed), or when the
// connection is lost after the request was written (ErrConnectionLost,
// wrapping the *CloseError; a request still queued then is sent again
// after the rejoin).
func (ch *Channel) SendForResponse(ctx context.Context, event string, payload any) (Message, error) {
	reqID := uuid.NewString()
	p := &pendingRequest{ch: ch, done: make(chan result, 1)}
	if err := ch.send(event, payload, reqID, p); err != nil {
		return Message{}, err
	}
	select {
	case r := <-p.done:
		return r.msg, r.err
	case <-ctx.Done():
		ch.c.mu.Lock()
		if ch.c.pending[reqID] == p {
			delete(ch.c.pending, reqID)
		}
		ch.c.mu.Unlock()
		// an answer may have raced the cancellation
		select {
		case r := <-p.done:
			return r.msg, r.err
		default:
		}
		return Message{}, ctx.Err()
	}
}

func (ch *Channel) send(event string, payload any, reqID string, p *pendingRequest) error {
	body, err := encodePayload(payload)
	if err != nil {
		return err
	}
	if reqID == "" {
		reqID = uuid.NewString()
	}
	data := encodeMessage(actionBroadcast, event, ch.name, reqID, body)
	c := ch.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == StateClosed {
		return c.closedErr()
	}
	switch ch.state {
	case ChannelIdle, ChannelClosed, ChannelDeclined:
		if ch.err != nil {
			return fmt.Errorf("%w: %w", ErrNotJoined, ch.err)
		}
		return ErrNotJoined
	}
	if c.queuedMsgs+1 > c.opts.MaxQueuedMessages || c.queuedBytes+len(data) > c.opts.MaxQueuedBytes {
		return &QueueFullError{Messages: c.queuedMsgs, Bytes: c.queuedBytes, MaxMessages: c.opts.MaxQueuedMessages, MaxBytes: c.opts.MaxQueuedBytes, Size: len(data)}
	}
	e := outEntry{ch: ch, data: data, counted: true}
	c.queuedMsgs++
	c.queuedBytes += len(data)
	if p != nil {
		e.reqID = reqID
		c.pending[reqID] = p
	}
	if ch.state == ChannelJoined && c.cur != nil {
		c.enqueueLocked(e)
	} else {
		ch.queue = append(ch.queue, e)
	}
	return nil
}

// On calls fn for every message of the channel whose event is event
// (replies, broadcasts, system messages such as kicked_out; not presence).
// It returns a function that unsubscribes.
func (ch *Channel) On(event string, fn func(Message)) (unsubscribe func()) {
	return ch.subscribe(&subscription{event: event, onMsg: fn})
}

// OnMessage calls fn for every non-presence message of the channel.
func (ch *Channel) OnMessage(fn func(Message)) (unsubscribe func()) {
	return ch.subscribe(&subscription{onMsg: fn})
}

// OnPresence calls fn for every presence change (JOIN, UPDATE, LEAVE); the
// event carries the complete list.
func (ch *Channel) OnPresence(fn func(PresenceEvent)) (unsubscribe func()) {
	return ch.subscribe(&subscription{onPresence: fn})
}

// OnJoin calls fn when a member's presence appears (PresenceJoin).
func (ch *Channel) OnJoin(fn func(PresenceEvent)) (unsubscribe func()) {
	return ch.subscribe(&subscription{onPresence: fn, presType: PresenceJoin})
}

// OnLeave calls fn when a member's presence goes away (PresenceLeave).
func (ch *Channel) OnLeave(fn func(PresenceEvent)) (unsubscribe func()) {
	return ch.subscribe(&subscription{onPresence: fn, presType: PresenceLeave})
}

// OnUpdate calls fn when a member's presence changes (PresenceUpdate).
func (ch *Channel) OnUpdate(fn func(PresenceEvent)) (unsubscribe func()) {
	return ch.subscribe(&subscription{onPresence: fn, presType: PresenceUpdate})
}

// OnStateChange calls fn after every state change, with the new state and
// Err at that moment.
func (ch *Channel) OnStateChange(fn func(ChannelState, error)) (unsubscribe func()) {
	return ch.subscribe(&subscription{onState: fn})
}

func (ch *Channel) subscribe(s *subscription) func() {
	c := ch.c
	c.mu.Lock()
	id := ch.nextSub
	ch.nextSub++
	ch.subs[id] = s
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		delete(ch.subs, id)
		c.mu.Unlock()
	}
}

// snapshot returns the matching subscriptions in subscription order.
func (ch *Channel) snapshot(match func(*subscription) bool) []*subscription {
	c := ch.c
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*subscription
	for id := 0; id < ch.nextSub; id++ {
		if s := ch.subs[id]; s != nil && match(s) {
			out = append(out, s)
		}
	}
	return out
}

func (c *Client) fire(fs []func()) {
	for _, f := range fs {
		c.disp.push(f, false, nil)
	}
}

// setStateLocked changes the state, wakes waiters and returns the
// callbacks to run.
func (ch *Channel) setStateLocked(s ChannelState, err error) []func() {
	ch.state = s
	ch.err = err
	close(ch.wait)
	ch.wait = make(chan struct{})
	return []func(){func() {
		for _, sub := range ch.snapshot(func(s *subscription) bool { return s.onState != nil }) {
			sub.onState(s, err)
		}
	}}
}

// terminateLocked ends the membership (declined or closed): queued
// messages drop, pending requests fail, the client forgets the channel.
func (ch *Channel) terminateLocked(s ChannelState, err error) []func() {
	c := ch.c
	for _, e := range ch.queue {
		c.uncountLocked(e)
	}
	ch.queue = nil
	ch.presence = nil
	ch.joinID = ""
	failWith := error(ErrNotJoined)
	if err != nil {
		failWith = fmt.Errorf("%w: %w", ErrNotJoined, err)
		if errors.Is(err, ErrClosed) || c.state == StateClosed {
			failWith = err
		}
	}
	for id, p := range c.pending {
		if p.ch == ch {
			p.done <- result{err: failWith}
			delete(c.pending, id)
		}
	}
	if c.channels[ch.name] == ch {
		delete(c.channels, ch.name)
	}
	return ch.setStateLocked(s, err)
}

// handleLocked processes a message for this channel (reader goroutine).
func (ch *Channel) handleLocked(m *Message) []func() {
	c := ch.c
	switch ch.state {
	case ChannelJoining, ChannelStalled:
		// Only the answer to the current join matters; anything before the
		// ACKNOWLEDGE is dropped (docs/protocol.md §4.3).
		if ch.joinID == "" || m.RequestID != ch.joinID {
			return nil
		}
		if m.Action == actionError || m.Event == eventUnauthorized {
			return ch.terminateLocked(ChannelDeclined, serverError(m))
		}
		if m.Action == actionSystem && m.Event == eventAcknowledge {
			fire := ch.setStateLocked(ChannelJoined, nil)
			if len(ch.queue) > 0 {
				c.enqueueLocked(ch.queue...)
				ch.queue = nil
			}
			return fire
		}
		return nil
	case ChannelJoined:
		if m.Action == actionPresence {
			var p struct {
				Changed  map[string]any   `json:"changed"`
				Presence []map[string]any `json:"presence"`
			}
			if err := json.Unmarshal(m.Payload, &p); err != nil {
				return nil
			}
			ch.presence = p.Presence
			ev := PresenceEvent{Type: m.Event, Changed: p.Changed, Presence: p.Presence}
			return []func(){func() {
				for _, s := range ch.snapshot(func(s *subscription) bool {
					return s.onPresence != nil && (s.presType == "" || s.presType == ev.Type)
				}) {
					s.onPresence(ev)
				}
			}}
		}
		c.resolveLocked(ch, m)
		msg := *m
		fire := []func(){func() {
			for _, s := range ch.snapshot(func(s *subscription) bool {
				return s.onMsg != nil && (s.event == "" || s.event == msg.Event)
			}) {
				s.onMsg(msg)
			}
		}}
		if m.Action == actionSystem && m.Event == eventKickedOut {
			e := serverError(m)
			e.Code = eventKickedOut
			if e.Status == 500 {
				e.Status = 403
			}
			fire = append(fire, ch.terminateLocked(ChannelClosed, e)...)
		}
		return fire
	}
	return nil
}
