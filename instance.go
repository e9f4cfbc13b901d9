package pondsocket

import (
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/pondsocket/pondsocket/internal/wsframe"

	"github.com/pondsocket/pondsocket/cluster"
	"github.com/pondsocket/pondsocket/internal/protocol"
)

// instance is one live channel: a distinct channel name with at least one
// member. It is created when the first join is accepted (never for a
// declined join) and removed from its endpoint's table when the last member
// leaves.
//
// mu guards everything below it. Fan-out posts frames to the transport
// while holding mu (read): together with the ACKNOWLEDGE being posted under
// mu (write) when a member is added, this guarantees a new member receives
// nothing of the channel before its ACKNOWLEDGE.
type instance struct {
	name  string
	lobby *lobby
	ep    *Endpoint
	route Route

	// Members are found by id through the endpoint's client table and the
	// client's chanSet (lookupLocked): no per-channel map, which at a
	// million members would cost more than the membership records.
	mu   sync.RWMutex
	list []*member // dense, for fan-out

	// presence of local and remote users, in the order users were first
	// tracked; removed entries are nil until compacted
	tracked  []*presenceRec
	ntracked int
	pres     presenceState

	// remote holds the users of this channel on other nodes (cluster
	// mode only; nil on a single node).
	remote map[string]*remoteUser
	// syncEpoch counts this node's resynchronisations of the channel; a
	// remote user confirmed since the last one has epoch == syncEpoch.
	syncEpoch uint64

	dead bool
}

type member struct {
	c       *Client
	in      *instance
	assigns map[string]any
	pres    *presenceRec // nil when not tracked
	idx     int32        // in instance.list
	shared  bool         // assigns is the client's map: copy before writing
	abytes  int32        // JSON size of assigns when not shared
	held    int64        // state bytes charged to the client: name + presence + abytes
}

// presenceRec is a tracked user's presence: its encoded JSON object and
// its slot in instance.tracked. Kept apart so untracked members stay small.
type presenceRec struct {
	raw json.RawMessage
	id  string
	idx int32
	m   *member // the local member, nil for a remote user
}

// remoteUser is a user of this channel connected to another node.
type remoteUser struct {
	id      string
	node    string
	assigns json.RawMessage
	pres    *presenceRec
	epoch   uint64 // instance.syncEpoch when last confirmed by its node
}

func newInstance(l *lobby, name string, route Route) *instance {
	return &instance{name: name, lobby: l, ep: l.ep, route: route}
}

// errDuplicate and errClosing are add's refusals: c is already a member
// (here or, with the same id, on another node), or its connection is
// closing.
var (
	errDuplicate = errors.New("already a member")
	errClosing   = errors.New("connection closing")
)

// add makes c a member and sends its ACKNOWLEDGE (under the lock, see the
// type doc), charging the channel name and abytes of assigns to c's state
// budget. It returns a nil member with a nil error when the instance died
// meanwhile (the caller retries with a fresh one). When it refuses an
// instance that has no member, the instance dies (killed: the caller
// removes it from the table).
func (in *instance) add(c *Client, assigns map[string]any, shared bool, abytes int64, ack *wsframe.Frame) (m *member, first, killed bool, err error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.dead {
		return nil, false, false, nil
	}
	defer func() {
		if err != nil && len(in.list) == 0 && len(in.remote) == 0 {
			in.dead, killed = true, true
			in.pres.stop()
			in.ep.srv.stats.Channels.Add(-1)
		}
	}()
	if _, remote := in.remote[c.id]; remote {
		return nil, false, false, errDuplicate // the same user id on another node
	}
	cost := int64(len(in.name)) + abytes
	c.mu.Lock()
	// a closing connection joins nothing: Disconnect sets gone before it
	// reads c.chans under c.mu
	switch {
	case c.gone.Load():
		err = errClosing
	case c.chans.get(in.name) != nil:
		err = errDuplicate
	default:
		err = in.ep.srv.charge(c, cost)
	}
	if err != nil {
		c.mu.Unlock()
		return nil, false, false, err
	}
	m = &member{c: c, in: in, assigns: assigns, shared: shared, abytes: int32(abytes), held: cost, idx: int32(len(in.list))}
	c.chans.add(m)
	c.mu.Unlock()
	first = len(in.list) == 0
	in.list = append(in.list, m)
	c.send(ack)
	return m, first, false, nil
}

// remove drops a member. It returns the member (nil when not a member) and
// whether the channel is now empty (and dead).
func (in *instance) remove(id string) (*member, bool) {
	in.mu.Lock()
	m := in.lookupLocked(id)
	if m == nil {
		in.mu.Unlock()
		return nil, false
	}
	last := len(in.list) - 1
	moved := in.list[last]
	in.list[m.idx] = moved
	moved.idx = m.idx
	in.list[last] = nil
	in.list = in.list[:last]
	if m.pres != nil {
		old := m.pres.raw
		in.untrackLocked(m.pres)
		m.pres = nil
		in.presenceChangedLocked(protocol.EventLeave, old)
	}
	empty := len(in.list) == 0
	if empty {
		in.dead = true
		in.pres.stop()
		in.ep.srv.stats.Channels.Add(-1)
	}
	m.c.mu.Lock()
	m.c.chans.remove(m)
	m.c.mu.Unlock()
	_ = in.ep.srv.charge(m.c, -m.held)
	m.held = 0
	in.mu.Unlock()
	return m, empty
}

// lookupLocked finds the member with user id id (in.mu held).
func (in *instance) lookupLocked(id string) *member {
	c, ok := in.ep.clients.get(id)
	if !ok {
		return nil
	}
	c.mu.Lock()
	m := c.chans.get(in.name)
	c.mu.Unlock()
	if m == nil || m.in != in {
		return nil
	}
	return m
}

func (in *instance) member(id string) *member {
	in.mu.RLock()
	m := in.lookupLocked(id)
	in.mu.RUnlock()
	return m
}

// recipients selects who gets a message.
type recipients struct {
	all     bool
	except  string   // with all: everyone but this user
	only    []string // explicit user ids
	tracked bool     // presence-tracked members only
	from    string   // the user whose handler sent it ("" = the server)
}

// connListPool recycles the []Conn handed to the transport.
var connListPool = sync.Pool{New: func() any { s := make([]memberConn, 0, 64); return &s }}

// deliver fans one encoded frame out to the selected members: the frame is
// encoded once by the caller and the same bytes reach every recipient. A
// lobby with outgoing handlers instead gets per-recipient delivery.
// Returns the number of recipients. Unknown ids in r.only are reported as
// ErrNotMember before anything is sent.
func (in *instance) deliver(f *wsframe.Frame, r recipients) (int, error) {
	in.mu.RLock()
	defer in.mu.RUnlock()
	return in.deliverLocked(f, r)
}

func (in *instance) deliverLocked(f *wsframe.Frame, r recipients) (int, error) {
	lp := connListPool.Get().(*[]memberConn)
	conns := (*lp)[:0]
	switch {
	case r.tracked:
		for _, p := range in.tracked {
			if p != nil && p.m != nil && p.m.c.conn != nil {
				conns = append(conns, p.m.c.conn)
			}
		}
	case r.only != nil:
		for _, id := range r.only {
			m := in.lookupLocked(id)
			if m == nil {
				if _, remote := in.remote[id]; remote {
					continue
				}
				clear(conns)
				*lp = conns[:0]
				connListPool.Put(lp)
				return 0, ErrNotMember
			}
			if m.c.conn != nil {
				conns = append(conns, m.c.conn)
			}
		}
	default:
		for _, m := range in.list {
			if m.c.id == r.except || m.c.conn == nil {
				continue
			}
			conns = append(conns, m.c.conn)
		}
	}
	n := len(conns)
	if n > 0 {
		in.ep.srv.transport.Fanout(f, conns)
		in.ep.srv.stats.Broadcasts.Add(1)
		in.ep.srv.stats.Deliveries.Add(int64(n))
	}
	clear(conns)
	*lp = conns[:0]
	connListPool.Put(lp)
	return n, nil
}

// snapshot copies the selected members (for per-recipient delivery, which
// runs user code and must not hold the lock).
func (in *instance) snapshot(r recipients) ([]*member, error) {
	in.mu.RLock()
	defer in.mu.RUnlock()
	if r.only != nil {
		out := make([]*member, 0, len(r.only))
		for _, id := range r.only {
			m := in.lookupLocked(id)
			if m == nil {
				if _, remote := in.remote[id]; remote {
					continue
				}
				return nil, ErrNotMember
			}
			out = append(out, m)
		}
		return out, nil
	}
	out := make([]*member, 0, len(in.list))
	for _, m := range in.list {
		if m.c.id != r.except {
			out = append(out, m)
		}
	}
	return out, nil
}

// --- assigns -------------------------------------------------------------

func (in *instance) assignsOf(id string) (map[string]any, bool) {
	in.mu.RLock()
	defer in.mu.RUnlock()
	m := in.lookupLocked(id)
	if m == nil {
		return nil, false
	}
	return copyMap(m.assigns), true
}

func (in *instance) setAssigns(id string, kv map[string]any) error {
	in.mu.Lock()
	m := in.lookupLocked(id)
	if m == nil {
		in.mu.Unlock()
		return ErrNotMember
	}
	next := copyMap(m.assigns)
	for k, v := range kv {
		next[k] = v
	}
	n, err := in.ep.srv.checkAssigns(next)
	if err == nil {
		err = in.ep.srv.charge(m.c, n-int64(m.abytes))
	}
	if err != nil {
		in.mu.Unlock()
		return err
	}
	m.held += n - int64(m.abytes)
	m.assigns, m.shared, m.abytes = next, false, int32(n)
	var full json.RawMessage
	if in.ep.srv.node != nil {
		full = marshalAssigns(m.assigns)
	}
	in.mu.Unlock()
	if full != nil {
		in.ep.publish(in, &cluster.Envelope{Type: cluster.AssignsUpdate, UserID: id, Assigns: full})
	}
	return nil
}

func (in *instance) allAssigns() map[string]any {
	in.mu.RLock()
	defer in.mu.RUnlock()
	out := make(map[string]any, len(in.list)+len(in.remote))
	for _, m := range in.list {
		out[m.c.id] = copyMap(m.assigns)
	}
	for id, ru := range in.remote {
		var a map[string]any
		_ = json.Unmarshal(ru.assigns, &a)
		out[id] = a
	}
	return out
}

// --- presence ------------------------------------------------------------

func (in *instance) trackLocked(id string, m *member, p json.RawMessage) *presenceRec {
	rec := &presenceRec{raw: p, id: id, idx: int32(len(in.tracked)), m: m}
	in.tracked = append(in.tracked, rec)
	in.ntracked++
	return rec
}

func (in *instance) untrackLocked(rec *presenceRec) {
	in.tracked[rec.idx] = nil
	in.ntracked--
	// compact when at least half the slots are holes
	if holes := len(in.tracked) - in.ntracked; holes > 32 && holes*2 > len(in.tracked) {
		j := 0
		for _, t := range in.tracked {
			if t != nil {
				t.idx = int32(j)
				in.tracked[j] = t
				j++
			}
		}
		clear(in.tracked[j:])
		in.tracked = in.tracked[:j]
	}
}

// presenceMode is what setPresence may do.
type presenceMode uint8

const (
	presenceTrack  presenceMode = iota + 1 // start it; ErrPresenceExists when tracked
	presenceUpsert                         // start or replace it
	presenceRemove                         // stop it; ErrNoPresence when not tracked
)

// setPresence tracks, replaces or removes (p == nil) a member's presence.
// The entry is bounded by MaxPresenceBytes and charged to the member's
// connection.
func (in *instance) setPresence(id string, p json.RawMessage, mode presenceMode) error {
	if len(p) > in.ep.srv.opts.State.MaxPresenceBytes {
		return ErrPresenceTooLarge
	}
	in.mu.Lock()
	m := in.lookupLocked(id)
	if m == nil {
		in.mu.Unlock()
		return ErrNotMember
	}
	var err error
	switch {
	case p == nil && m.pres == nil:
		err = ErrNoPresence
	case p != nil && mode == presenceTrack && m.pres != nil:
		err = ErrPresenceExists
	}
	var old int64
	if m.pres != nil {
		old = int64(len(m.pres.raw))
	}
	delta := int64(len(p)) - old
	if err == nil {
		err = in.ep.srv.charge(m.c, delta)
	}
	if err != nil {
		in.mu.Unlock()
		return err
	}
	m.held += delta
	removed := false
	switch {
	case p == nil:
		old := m.pres.raw
		in.untrackLocked(m.pres)
		m.pres = nil
		in.presenceChangedLocked(protocol.EventLeave, old)
		removed = true
	case m.pres == nil:
		m.pres = in.trackLocked(m.c.id, m, p)
		in.presenceChangedLocked(protocol.EventJoin, p)
	default:
		m.pres.raw = p
		in.presenceChangedLocked(protocol.EventUpdate, p)
	}
	in.mu.Unlock()
	if removed {
		in.ep.publish(in, &cluster.Envelope{Type: cluster.PresenceRemoved, UserID: id})
	} else {
		in.ep.publish(in, &cluster.Envelope{Type: cluster.PresenceUpdate, UserID: id, Presence: p})
	}
	return nil
}

func (in *instance) presenceOf(id string) (json.RawMessage, bool) {
	in.mu.RLock()
	defer in.mu.RUnlock()
	m := in.lookupLocked(id)
	if m == nil || m.pres == nil {
		return nil, false
	}
	return m.pres.raw, true
}

func (in *instance) allPresence() map[string]json.RawMessage {
	in.mu.RLock()
	defer in.mu.RUnlock()
	out := make(map[string]json.RawMessage, in.ntracked)
	for _, p := range in.tracked {
		if p != nil {
			out[p.id] = p.raw
		}
	}
	return out
}

func (in *instance) now() time.Time { return in.ep.srv.opts.now() }
