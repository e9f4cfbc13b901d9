package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"

	"github.com/pondsocket/pondsocket/cluster"
	"github.com/pondsocket/pondsocket/cluster/internal/lifecycle"
)

// Options configures the Kafka backend. Zero fields take the defaults shown.
type Options struct {
	// Brokers are bootstrap addresses ("host:9092"); at least one.
	Brokers []string
	// TopicPrefix names the Kafka topics "<prefix>.channels" and
	// "<prefix>.heartbeat". Default "pondsocket". Kafka topic names allow
	// [a-zA-Z0-9._-].
	TopicPrefix string
	// Partitions of "<prefix>.channels" when this backend creates it
	// (default 12). An existing topic keeps its own count; every node reads
	// the count from the cluster, so they agree on the mapping.
	Partitions int
	// ReplicationFactor of created topics. Default min(3, brokers in the
	// cluster).
	ReplicationFactor int
	// TopicConfigs are the configs of created topics. Default
	// {"retention.ms": "3600000"}: bus messages are worthless after
	// delivery, an hour of log is plenty.
	TopicConfigs map[string]string
	ClientID     string         // default "pondsocket"
	SASL         sasl.Mechanism // e.g. plain.Mechanism or scram.Mechanism from kafka-go/sasl
	TLS          *tls.Config
	// BatchTimeout is how long the writer waits to fill a batch (kafka-go's
	// default is one second; ours is 2ms: a cross-node hop must be fast).
	BatchTimeout time.Duration
	// RequiredAcks of produce requests: kafkago.RequireOne (the default,
	// also for the zero value) or kafkago.RequireAll. kafkago.RequireNone
	// cannot be chosen: fire-and-forget hides every publish failure from
	// the Node, whose retry and drop counters depend on them.
	RequiredAcks kafkago.RequiredAcks
	// CreateTopics: create missing topics at Start (nil = true). When false,
	// a missing topic fails Start with a message naming it.
	CreateTopics *bool
	// DialTimeout bounds connecting to a broker. Default 5s.
	DialTimeout time.Duration
	// MaxWait is the long-poll of the partition readers: a fetch waits at
	// most this long for data. It does not add latency (a fetch returns as
	// soon as a message is there) but bounds how long Close waits for the
	// fetches in flight, and each idle partition costs one fetch per
	// MaxWait. Default 500ms.
	MaxWait time.Duration
	// Logger gets connection problems. Default slog.Default().
	Logger *slog.Logger
}

const (
	channelsSuffix  = ".channels"
	heartbeatSuffix = ".heartbeat"
)

func (o Options) withDefaults() (Options, error) {
	if len(o.Brokers) == 0 {
		return o, errors.New("kafka: Options.Brokers is empty")
	}
	if o.TopicPrefix == "" {
		o.TopicPrefix = "pondsocket"
	}
	for _, c := range o.TopicPrefix {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return o, fmt.Errorf("kafka: TopicPrefix %q: Kafka topic names allow only [a-zA-Z0-9._-]", o.TopicPrefix)
		}
	}
	if len(o.TopicPrefix)+len(heartbeatSuffix) > 249 {
		return o, fmt.Errorf("kafka: TopicPrefix is too long")
	}
	if o.Partitions <= 0 {
		o.Partitions = 12
	}
	if o.TopicConfigs == nil {
		o.TopicConfigs = map[string]string{"retention.ms": "3600000"}
	}
	if o.ClientID == "" {
		o.ClientID = "pondsocket"
	}
	if o.BatchTimeout <= 0 {
		o.BatchTimeout = 2 * time.Millisecond
	}
	switch o.RequiredAcks {
	case kafkago.RequireNone:
		o.RequiredAcks = kafkago.RequireOne
	case kafkago.RequireOne, kafkago.RequireAll:
	default:
		return o, fmt.Errorf("kafka: RequiredAcks %d: use kafka.RequireOne or kafka.RequireAll", o.RequiredAcks)
	}
	if o.CreateTopics == nil {
		yes := true
		o.CreateTopics = &yes
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o, nil
}

// New returns a PubSub over Kafka. It does not connect: Start does. It
// fails only on invalid options.
func New(o Options) (cluster.PubSub, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	return &pubsub{
		o:        o,
		log:      o.Logger.With("component", "cluster/kafka"),
		channels: o.TopicPrefix + channelsSuffix,
		hb:       o.TopicPrefix + heartbeatSuffix,
		subs:     make(map[string]struct{}),
	}, nil
}

type pubsub struct {
	o            Options
	log          *slog.Logger
	channels, hb string // Kafka topics

	subMu sync.RWMutex
	subs  map[string]struct{} // PondSocket topics delivered

	mu        sync.Mutex
	state     lifecycle.State
	transport *kafkago.Transport
	writer    *kafkago.Writer
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	readers   int
}

// kafkaTopic is the Kafka topic carrying a PondSocket topic: heartbeats on
// their own topic (they must not queue behind channel traffic), everything
// else on the channels topic. Any node maps a topic the same way, so a
// channel named "__heartbeat__" would still be delivered, just on the
// heartbeat topic.
func (p *pubsub) kafkaTopic(topic string) string {
	if strings.HasSuffix(topic, ":"+cluster.HeartbeatName) {
		return p.hb
	}
	return p.channels
}

// keyHash maps a message to a partition by xxhash64 of its key (the
// PondSocket topic), so one channel always lands on one partition and its
// order holds.
type keyHash struct{}

func (keyHash) Balance(msg kafkago.Message, partitions ...int) int {
	return partitions[xxhash.Sum64(msg.Key)%uint64(len(partitions))]
}

// Partition is the partition of "<prefix>.channels" that carries topic,
// when the topic has n partitions.
func Partition(topic string, n int) int {
	return int(xxhash.Sum64String(topic) % uint64(n))
}

func (p *pubsub) Start(ctx context.Context, deliver func(string, []byte)) error {
	p.mu.Lock()
	err := p.state.CanStart()
	p.mu.Unlock()
	if err != nil {
		return err
	}

	transport := &kafkago.Transport{
		DialTimeout: p.o.DialTimeout,
		ClientID:    p.o.ClientID,
		TLS:         p.o.TLS,
		SASL:        p.o.SASL,
		MetadataTTL: 10 * time.Second,
	}
	client := &kafkago.Client{Addr: kafkago.TCP(p.o.Brokers...), Transport: transport}
	parts, err := p.ensureTopics(ctx, client)
	if err == nil {
		var offsets map[string][]int64
		if offsets, err = p.lastOffsets(ctx, client, parts); err == nil {
			err = p.run(deliver, transport, offsets)
		}
	}
	if err != nil {
		transport.CloseIdleConnections()
		return err
	}
	return nil
}

// unreachable wraps an error of the first contact with the cluster.
func (p *pubsub) unreachable(err error) error {
	if errors.Is(err, kafkago.SASLAuthenticationFailed) || errors.Is(err, kafkago.UnsupportedSASLMechanism) ||
		errors.Is(err, kafkago.IllegalSASLState) || cluster.IsTLSVerification(err) {
		return cluster.Refused(fmt.Errorf("kafka: brokers %s refused this node (check SASL and TLS): %w",
			strings.Join(p.o.Brokers, ","), err))
	}
	return fmt.Errorf("kafka: cannot reach brokers %s (check the addresses, and TLS and SASL if the listener is secured): %w",
		strings.Join(p.o.Brokers, ","), err)
}

// ensureTopics checks that both topics exist, creating them if allowed,
// and returns their partition counts.
func (p *pubsub) ensureTopics(ctx context.Context, client *kafkago.Client) (map[string]int, error) {
	meta, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{p.channels, p.hb}})
	if err != nil {
		return nil, p.unreachable(err)
	}
	parts, missing := p.partitions(meta)
	if len(missing) == 0 {
		return parts, nil
	}
	if !*p.o.CreateTopics {
		return nil, fmt.Errorf("kafka: topic %q does not exist on %s and Options.CreateTopics is false: create it "+
			"(%q with the partitions you want, %q with 1), or allow this backend to create it",
			missing[0], strings.Join(p.o.Brokers, ","), p.channels, p.hb)
	}
	rf := p.o.ReplicationFactor
	if rf <= 0 {
		rf = min(3, max(1, len(meta.Brokers)))
	}
	var configs []kafkago.ConfigEntry
	for k, v := range p.o.TopicConfigs {
		configs = append(configs, kafkago.ConfigEntry{ConfigName: k, ConfigValue: v})
	}
	req := &kafkago.CreateTopicsRequest{}
	for _, t := range missing {
		n := 1
		if t == p.channels {
			n = p.o.Partitions
		}
		req.Topics = append(req.Topics, kafkago.TopicConfig{Topic: t, NumPartitions: n, ReplicationFactor: rf, ConfigEntries: configs})
	}
	// CreateTopics goes to the controller (kafka-go routes it there).
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("kafka: cannot create topics %v on %s: %w", missing, strings.Join(p.o.Brokers, ","), err)
	}
	for _, t := range missing {
		if err := resp.Errors[t]; err != nil && !errors.Is(err, kafkago.TopicAlreadyExists) {
			return nil, fmt.Errorf("kafka: cannot create topic %q (replication factor %d) on %s: %w",
				t, rf, strings.Join(p.o.Brokers, ","), err)
		}
	}
	p.log.Info("kafka: created topics", "topics", missing, "partitions", p.o.Partitions, "replication", rf)
	// Wait until the metadata shows them with leaders (bounded by ctx).
	for {
		meta, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{p.channels, p.hb}})
		if err == nil {
			if parts, missing = p.partitions(meta); len(missing) == 0 {
				return parts, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("kafka: topics %v created but not ready: %w", missing, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// partitions reads the partition counts of our topics from meta, and which
// of them are missing (or have a partition without a leader yet).
func (p *pubsub) partitions(meta *kafkago.MetadataResponse) (map[string]int, []string) {
	parts := map[string]int{}
	for _, t := range meta.Topics {
		if (t.Name != p.channels && t.Name != p.hb) || t.Error != nil || len(t.Partitions) == 0 {
			continue
		}
		ready := true
		for _, pt := range t.Partitions {
			if pt.Leader.Host == "" {
				ready = false
			}
		}
		if ready {
			parts[t.Name] = len(t.Partitions)
		}
	}
	var missing []string
	for _, t := range []string{p.channels, p.hb} {
		if _, ok := parts[t]; !ok {
			missing = append(missing, t)
		}
	}
	if n, ok := parts[p.channels]; ok && n != p.o.Partitions {
		p.log.Info("kafka: channels topic has its own partition count", "topic", p.channels, "partitions", n, "configured", p.o.Partitions)
	}
	return parts, missing
}

// lastOffsets is the end of every partition now: reading starts there, so
// a node gets what is published after it started, nothing before, and a
// message published once Start has returned is never missed.
func (p *pubsub) lastOffsets(ctx context.Context, client *kafkago.Client, parts map[string]int) (map[string][]int64, error) {
	req := &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{}}
	for t, n := range parts {
		for i := range n {
			req.Topics[t] = append(req.Topics[t], kafkago.LastOffsetOf(i))
		}
	}
	resp, err := client.ListOffsets(ctx, req)
	if err != nil {
		return nil, p.unreachable(err)
	}
	out := map[string][]int64{}
	for t, n := range parts {
		offs := make([]int64, n)
		got := resp.Topics[t]
		if len(got) != n {
			return nil, fmt.Errorf("kafka: list offsets of %s: %d of %d partitions answered", t, len(got), n)
		}
		for _, po := range got {
			if po.Error != nil {
				return nil, fmt.Errorf("kafka: list offsets of %s/%d: %w", t, po.Partition, po.Error)
			}
			offs[po.Partition] = po.LastOffset
		}
		out[t] = offs
	}
	return out, nil
}

// run creates the writer and one reader per partition and starts them.
func (p *pubsub) run(deliver func(string, []byte), transport *kafkago.Transport, offsets map[string][]int64) error {
	writer := &kafkago.Writer{
		Addr:         kafkago.TCP(p.o.Brokers...),
		Balancer:     keyHash{},
		MaxAttempts:  1, // the Node retries, with its own window
		BatchSize:    1024,
		BatchTimeout: p.o.BatchTimeout,
		ReadTimeout:  5 * time.Second,
		WriteTimeout: 5 * time.Second,
		RequiredAcks: p.o.RequiredAcks,
		Transport:    transport,
		ErrorLogger:  kafkago.LoggerFunc(p.debugf),
	}
	dialer := &kafkago.Dialer{
		ClientID:      p.o.ClientID,
		Timeout:       p.o.DialTimeout,
		DualStack:     true,
		TLS:           p.o.TLS,
		SASLMechanism: p.o.SASL,
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state.Closed() {
		writer.Close()
		return cluster.ErrClosed
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.state.SetStarted()
	p.transport, p.writer, p.cancel = transport, writer, cancel
	for topic, offs := range offsets {
		for part, off := range offs {
			p.readers++
			p.wg.Add(1)
			go p.read(ctx, dialer, topic, part, off, deliver)
		}
	}
	return nil
}

func (p *pubsub) newReader(dialer *kafkago.Dialer, topic string, partition int) *kafkago.Reader {
	return kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:               p.o.Brokers,
		Topic:                 topic,
		Partition:             partition,
		Dialer:                dialer,
		MinBytes:              1,
		MaxBytes:              16 << 20,
		MaxWait:               p.o.MaxWait,
		ReadBackoffMin:        50 * time.Millisecond,
		ReadBackoffMax:        time.Second,
		StartOffset:           kafkago.LastOffset,
		OffsetOutOfRangeError: true,
		ErrorLogger:           kafkago.LoggerFunc(p.debugf),
	})
}

// read delivers one partition, in order, until ctx ends.
func (p *pubsub) read(ctx context.Context, dialer *kafkago.Dialer, topic string, partition int, offset int64, deliver func(string, []byte)) {
	defer p.wg.Done()
	r := p.newReader(dialer, topic, partition)
	r.SetOffset(offset)
	defer func() { r.Close() }()
	var lastLog time.Time
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, kafkago.OffsetOutOfRange) {
				// The partition no longer has our offset (the broker lost its
				// log, or retention passed us): carry on from its end, as
				// auto.offset.reset=latest would.
				p.log.Warn("kafka: offset out of range; resuming from the latest offset", "topic", topic, "partition", partition)
				r.Close()
				r = p.newReader(dialer, topic, partition)
				continue
			}
			if time.Since(lastLog) > 5*time.Second {
				p.log.Warn("kafka: read failed; kafka-go retries", "topic", topic, "partition", partition, "err", err)
				lastLog = time.Now()
			}
			select { // FetchMessage reports errors while it retries: do not spin
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		// most records on a busy cluster are of channels this node does
		// not serve: look the key up without making a string of it
		p.subMu.RLock()
		_, ok := p.subs[string(m.Key)]
		p.subMu.RUnlock()
		if ok {
			deliver(string(m.Key), m.Value)
		}
	}
}

func (p *pubsub) debugf(format string, args ...any) {
	p.log.Debug(fmt.Sprintf(format, args...))
}

// Subscribe adds topic to the local filter: every partition is read
// anyway, so it never touches the network.
func (p *pubsub) Subscribe(_ context.Context, topic string) error {
	p.mu.Lock()
	closed := p.state.Closed()
	p.mu.Unlock()
	if closed {
		return cluster.ErrClosed
	}
	p.subMu.Lock()
	p.subs[topic] = struct{}{}
	p.subMu.Unlock()
	return nil
}

// Unsubscribe removes topic from the local filter.
func (p *pubsub) Unsubscribe(_ context.Context, topic string) error {
	p.subMu.Lock()
	delete(p.subs, topic)
	p.subMu.Unlock()
	return nil
}

func (p *pubsub) currentWriter() (*kafkago.Writer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.state.CanUse(); err != nil {
		return nil, err
	}
	return p.writer, nil
}

func (p *pubsub) message(topic string, data []byte) kafkago.Message {
	return kafkago.Message{Topic: p.kafkaTopic(topic), Key: []byte(topic), Value: data}
}

// Publish produces one message, keyed by topic, and waits for the acks.
func (p *pubsub) Publish(ctx context.Context, topic string, data []byte) error {
	w, err := p.currentWriter()
	if err != nil {
		return err
	}
	if err := w.WriteMessages(ctx, p.message(topic, data)); err != nil {
		return p.publishError(err)
	}
	return nil
}

// PublishBatch produces msgs in one call (one produce request per
// partition), in order per topic.
func (p *pubsub) PublishBatch(ctx context.Context, msgs []cluster.Message) error {
	w, err := p.currentWriter()
	if err != nil {
		return err
	}
	kms := make([]kafkago.Message, len(msgs))
	for i, m := range msgs {
		kms[i] = p.message(m.Topic, m.Data)
	}
	err = w.WriteMessages(ctx, kms...)
	if err == nil {
		return nil
	}
	var werr kafkago.WriteErrors
	if errors.As(err, &werr) && len(werr) == len(msgs) {
		errs := make([]error, len(msgs))
		for i, e := range werr {
			if e != nil {
				errs[i] = p.publishError(e)
			}
		}
		return &cluster.BatchError{Errs: errs}
	}
	return p.publishError(err)
}

func (p *pubsub) publishError(err error) error {
	return fmt.Errorf("kafka: publish to %s: %w", strings.Join(p.o.Brokers, ","), err)
}

func (p *pubsub) Close() error {
	p.mu.Lock()
	release := p.state.Close()
	p.mu.Unlock()
	if !release {
		return nil
	}
	p.cancel()
	p.wg.Wait()
	err := p.writer.Close()
	p.transport.CloseIdleConnections()
	return err
}
