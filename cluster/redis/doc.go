// Package redis is the Redis backend of cluster.PubSub, wire-compatible
// with the reference PondSocket nodes (docs/distributed.md): the bytes published
// are the §5 envelope, one plain PUBLISH per message on the exact topic
// string, so Go and JavaScript nodes on the same Redis (same key prefix and
// namespace) see each other's messages.
//
// Subscriptions use plain SUBSCRIBE per exact topic, never PSUBSCRIBE: a
// channel named "/chat/[a]*?" is a literal name, not a glob. They live on
// one dedicated connection (as in the reference), separate from the pooled
// connections that PUBLISH. When that connection breaks, a loop reconnects
// after min(100·attempt, 500) ms and subscribes every topic again (it tells
// the Node through cluster.ConnectionNotifier, both ways); the
// connection is pinged after HealthInterval of silence and dropped if the
// PING goes unanswered, so a silent network failure is noticed too.
//
// Publish does not retry or queue: while Redis is unreachable it fails at
// once and the cluster.Node keeps the message in its byte-bounded buffer
// (PublishBuffer) until Redis takes it.
// A subscriber that cannot keep up is disconnected by Redis itself
// (client-output-buffer-limit pubsub, default 32 MB hard / 8 MB for 60 s);
// it then reconnects, and the messages in between are lost, as for any
// Redis pub/sub client.
//
// Concurrency: all methods are safe for concurrent use; deliver runs on the
// one receive goroutine, so messages arrive in the order Redis sent them.
package redis
