// The hub (hub.go) is the PondSocket server proper: endpoints, channel
// patterns ("lobbies"), live channels, presence, assigns, middleware and
// the handler contexts of the public API. It knows nothing of sockets: a
// transport hands it connections (Conn) and client messages, and it hands
// back pre-encoded wsframe.Frames, one per message however many recipients
// there are.
//
// # The path of a message
//
// The transport calls hub.Message on the connection's event loop. The
// message is validated and decoded there (cheap, no user code), then queued
// in the client's mailbox. A bounded pool of workers drains mailboxes: one
// worker at a time per client, so each connection's messages are handled
// in order while a handler that blocks (a database call) delays only its
// own connection. An event handler registered with OnEventInline runs on
// the loop instead, right where the message was decoded, when the client
// has nothing queued or running on a worker and the pattern has no
// middleware or outgoing hooks (Client.runInline); Options.Handlers.Inline
// does that for every handler, for applications whose handlers never
// block.
//
// The mailbox is bounded in bytes per client (MaxQueuedBytes) and over all
// clients (MaxTotalQueuedBytes). Each handler (an event handler of a
// pattern, a pattern's join or leave handler) has a gate (gate.go) that
// lets at most Handlers.MaxPerHandler workers run it at once: a client whose
// next message needs a full gate parks there without a worker and is
// handed the next free slot. Messages of a client that disconnected are
// dropped unrun; its disconnect job (leave handlers) still runs. Handlers
// get a context cancelled when their connection goes away, at
// Handlers.Timeout, and when Shutdown abandons them at its deadline.
//
// A broadcast is encoded once (internal/protocol.Encode into a pooled
// wsframe.Frame) and handed to the transport's Fanout with every
// recipient's connection; the engine groups them per event loop.
// BroadcastFrom and BroadcastTo share the same bytes.
// Only a channel pattern with outgoing hooks (OnOutgoing) pays one encoding
// per recipient. Presence messages are encoded once per change and, during
// storms, coalesced (presence.go).
//
// # Tables and locks
//
// Live channels and connected clients live in xxhash-sharded tables (64
// shards, each with its own RWMutex) owned by their Endpoint. A live channel
// (instance) is created when a join is accepted — never for a declined
// join — and removed when its last member leaves.
//
// Lock order, outermost first; a goroutine never takes a lock that comes
// before one it holds:
//
//  1. instance.mu (one live channel; never two at once)
//  2. Client.mu (a client's assigns and channel set)
//  3. table shard locks (map operations only, nothing called under them)
//  4. the transport's own locks (the engine's per-loop inbox), taken by
//     Conn.Send and Transport.Fanout, which are called under instance.mu
//
// Fan-out happens under instance.mu (read) and a join's ACKNOWLEDGE is
// posted under instance.mu (write): that is what guarantees a new member
// receives nothing of a channel before its ACKNOWLEDGE. Lobby handler lists
// (lobby.mu), the client mailbox (Client.mmu) and the gates (gate.mu, which
// only the worker pool's lock follows) are leaf locks. User code
// (handlers, hooks, leave callbacks) never runs under any of these locks.
//
// # Concurrency contract
//
// hub.Connect may block (it runs the connection handler). hub.Open,
// Message and Disconnect are safe from any goroutine; Message must be called
// in order for one client. Everything on Channel, Endpoint and Client is
// safe from any goroutine. Contexts (ConnectionContext, JoinContext,
// EventContext) belong to the handler's goroutine.

package pondsocket
