package pondsocket

import (
	"encoding/json"
	"strconv"
	"sync/atomic"

	"github.com/pondsocket/pondsocket/internal/protocol"
)

// clientState is what the channel layer accounts per connection beyond
// its mailbox: the bytes of channel state it makes the server hold, its
// presence-change bucket, and the memberships a disconnect removed whose
// leave handlers have not run yet.
type clientState struct {
	bytes    atomic.Int64 // channel names + presence + channel assigns
	presence bucket       // used like msgBucket: by the client's handlers
	left     []leftMember // guarded by Client.mu
}

type leftMember struct {
	in  *instance
	m   *member
	how leftHow
}

// leftHow says what a member's removal changed beyond the member.
type leftHow struct {
	empty      bool // the channel emptied (and died)
	lastOfUser bool // it was the user's last connection in the channel here
	presGone   bool // it was the user's last local connection tracking presence
}

// charge adds delta bytes of channel state held for c, refusing growth
// beyond State.MaxPerConnectionBytes for c or State.MaxTotalBytes for the server.
// Shrinking always succeeds.
func (s *hub) charge(c *Client, delta int64) error {
	if delta <= 0 {
		c.st.bytes.Add(delta)
		s.stateBytes.Add(delta)
		return nil
	}
	if c.st.bytes.Add(delta) > int64(s.opts.State.MaxPerConnectionBytes) {
		c.st.bytes.Add(-delta)
		return ErrConnectionStateFull
	}
	if s.stateBytes.Add(delta) > s.opts.State.MaxTotalBytes {
		s.stateBytes.Add(-delta)
		c.st.bytes.Add(-delta)
		return ErrServerStateFull
	}
	return nil
}

// StateBytes is the channel state (names, presence, assigns) all
// connections make the server hold, as counted against State.MaxTotalBytes.
func (s *hub) StateBytes() int64 { return s.stateBytes.Load() }

// StateBytes is the channel state this connection makes the server hold,
// as counted against State.MaxPerConnectionBytes.
func (c *Client) StateBytes() int64 { return c.st.bytes.Load() }

// countWriter counts bytes written to it.
type countWriter int64

func (w *countWriter) Write(p []byte) (int, error) { *w += countWriter(len(p)); return len(p), nil }

// assignsSize is the size of a's JSON encoding. Values that cannot be
// encoded (an application may keep a handle in its assigns) count as 0:
// they come from server code, not from clients.
func assignsSize(a map[string]any) int64 {
	if len(a) == 0 {
		return 0
	}
	var w countWriter
	if err := json.NewEncoder(&w).Encode(a); err != nil {
		return 0
	}
	return int64(w) - 1 // Encode's newline
}

// checkAssigns applies MaxAssignsBytes to a user's assigns and returns
// their size.
func (s *hub) checkAssigns(a map[string]any) (int64, error) {
	n := assignsSize(a)
	if n > int64(s.opts.State.MaxAssignsBytes) {
		return n, ErrAssignsTooLarge
	}
	return n, nil
}

// checkFields applies the length limits of a client message's strings.
// It returns the status and text of the refusal, and the requestId the
// answer may echo (a requestId over its limit is not echoed).
func (s *hub) checkFields(m *protocol.ClientMessage) (status int, text, reqID string, ok bool) {
	o := &s.opts
	reqID = m.RequestID
	field, n, max := "", 0, 0
	switch {
	case len(m.RequestID) > o.State.MaxRequestIDBytes:
		reqID, field, n, max = "", "requestId", len(m.RequestID), o.State.MaxRequestIDBytes
	case len(m.ChannelName) > o.State.MaxChannelNameBytes:
		field, n, max = "channelName", len(m.ChannelName), o.State.MaxChannelNameBytes
	case len(m.Event) > o.State.MaxEventNameBytes:
		field, n, max = "event", len(m.Event), o.State.MaxEventNameBytes
	default:
		return 0, "", reqID, true
	}
	return 413, field + " is " + strconv.Itoa(n) + " bytes, more than the limit of " + strconv.Itoa(max), reqID, false
}
