package pondsocket

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	"github.com/pondsocket/pondsocket/cluster"
	"github.com/pondsocket/pondsocket/internal/protocol"
)

// Cluster mode (docs/distributed.md). Each node keeps, per live channel,
// its local members and the users it knows on other nodes (instance.remote)
// with their assigns and presence. Local changes are published as
// distributed-protocol messages; messages from other nodes update the
// remote users and are delivered to the local members. A node serves a
// channel (subscribes to its topic) while it has local members.
//
// Differences from the reference that stay wire-compatible:
//   - STATE_RESPONSE lists only the responder's own users, so every user is
//     attributed to the node that really holds it (§8 point 10);
//   - a STATE_RESPONSE is taken as the responder's complete list: its users
//     that the list omits are forgotten, and presence and assigns that
//     differ are updated (the reference only adds unknown users). Users the
//     list names that this node attributes to another node are left alone
//     (a reference responder lists every user it knows);
//   - a node also publishes STATE_RESPONSE unasked, when it resynchronises
//     (cluster package doc, "Healing");
//   - an evicted remote user gets kicked_out once (§8 point 8): the
//     evicting node publishes "kicked" to everyone and EVICT_USER, and the
//     owning node sends kicked_out and runs the leave handler;
//   - USER_MESSAGE is not published when every recipient is local and the
//     node knows no other node at all (cluster.Node.Alone): not on the
//     strength of a membership view that a node's death or an outage may
//     have emptied.

// clusterNode is what the channel layer needs of a cluster node
// (*cluster.Node implements it).
type clusterNode interface {
	ID() string
	Subscribe(endpointPattern, channelName string) error
	Unsubscribe(endpointPattern, channelName string) error
	Publish(e *cluster.Envelope)
	// Alone reports that no other node is known to exist (none alive, none
	// declared down since) and the bus is reachable.
	Alone() bool
}

// AttachCluster makes the server a node of a cluster; call before serving.
// The caller starts the node with the server as its cluster.Handler.
func (s *hub) AttachCluster(n clusterNode) { s.node = n }

func (ep *Endpoint) publish(in *instance, e *cluster.Envelope) {
	n := ep.srv.node
	if n == nil {
		return
	}
	e.EndpointName = cluster.EndpointName(ep.path)
	e.ChannelName = in.name
	n.Publish(e)
}

// --- local changes → the bus ---------------------------------------------

// clusterJoined runs after a local user was admitted: it subscribes the
// node to a channel it starts serving, announces the user, and asks the
// others for the channel's state when this node knew nobody there.
func (ep *Endpoint) clusterJoined(in *instance, m *member, first, firstOfUser bool) {
	n := ep.srv.node
	if n == nil {
		return
	}
	if first {
		if err := n.Subscribe(ep.path, in.name); err != nil {
			ep.srv.log.Warn("cluster subscribe failed; the channel is served locally only", "channel", in.name, "err", err)
		}
	}
	in.mu.RLock()
	assigns := marshalAssigns(m.assigns)
	alone := len(in.list) == 1 && len(in.remote) == 0
	in.mu.RUnlock()
	if firstOfUser { // the user's other connections here announced it already
		ep.publish(in, &cluster.Envelope{Type: cluster.UserJoined, UserID: m.c.id, Presence: emptyObject, Assigns: assigns})
	}
	if first || alone {
		ep.publish(in, &cluster.Envelope{Type: cluster.StateRequest, FromNode: n.ID()})
	}
}

// clusterLeft runs after a local connection left: the others hear that
// the user left when it was its last connection here, or that its
// presence went when it was the last one tracking it; how.empty reports
// the node stopped serving the channel.
func (ep *Endpoint) clusterLeft(in *instance, userID string, how leftHow) {
	n := ep.srv.node
	if n == nil {
		return
	}
	switch {
	case how.lastOfUser:
		ep.publish(in, &cluster.Envelope{Type: cluster.UserLeft, UserID: userID})
	case how.presGone:
		ep.publish(in, &cluster.Envelope{Type: cluster.PresenceRemoved, UserID: userID})
	}
	if how.empty {
		if err := n.Unsubscribe(ep.path, in.name); err != nil {
			ep.srv.log.Debug("cluster unsubscribe", "channel", in.name, "err", err)
		}
	}
}

func marshalAssigns(a map[string]any) json.RawMessage {
	if len(a) == 0 {
		return emptyObject
	}
	b, err := json.Marshal(a)
	if err != nil || len(b) == 0 || b[0] != '{' {
		return emptyObject
	}
	return b
}

// publishMessage publishes a channel message to the other nodes' members.
func (ep *Endpoint) publishMessage(in *instance, event, reqID, from string, payload json.RawMessage, r recipients) {
	if ep.srv.node == nil || r.tracked || r.self != nil {
		return
	}
	var rd cluster.Recipients
	switch {
	case r.only != nil:
		// only the ids that live elsewhere
		in.mu.RLock()
		for _, id := range r.only {
			if _, ok := in.remote[id]; ok {
				rd.IDs = append(rd.IDs, id)
			}
		}
		in.mu.RUnlock()
		if len(rd.IDs) == 0 {
			return
		}
	case r.except != "":
		rd.ExceptSender = true
		from = r.except
	default:
		rd.All = true
	}
	in.mu.RLock()
	none := len(in.remote) == 0
	in.mu.RUnlock()
	if none && rd.IDs == nil && ep.srv.node.Alone() {
		// no other node exists; one that starts later gets the state, not
		// the history
		return
	}
	if from == "" {
		from = protocol.SenderChannel
	}
	ep.publish(in, &cluster.Envelope{Type: cluster.UserMessage, FromUserID: from, Event: event, Payload: payload,
		RequestID: reqID, Recipients: rd})
}

// --- the bus → local state -------------------------------------------------

// HandleMessage applies a message from another node (cluster.Handler).
// It runs on the node's delivery goroutine, in order per channel.
func (s *hub) HandleMessage(e *cluster.Envelope) {
	if s.handleControl(e) {
		return
	}
	ep := s.endpointByName(e.EndpointName)
	if ep == nil {
		return
	}
	in, ok := ep.instances.get(e.ChannelName)
	if !ok || in.isDead() {
		return // this node has no member there
	}
	switch e.Type {
	case cluster.UserMessage:
		ep.deliverRemote(in, e)
	case cluster.UserJoined:
		in.mu.Lock()
		in.rememberLocked(e.UserID, e.SourceNodeID, e.Assigns)
		in.mu.Unlock()
	case cluster.PresenceUpdate:
		in.mu.Lock()
		ru := in.rememberLocked(e.UserID, e.SourceNodeID, nil)
		if ru != nil && len(e.Presence) > 0 {
			in.remotePresenceLocked(ru, e.SourceNodeID, clone(e.Presence))
		}
		in.mu.Unlock()
	case cluster.PresenceRemoved:
		in.mu.Lock()
		if ru := in.remote[e.UserID]; ru != nil {
			in.remotePresenceLocked(ru, e.SourceNodeID, nil)
		}
		in.mu.Unlock()
	case cluster.AssignsUpdate:
		in.mu.Lock()
		if ru := in.remote[e.UserID]; ru != nil {
			ru.epoch = in.syncEpoch
			switch {
			case len(e.Assigns) > 0:
				ru.assigns = clone(e.Assigns)
			case e.Key != "":
				var a map[string]any
				_ = json.Unmarshal(ru.assigns, &a)
				if a == nil {
					a = map[string]any{}
				}
				var v any
				_ = json.Unmarshal(e.Value, &v)
				a[e.Key] = v
				ru.assigns = marshalAssigns(a)
			}
		}
		in.mu.Unlock()
	case cluster.UserLeft:
		in.mu.Lock()
		in.forgetNodeLocked(e.UserID, e.SourceNodeID)
		in.mu.Unlock()
	case cluster.EvictUser:
		if in.member(e.UserID) != nil {
			reason := e.Reason
			if reason == "" {
				reason = DefaultEvictReason
			}
			out, _ := json.Marshal(map[string]any{"message": reason, "code": 403})
			in.lobby.sendLocal(in, protocol.ActionSystem, "kicked_out", newID(), out, recipients{only: []string{e.UserID}})
			ep.removeMember(in, e.UserID, LeaveEvicted+":"+reason)
			return
		}
		in.mu.Lock()
		in.forgetLocked(e.UserID)
		in.mu.Unlock()
	case cluster.UserRemove:
		if in.member(e.UserID) != nil {
			ep.removeMember(in, e.UserID, LeaveRemoved)
			return
		}
		in.mu.Lock()
		in.forgetLocked(e.UserID)
		in.mu.Unlock()
	case cluster.UserGetRequest:
		in.mu.RLock()
		m := in.lookupLocked(e.UserID)
		var assigns, pres json.RawMessage
		if m != nil {
			assigns = marshalAssigns(m.assigns)
			pres = emptyObject
			if m.pres != nil {
				pres = m.pres.raw
			}
		}
		in.mu.RUnlock()
		if m != nil {
			ep.publish(in, &cluster.Envelope{Type: cluster.UserGetResponse, UserID: e.UserID, RequestID: e.RequestID, Assigns: assigns, Presence: pres})
		}
	case cluster.StateRequest:
		// published under the lock: a member in this snapshot that leaves
		// next has its USER_LEFT queued after it
		in.mu.RLock()
		if len(in.list) > 0 {
			ep.publish(in, &cluster.Envelope{Type: cluster.StateResponse, Users: in.ownStateLocked()})
		}
		in.mu.RUnlock()
	case cluster.StateResponse:
		in.mu.Lock()
		in.applyStateLocked(e.SourceNodeID, e.Users)
		in.mu.Unlock()
	}
}

// ownStateLocked lists the local members for a STATE_RESPONSE (in.mu held).
func (in *instance) ownStateLocked() []cluster.StateUser {
	users := make([]cluster.StateUser, 0, len(in.list))
	var seen map[string]int // a user with several connections is listed once
	for _, m := range in.list {
		if i, dup := seen[m.c.id]; dup {
			if m.pres != nil {
				users[i].Presence = m.pres.raw
			}
			continue
		}
		if !m.c.alone() {
			if seen == nil {
				seen = make(map[string]int)
			}
			seen[m.c.id] = len(users)
		}
		u := cluster.StateUser{ID: m.c.id, Assigns: marshalAssigns(m.assigns), Presence: emptyObject}
		if m.pres != nil {
			u.Presence = m.pres.raw
		}
		users = append(users, u)
	}
	return users
}

// applyStateLocked takes a STATE_RESPONSE as node's complete list of its
// users in the channel (in.mu held): unknown users are added, known ones
// get its assigns and presence, and node's users it omits are forgotten.
// A listed user this node attributes to another node is left alone.
func (in *instance) applyStateLocked(node string, users []cluster.StateUser) {
	listed := make(map[string]struct{}, len(users))
	for _, u := range users {
		listed[u.ID] = struct{}{}
		ru := in.remote[u.ID]
		switch {
		case ru != nil && !ru.on(node) && len(ru.nodes) > 0:
			continue // attributed to other nodes (a reference node lists every user it knows)
		case ru == nil && in.lookupLocked(u.ID) != nil:
			continue // ours, and the responder never announced it as its own
		}
		ru = in.rememberLocked(u.ID, node, u.Assigns)
		if ru == nil {
			continue
		}
		if len(u.Presence) <= 2 { // {}: not tracked
			in.remotePresenceLocked(ru, node, nil)
		} else {
			in.remotePresenceLocked(ru, node, clone(u.Presence))
		}
	}
	for id, ru := range in.remote {
		if _, ok := listed[id]; !ok && ru.on(node) {
			in.forgetNodeLocked(id, node)
		}
	}
}

// Resync restates this node's membership (cluster.Resyncer): in every
// channel it serves it publishes its own users (STATE_RESPONSE, unasked)
// and asks for everybody else's (STATE_REQUEST). With r.Sweep, remote
// users that nothing confirms within r.Window are forgotten: this node may
// have missed their USER_LEFT. See the cluster package doc, "Healing".
func (s *hub) Resync(r cluster.Resync) {
	if s.node == nil {
		return
	}
	type round struct {
		in    *instance
		epoch uint64
	}
	var rounds []round
	for _, ep := range s.Endpoints() {
		ep.instances.each(func(_ string, in *instance) bool {
			in.mu.Lock()
			if !in.dead && len(in.list) > 0 {
				in.syncEpoch++
				rounds = append(rounds, round{in, in.syncEpoch})
				// under the lock, as for a STATE_REQUEST's answer
				ep.publish(in, &cluster.Envelope{Type: cluster.StateResponse, Users: in.ownStateLocked()})
				ep.publish(in, &cluster.Envelope{Type: cluster.StateRequest, FromNode: s.node.ID()})
			}
			in.mu.Unlock()
			return true
		})
	}
	time.AfterFunc(r.Window, func() {
		ghosts := 0
		if r.Sweep {
			for _, rd := range rounds {
				rd.in.mu.Lock()
				for id, ru := range rd.in.remote {
					if ru.epoch < rd.epoch {
						rd.in.forgetLocked(id)
						ghosts++
					}
				}
				rd.in.mu.Unlock()
			}
		}
		s.log.Info("cluster: resynchronised", "reason", string(r.Reason), "peer", r.Peer, "channels", len(rounds), "ghosts_forgotten", ghosts)
	})
}

// NodeDown drops every user of a node that stopped sending heartbeats
// (cluster.Handler).
func (s *hub) NodeDown(nodeID string) {
	for _, ep := range s.Endpoints() {
		ep.instances.each(func(_ string, in *instance) bool {
			in.mu.Lock()
			for id, ru := range in.remote {
				if ru.on(nodeID) {
					in.forgetNodeLocked(id, nodeID)
				}
			}
			in.mu.Unlock()
			return true
		})
	}
}

func (s *hub) endpointByName(name string) *Endpoint {
	s.mu.RLock()
	eps := s.endpoints // appended to, never changed in place: no copy needed
	s.mu.RUnlock()
	for _, ep := range eps {
		if strings.TrimLeft(ep.path, "/") == name {
			return ep
		}
	}
	return nil
}

// rememberLocked records that node holds the user (in.mu held). The same
// user may also have connections here: local and remote members of one
// user share its presence entry.
func (in *instance) rememberLocked(id, node string, assigns json.RawMessage) *remoteUser {
	if id == "" {
		return nil
	}
	if in.remote == nil {
		in.remote = make(map[string]*remoteUser)
	}
	ru := in.remote[id]
	if ru == nil {
		ru = &remoteUser{id: id, assigns: emptyObject}
		in.remote[id] = ru
	}
	ru.nodes = addTo(ru.nodes, node)
	ru.epoch = in.syncEpoch
	if len(assigns) > 0 {
		ru.assigns = clone(assigns)
	}
	return ru
}

// clone copies bus bytes that outlive the message (the decoded envelope
// may alias the backend's buffer).
func clone(b json.RawMessage) json.RawMessage { return append(json.RawMessage(nil), b...) }

// remotePresenceLocked records that node tracks the user's presence with
// value p, or (p == nil) no longer does, and notifies the local tracked
// members when the user's one entry appears, changes or goes.
func (in *instance) remotePresenceLocked(ru *remoteUser, node string, p json.RawMessage) {
	if p == nil {
		ru.tracking = dropFrom(ru.tracking, node)
		if len(ru.tracking) == 0 && ru.pres != nil {
			rec := ru.pres
			ru.pres = nil
			rec.remote = false
			in.releaseLocked(rec)
		}
		return
	}
	ru.tracking = addTo(ru.tracking, node)
	rec := ru.pres
	if rec == nil {
		rec = in.userPresenceLocked(ru.id) // tracked by a local connection
	}
	switch {
	case rec == nil:
		rec = in.trackLocked(ru.id, p)
		in.presenceChangedLocked(protocol.EventJoin, p)
	case !bytes.Equal(rec.raw, p):
		rec.raw = p
		in.presenceChangedLocked(protocol.EventUpdate, p)
	}
	rec.remote = true
	ru.pres = rec
}

// forgetLocked drops a remote user, on every node, and its presence.
func (in *instance) forgetLocked(id string) {
	ru := in.remote[id]
	if ru == nil {
		return
	}
	for _, node := range append([]string(nil), ru.tracking...) {
		in.remotePresenceLocked(ru, node, nil)
	}
	delete(in.remote, id)
}

// forgetNodeLocked records that node no longer holds the user; the user
// is forgotten when no node does.
func (in *instance) forgetNodeLocked(id, node string) {
	ru := in.remote[id]
	if ru == nil {
		return
	}
	in.remotePresenceLocked(ru, node, nil)
	ru.nodes = dropFrom(ru.nodes, node)
	if len(ru.nodes) == 0 {
		in.forgetLocked(id)
	}
}

// deliverRemote hands a USER_MESSAGE to the local recipients. Its action is
// not carried on the bus: remote recipients always get BROADCAST.
func (ep *Endpoint) deliverRemote(in *instance, e *cluster.Envelope) {
	var r recipients
	switch rd := e.Recipients; {
	case rd.All:
		r = recipients{all: true}
	case rd.ExceptSender:
		r = recipients{all: true, except: e.FromUserID}
	default:
		if len(rd.IDs) == 0 {
			return
		}
		// the named users that are members here; the others are elsewhere
		r = recipients{only: rd.IDs, skipAbsent: true}
	}
	payload := e.Payload
	if len(payload) == 0 {
		payload = emptyObject
	}
	in.lobby.sendLocal(in, protocol.ActionServerBroadcast, e.Event, e.RequestID, payload, r)
}
