// Package cluster lets several PondSocket nodes share channels over a
// publish/subscribe bus, speaking the distributed protocol v1 of the
// reference JavaScript server (docs/distributed.md), so Go and reference
// nodes on the same Redis understand each other.
//
// It is everything below the channel layer's distributed semantics (who is
// a member where, presence across nodes; the channel layer is the root
// package's hub): the wire envelope, topics, the bus backends, heartbeats,
// node liveness and healing. It imports no Redis or Kafka
// code; the backends live in cluster/redis and cluster/kafka and plug in
// through the PubSub interface. MemoryBus is an in-process bus for tests
// and single-process setups.
//
// # The path of a message
//
// Outbound: the channel layer calls Node.Publish with an Envelope. Publish
// stamps it (protocol, version, messageId, sourceNodeId, timestamp),
// encodes it on the caller's goroutine (Encode), and appends the bytes to
// the node's single outbound buffer; it never blocks and local delivery
// never waits for the bus. One sender goroutine drains the buffer in order,
// handing the backend up to 512 messages at once when it implements
// BatchPublisher (one Redis pipeline or one Kafka produce per batch). While
// the backend fails, the sender keeps the messages and retries with
// back-off (20 ms doubling to 500 ms); the buffer is bounded in bytes
// (Options.PublishBuffer, default 16 MiB) and past it the oldest messages
// are dropped, counted (Stats.Overflowed) and logged at most once a second.
// So an outage that the buffer covers loses nothing (the reference loses
// everything published meanwhile). Messages of one topic leave in Publish
// order; a backend failing in the middle of a batch may duplicate the
// messages after the failure (at-least-once while failing, exactly-once
// otherwise).
//
// Inbound: the backend calls the node's deliver callback. The node decodes
// (Decode applies every receiver check of docs/distributed.md §3 and the type's
// required fields; invalid messages are dropped and counted), drops its own
// messages by sourceNodeId, refreshes the sender's last-seen time (any
// message counts, so a node first seen through a user message is alive
// from now), consumes heartbeats, drops messages of topics it no longer
// subscribes, and passes the rest to Handler.HandleMessage.
//
// Liveness: a heartbeat (NODE_HEARTBEAT on HeartbeatTopic) is sent once the
// backend is connected and every HeartbeatInterval, straight to the backend
// rather than through the buffer, so it neither waits behind a backlog nor
// is retried (the next one follows). Every min(interval, timeout/4) the node
// declares down any node silent for HeartbeatTimeout, remembers it as down
// and calls Handler.NodeDown once for it. It judges nobody while it cannot
// hear the bus itself or right after it stalled (below): silence it could
// not have heard is no evidence, so every peer then gets a fresh timeout.
//
// Bus state: the bus counts as reachable (Stats.Connected, Ready) while the
// last publish attempt (a heartbeat or the sender's) succeeded and, for a
// backend that implements ConnectionNotifier (Redis), its receiving side
// is up. While heartbeats fail they are retried every 250 ms (or every
// interval, if shorter), so the bus's return is seen without waiting for
// the next tick. When a notifying backend's receiving side returns, the
// node sends a heartbeat at once and the sender holds its buffer until
// the other nodes' subscribers, which reconnect at about the same time,
// are there: Redis keeps nothing for an absent subscriber. A backend that
// implements SubscriberCounter (Redis: PUBSUB NUMSUB on the heartbeat
// topic) ends the hold as soon as it counts this node and every peer it
// knows; the hold lasts 600 ms at most (a slower or departed peer).
//
// # Healing
//
// A node's view of the others, or theirs of it, can be wrong after a node
// was declared down by mistake (a pause longer than the timeout, a
// partition), after a bus outage (messages the others never received), or
// after this node dropped messages (buffer overflow). The Node notices
// four events and asks the Handler, through the optional Resyncer
// interface, to resynchronise (one call at a time, on its own goroutine):
//
//   - peer back: a message (any, heartbeats included) arrives from a node
//     it had declared down. Logged at INFO; the WARN "node is down" line
//     came before it.
//   - bus back: the bus is reachable again after it was not (sweep). With
//     a notifying backend the resync starts when the hold above ends, so
//     that the other nodes can hear it and answer within the window.
//   - stalled: the heartbeat ticker fired more than HeartbeatTimeout/2 late,
//     so this process did not run and the others may have declared it down
//     (sweep). Logged at WARN.
//   - messages dropped: the buffer overflowed; the resync runs once the bus
//     accepts messages again (sweep).
//
// What each side does. The channel layer's Resync, for every channel the
// node serves (has local members in), publishes under the channel's lock
// a STATE_RESPONSE listing its own members with their assigns and presence
// — unasked — and then a STATE_REQUEST. Every other node with members in
// the channel answers the request with its own STATE_RESPONSE. A receiver
// takes a STATE_RESPONSE as the sender's complete list for that channel:
// users it did not know are added (attributed to the sender), known users
// of the sender get the listed assigns and presence (an untracked {} one
// removes the presence), and users attributed to the sender that the list
// omits are forgotten. So the returning node's users reappear everywhere
// (each receiver re-admits them from its unasked STATE_RESPONSE, reference
// nodes included, which add users they do not know), and the returning
// node learns everybody's current state from the answers. Changes made
// meanwhile on either side are in the lists, because the lists are the
// present state, not a replay.
//
// Ghosts. A user that left a node while its USER_LEFT could not reach us,
// and was that node's last member of the channel, is in no answer: that
// node no longer serves the channel. So in a sweeping resync, each remote
// user gets an epoch stamp whenever its node confirms it (USER_JOINED,
// PRESENCE_UPDATE, ASSIGNS_UPDATE, a STATE_RESPONSE listing it); users not
// confirmed within the window (the heartbeat interval, 200 ms to 5 s) are
// forgotten. Every node that still has the user answers within the window,
// so only ghosts go; an answer that comes later re-adds its users.
//
// Conflicts. A user id is a connection id and lives on exactly one node, so
// the only conflicts are between views of when a user existed: the node
// holding a user is the authority for it, and its latest list wins over
// anything older, because per topic the bus keeps order and the list is
// published under the same lock that orders the member's USER_JOINED and
// USER_LEFT (a member in a snapshot that then leaves has its USER_LEFT
// after the snapshot). A listed user this node attributes to another node
// is left alone (reference nodes list every user they know). A user may be
// held by this node and others at once (several connections per user id):
// the remote record keeps the set of nodes holding it.
//
// Why it converges. After the faults end and the bus delivers, each node N
// with members in a channel publishes its complete list at least once after
// the last event that could have hidden a change (its own return, the
// other's return, the bus's return); every receiver replaces its record of
// N's users with that list; later changes travel as ordinary messages in
// order behind it. Users of nodes that no longer serve the channel are
// removed by the sweep (or were removed by NodeDown). Each node's record
// of each other node therefore equals that node's own state, and all
// records agree. A node that never stalled, lost nothing and declared
// nobody down does nothing.
//
// Publishing never rests on a guess: the channel layer skips publishing a
// message whose recipients it sees only locally only while the node is
// Alone (the bus is reachable, no other node was heard from, none is
// remembered as down). Otherwise a node that forgot a peer's users would
// stop sending to them for good.
//
// # Decisions
//
//   - EndpointName: Node.Subscribe and Node.Publish accept the endpoint's
//     registered pattern ("/api/socket") or its name ("api/socket"); both
//     normalise with EndpointName (which is idempotent), so topics and the
//     envelope's endpointName always carry the name.
//   - Start does not fail when the bus is unreachable: it logs a clear error
//     and keeps retrying in the background (100 ms doubling to 5 s), so a
//     server comes up with its bus and recovers when the bus does. Set
//     Options.FailFast to get the error from Start instead.
//   - Deliberate differences on the wire (docs/distributed.md §9 otherwise holds:
//     one node id per process, exact topics, all envelope fields, all 13
//     types): STATE_RESPONSE lists only the sender's own users, is also sent
//     unasked when resynchronising, and is read as the sender's complete
//     list (see Healing).
//   - Encode writes keys in the reference's order, so a message re-encoded
//     after Decode is byte-identical to what a reference node sent
//     (Appendix C is the test fixture). Strings are escaped as
//     JSON.stringify does (no HTML escaping).
//   - Decode is strict about the envelope and about present fields of the
//     wrong JSON type, lenient about absent optional fields (payload,
//     requestId, reason, fromNode, nodeId and the presence/assigns of
//     USER_JOINED and USER_GET_RESPONSE default), and keys are
//     case-sensitive, as in JavaScript.
//
// # Concurrency
//
// Every exported method of Node, MemoryBus and the PubSub implementations
// is safe for concurrent use. Handler methods are called from the backend's
// delivery goroutines (HandleMessage: concurrently for different topics,
// sequentially and in publish order for one topic) and from the liveness
// goroutine (NodeDown) and the resync goroutine (Resync); a Handler must synchronise its own state and should
// not block (a slow handler holds back its topic; with Redis, a subscriber
// that falls too far behind is disconnected by the server). No Handler
// method runs after Node.Close has returned. Encode, Decode and the topic
// functions are pure.
package cluster
