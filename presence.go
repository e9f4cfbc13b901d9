package pondsocket

import (
	"encoding/json"
	"time"

	"github.com/pondsocket/pondsocket/internal/wsframe"

	"github.com/pondsocket/pondsocket/internal/protocol"
)

// Presence messages carry the channel's complete presence list
// (docs/protocol.md §8), so N joins cost O(N²) messages and O(N³) bytes if
// every change is sent as it happens. Two things keep a storm bounded:
//
//   - each change is encoded once (the list is concatenated from every
//     member's pre-encoded presence) and the same frame goes to every
//     tracked member;
//   - a channel spends at most Options.PresenceBudget bytes per second on
//     presence: after a flush of B bytes the next one waits B/budget
//     seconds, and the changes made meanwhile are coalesced into one
//     message that carries the newest list, the kind (JOIN/UPDATE/LEAVE)
//     and "changed" of the last change (waiting at most a second, unless
//     the next point asks for more). Outside storms every change is sent
//     at once, exactly as the reference does;
//   - one member is sent presence at most at memberPresenceRate bytes per
//     second, beyond a burst of memberPresenceBurst (a token bucket, so a
//     burst of changes in an ordinary room still goes out change by
//     change): in very large rooms the list itself is megabytes, and the
//     interval between two lists grows with it instead of cutting readers
//     as slow consumers.
//
// UPDATE messages carry the *new* presence in "changed" (decision (c) of
// docs/protocol.md §10; the reference sends the previous one).
type presenceState struct {
	pending bool
	event   string
	changed json.RawMessage
	next    time.Time // earliest time of the next flush
	timer   *time.Timer
	// the per-member bucket: bytes one member may still be sent at once,
	// as of credited
	credit   float64
	credited time.Time
}

func (p *presenceState) stop() {
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.pending = false
}

// maxPresenceDelay caps the coalescing interval.
const maxPresenceDelay = time.Second

// presenceChangedLocked records a change; in.mu is held (write).
func (in *instance) presenceChangedLocked(event string, changed json.RawMessage) {
	p := &in.pres
	p.event, p.changed = event, changed
	if p.pending {
		return
	}
	now := in.now()
	if !now.Before(p.next) {
		in.flushPresenceLocked(now)
		return
	}
	p.pending = true
	d := p.next.Sub(now)
	if p.timer == nil {
		p.timer = time.AfterFunc(d, in.flushPresenceTimer)
	} else {
		p.timer.Reset(d)
	}
}

func (in *instance) flushPresenceTimer() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.pres.pending || in.dead {
		return
	}
	in.pres.pending = false
	in.flushPresenceLocked(in.now())
}

// flushPresenceLocked encodes the presence message once and sends it to
// every tracked member.
func (in *instance) flushPresenceLocked(now time.Time) {
	p := &in.pres
	p.pending = false
	if in.ntracked == 0 {
		return
	}
	f := in.presenceFrameLocked(p.event, p.changed)
	n, _ := in.deliverLocked(f, recipients{tracked: true})
	in.ep.srv.stats.PresenceSent.Add(1)
	size := float64(f.Len())
	cost := size * float64(n)
	f.Release()
	o := &in.ep.srv.opts
	delay := min(time.Duration(cost/float64(o.Presence.Budget)*float64(time.Second)), maxPresenceDelay)
	// However large the room, one member is never sent presence faster
	// than the bucket allows: in a room of 100 000 members the list is
	// megabytes, and sending it every second would put any reader over its
	// outbound limit and get it cut as a slow consumer.
	rate, burst := memberPresenceRate(o), memberPresenceBurst(o)
	if p.credited.IsZero() {
		p.credit = burst
	} else {
		p.credit = min(burst, p.credit+rate*now.Sub(p.credited).Seconds())
	}
	p.credit -= size
	p.credited = now
	if p.credit < 0 {
		delay = max(delay, time.Duration(-p.credit/rate*float64(time.Second)))
	}
	p.next = now.Add(delay)
}

// memberPresenceBurst is the presence bytes one member may be sent at once
// before memberPresenceRate applies: a quarter of Outbound.MaxBytes.
func memberPresenceBurst(o *Options) float64 { return float64(o.Outbound.MaxBytes) / 4 }

// presenceFrameLocked encodes a PRESENCE message with the channel's
// complete list (in.mu held).
func (in *instance) presenceFrameLocked(event string, changed json.RawMessage) *wsframe.Frame {
	f := wsframe.NewFrame()
	f.AppendTo(func(b []byte) []byte {
		b = protocol.AppendMessageHead(b, protocol.ActionPresence, event, in.name, newID())
		b = append(b, `{"changed":`...)
		if len(changed) == 0 {
			b = append(b, "{}"...)
		} else {
			b = append(b, changed...)
		}
		b = append(b, `,"presence":[`...)
		first := true
		for _, p := range in.tracked {
			if p == nil {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, p.raw...)
		}
		return append(b, "]}}"...)
	})
	f.Seal(wsframe.OpText)
	return f
}

// memberPresenceRate is the most presence bytes per second one member is
// sent: a quarter of what the slow-consumer rule tolerates (Outbound.MaxBytes
// pending for Outbound.SlowConsumerTimeout), so a member that reads at all
// is never cut because of presence, whatever the size of its room.
func memberPresenceRate(o *Options) float64 {
	return float64(o.Outbound.MaxBytes) / o.Outbound.SlowConsumerTimeout.Seconds() / 4
}

// encodePresence turns a user value into the compact JSON object stored as
// a member's presence.
func encodePresence(v any) (json.RawMessage, error) {
	raw, err := protocol.MarshalPayload(v)
	if err != nil {
		return nil, err
	}
	return raw, nil
}
