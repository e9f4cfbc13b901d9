// Package client is a PondSocket client for Go programs: bots, backends,
// tests and load tools that talk to a PondSocket server (this module's, or
// the reference JavaScript server) over WebSocket. The protocol it speaks
// is docs/protocol.md.
//
//	c, err := client.Dial(ctx, "ws://localhost:8080/api/socket",
//		&client.Options{Params: map[string]string{"username": "bot"}})
//	if err != nil { ... }
//	defer c.Close()
//	room := c.Channel("/chat/lobby", map[string]any{"username": "bot"})
//	room.On("message", func(m client.Message) { ... })
//	if err := room.Join(ctx); err != nil { ... } // *client.ServerError if declined
//	err = room.Send("message", map[string]any{"text": "hello"})
//	reply, err := room.SendForResponse(ctx, "whoami", nil)
//
// # Connection
//
// Connect (or Dial) returns once the server's CONNECT message arrived; ID
// is then the connection id other members see. When the connection is
// lost the client reconnects by itself with exponential back-off and
// jitter (Options.Reconnect; it can be disabled) and joins again every
// channel that was joined or joining, with the original join parameters.
// The server keeps no session: after a reconnection the client has a new
// ID. A refused upgrade is a *HandshakeError; a connection that ends is a
// *CloseError with the server's close code and reason (1006 when the
// connection dropped), delivered to Options.OnDisconnect, to waiting calls
// and, when reconnection is disabled, by Err.
//
// # Channels
//
// A Channel moves through the states IDLE → JOINING → JOINED, or DECLINED
// (Err is the *ServerError with the refusal's status and message); a lost
// connection makes a joined channel STALLED until the rejoin's
// acknowledgement; Leave, an eviction (kicked_out) or Close make it
// CLOSED. Messages sent while the channel is joining or stalled wait in a
// queue and go out after the acknowledgement; the queue is bounded in
// messages and bytes for the whole client (Options.MaxQueuedMessages,
// Options.MaxQueuedBytes, counted until the socket took the message), and
// Send returns a *QueueFullError (errors.Is ErrQueueFull) when full.
//
// Messages are received through subscriptions: On(event, fn) for one
// event, OnMessage(fn) for all, OnPresence/OnJoin/OnLeave/OnUpdate for
// presence (each event carries the complete list; Presence returns the
// last one) and OnStateChange. Each returns a function that unsubscribes.
// Messages that arrive for a channel before its join is acknowledged are
// dropped, as the protocol prescribes. The ACKNOWLEDGE itself is a state
// change, not a message.
//
// # Concurrency contract
//
//   - Every method of Client and Channel is safe to call from any
//     goroutine, concurrently, including from callbacks.
//   - All callbacks of a Client (subscriptions, OnConnect, OnDisconnect,
//     OnServerMessage) run on one goroutine per Client, one at a time, in
//     the order the messages arrived. A callback should return quickly: up
//     to Options.DispatchBuffer messages wait for it, then the client
//     stops reading the socket until callbacks catch up (and a server cuts
//     a client that does not read for long, close 1008).
//   - A callback may call Send, Leave and Close. It may also call the
//     waiting calls (Join, SendForResponse, Connect): their answers are
//     processed by the reading goroutine, not by the callback goroutine,
//     so they complete while the callback waits, as long as fewer than
//     DispatchBuffer messages pile up meanwhile; give them a context with a
//     deadline, or run them in a goroutine of your own.
//   - Subscriptions are looked up when a message is delivered: a function
//     subscribed or unsubscribed from any goroutine takes effect for the
//     messages delivered after the call returns.
//   - Close stops the connection, fails waiting calls with ErrClosed and
//     returns after every goroutine of the client has exited (called from
//     a callback, it cannot wait for the callback goroutine itself, which
//     exits when that callback returns); a callback that never returns
//     therefore keeps Close from returning. No callback starts after Close
//     returns. Call Close even when Connect failed.
//
// The client runs, per Client, one callback goroutine and one supervisor
// goroutine (reconnection), and per connection one reading and one writing
// goroutine.
//
// # Delivery
//
// Sending is at most once. A message taken by the socket just before the
// connection dropped may be lost; messages still queued when it drops are
// sent again after the rejoin. SendForResponse fails with
// ErrConnectionLost only for requests already written.
package client
