package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Protocol and Version identify the distributed protocol (docs/distributed.md §3).
const (
	Protocol = "pondsocket.distributed"
	Version  = 1
)

// HeartbeatName is the endpointName and channelName of a NODE_HEARTBEAT, and
// the last segment of the heartbeat topic.
const HeartbeatName = "__heartbeat__"

// Type is the type of a distributed message (docs/distributed.md §4).
type Type string

// The 13 message types.
const (
	UserMessage     Type = "USER_MESSAGE"
	PresenceUpdate  Type = "PRESENCE_UPDATE"
	PresenceRemoved Type = "PRESENCE_REMOVED"
	AssignsUpdate   Type = "ASSIGNS_UPDATE"
	EvictUser       Type = "EVICT_USER"
	UserRemove      Type = "USER_REMOVE"
	UserGetRequest  Type = "USER_GET_REQUEST"
	UserGetResponse Type = "USER_GET_RESPONSE"
	UserJoined      Type = "USER_JOINED"
	UserLeft        Type = "USER_LEFT"
	StateRequest    Type = "STATE_REQUEST"
	StateResponse   Type = "STATE_RESPONSE"
	NodeHeartbeat   Type = "NODE_HEARTBEAT"
)

// Types lists the 13 message types in the order of docs/distributed.md §4.
var Types = [...]Type{
	UserMessage, PresenceUpdate, PresenceRemoved, AssignsUpdate, EvictUser, UserRemove,
	UserGetRequest, UserGetResponse, UserJoined, UserLeft, StateRequest, StateResponse, NodeHeartbeat,
}

// Valid reports whether t is one of the 13 types.
func (t Type) Valid() bool {
	_, ok := typeSchemas[t]
	return ok
}

// ErrInvalidEnvelope is wrapped by every error Decode returns for a message a
// receiver must drop, and by Encode for an envelope it cannot write.
var ErrInvalidEnvelope = errors.New("invalid distributed envelope")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidEnvelope}, args...)...)
}

// Envelope is one distributed message: the eight envelope fields every
// message carries, then the fields of its type. Which of the per-type fields
// travel is decided by Type alone (see Encode); the others are ignored.
//
// json.RawMessage fields hold raw JSON. After Decode they are sub-slices of
// the decoded bytes (no copy): do not modify those bytes while the Envelope
// is in use.
type Envelope struct {
	// Envelope, present on every message.
	Protocol     string // "pondsocket.distributed"
	Version      int    // 1
	Type         Type
	MessageID    string
	SourceNodeID string
	EndpointName string // endpoint pattern without leading '/'; "__heartbeat__" for heartbeats
	ChannelName  string // channel name verbatim; "__heartbeat__" for heartbeats
	Timestamp    int64  // epoch milliseconds

	// Per-type fields; the wire key is in the comment.
	FromUserID string          // fromUserId: USER_MESSAGE (a user id or "CHANNEL")
	Event      string          // event: USER_MESSAGE
	Payload    json.RawMessage // payload: USER_MESSAGE; {} when empty
	RequestID  string          // requestId: USER_MESSAGE, USER_GET_REQUEST, USER_GET_RESPONSE
	Recipients Recipients      // recipientDescriptor: USER_MESSAGE
	UserID     string          // userId: every per-user type
	Presence   json.RawMessage // presence: PRESENCE_UPDATE, USER_GET_RESPONSE, USER_JOINED; {} when empty
	Assigns    json.RawMessage // assigns: ASSIGNS_UPDATE (optional there), USER_GET_RESPONSE, USER_JOINED; {} when empty
	Reason     string          // reason: EVICT_USER
	FromNode   string          // fromNode: USER_GET_REQUEST, STATE_REQUEST (informational)
	Users      []StateUser     // users: STATE_RESPONSE
	NodeID     string          // nodeId: NODE_HEARTBEAT (= SourceNodeID)

	// Optional ASSIGNS_UPDATE fields (the Go port's per-key form): sent only
	// when Key is not empty. A receiver applies them only when Assigns is
	// absent.
	Key   string          // key
	Value json.RawMessage // value; null when empty
}

// StateUser is one element of STATE_RESPONSE.users.
type StateUser struct {
	ID       string          `json:"id"`
	Assigns  json.RawMessage `json:"assigns"`
	Presence json.RawMessage `json:"presence"` // {} if none
}

// Recipients is USER_MESSAGE.recipientDescriptor: the string "ALL_USERS"
// (All), the string "ALL_EXCEPT_SENDER" (ExceptSender) or an array of user
// ids (IDs; an empty array when neither flag is set).
type Recipients struct {
	All          bool
	ExceptSender bool
	IDs          []string
}

const (
	allUsersDescriptor        = "ALL_USERS"
	allExceptSenderDescriptor = "ALL_EXCEPT_SENDER"
)

// AllUsers is the "ALL_USERS" descriptor.
func AllUsers() Recipients { return Recipients{All: true} }

// AllExceptSender is the "ALL_EXCEPT_SENDER" descriptor.
func AllExceptSender() Recipients { return Recipients{ExceptSender: true} }

// UserIDs is the descriptor naming these users.
func UserIDs(ids ...string) Recipients { return Recipients{IDs: ids} }

// Includes reports whether the user userID is a recipient of a message sent
// by fromUserID (§5.3 USER_MESSAGE: ALL_USERS = everyone, ALL_EXCEPT_SENDER
// = all but fromUserID, array = the listed users).
func (r Recipients) Includes(userID, fromUserID string) bool {
	switch {
	case r.All:
		return true
	case r.ExceptSender:
		return userID != fromUserID
	}
	for _, id := range r.IDs {
		if id == userID {
			return true
		}
	}
	return false
}

// MarshalJSON writes "ALL_USERS", "ALL_EXCEPT_SENDER" or an array of ids.
func (r Recipients) MarshalJSON() ([]byte, error) {
	return appendRecipients(nil, r)
}

// UnmarshalJSON accepts exactly the three forms; anything else is an error
// wrapping ErrInvalidEnvelope.
func (r *Recipients) UnmarshalJSON(data []byte) error {
	data = trimSpace(data)
	if len(data) == 0 || !json.Valid(data) {
		return invalidf("recipientDescriptor is not valid JSON")
	}
	return r.parse(data)
}

// parse reads a validated JSON value.
func (r *Recipients) parse(raw []byte) error {
	switch string(raw) { // the usual spellings, without unquoting
	case `"` + allUsersDescriptor + `"`:
		*r = Recipients{All: true}
		return nil
	case `"` + allExceptSenderDescriptor + `"`:
		*r = Recipients{ExceptSender: true}
		return nil
	}
	switch raw[0] {
	case '"':
		s, err := unquote(raw)
		if err != nil {
			return invalidf("recipientDescriptor: %v", err)
		}
		switch s {
		case allUsersDescriptor:
			*r = Recipients{All: true}
		case allExceptSenderDescriptor:
			*r = Recipients{ExceptSender: true}
		default:
			return invalidf("recipientDescriptor %q is not ALL_USERS, ALL_EXCEPT_SENDER or an array", s)
		}
		return nil
	case '[':
		ids := []string{}
		err := eachElement(raw, func(v []byte) error {
			if v[0] != '"' {
				return invalidf("recipientDescriptor array holds a non-string")
			}
			s, err := unquote(v)
			if err != nil {
				return invalidf("recipientDescriptor: %v", err)
			}
			ids = append(ids, s)
			return nil
		})
		if err != nil {
			return err
		}
		*r = Recipients{IDs: ids}
		return nil
	}
	return invalidf("recipientDescriptor must be a string or an array")
}
