package client

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Message is one message from the server on a channel (or on the
// connection-level channel "ENDPOINT").
type Message struct {
	// Channel is the channel name the message is for.
	Channel string
	// Action is BROADCAST, SYSTEM (replies, join-handler messages,
	// evictions) or ERROR.
	Action string
	// Event is the application's event name, or a fixed name for system
	// messages (kicked_out, kicked, HANDLER_NOT_FOUND ...).
	Event string
	// RequestID is the id of the request this message answers or was
	// triggered by (docs/protocol.md §2.3).
	RequestID string
	// Payload is the message's JSON object, as received.
	Payload json.RawMessage
}

// Decode unmarshals the payload into v.
func (m Message) Decode(v any) error { return json.Unmarshal(m.Payload, v) }

// PresenceEvent is one presence change on a channel (docs/protocol.md §8.1).
type PresenceEvent struct {
	// Type is JOIN, UPDATE or LEAVE.
	Type string
	// Changed is the presence of the member the change is about (for
	// UPDATE the new value, for LEAVE the last one).
	Changed map[string]any
	// Presence is the channel's complete list after the change, in the
	// order members were first tracked.
	Presence []map[string]any
}

// Presence event types.
const (
	PresenceJoin   = "JOIN"
	PresenceUpdate = "UPDATE"
	PresenceLeave  = "LEAVE"
)

// Wire constants (docs/protocol.md §2.2).
const (
	actionJoin      = "JOIN_CHANNEL"
	actionLeave     = "LEAVE_CHANNEL"
	actionBroadcast = "BROADCAST"
	actionConnect   = "CONNECT"
	actionSystem    = "SYSTEM"
	actionPresence  = "PRESENCE"
	actionError     = "ERROR"

	eventConnection   = "CONNECTION"
	eventAcknowledge  = "ACKNOWLEDGE"
	eventUnauthorized = "UNAUTHORIZED"
	eventKickedOut    = "kicked_out"

	endpointChannel = "ENDPOINT"
)

type wireMessage struct {
	Action      string          `json:"action"`
	Event       string          `json:"event"`
	ChannelName string          `json:"channelName"`
	RequestID   string          `json:"requestId"`
	Payload     json.RawMessage `json:"payload"`
}

var errPayloadNotObject = errors.New("client: payload must encode as a JSON object")

// encodePayload marshals an application payload, which the protocol
// requires to be a JSON object; nil becomes {}.
func encodePayload(v any) (json.RawMessage, error) {
	if v == nil {
		return json.RawMessage("{}"), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return json.RawMessage("{}"), nil
	}
	if len(b) == 0 || b[0] != '{' {
		return nil, errPayloadNotObject
	}
	return b, nil
}

func encodeMessage(action, event, channel, requestID string, payload json.RawMessage) []byte {
	b, _ := json.Marshal(wireMessage{Action: action, Event: event, ChannelName: channel, RequestID: requestID, Payload: payload})
	return b
}

// splitFrame yields the messages of one text frame: servers may put several
// messages in one frame separated by "\n" (docs/protocol.md §1.4).
func splitFrame(data []byte, yield func(*Message)) (bad int) {
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var w wireMessage
		if err := json.Unmarshal(line, &w); err != nil || w.Action == "" {
			bad++
			continue
		}
		if len(w.Payload) == 0 || w.Payload[0] != '{' {
			w.Payload = json.RawMessage("{}")
		}
		yield(&Message{Channel: w.ChannelName, Action: w.Action, Event: w.Event, RequestID: w.RequestID, Payload: w.Payload})
	}
	return bad
}
