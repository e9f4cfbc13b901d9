package pondsocket

import (
	"bytes"
	"encoding/json"
	"errors"
	"sync"
	"time"
	"unsafe"

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
	name string
	// nameBuf holds name's bytes when they fit: every event compares its
	// channel name with name, and with the bytes beside the string header
	// that reads the instance's first cache line instead of also a
	// separate allocation (one cache miss less per message at thousands
	// of rooms). An instance is never copied (it holds locks).
	nameBuf [nameInline]byte
	lobby   *lobby
	ep      *Endpoint
	route   Route

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

// member is one connection in one channel. A user with several
// connections in the channel is several members sharing one presenceRec.
type member struct {
	c       *Client
	in      *instance
	assigns map[string]any
	pres    *presenceRec // the user's entry when this connection tracks it
	idx     int32        // in instance.list
	abytes  int32        // JSON size of assigns when not shared
	pbytes  int32        // presence bytes charged to the connection
	shared  bool         // assigns is the client's map: copy before writing
	held    int64        // state bytes charged to the client: name + presence + abytes
}

// presenceRec is a tracked user's presence in a channel: one entry per
// user however many of its connections, here and on other nodes, track
// it (see SetUserID). Kept apart so untracked members stay small.
type presenceRec struct {
	raw    json.RawMessage
	id     string
	idx    int32
	local  int32 // local members that track it
	remote bool  // other nodes track it (remoteUser.pres is this entry)
}

// remoteUser is a user of this channel connected to other nodes (a user
// may have connections here too, and on several nodes).
type remoteUser struct {
	id       string
	nodes    []string // the nodes that hold it
	tracking []string // the nodes that track its presence
	assigns  json.RawMessage
	pres     *presenceRec
	epoch    uint64 // instance.syncEpoch when last confirmed by a node
}

func (ru *remoteUser) on(node string) bool {
	for _, n := range ru.nodes {
		if n == node {
			return true
		}
	}
	return false
}

// addTo adds node to a set of node ids; dropFrom removes it.
func addTo(set []string, node string) []string {
	for _, n := range set {
		if n == node {
			return set
		}
	}
	return append(set, node)
}

func dropFrom(set []string, node string) []string {
	for i, n := range set {
		if n == node {
			return append(set[:i], set[i+1:]...)
		}
	}
	return set
}

// nameInline is the longest channel name kept inside its instance.
const nameInline = 48

func newInstance(l *lobby, name string, route Route) *instance {
	in := &instance{name: name, lobby: l, ep: l.ep, route: route}
	if n := len(name); n > 0 && n <= nameInline {
		copy(in.nameBuf[:], name)
		in.name = unsafe.String(&in.nameBuf[0], n)
	}
	return in
}

// errDuplicate and errClosing are add's refusals: c is already a member,
// or its connection is closing.
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
func (in *instance) add(c *Client, assigns map[string]any, shared bool, abytes int64, ack *wsframe.Frame) (m *member, first, firstOfUser, killed bool, err error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.dead {
		return nil, false, false, false, nil
	}
	defer func() {
		if err != nil && len(in.list) == 0 && len(in.remote) == 0 {
			in.dead, killed = true, true
			in.pres.stop()
			in.ep.srv.stats.Channels.Add(-1)
		}
	}()
	firstOfUser = c.alone() || in.lookupLocked(c.id) == nil
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
		return nil, false, false, false, err
	}
	m = &member{c: c, in: in, assigns: assigns, shared: shared, abytes: int32(abytes), held: cost, idx: int32(len(in.list))}
	c.chans.add(m)
	c.hint.Store(c.chans.oneIn)
	c.mu.Unlock()
	first = len(in.list) == 0
	in.list = append(in.list, m)
	c.send(ack)
	return m, first, firstOfUser, false, nil
}

// remove drops a member. It returns the member (nil when not a member) and
// whether the channel is now empty (and dead).
func (in *instance) remove(c *Client) (m *member, empty, lastOfUser, presGone bool) {
	in.mu.Lock()
	m = in.memberOfLocked(c)
	if m == nil {
		in.mu.Unlock()
		return nil, false, false, false
	}
	last := len(in.list) - 1
	moved := in.list[last]
	in.list[m.idx] = moved
	moved.idx = m.idx
	in.list[last] = nil
	in.list = in.list[:last]
	if rec := m.pres; rec != nil {
		m.pres = nil
		rec.local--
		presGone = rec.local == 0
		in.releaseLocked(rec)
	}
	empty = len(in.list) == 0
	if empty {
		in.dead = true
		in.pres.stop()
		in.ep.srv.stats.Channels.Add(-1)
	}
	m.c.mu.Lock()
	m.c.chans.remove(m)
	m.c.hint.Store(m.c.chans.oneIn)
	m.c.mu.Unlock()
	_ = in.ep.srv.charge(m.c, -m.held)
	m.held, m.pbytes = 0, 0
	lastOfUser = c.alone() || in.lookupLocked(c.id) == nil
	in.mu.Unlock()
	return m, empty, lastOfUser, presGone
}

// lookupLocked finds the member with user id id (in.mu held).
func (in *instance) lookupLocked(id string) *member {
	var found *member
	in.eachMemberLocked(id, func(m *member) bool { found = m; return false })
	return found
}

// eachOnlyLocked calls fn for every member (every connection) of the users
// r.only names. A user known only on another node is skipped; one unknown
// here is ErrNotMember, or skipped with r.skipAbsent.
func (in *instance) eachOnlyLocked(r recipients, fn func(*member)) error {
	for _, id := range r.only {
		found := false
		in.eachMemberLocked(id, func(m *member) bool { found = true; fn(m); return true })
		if found || r.skipAbsent {
			continue
		}
		if _, remote := in.remote[id]; !remote {
			return ErrNotMember
		}
	}
	return nil
}

// eachMemberLocked calls fn for the members of the user id (its
// connections in this channel), first connection first, until fn returns
// false (in.mu held).
func (in *instance) eachMemberLocked(id string, fn func(*member) bool) {
	in.ep.eachConn(id, func(c *Client) bool {
		if m := in.memberOfLocked(c); m != nil {
			return fn(m)
		}
		return true
	})
}

// memberOfLocked is the member of connection c (nil when c is not in the
// channel; in.mu held).
func (in *instance) memberOfLocked(c *Client) *member {
	c.mu.Lock()
	m := c.chans.get(in.name)
	c.mu.Unlock()
	if m == nil || m.in != in {
		return nil
	}
	return m
}

// pickLocked is the member a call names: connection c's when c is set,
// else the user id's first connection in the channel.
func (in *instance) pickLocked(c *Client, id string) *member {
	if c != nil {
		return in.memberOfLocked(c)
	}
	return in.lookupLocked(id)
}

func (in *instance) member(id string) *member {
	in.mu.RLock()
	m := in.lookupLocked(id)
	in.mu.RUnlock()
	return m
}

func (in *instance) memberOf(c *Client) *member {
	in.mu.RLock()
	m := in.memberOfLocked(c)
	in.mu.RUnlock()
	return m
}

// recipients selects who gets a message.
type recipients struct {
	all    bool
	except string   // with all: everyone but this user (all its connections)
	only   []string // explicit user ids (each of their connections)
	// skipAbsent: ids of only that are no longer members are skipped
	// rather than failing the whole message (a user who left between the
	// caller's look and the delivery must not cost the others theirs)
	skipAbsent bool
	self       *Client // this one connection only (a reply); never published
	onLoop     bool    // with self: sent from inside the delivery of self's message (SendInline)
	tracked    bool    // presence-tracked members only
	from       string  // the user whose handler sent it ("" = the server)
}

// connListPool recycles the []Conn handed to the transport.
var connListPool = sync.Pool{New: func() any { s := make([]memberConn, 0, 64); return &s }}

// deliver fans one encoded frame out to the selected members: the frame is
// encoded once by the caller and the same bytes reach every recipient. A
// lobby with outgoing handlers instead gets per-recipient delivery.
// Returns the number of recipients. Unknown ids in r.only are reported as
// ErrNotMember before anything is sent.
func (in *instance) deliver(f *wsframe.Frame, r recipients) (int, error) {
	if r.self != nil {
		return in.deliverSelf(f, r)
	}
	in.mu.RLock()
	defer in.mu.RUnlock()
	return in.deliverLocked(f, r)
}

// inlineSink is a connection that can take a reply made while its own
// message is being delivered without a hand-off (engine.Conn.SendInline).
type inlineSink interface {
	wsframe.Sink
	SendInline(f *wsframe.Frame)
}

// deliverSelf sends f to connection r.self alone (a reply). Membership is read
// from the client's own channel set, which join and leave change under the
// instance's lock too, so the instance's lock is not taken: a reply then
// touches no state the channel's other members share.
func (in *instance) deliverSelf(f *wsframe.Frame, r recipients) (int, error) {
	c := r.self
	c.mu.Lock()
	member := c.chans.has(in)
	c.mu.Unlock()
	if !member {
		return 0, ErrNotMember
	}
	if c.conn == nil {
		return 0, nil
	}
	if c.inline != nil && r.onLoop {
		c.inline.SendInline(f)
	} else {
		c.conn.Send(f)
	}
	// the sender's loop's slot: a reply is counted where it is sent,
	// and no other loop adds to that line
	in.ep.srv.stats.Deliveries.Add(c.shard, 1, 1)
	return 1, nil
}

// countDelivery counts one frame delivered to n connections, in the
// instance's slot of the sharded counters, so that loops and workers
// delivering for different channels do not share a cache line.
func (in *instance) countDelivery(n int) {
	in.ep.srv.stats.Deliveries.Add(int(uintptr(unsafe.Pointer(in))>>8), 1, int64(n))
}

func (in *instance) deliverLocked(f *wsframe.Frame, r recipients) (int, error) {
	lp := connListPool.Get().(*[]memberConn)
	conns := (*lp)[:0]
	switch {
	case r.tracked:
		for _, m := range in.list {
			if m.pres != nil && m.c.conn != nil {
				conns = append(conns, m.c.conn)
			}
		}
	case r.only != nil:
		err := in.eachOnlyLocked(r, func(m *member) {
			if m.c.conn != nil {
				conns = append(conns, m.c.conn)
			}
		})
		if err != nil {
			clear(conns)
			*lp = conns[:0]
			connListPool.Put(lp)
			return 0, err
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
		in.countDelivery(n)
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
	switch {
	case r.self != nil:
		if m := in.memberOfLocked(r.self); m != nil {
			return []*member{m}, nil
		}
		return nil, ErrNotMember
	case r.tracked:
		var out []*member
		for _, m := range in.list {
			if m.pres != nil {
				out = append(out, m)
			}
		}
		return out, nil
	case r.only != nil:
		out := make([]*member, 0, len(r.only))
		if err := in.eachOnlyLocked(r, func(m *member) { out = append(out, m) }); err != nil {
			return nil, err
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

func (in *instance) assignsOf(c *Client, id string) (map[string]any, bool) {
	in.mu.RLock()
	defer in.mu.RUnlock()
	m := in.pickLocked(c, id)
	if m == nil {
		return nil, false
	}
	return copyMap(m.assigns), true
}

func (in *instance) setAssigns(c *Client, id string, kv map[string]any) error {
	in.mu.Lock()
	m := in.pickLocked(c, id)
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
		in.ep.publish(in, &cluster.Envelope{Type: cluster.AssignsUpdate, UserID: m.c.id, Assigns: full})
	}
	return nil
}

func (in *instance) allAssigns() map[string]any {
	in.mu.RLock()
	defer in.mu.RUnlock()
	out := make(map[string]any, len(in.list)+len(in.remote))
	for _, m := range in.list {
		if _, seen := out[m.c.id]; !seen { // a user's first connection
			out[m.c.id] = copyMap(m.assigns)
		}
	}
	for id, ru := range in.remote {
		if _, local := out[id]; local {
			continue
		}
		var a map[string]any
		_ = json.Unmarshal(ru.assigns, &a)
		out[id] = a
	}
	return out
}

// --- presence ------------------------------------------------------------

func (in *instance) trackLocked(id string, p json.RawMessage) *presenceRec {
	rec := &presenceRec{raw: p, id: id, idx: int32(len(in.tracked))}
	in.tracked = append(in.tracked, rec)
	in.ntracked++
	return rec
}

// releaseLocked drops the user's entry (LEAVE) when nothing tracks it any
// more: no local member, no other node.
func (in *instance) releaseLocked(rec *presenceRec) {
	if rec.local > 0 || rec.remote {
		return
	}
	in.untrackLocked(rec)
	in.presenceChangedLocked(protocol.EventLeave, rec.raw)
}

// userPresenceLocked is the user's entry, whoever tracks it (nil when
// untracked).
func (in *instance) userPresenceLocked(id string) *presenceRec {
	var rec *presenceRec
	in.eachMemberLocked(id, func(m *member) bool { rec = m.pres; return rec == nil })
	if rec == nil {
		if ru := in.remote[id]; ru != nil {
			rec = ru.pres
		}
	}
	return rec
}

// localTracks reports whether a local member of the user tracks its
// presence, and the entry's value then.
func (in *instance) localTracksLocked(id string) (json.RawMessage, bool) {
	var raw json.RawMessage
	in.eachMemberLocked(id, func(m *member) bool {
		if m.pres != nil {
			raw = m.pres.raw
			return false
		}
		return true
	})
	return raw, raw != nil
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
func (in *instance) setPresence(c *Client, id string, p json.RawMessage, mode presenceMode) error {
	if len(p) > in.ep.srv.opts.State.MaxPresenceBytes {
		return ErrPresenceTooLarge
	}
	in.mu.Lock()
	var ms []*member
	if c != nil {
		if m := in.memberOfLocked(c); m != nil {
			ms = append(ms, m)
		}
	} else {
		// a user named by id: each of its connections in the channel
		in.eachMemberLocked(id, func(m *member) bool { ms = append(ms, m); return true })
	}
	if len(ms) == 0 {
		in.mu.Unlock()
		return ErrNotMember
	}
	id = ms[0].c.id
	var firstErr error
	done := 0
	for _, m := range ms {
		if err := in.memberPresenceLocked(m, p, mode); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		done++
	}
	var raw json.RawMessage
	var tracks bool
	if len(ms) == 1 && ms[0].c.alone() {
		if ms[0].pres != nil {
			raw, tracks = ms[0].pres.raw, true
		}
	} else {
		raw, tracks = in.localTracksLocked(id)
	}
	in.mu.Unlock()
	if done == 0 {
		return firstErr
	}
	if tracks {
		in.ep.publish(in, &cluster.Envelope{Type: cluster.PresenceUpdate, UserID: id, Presence: raw})
	} else {
		in.ep.publish(in, &cluster.Envelope{Type: cluster.PresenceRemoved, UserID: id})
	}
	if c != nil {
		return firstErr
	}
	return nil // by user id: done for the connections that could
}

// memberPresenceLocked applies a presence change of one connection to its
// user's entry (see SetUserID), charging the bytes to the connection.
func (in *instance) memberPresenceLocked(m *member, p json.RawMessage, mode presenceMode) error {
	switch {
	case p == nil && m.pres == nil:
		return ErrNoPresence
	case p == nil:
		_ = in.ep.srv.charge(m.c, -int64(m.pbytes))
		m.held -= int64(m.pbytes)
		rec := m.pres
		m.pres, m.pbytes = nil, 0
		rec.local--
		in.releaseLocked(rec)
		return nil
	case m.pres != nil && mode == presenceTrack:
		return ErrPresenceExists
	}
	rec := m.pres
	if rec == nil {
		if m.c.alone() {
			if ru := in.remote[m.c.id]; ru != nil {
				rec = ru.pres
			}
		} else {
			rec = in.userPresenceLocked(m.c.id)
		}
	}
	keep := rec != nil && rec.raw != nil && mode == presenceTrack // a later connection's track joins the entry as it is
	n := int64(len(p))
	if keep {
		n = int64(len(rec.raw))
	}
	delta := n - int64(m.pbytes)
	if err := in.ep.srv.charge(m.c, delta); err != nil {
		return err
	}
	m.held += delta
	m.pbytes = int32(n)
	if rec == nil {
		rec = in.trackLocked(m.c.id, p)
		m.pres = rec
		rec.local++
		in.presenceChangedLocked(protocol.EventJoin, p) // m among the recipients
		return nil
	}
	if m.pres == nil {
		// the user was present already: the others hear nothing of this
		// connection, which learns the list as a joiner does
		m.pres = rec
		rec.local++
		f := in.presenceFrameLocked(protocol.EventJoin, rec.raw)
		m.c.send(f)
		f.Release()
	}
	if !keep && !bytes.Equal(rec.raw, p) {
		rec.raw = p
		in.presenceChangedLocked(protocol.EventUpdate, p)
	}
	return nil
}

func (in *instance) presenceOf(c *Client, id string) (json.RawMessage, bool) {
	in.mu.RLock()
	defer in.mu.RUnlock()
	m := in.pickLocked(c, id)
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
