package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/pondsocket/pondsocket/cluster/internal/lifecycle"
)

// PubSub is a bus backend: Redis (cluster/redis), Kafka (cluster/kafka), or
// the in-process MemoryBus. Topics are the strings of ChannelTopic and
// HeartbeatTopic; data is one encoded envelope.
//
// Every method is safe for concurrent use. A backend never interprets data.
type PubSub interface {
	// Start connects and begins delivering the messages of subscribed topics
	// to deliver. ctx bounds the connection attempt only; delivery goes on
	// until Close. It fails with an error that names the backend address
	// when the backend cannot be reached; a PubSub whose Start failed holds
	// nothing and Start may be called again (the Node retries).
	//
	// deliver is called from the backend's own goroutines: calls for one
	// topic are sequential and in publish order; calls for different topics
	// may be concurrent (Kafka delivers each partition on its own
	// goroutine). deliver may keep data (the backend never reuses it) but
	// must not modify it (the Redis backend hands over the bytes of the
	// client library's string without copying them), and should return
	// quickly: a slow deliver holds back the topics behind it.
	// deliver is not called once Close has returned.
	Start(ctx context.Context, deliver func(topic string, data []byte)) error

	// Subscribe starts delivery of topic. The subscription is kept across
	// reconnections. When it returns nil on a connected backend, messages
	// published to topic afterwards are delivered. It may be called before
	// Start. Kafka: a local filter only (every partition is read anyway).
	Subscribe(ctx context.Context, topic string) error

	// Unsubscribe stops delivery of topic: nothing of topic is delivered
	// after it returns.
	Unsubscribe(ctx context.Context, topic string) error

	// Publish sends data to every subscriber of topic, on every connected
	// node (the publisher's own subscription included). It returns when the
	// backend has accepted the message or failed; while the backend is
	// unreachable it fails (it does not queue): retrying is the Node's job.
	Publish(ctx context.Context, topic string, data []byte) error

	// Close stops delivery, waits for the backend's goroutines and releases
	// its connections. It is idempotent.
	Close() error
}

// Message is one message of a batch.
type Message struct {
	Topic string
	Data  []byte
}

// BatchPublisher is implemented by backends that publish several messages
// in one round trip (a Redis pipeline, one Kafka produce request). The Node
// uses it when it has more than one message queued. Messages of one topic
// are published in slice order.
type BatchPublisher interface {
	// PublishBatch returns nil when every message was accepted. Otherwise it
	// returns a *BatchError when it knows which messages failed, or any
	// other error when all of them must be considered failed.
	PublishBatch(ctx context.Context, msgs []Message) error
}

// BatchError reports which messages of a batch failed: Errs[i] is the error
// of msgs[i], nil when it was accepted.
type BatchError struct {
	Errs []error
}

func (e *BatchError) Error() string {
	n, first := 0, error(nil)
	for _, err := range e.Errs {
		if err != nil {
			if first == nil {
				first = err
			}
			n++
		}
	}
	return fmt.Sprintf("%d of %d messages failed: %v", n, len(e.Errs), first)
}

// Unwrap returns the errors of the failed messages.
func (e *BatchError) Unwrap() []error {
	var errs []error
	for _, err := range e.Errs {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// ErrRefused marks a connection error that retrying cannot cure: the bus
// refused the credentials, or its TLS certificate could not be verified.
// A backend wraps such errors (errors.Is(err, ErrRefused)); Node.Start
// returns them instead of retrying in the background.
var ErrRefused = errors.New("cluster: the bus refused this node (credentials or TLS)")

// Refused wraps err as an ErrRefused error (nil stays nil).
func Refused(err error) error {
	if err == nil {
		return nil
	}
	return refusedError{err}
}

type refusedError struct{ err error }

func (e refusedError) Error() string   { return e.err.Error() }
func (e refusedError) Unwrap() []error { return []error{e.err, ErrRefused} }

// IsTLSVerification reports whether err is a failed verification of the
// server's certificate, which retrying does not cure.
func IsTLSVerification(err error) bool {
	var ce *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &ce) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

// Errors shared by the backends and the Node. The backends' life
// (cluster/internal/lifecycle) is where they are defined.
var (
	ErrClosed     = lifecycle.ErrClosed     // "cluster: closed"
	ErrNotStarted = lifecycle.ErrNotStarted // "cluster: not started"
	ErrStarted    = lifecycle.ErrStarted    // "cluster: already started"
)
