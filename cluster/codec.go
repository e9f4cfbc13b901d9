package cluster

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// field is one per-type wire field.
type field uint8

const (
	fFromUserID field = iota + 1
	fEvent
	fPayload
	fRequestID
	fRecipients
	fUserID
	fPresence
	fAssigns
	fReason
	fFromNode
	fUsers
	fNodeID
	fKey
	fValue
)

var fieldKeys = [...]string{
	fFromUserID: "fromUserId",
	fEvent:      "event",
	fPayload:    "payload",
	fRequestID:  "requestId",
	fRecipients: "recipientDescriptor",
	fUserID:     "userId",
	fPresence:   "presence",
	fAssigns:    "assigns",
	fReason:     "reason",
	fFromNode:   "fromNode",
	fUsers:      "users",
	fNodeID:     "nodeId",
	fKey:        "key",
	fValue:      "value",
}

// spec is one field of a type's schema. Encode writes every field of the
// schema (except optional key/value); Decode rejects a message that lacks a
// required one and fills the default of an absent optional one.
type spec struct {
	f        field
	required bool
}

// typeSchemas is docs/distributed.md §4, in the key order of the reference
// producer (so a message re-encoded after Decode is byte-identical to the
// reference's). A field is required on receipt only when a receiver cannot
// act without it; the rest default (§5.3: consumers MUST NOT require
// optional fields).
// typeNames maps each type's name to its constant.
var typeNames = func() map[string]Type {
	m := make(map[string]Type, len(typeSchemas))
	for t := range typeSchemas {
		m[string(t)] = t
	}
	return m
}()

var typeSchemas = map[Type][]spec{
	UserMessage:     {{fFromUserID, true}, {fEvent, true}, {fPayload, false}, {fRequestID, false}, {fRecipients, true}},
	PresenceUpdate:  {{fUserID, true}, {fPresence, true}},
	PresenceRemoved: {{fUserID, true}},
	AssignsUpdate:   {{fUserID, true}, {fAssigns, false}, {fKey, false}, {fValue, false}}, // assigns or key
	EvictUser:       {{fUserID, true}, {fReason, false}},
	UserRemove:      {{fUserID, true}},
	UserGetRequest:  {{fUserID, true}, {fRequestID, true}, {fFromNode, false}},
	UserGetResponse: {{fUserID, true}, {fRequestID, true}, {fAssigns, false}, {fPresence, false}},
	UserJoined:      {{fUserID, true}, {fPresence, false}, {fAssigns, false}},
	UserLeft:        {{fUserID, true}},
	StateRequest:    {{fFromNode, false}},
	StateResponse:   {{fUsers, true}},
	NodeHeartbeat:   {{fNodeID, false}},
}

var emptyObject = json.RawMessage(`{}`)

// Encode writes e as one distributed message: the eight envelope fields and
// exactly the fields of e.Type (docs/distributed.md §4), camelCase, version as a
// number, payload/presence/assigns as raw JSON ({} when empty). An empty
// Protocol or a zero Version is written as the constant; NodeID of a
// heartbeat defaults to SourceNodeID. The bytes are a fresh slice the caller
// owns.
func Encode(e *Envelope) ([]byte, error) {
	return AppendEncode(make([]byte, 0, 256+len(e.Payload)+len(e.Presence)+len(e.Assigns)), e)
}

// AppendEncode is Encode appending to dst.
func AppendEncode(dst []byte, e *Envelope) ([]byte, error) {
	schema, ok := typeSchemas[e.Type]
	if !ok {
		return dst, invalidf("unknown type %q", e.Type)
	}
	if e.Type == AssignsUpdate && e.Assigns == nil && e.Key == "" {
		return dst, invalidf("ASSIGNS_UPDATE needs assigns or key")
	}
	protocol, version := e.Protocol, e.Version
	if protocol == "" {
		protocol = Protocol
	}
	if version == 0 {
		version = Version
	}
	var err error
	if e.Type == NodeHeartbeat {
		// The reference writes heartbeats in this order.
		dst = append(dst, `{"protocol":`...)
		dst = appendString(dst, protocol)
		dst = append(dst, `,"version":`...)
		dst = strconv.AppendInt(dst, int64(version), 10)
		dst = append(dst, `,"type":`...)
		dst = appendString(dst, string(e.Type))
		dst = append(dst, `,"messageId":`...)
		dst = appendString(dst, e.MessageID)
		dst = append(dst, `,"endpointName":`...)
		dst = appendString(dst, e.EndpointName)
		dst = append(dst, `,"channelName":`...)
		dst = appendString(dst, e.ChannelName)
		dst = append(dst, `,"sourceNodeId":`...)
		dst = appendString(dst, e.SourceNodeID)
		dst = append(dst, `,"timestamp":`...)
		dst = strconv.AppendInt(dst, e.Timestamp, 10)
		nodeID := e.NodeID
		if nodeID == "" {
			nodeID = e.SourceNodeID
		}
		dst = append(dst, `,"nodeId":`...)
		dst = appendString(dst, nodeID)
		return append(dst, '}'), nil
	}
	dst = append(dst, `{"type":`...)
	dst = appendString(dst, string(e.Type))
	dst = append(dst, `,"endpointName":`...)
	dst = appendString(dst, e.EndpointName)
	dst = append(dst, `,"channelName":`...)
	dst = appendString(dst, e.ChannelName)
	for _, s := range schema {
		if dst, err = appendField(dst, e, s.f); err != nil {
			return dst, err
		}
	}
	dst = append(dst, `,"protocol":`...)
	dst = appendString(dst, protocol)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendInt(dst, int64(version), 10)
	dst = append(dst, `,"messageId":`...)
	dst = appendString(dst, e.MessageID)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, e.Timestamp, 10)
	dst = append(dst, `,"sourceNodeId":`...)
	dst = appendString(dst, e.SourceNodeID)
	return append(dst, '}'), nil
}

func appendKey(dst []byte, f field) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, fieldKeys[f]...)
	return append(dst, '"', ':')
}

func appendField(dst []byte, e *Envelope, f field) ([]byte, error) {
	var err error
	switch f {
	case fFromUserID:
		dst = appendString(appendKey(dst, f), e.FromUserID)
	case fEvent:
		dst = appendString(appendKey(dst, f), e.Event)
	case fPayload:
		dst, err = appendRaw(appendKey(dst, f), e.Payload, false, f)
	case fRequestID:
		dst = appendString(appendKey(dst, f), e.RequestID)
	case fRecipients:
		dst, err = appendRecipients(appendKey(dst, f), e.Recipients)
	case fUserID:
		dst = appendString(appendKey(dst, f), e.UserID)
	case fPresence:
		dst, err = appendRaw(appendKey(dst, f), e.Presence, true, f)
	case fAssigns:
		if e.Type == AssignsUpdate && e.Assigns == nil {
			return dst, nil // key/value form
		}
		dst, err = appendRaw(appendKey(dst, f), e.Assigns, true, f)
	case fReason:
		dst = appendString(appendKey(dst, f), e.Reason)
	case fFromNode:
		dst = appendString(appendKey(dst, f), e.FromNode)
	case fUsers:
		dst = append(appendKey(dst, f), '[')
		for i := range e.Users {
			u := &e.Users[i]
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"id":`...)
			dst = appendString(dst, u.ID)
			dst = append(dst, `,"assigns":`...)
			if dst, err = appendRaw(dst, u.Assigns, true, fAssigns); err != nil {
				return dst, err
			}
			dst = append(dst, `,"presence":`...)
			if dst, err = appendRaw(dst, u.Presence, true, fPresence); err != nil {
				return dst, err
			}
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	case fNodeID:
		dst = appendString(appendKey(dst, f), e.NodeID)
	case fKey:
		if e.Key != "" {
			dst = appendString(appendKey(dst, f), e.Key)
		}
	case fValue:
		if e.Key != "" {
			if len(trimSpace(e.Value)) == 0 {
				dst = append(appendKey(dst, f), "null"...)
			} else {
				dst, err = appendRaw(appendKey(dst, f), e.Value, false, f)
			}
		}
	}
	return dst, err
}

// appendRaw writes raw JSON, {} when it is empty (or null where an object is
// required).
func appendRaw(dst, raw []byte, object bool, f field) ([]byte, error) {
	raw = trimSpace(raw)
	if len(raw) == 0 || (object && string(raw) == "null") {
		return append(dst, emptyObject...), nil
	}
	if object && raw[0] != '{' {
		return dst, invalidf("%s must be a JSON object", fieldKeys[f])
	}
	if !json.Valid(raw) {
		return dst, invalidf("%s is not valid JSON", fieldKeys[f])
	}
	return append(dst, raw...), nil
}

// Decode parses one distributed message and applies the receiver checks of
// docs/distributed.md §3: valid JSON object, protocol equal to Protocol, version
// the number 1, a known type, messageId, sourceNodeId, endpointName and
// channelName strings, timestamp a number; then the fields its type
// requires (see typeSchemas), each of the right JSON type. Unknown fields
// are ignored; absent optional ones get their defaults ({} for presence,
// assigns and payload, except ASSIGNS_UPDATE.assigns which stays nil;
// nodeId = sourceNodeId). Every error wraps ErrInvalidEnvelope: the message
// must be dropped. Raw fields alias data.
//
// Decode does not drop a node's own messages: that is the Node's job.
func Decode(data []byte) (*Envelope, error) {
	data = trimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		if len(data) > 0 && validValue(data, 0, 0) == len(data) {
			return nil, invalidf("not a JSON object")
		}
		return nil, invalidf("not valid JSON")
	}
	var env [8][]byte // protocol, version, type, messageId, sourceNodeId, endpointName, channelName, timestamp
	var fields [len(fieldKeys)][]byte
	// one pass: the object is checked as json.Valid would while its
	// members are collected
	ok := walkObject(data, func(key, val []byte) {
		switch string(key) {
		case "protocol":
			env[0] = val
		case "version":
			env[1] = val
		case "type":
			env[2] = val
		case "messageId":
			env[3] = val
		case "sourceNodeId":
			env[4] = val
		case "endpointName":
			env[5] = val
		case "channelName":
			env[6] = val
		case "timestamp":
			env[7] = val
		default:
			for f := fFromUserID; f <= fValue; f++ {
				if fieldKeys[f] == string(key) {
					fields[f] = val
					break
				}
			}
		}
	})
	if !ok {
		return nil, invalidf("not valid JSON")
	}

	var err error
	e := &Envelope{}
	// the protocol and the type are compared as bytes and take the
	// constants' strings: no allocation for them
	if p := env[0]; len(p) >= 2 && p[0] == '"' && string(p[1:len(p)-1]) == Protocol {
		e.Protocol = Protocol
	} else {
		if e.Protocol, err = envString(p, "protocol"); err != nil {
			return nil, err
		}
		if e.Protocol != Protocol { // escaped characters may still spell it
			return nil, invalidf("protocol %q is not %q", e.Protocol, Protocol)
		}
		e.Protocol = Protocol
	}
	if env[1] == nil || !isNumber(env[1]) {
		return nil, invalidf("version is not a number")
	}
	if v, err := number(env[1]); err != nil || v != Version {
		return nil, invalidf("version %s is not 1", env[1])
	}
	e.Version = Version
	var schema []spec
	if t := env[2]; len(t) >= 2 && t[0] == '"' {
		if k, ok := typeNames[string(t[1:len(t)-1])]; ok {
			e.Type, schema = k, typeSchemas[k]
		}
	}
	if schema == nil {
		t, err := envString(env[2], "type")
		if err != nil {
			return nil, err
		}
		k, ok := typeNames[t] // escaped characters may still spell one
		if !ok {
			return nil, invalidf("unknown type %q", t)
		}
		e.Type, schema = k, typeSchemas[k]
	}
	var ar strArena
	if err = ar.envString(&e.MessageID, env[3], "messageId"); err != nil {
		return nil, err
	}
	if err = ar.envString(&e.SourceNodeID, env[4], "sourceNodeId"); err != nil {
		return nil, err
	}
	if err = ar.envString(&e.EndpointName, env[5], "endpointName"); err != nil {
		return nil, err
	}
	if err = ar.envString(&e.ChannelName, env[6], "channelName"); err != nil {
		return nil, err
	}
	if env[7] == nil || !isNumber(env[7]) {
		return nil, invalidf("timestamp is not a number")
	}
	if e.Timestamp, err = timestamp(env[7]); err != nil {
		return nil, err
	}

	defaultNodeID := false
	for _, s := range schema {
		raw := fields[s.f]
		if raw != nil && string(raw) == "null" {
			raw = nil // null counts as absent
		}
		if raw == nil {
			if s.required {
				return nil, invalidf("%s lacks %s", e.Type, fieldKeys[s.f])
			}
			if s.f == fNodeID {
				defaultNodeID = true // once SourceNodeID is filled
				continue
			}
			setDefault(e, s.f)
			continue
		}
		if err := setField(e, &ar, s.f, raw); err != nil {
			return nil, err
		}
	}
	ar.fill()
	if defaultNodeID {
		setDefault(e, fNodeID)
	}
	if e.Type == AssignsUpdate && e.Assigns == nil && e.Key == "" {
		return nil, invalidf("ASSIGNS_UPDATE lacks assigns and key")
	}
	return e, nil
}

func isNumber(raw []byte) bool { return raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9') }

func envString(raw []byte, name string) (string, error) {
	if raw == nil || raw[0] != '"' {
		return "", invalidf("%s is not a string", name)
	}
	s, err := unquote(raw)
	if err != nil {
		return "", invalidf("%s: %v", name, err)
	}
	return s, nil
}

// strArena makes the plain strings of one message (ASCII, no escape) out
// of one allocation instead of one each; the others are unquoted as
// before. A string kept longer than the message (a user id in a map) keeps
// only these few bytes alive, not the payload. The destinations are set
// by fill.
type strArena struct {
	n   int
	dst [12]*string
	raw [12][]byte // inner bytes, quotes removed
}

// envString sets *dst from the JSON string raw, now or at fill.
func (a *strArena) envString(dst *string, raw []byte, name string) error {
	if raw == nil || raw[0] != '"' {
		return invalidf("%s is not a string", name)
	}
	if a.add(dst, raw) {
		return nil
	}
	s, err := unquote(raw)
	if err != nil {
		return invalidf("%s: %v", name, err)
	}
	*dst = s
	return nil
}

// add takes the quoted string raw if it is plain and there is room.
func (a *strArena) add(dst *string, raw []byte) bool {
	inner := raw[1 : len(raw)-1]
	if a.n == len(a.dst) {
		return false
	}
	for _, c := range inner {
		if c == '\\' || c >= utf8.RuneSelf {
			return false
		}
	}
	a.dst[a.n], a.raw[a.n] = dst, inner
	a.n++
	return true
}

func (a *strArena) fill() {
	total := 0
	for _, r := range a.raw[:a.n] {
		total += len(r)
	}
	var sb strings.Builder
	sb.Grow(total)
	for _, r := range a.raw[:a.n] {
		sb.Write(r)
	}
	s, off := sb.String(), 0
	for i, r := range a.raw[:a.n] {
		*a.dst[i] = s[off : off+len(r)]
		off += len(r)
	}
}

func timestamp(raw []byte) (int64, error) {
	// the usual case, a plain non-negative integer, without strconv (whose
	// argument would be a string allocated per message)
	if len(raw) > 0 && len(raw) <= 18 {
		n := int64(0)
		for _, c := range raw {
			if c < '0' || c > '9' {
				n = -1
				break
			}
			n = n*10 + int64(c-'0')
		}
		if n >= 0 {
			return n, nil
		}
	}
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return n, nil
	}
	f, err := number(raw)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, invalidf("timestamp %s is not a usable number", raw)
	}
	return int64(f), nil
}

func setDefault(e *Envelope, f field) {
	switch f {
	case fPayload:
		e.Payload = emptyObject
	case fPresence:
		e.Presence = emptyObject
	case fAssigns:
		if e.Type != AssignsUpdate {
			e.Assigns = emptyObject
		}
	case fNodeID:
		e.NodeID = e.SourceNodeID
	}
}

func setField(e *Envelope, ar *strArena, f field, raw []byte) error {
	var err error
	str := func(dst *string) {
		if raw[0] != '"' {
			err = invalidf("%s %s is not a string", e.Type, fieldKeys[f])
			return
		}
		if ar.add(dst, raw) {
			return
		}
		if *dst, err = unquote(raw); err != nil {
			err = invalidf("%s %s: %v", e.Type, fieldKeys[f], err)
		}
	}
	obj := func(dst *json.RawMessage) {
		if raw[0] != '{' {
			err = invalidf("%s %s is not an object", e.Type, fieldKeys[f])
			return
		}
		*dst = raw
	}
	switch f {
	case fFromUserID:
		str(&e.FromUserID)
	case fEvent:
		str(&e.Event)
	case fPayload:
		e.Payload = raw
	case fRequestID:
		str(&e.RequestID)
	case fRecipients:
		err = e.Recipients.parse(raw)
	case fUserID:
		str(&e.UserID)
	case fPresence:
		obj(&e.Presence)
	case fAssigns:
		obj(&e.Assigns)
	case fReason:
		str(&e.Reason)
	case fFromNode:
		str(&e.FromNode)
	case fNodeID:
		str(&e.NodeID)
	case fKey:
		str(&e.Key)
	case fValue:
		e.Value = raw
	case fUsers:
		e.Users, err = parseUsers(raw)
	}
	return err
}

func parseUsers(raw []byte) ([]StateUser, error) {
	if raw[0] != '[' {
		return nil, invalidf("STATE_RESPONSE users is not an array")
	}
	users := []StateUser{}
	err := eachElement(raw, func(v []byte) error {
		if v[0] != '{' {
			return invalidf("STATE_RESPONSE users holds a non-object")
		}
		var u StateUser
		var id []byte
		err := eachMember(v, func(key, val []byte) error {
			switch string(key) {
			case "id":
				id = val
			case "assigns":
				u.Assigns = val
			case "presence":
				u.Presence = val
			}
			return nil
		})
		if err != nil {
			return invalidf("%v", err)
		}
		if id == nil || id[0] != '"' {
			return invalidf("STATE_RESPONSE user id is not a string")
		}
		if u.ID, err = unquote(id); err != nil {
			return invalidf("STATE_RESPONSE user id: %v", err)
		}
		for _, p := range []*json.RawMessage{&u.Assigns, &u.Presence} {
			switch {
			case *p == nil || string(*p) == "null":
				*p = emptyObject
			case (*p)[0] != '{':
				return invalidf("STATE_RESPONSE user %q: assigns and presence must be objects", u.ID)
			}
		}
		users = append(users, u)
		return nil
	})
	return users, err
}
