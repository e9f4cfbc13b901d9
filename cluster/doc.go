// Package cluster lets several PondSocket nodes share channels over a
// publish/subscribe bus, speaking the distributed protocol v1 of the
// reference JavaScript server (PROTOCOL.md part 2), so Go and reference
// nodes on the same Redis understand each other.
//
// It is everything below the channel layer's distributed semantics (who is
// a member where, presence across nodes): the wire envelope, topics, the
// bus backends, heartbeats and node liveness. It imports no Redis or Kafka
// code; the backends live in cluster/redis and cluster/kafka and plug in
// through the PubSub interface. MemoryBus is an in-process bus for tests
// and single-process setups.
//
// # The path of a message
//
// Outbound: the channel layer calls Node.Publish with an Envelope. Publish
// stamps it (protocol, version, messageId, sourceNodeId, timestamp),
// encodes it on the caller's goroutine (Encode), and puts the bytes on the
// node's single bounded outbound queue; it never blocks and local delivery
// never waits for the bus. One sender goroutine drains the queue in order,
// handing the backend everything queued at once when it implements
// BatchPublisher (one Redis pipeline or one Kafka produce per batch). While
// the backend fails, the sender retries with back-off (20 ms doubling to
// 1 s); a message not accepted within Options.PublishRetry of being queued
// is dropped, and a full queue drops at once: the reference loses messages
// silently in an outage, we count them (Node.Stats) and log at most once a
// second. Messages of one topic leave in Publish order; a backend failing
// in the middle of a batch may duplicate or reorder the messages it failed
// on (at-least-once while failing, exactly-once otherwise).
//
// Inbound: the backend calls the node's deliver callback. The node decodes
// (Decode applies every receiver check of PROTOCOL.md §5.2 and the type's
// required fields; invalid messages are dropped and counted), drops its own
// messages by sourceNodeId, refreshes the sender's last-seen time (any
// message counts, so a node first seen through a user message is alive
// from now), consumes heartbeats, drops messages of topics it no longer
// subscribes, and passes the rest to Handler.HandleMessage.
//
// Liveness: a heartbeat (NODE_HEARTBEAT on HeartbeatTopic) is sent once the
// backend is connected and every HeartbeatInterval, straight to the backend
// rather than through the queue, so it neither waits behind a backlog nor
// is retried (the next one follows). Every min(interval, timeout/4) the node
// declares down any node silent for HeartbeatTimeout and calls
// Handler.NodeDown once for it.
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
// goroutine (NodeDown); a Handler must synchronise its own state and should
// not block (a slow handler holds back its topic; with Redis, a subscriber
// that falls too far behind is disconnected by the server). No Handler
// method runs after Node.Close has returned. Encode, Decode and the topic
// functions are pure.
package cluster
