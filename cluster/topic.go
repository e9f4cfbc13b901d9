package cluster

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// ChannelTopic is the bus topic of one channel (docs/distributed.md §2):
// "<prefix>:v1:<namespace>:<endpoint pattern without leading '/'>:<channel
// name verbatim>", e.g. "pondsocket:v1:demo:api/socket:/chat/lobby".
func ChannelTopic(prefix, namespace, endpointPattern, channelName string) string {
	endpoint := EndpointName(endpointPattern)
	var b strings.Builder
	b.Grow(len(prefix) + len(namespace) + len(endpoint) + len(channelName) + 6)
	b.WriteString(prefix)
	b.WriteString(":v1:")
	b.WriteString(namespace)
	b.WriteByte(':')
	b.WriteString(endpoint)
	b.WriteByte(':')
	b.WriteString(channelName)
	return b.String()
}

// HeartbeatTopic is the bus topic of node heartbeats:
// "<prefix>:v1:<namespace>:__heartbeat__".
func HeartbeatTopic(prefix, namespace string) string {
	return prefix + ":v1:" + namespace + ":" + HeartbeatName
}

// EndpointName is an endpoint's registered pattern with all leading '/'
// removed, as it appears in topics and in the envelope: "/api/socket" →
// "api/socket". It is idempotent.
func EndpointName(pattern string) string {
	return strings.TrimLeft(pattern, "/")
}

// NewMessageID returns "<unix ms base36>-<random base36>", the shape of the
// reference's message ids.
func NewMessageID() string {
	b := make([]byte, 0, 24)
	b = strconv.AppendInt(b, time.Now().UnixMilli(), 36)
	b = append(b, '-')
	b = strconv.AppendUint(b, rand.Uint64()>>8, 36) // 56 random bits: up to 11 digits
	return string(b)
}

const base36 = "0123456789abcdefghijklmnopqrstuvwxyz"

// NewNodeID returns a random base-36 node id of 12 characters (the
// reference uses 10–13).
func NewNodeID() string {
	b := make([]byte, 12)
	for i := range b {
		b[i] = base36[rand.IntN(36)]
	}
	return string(b)
}
