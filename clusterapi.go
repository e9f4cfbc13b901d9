package pondsocket

import (
	"encoding/json"

	"github.com/pondsocket/pondsocket/cluster"
	"github.com/pondsocket/pondsocket/internal/protocol"
)

// Calls for a backend that does not know where a channel's members or a
// user's connections are: each acts on this node and, in cluster mode, on
// every other node, whether or not this node has a member of the channel
// (docs/distributed.md §8.5).
//
// A channel that is not live here is reached through its bus topic with
// the distributed protocol's own messages (USER_MESSAGE, EVICT_USER), so
// reference nodes serving it take part. Closing a user's connections has
// no message in that protocol: it travels as a USER_MESSAGE on a control
// topic only these nodes subscribe to (controlEndpoint, controlChannel).

// controlEndpoint and controlChannel name the control topic; the endpoint
// is no route a client can reach (it starts with "~").
const (
	controlEndpoint   = "/~pondsocket"
	controlChannel    = "/control"
	controlDisconnect = "disconnect"
)

// BroadcastChannel sends event with payload to the members of the channel
// name on every node: all of them, only the users in to (each of their
// connections), or all but the user except. Without a cluster it is
// Channel.Broadcast and friends on the live channel, and ErrNotMember when
// the channel has no member here (or a user of to is not one); in a
// cluster the node cannot know the other nodes' members, so a channel
// with no member here is published without that check.
func (ep *Endpoint) BroadcastChannel(name, event string, payload any, to []string, except string) error {
	raw, err := protocol.MarshalPayload(payload)
	if err != nil {
		return err
	}
	r := recipients{all: to == nil, only: to, except: except}
	if in, ok := ep.instances.get(name); ok && !in.isDead() {
		if to != nil && ep.srv.node != nil {
			// users this node does not know in the channel may be on a
			// node it has not heard from yet: deliver to the known ones,
			// publish to all named
			if err := in.lobby.sendLocal(in, protocol.ActionServerBroadcast, event, newID(), raw, recipients{only: to, skipAbsent: true}); err != nil {
				return err
			}
			ep.publishByName(name, &cluster.Envelope{Type: cluster.UserMessage, FromUserID: protocol.SenderChannel, Event: event,
				Payload: raw, RequestID: newID(), Recipients: cluster.Recipients{IDs: to}})
			return nil
		}
		return in.lobby.send(in, protocol.ActionServerBroadcast, event, newID(), raw, r)
	}
	if ep.srv.node == nil {
		return ErrNotMember
	}
	e := &cluster.Envelope{Type: cluster.UserMessage, FromUserID: protocol.SenderChannel, Event: event, Payload: raw, RequestID: newID()}
	switch {
	case to != nil:
		e.Recipients.IDs = to
	case except != "":
		e.Recipients.ExceptSender, e.FromUserID = true, except
	default:
		e.Recipients.All = true
	}
	ep.publishByName(name, e)
	return nil
}

// EvictFromChannel evicts userID from the channel name on every node
// (Channel.EvictUser where the channel is live; the nodes serving it
// otherwise). ErrNotMember when there is no cluster and the user is not
// a member here.
func (ep *Endpoint) EvictFromChannel(name, userID, reason string) error {
	if reason == "" {
		reason = DefaultEvictReason
	}
	if ch, ok := ep.Channel(name); ok {
		err := ch.EvictUser(userID, reason)
		if err == ErrNotMember && ep.srv.node != nil {
			ep.evictByName(name, userID, reason) // on a node this one has not heard from yet
			return nil
		}
		return err
	}
	if ep.srv.node == nil {
		return ErrNotMember
	}
	ep.evictByName(name, userID, reason)
	return nil
}

// evictByName publishes an eviction as evictRemote does, for a channel
// with no member here.
func (ep *Endpoint) evictByName(name, userID, reason string) {
	all, _ := json.Marshal(map[string]any{"userId": userID, "reason": reason})
	ep.publishByName(name, &cluster.Envelope{Type: cluster.UserMessage, FromUserID: protocol.SenderChannel, Event: "kicked",
		Payload: all, RequestID: newID(), Recipients: cluster.Recipients{All: true}})
	ep.publishByName(name, &cluster.Envelope{Type: cluster.EvictUser, UserID: userID, Reason: reason})
}

// DisconnectUser closes every connection of userID on this endpoint with
// code and reason, here and, in cluster mode, on the other nodes. It
// returns how many were closed here.
func (ep *Endpoint) DisconnectUser(userID string, code int, reason string) int {
	n := 0
	ep.eachConn(userID, func(c *Client) bool { c.Close(code, reason); n++; return true })
	if ep.srv.node != nil {
		p, _ := json.Marshal(disconnectOrder{Endpoint: cluster.EndpointName(ep.path), User: userID, Code: code, Reason: reason})
		ep.srv.node.Publish(&cluster.Envelope{Type: cluster.UserMessage, EndpointName: cluster.EndpointName(controlEndpoint),
			ChannelName: controlChannel, FromUserID: protocol.SenderChannel, Event: controlDisconnect, Payload: p,
			RequestID: newID(), Recipients: cluster.Recipients{All: true}})
	}
	return n
}

type disconnectOrder struct {
	Endpoint string `json:"endpoint"`
	User     string `json:"user"`
	Code     int    `json:"code"`
	Reason   string `json:"reason"`
}

// publishByName publishes e on the topic of the channel name.
func (ep *Endpoint) publishByName(name string, e *cluster.Envelope) {
	e.EndpointName = cluster.EndpointName(ep.path)
	e.ChannelName = name
	ep.srv.node.Publish(e)
}

// handleControl applies a message of the control topic; false when e is
// not one.
func (s *hub) handleControl(e *cluster.Envelope) bool {
	if e.EndpointName != cluster.EndpointName(controlEndpoint) {
		return false
	}
	if e.Type == cluster.UserMessage && e.Event == controlDisconnect {
		var o disconnectOrder
		if json.Unmarshal(e.Payload, &o) == nil && o.User != "" {
			if ep := s.endpointByName(o.Endpoint); ep != nil {
				ep.eachConn(o.User, func(c *Client) bool { c.Close(o.Code, o.Reason); return true })
			}
		}
	}
	return true
}

// subscribeControl makes the node receive the control topic.
func (s *hub) subscribeControl() error {
	if s.node == nil {
		return nil
	}
	return s.node.Subscribe(controlEndpoint, controlChannel)
}
