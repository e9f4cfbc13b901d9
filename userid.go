package pondsocket

import (
	"fmt"
)

// MaxUserIDBytes bounds a user id set with ConnectionContext.SetUserID.
const MaxUserIDBytes = 256

// StatusUserConnected is the HTTP status of an upgrade declined because the
// user id it chose already has Options.Transport.MaxConnectionsPerUser live
// connections on the endpoint (see SetUserID).
const StatusUserConnected = 409

// CloseUserConnected is the WebSocket close code of a connection whose
// upgrade raced with other connections of the same user id and found the
// user's MaxConnectionsPerUser connections taken when it became live.
const CloseUserConnected = 4409

// SetUserID sets the connection's user id, instead of the random one it gets
// by default: the id presence lists show, BroadcastTo and EvictUser target,
// Endpoint.Client finds, and CONNECT's connectionId carries. An id is
// non-empty and at most MaxUserIDBytes bytes; a bad id makes Accept fail.
//
// A user id may have several connections at once (two browser tabs), up to
// Options.Transport.MaxConnectionsPerUser on the endpoint; a further upgrade is
// declined with StatusUserConnected (409), and one that raced past the
// check is closed with CloseUserConnected as soon as it becomes live. The
// connections of one user are one user everywhere a user id is named:
//
//   - presence shows the user once per channel: the first of its
//     connections to track presence there creates the entry (JOIN), a
//     later connection's track joins that entry without changing it (no
//     message), an update from any of them replaces the one entry
//     (UPDATE), and the entry leaves (LEAVE) when the last of them stops
//     tracking or leaves the channel;
//   - a message to the user (BroadcastTo, a reply's recipients by id,
//     EvictUser, Endpoint.CloseConnection) reaches each of its
//     connections; BroadcastFrom leaves out every connection of the
//     sending user; a handler's Reply reaches only the connection whose
//     message it answers;
//   - each connection still joins, leaves and holds its own channel
//     assigns: Channel.GetUser and the channel-level assigns of a user are
//     those of its first connection in the channel.
func (ctx *ConnectionContext) SetUserID(id string) *ConnectionContext {
	switch {
	case id == "":
		ctx.err = fmt.Errorf("pondsocket: empty user id")
	case len(id) > MaxUserIDBytes:
		ctx.err = fmt.Errorf("pondsocket: user id of %d bytes, over %d", len(id), MaxUserIDBytes)
	default:
		ctx.id = id
		ctx.customID = true
	}
	return ctx
}

// userFull reports whether the user id the handler chose already has its
// MaxConnectionsPerUser connections.
func (ctx *ConnectionContext) userFull() bool {
	if !ctx.customID {
		return false
	}
	return ctx.ep.userConns(ctx.id) >= ctx.ep.srv.opts.Transport.MaxConnectionsPerUser
}

// The connections of one user id on an endpoint form a list: the table
// holds the first, each Client points to the next (Client.nextSame). Only
// the table's update (under its shard lock) changes the list; readers walk
// it through atomic pointers without any lock, so they may see a
// connection that is being removed (as any reader racing a disconnect
// may). A user with one connection costs nothing but the pointer.

// claim adds c to its user's connections; false when the user already has
// MaxConnectionsPerUser of them (c is then not in the table).
func (ep *Endpoint) claim(c *Client) bool {
	ok := false
	limit := ep.srv.opts.Transport.MaxConnectionsPerUser
	ep.clients.update(c.id, func(head *Client, present bool) (*Client, bool) {
		if !present {
			ok = true
			return c, true
		}
		n, last := 1, head
		for next := head.nextSame.Load(); next != nil; next = next.nextSame.Load() {
			n, last = n+1, next
		}
		if n >= limit {
			return head, true
		}
		c.multi.Store(true)
		for o := head; o != nil; o = o.nextSame.Load() {
			o.multi.Store(true)
		}
		last.nextSame.Store(c)
		ok = true
		return head, true
	})
	if ok {
		ep.nconns.Add(1)
	}
	return ok
}

// unclaim removes c from its user's connections; false when it was not
// there.
func (ep *Endpoint) unclaim(c *Client) bool {
	found := false
	ep.clients.update(c.id, func(head *Client, present bool) (*Client, bool) {
		if !present {
			return nil, false
		}
		if head == c {
			found = true
			next := c.nextSame.Load()
			return next, next != nil
		}
		for prev := head; ; {
			next := prev.nextSame.Load()
			if next == nil {
				return head, true
			}
			if next == c {
				// c keeps its own next: a reader standing on c goes on
				prev.nextSame.Store(c.nextSame.Load())
				found = true
				return head, true
			}
			prev = next
		}
	})
	if found {
		ep.nconns.Add(-1)
	}
	return found
}

// eachConn calls fn for each live connection of the user id, first to
// last, until fn returns false.
func (ep *Endpoint) eachConn(id string, fn func(*Client) bool) {
	c, ok := ep.clients.get(id)
	for ok && c != nil {
		if !fn(c) {
			return
		}
		c = c.nextSame.Load()
	}
}

// alone reports that c is its user's only connection (it never shared
// its id): the per-user lookups then need not walk the table.
func (c *Client) alone() bool { return !c.multi.Load() }

// userConns is the number of live connections of the user id.
func (ep *Endpoint) userConns(id string) int {
	n := 0
	ep.eachConn(id, func(*Client) bool { n++; return true })
	return n
}
