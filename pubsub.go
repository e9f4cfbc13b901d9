package pondsocket

import (
	"context"
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go/sasl"

	"github.com/pondsocket/pondsocket/cluster"
	"github.com/pondsocket/pondsocket/cluster/kafka"
	"github.com/pondsocket/pondsocket/cluster/redis"
)

// PubSub is a cluster backend: set Options.PubSub to run several nodes that
// behave as one (broadcasts, presence and assigns reach every node). Nil
// means a single node with nothing extra to run.
type PubSub = cluster.PubSub

// RedisPubSubOptions configures NewRedisPubSub. The topics and messages are
// the PondSocket distributed protocol v1, so these nodes interoperate with
// other PondSocket nodes (the JavaScript reference) on the same Redis.
type RedisPubSubOptions struct {
	Host string // default "localhost"
	Port int    // default 6379
	// Username (Redis 6 ACL user; empty = "default") and Password.
	Username string
	Password string
	DB       int
	// URL (redis://…, or rediss://… for TLS) overrides Host, Port,
	// Username, Password and DB.
	URL string
	// TLS, when set, connects over TLS with this configuration (also
	// with a URL; rediss:// alone uses the system roots).
	TLS *tls.Config
	// Logger gets the backend's connection losses and recoveries. Default
	// slog.Default().
	Logger *slog.Logger
}

// NewRedisPubSub returns a Redis backend.
func NewRedisPubSub(o *RedisPubSubOptions) PubSub {
	if o == nil {
		o = &RedisPubSubOptions{}
	}
	return redis.New(redis.Options{Host: o.Host, Port: o.Port, Username: o.Username, Password: o.Password, DB: o.DB,
		URL: o.URL, TLS: o.TLS, Logger: o.Logger})
}

// KafkaPubSubOptions configures NewKafkaPubSub.
type KafkaPubSubOptions struct {
	Brokers []string
	// TopicPrefix names the few fixed Kafka topics (default "pondsocket").
	TopicPrefix string
	// Partitions of the channel topic when it is created (default 12).
	Partitions int
	ClientID   string
	SASL       sasl.Mechanism
	TLS        *tls.Config
	// BatchTimeout is the producer's linger (default 2 ms).
	BatchTimeout time.Duration
	// Logger gets the backend's connection problems. Default
	// slog.Default().
	Logger *slog.Logger
}

// NewKafkaPubSub returns a Kafka backend. Configuration errors surface when
// the server starts.
func NewKafkaPubSub(o *KafkaPubSubOptions) PubSub {
	if o == nil {
		o = &KafkaPubSubOptions{}
	}
	ps, err := kafka.New(kafka.Options{Brokers: o.Brokers, TopicPrefix: o.TopicPrefix, Partitions: o.Partitions,
		ClientID: o.ClientID, SASL: o.SASL, TLS: o.TLS, BatchTimeout: o.BatchTimeout, Logger: o.Logger})
	if err != nil {
		return failedPubSub{err}
	}
	return ps
}

type failedPubSub struct{ err error }

func (f failedPubSub) Start(context.Context, func(string, []byte)) error { return f.err }
func (f failedPubSub) Subscribe(context.Context, string) error           { return f.err }
func (f failedPubSub) Unsubscribe(context.Context, string) error         { return f.err }
func (f failedPubSub) Publish(context.Context, string, []byte) error     { return f.err }
func (f failedPubSub) Close() error                                      { return nil }

// ClusterOptions tunes the node when Options.PubSub is set.
type ClusterOptions struct {
	// NodeID identifies this node (default: random).
	NodeID string
	// KeyPrefix and Namespace form the topics (defaults "pondsocket" and
	// "default"); nodes that should see each other share both.
	KeyPrefix string
	Namespace string
	// HeartbeatInterval and HeartbeatTimeout: a node silent for the timeout
	// is considered dead and its users leave every channel (defaults 30 s
	// and 90 s, as the reference).
	HeartbeatInterval time.Duration
	HeartbeatTimeout  time.Duration
	// PublishBuffer bounds, in bytes, the messages kept for the bus while
	// it is slow or unreachable (default 16 MiB); past it the oldest are
	// dropped and counted, and membership is resynchronised afterwards.
	PublishBuffer int
}
