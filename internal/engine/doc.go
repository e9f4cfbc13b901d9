// Package engine is PondSocket's WebSocket reactor: a few gnet event loops
// own every socket, with no goroutine per connection.
//
// The path of a message through the engine:
//
//  1. Bytes arrive on an event loop (gnet OnTraffic). Until the upgrade the
//     request head accumulates in gnet's inbound buffer and is parsed once
//     complete; plain HTTP requests go to Config.HTTP on their own goroutine,
//     upgrade requests to Handler.Upgrade (off the loop, it may block).
//  2. After the 101, frames are parsed in place from gnet's buffer: headers
//     are validated before the payload is awaited (so an oversized frame is
//     refused at once), payloads are unmasked where they lie, and a partial
//     frame simply stays in gnet's buffer. Pings, pongs and the close
//     handshake are answered here; complete text/binary messages go to
//     Handler.OnMessage.
//  3. Outbound, the layer above hands sealed wsframe.Frames to Conn.Send or
//     Engine.Fanout. Both post to a per-loop inbox; the loop links frames to
//     per-connection queues and writes each connection's queue with one
//     writev. A fan-out is one task per loop, never one per recipient.
//
// Sockets are accepted by the engine's own acceptor (accept.go), not by
// gnet's listener, so that running out of file descriptors pauses accepting
// instead of stopping the engine; FDHeadroom descriptors below the limit
// upgrades get 503 while plain HTTP (health checks, metrics) is still
// served, and in the last half of it sockets are answered 503 at once.
//
// Limits: MaxHeaderBytes (431), the upgrade validator CheckUpgrade, bare-LF
// lines and a duplicate Host (400), MaxConnections and MaxPendingUpgrades
// (503), MaxMessageSize (close 1009), MaxInflateRate (close 1008),
// MaxOutboundBytes with SlowConsumerTimeout, MaxOutboundBurst and
// MaxTotalOutboundBytes (slow consumer, close 1008; pongs are collapsed and
// count against it), HandshakeTimeout, PongWait, IdleTimeout and
// CloseTimeout. Log lines remote input can trigger go through
// internal/ratelog. Timers are one sweep per loop per tick of gnet's single
// ticker.
//
// Concurrency: Handler.OnOpen, OnMessage and OnClose run on the connection's
// loop and must not block. Conn.Send, Conn.Close, Engine.Fanout, Engine.Stop
// and Stats are safe from any goroutine. Everything else in Conn is owned
// by its loop.
package engine
