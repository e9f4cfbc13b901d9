package pondsocket

import "fmt"

// MaxUserIDBytes bounds a user id set with ConnectionContext.SetUserID.
const MaxUserIDBytes = 256

// StatusUserConnected is the HTTP status of an upgrade declined because the
// user id it chose is already connected on the endpoint (see SetUserID).
const StatusUserConnected = 409

// CloseUserConnected is the WebSocket close code of a connection whose
// upgrade raced with another connection of the same user id and lost: the
// first one to become live keeps the id.
const CloseUserConnected = 4409

// SetUserID sets the connection's user id, instead of the random one it gets
// by default: the id presence lists show, BroadcastTo and EvictUser target,
// Endpoint.Client finds, and CONNECT's connectionId carries. An id is
// non-empty and at most MaxUserIDBytes bytes; a bad id makes Accept fail.
//
// A user id is one connection on an endpoint: while a connection holds the
// id, another upgrade with it is declined with StatusUserConnected (409), so
// presence shows each user once and a message to the user reaches exactly
// that connection. Two upgrades racing for an id both pass the handler; the
// first to become live keeps it and the other is closed at once with
// CloseUserConnected. The id is freed when the connection's close has been
// processed (after its leave handlers ran).
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

// userTaken reports whether another live connection of the endpoint holds
// the id the handler chose.
func (ctx *ConnectionContext) userTaken() bool {
	if !ctx.customID {
		return false
	}
	_, ok := ctx.ep.clients.get(ctx.id)
	return ok
}

// claim makes c the holder of its id in the endpoint's table; false if
// another connection got it first (c is then not in the table).
func (ep *Endpoint) claim(c *Client) bool {
	return ep.clients.getOrCreate(c.id, func() *Client { return c }, func(*Client) bool { return false }) == c
}
