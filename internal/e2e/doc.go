// Package e2e holds the end-to-end tests of PondSocket: servers on real
// sockets, the programs of cmd/ and examples/ run as processes (through
// internal/testenv's process harness), the published JS client, Node ws,
// Python websockets, redis-server and a Kafka-protocol broker. The package
// has no code of its own; the root package's tests of its internals stay
// beside it.
package e2e
