package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	goredis "github.com/redis/go-redis/v9"

	"github.com/pondsocket/pondsocket/cluster"
	"github.com/pondsocket/pondsocket/cluster/internal/lifecycle"
)

// Options says where Redis is. The address is taken from URL if set, else
// Addr, else Host:Port (defaults localhost:6379).
type Options struct {
	Addr     string // "host:port"
	Host     string // default "localhost"
	Port     int    // default 6379
	Username string // Redis 6 ACL user; empty = "default"
	Password string
	DB       int
	URL      string // "redis://[user:password@]host:port/db" or "rediss://…" (TLS)
	// TLS, when set, connects over TLS with this configuration (with a URL
	// too, where it replaces rediss://'s default one).
	TLS *tls.Config

	// Logger gets connection losses and recoveries. Default slog.Default().
	Logger *slog.Logger
	// HealthInterval: when the subscriber connection has been silent this
	// long it is pinged, and dropped if the next interval stays silent.
	// Default 15s.
	HealthInterval time.Duration
}

// refused reports whether a connection error is one retrying cannot cure:
// Redis refused the credentials, or the TLS certificate did not verify.
func refused(err error) bool {
	var re goredis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		for _, prefix := range []string{"WRONGPASS", "NOAUTH", "NOPERM", "ERR AUTH", "ERR invalid password"} {
			if strings.HasPrefix(msg, prefix) {
				return true
			}
		}
	}
	return cluster.IsTLSVerification(err)
}

// goredisLog routes go-redis's own diagnostics (it has one process-wide
// logger, which otherwise writes plain lines to stderr) to the slog logger
// of the backend created last, at debug level: our reconnect loop logs
// what matters.
type goredisLog struct{ log *slog.Logger }

func (g goredisLog) Printf(ctx context.Context, format string, v ...any) {
	g.log.DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}

// New returns a PubSub over Redis. It does not connect: Start does.
func New(o Options) cluster.PubSub {
	p := &pubsub{
		log:     o.Logger,
		health:  o.HealthInterval,
		desired: make(map[string]struct{}),
		waiters: make(map[string][]chan error),
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	goredis.SetLogger(goredisLog{p.log})
	if p.health <= 0 {
		p.health = 15 * time.Second
	}
	if o.URL != "" {
		p.opt, p.optErr = goredis.ParseURL(o.URL)
		if p.optErr != nil {
			p.optErr = fmt.Errorf("redis: bad URL: %w", p.optErr)
		}
	} else {
		addr := o.Addr
		if addr == "" {
			host, port := o.Host, o.Port
			if host == "" {
				host = "localhost"
			}
			if port == 0 {
				port = 6379
			}
			addr = net.JoinHostPort(host, strconv.Itoa(port))
		}
		p.opt = &goredis.Options{Addr: addr, Username: o.Username, Password: o.Password, DB: o.DB}
	}
	if p.opt != nil && o.TLS != nil {
		p.opt.TLSConfig = o.TLS
	}
	if p.opt != nil {
		// Our own loop reconnects with the reference's delays; go-redis's
		// retries inside one command would only hide an outage from the
		// Node, whose retry window is the one that counts.
		p.opt.MaxRetries = -1
		p.opt.DialTimeout = 5 * time.Second
		p.opt.ContextTimeoutEnabled = true
		p.opt.DisableIdentity = true // no CLIENT SETINFO: works with any Redis version
	}
	return p
}

var (
	_ cluster.ConnectionNotifier = (*pubsub)(nil)
	_ cluster.SubscriberCounter  = (*pubsub)(nil)
	_ cluster.BatchPublisher     = (*pubsub)(nil)
)

type pubsub struct {
	opt    *goredis.Options
	optErr error
	log    *slog.Logger
	health time.Duration

	mu      sync.Mutex
	client  *goredis.Client
	sub     *goredis.PubSub // current subscriber connection; nil while reconnecting
	desired map[string]struct{}
	waiters map[string][]chan error // Subscribe calls waiting for the server's confirmation
	state   lifecycle.State
	deliver func(string, []byte)
	notify  func(up bool) // cluster.ConnectionNotifier

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NotifyConnection implements cluster.ConnectionNotifier: f(false) when
// the subscriber connection is lost, f(true) when it is back with every
// topic subscribed again.
func (p *pubsub) NotifyConnection(f func(up bool)) {
	p.mu.Lock()
	p.notify = f
	p.mu.Unlock()
}

func (p *pubsub) notifyState(up bool) {
	p.mu.Lock()
	f := p.notify
	p.mu.Unlock()
	if f != nil {
		f(up)
	}
}

// newClient makes a client with its own copy of the options: go-redis
// fills in defaults on the Options it is given and reads them for the
// client's lifetime, so clients must not share one.
func (p *pubsub) newClient() *goredis.Client {
	o := *p.opt
	return goredis.NewClient(&o)
}

// Addr is the Redis address in use.
func (p *pubsub) Addr() string {
	if p.opt == nil {
		return ""
	}
	return p.opt.Addr
}

func (p *pubsub) Start(ctx context.Context, deliver func(string, []byte)) error {
	if p.optErr != nil {
		return p.optErr
	}
	p.mu.Lock()
	err := p.state.CanStart()
	p.mu.Unlock()
	if err != nil {
		return err
	}

	client := p.newClient()
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		if refused(err) {
			return cluster.Refused(fmt.Errorf("redis: %s refused this node (check the user name, password and TLS settings): %w", p.opt.Addr, err))
		}
		return fmt.Errorf("redis: cannot reach %s: %w", p.opt.Addr, err)
	}
	// The subscriber connection is dedicated (go-redis takes a connection
	// out of the pool for a PubSub); PING over it makes sure it is dialled.
	sub := client.Subscribe(ctx)
	if err := sub.Ping(ctx); err != nil {
		sub.Close()
		client.Close()
		return fmt.Errorf("redis: cannot open the subscriber connection to %s: %w", p.opt.Addr, err)
	}

	p.mu.Lock()
	if p.state.Closed() {
		p.mu.Unlock()
		sub.Close()
		client.Close()
		return cluster.ErrClosed
	}
	lctx, cancel := context.WithCancel(context.Background())
	p.state.SetStarted()
	p.client, p.deliver, p.cancel = client, deliver, cancel
	topics, _ := p.installLocked(sub)
	p.mu.Unlock()
	if len(topics) > 0 {
		if err := sub.Subscribe(ctx, topics...); err != nil {
			p.log.Warn("redis: subscribe failed; retrying on reconnect", "addr", p.opt.Addr, "err", err)
		}
	}
	p.wg.Add(1)
	go p.run(lctx, sub)
	return nil
}

// installLocked makes sub the current connection and returns the topics to
// subscribe on it; false once Close has begun (the caller closes sub).
func (p *pubsub) installLocked(sub *goredis.PubSub) ([]string, bool) {
	if p.state.Closed() {
		return nil, false
	}
	p.sub = sub
	topics := make([]string, 0, len(p.desired))
	for t := range p.desired {
		topics = append(topics, t)
	}
	return topics, true
}

// run receives on the subscriber connection; when it breaks, it reconnects
// after reconnectDelay and subscribes every desired topic again.
//
// Each attempt uses a new client (a new connection pool), and a successful
// one replaces the publishing client too. go-redis' pool, after PoolSize
// failed dials, refuses to dial at all and only probes the server once a
// second: an old pool would add up to a second, after the server is back,
// to this node's reconnection and to its first successful publish.
func (p *pubsub) run(ctx context.Context, sub *goredis.PubSub) {
	defer p.wg.Done()
	for attempt := 0; ; {
		err := p.receive(ctx, sub)
		p.mu.Lock()
		p.sub = nil
		p.failWaitersLocked(err)
		p.mu.Unlock()
		sub.Close()
		if ctx.Err() != nil {
			return
		}
		p.log.Warn("redis: subscriber connection lost; reconnecting", "addr", p.opt.Addr, "err", err)
		p.notifyState(false)
		for sub = nil; sub == nil; {
			attempt++
			t := time.NewTimer(reconnectDelay(attempt))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			c := p.newClient()
			s := c.Subscribe(ctx)
			if err := s.Ping(ctx); err != nil {
				s.Close()
				c.Close()
				if ctx.Err() != nil {
					return
				}
				if attempt == 1 || attempt%20 == 0 {
					p.log.Warn("redis: reconnect failed", "addr", p.opt.Addr, "attempt", attempt, "err", err)
				}
				continue
			}
			p.mu.Lock()
			topics, ok := p.installLocked(s)
			old := p.client
			if ok {
				p.client = c
			}
			p.mu.Unlock()
			if !ok {
				s.Close()
				c.Close()
				return
			}
			old.Close() // a publish still on it fails; the Node retries it
			if len(topics) > 0 {
				if err := s.Subscribe(ctx, topics...); err != nil {
					p.mu.Lock()
					p.sub = nil
					p.mu.Unlock()
					s.Close()
					continue
				}
			}
			sub = s
			p.log.Info("redis: subscriber reconnected", "addr", p.opt.Addr, "attempt", attempt, "topics", len(topics))
			p.notifyState(true)
			attempt = 0
		}
	}
}

// reconnectDelay is the delay before reconnect attempt n (from 1): 50 ms
// steps capped at 200 ms (the reference: 100 ms steps up to 5 s), so that
// every node's subscriber is back within about 200 ms of the server's
// return (Redis keeps no message for a subscriber that is not connected;
// the Node holds its buffer until the others are back, see cluster's
// reconnectGrace). An attempt against a server that is down costs one
// refused dial.
func reconnectDelay(attempt int) time.Duration {
	return time.Duration(min(50*attempt, 200)) * time.Millisecond
}

// receive delivers messages until the connection fails or ctx ends.
func (p *pubsub) receive(ctx context.Context, sub *goredis.PubSub) error {
	silent := 0
	for {
		msg, err := sub.ReceiveTimeout(ctx, p.health)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if silent++; silent > 1 {
					return fmt.Errorf("no answer to PING within %v", p.health)
				}
				if err := sub.Ping(ctx); err != nil {
					return err
				}
				continue
			}
			return err
		}
		silent = 0
		switch m := msg.(type) {
		case *goredis.Message:
			p.mu.Lock()
			_, ok := p.desired[m.Channel]
			deliver := p.deliver
			p.mu.Unlock()
			if ok {
				// the payload's bytes, not a copy: go-redis made the string
				// for this message alone, and deliver never writes to it
				deliver(m.Channel, unsafe.Slice(unsafe.StringData(m.Payload), len(m.Payload)))
			}
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				p.mu.Lock()
				for _, w := range p.waiters[m.Channel] {
					w <- nil
				}
				delete(p.waiters, m.Channel)
				p.mu.Unlock()
			}
		}
	}
}

func (p *pubsub) failWaitersLocked(err error) {
	if err == nil {
		err = errors.New("connection lost")
	}
	for t, ws := range p.waiters {
		for _, w := range ws {
			w <- fmt.Errorf("redis: subscribe %q: %w (it is made again on reconnect)", t, err)
		}
	}
	clear(p.waiters)
}

// Subscribe sends SUBSCRIBE and waits for the server's confirmation, so a
// message published after it returns is delivered. While the connection is
// being re-established it only records the topic and returns nil.
func (p *pubsub) Subscribe(ctx context.Context, topic string) error {
	p.mu.Lock()
	if p.state.Closed() {
		p.mu.Unlock()
		return cluster.ErrClosed
	}
	p.desired[topic] = struct{}{}
	sub := p.sub
	if sub == nil {
		p.mu.Unlock()
		return nil
	}
	w := make(chan error, 1)
	p.waiters[topic] = append(p.waiters[topic], w)
	p.mu.Unlock()
	if err := sub.Subscribe(ctx, topic); err != nil {
		p.dropWaiter(topic, w)
		return fmt.Errorf("redis: subscribe %q: %w", topic, err)
	}
	select {
	case err := <-w:
		return err
	case <-ctx.Done():
		p.dropWaiter(topic, w)
		return fmt.Errorf("redis: subscribe %q: no confirmation: %w", topic, ctx.Err())
	}
}

func (p *pubsub) dropWaiter(topic string, w chan error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ws := p.waiters[topic]
	for i, x := range ws {
		if x == w {
			p.waiters[topic] = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(p.waiters[topic]) == 0 {
		delete(p.waiters, topic)
	}
}

// Unsubscribe filters the topic out at once and sends UNSUBSCRIBE.
func (p *pubsub) Unsubscribe(ctx context.Context, topic string) error {
	p.mu.Lock()
	delete(p.desired, topic)
	sub := p.sub
	p.mu.Unlock()
	if sub == nil {
		return nil
	}
	if err := sub.Unsubscribe(ctx, topic); err != nil {
		return fmt.Errorf("redis: unsubscribe %q: %w", topic, err)
	}
	return nil
}

func (p *pubsub) publisher() (*goredis.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.state.CanUse(); err != nil {
		return nil, err
	}
	return p.client, nil
}

// Subscribers implements cluster.SubscriberCounter with PUBSUB NUMSUB:
// the number of subscriber connections on topic, on the server this node
// publishes to.
func (p *pubsub) Subscribers(ctx context.Context, topic string) (int, error) {
	c, err := p.publisher()
	if err != nil {
		return 0, err
	}
	m, err := c.PubSubNumSub(ctx, topic).Result()
	if err != nil {
		return 0, fmt.Errorf("redis: PUBSUB NUMSUB on %s: %w", p.opt.Addr, err)
	}
	return int(m[topic]), nil
}

// Publish sends PUBLISH topic data on the pooled connection.
func (p *pubsub) Publish(ctx context.Context, topic string, data []byte) error {
	c, err := p.publisher()
	if err != nil {
		return err
	}
	if err := c.Publish(ctx, topic, data).Err(); err != nil {
		return fmt.Errorf("redis: publish to %s: %w", p.opt.Addr, err)
	}
	return nil
}

// PublishBatch sends the messages in one pipeline (one round trip), in
// order.
func (p *pubsub) PublishBatch(ctx context.Context, msgs []cluster.Message) error {
	c, err := p.publisher()
	if err != nil {
		return err
	}
	pipe := c.Pipeline()
	cmds := make([]*goredis.IntCmd, len(msgs))
	for i, m := range msgs {
		cmds[i] = pipe.Publish(ctx, m.Topic, m.Data)
	}
	if _, err := pipe.Exec(ctx); err == nil {
		return nil
	}
	errs := make([]error, len(msgs))
	for i, cmd := range cmds {
		if err := cmd.Err(); err != nil {
			errs[i] = fmt.Errorf("redis: publish to %s: %w", p.opt.Addr, err)
		}
	}
	return &cluster.BatchError{Errs: errs}
}

func (p *pubsub) Close() error {
	p.mu.Lock()
	release, sub := p.state.Close(), p.sub
	p.mu.Unlock()
	if !release {
		return nil
	}
	p.cancel()
	if sub != nil {
		sub.Close() // unblocks the receive loop
	}
	p.wg.Wait()
	return p.client.Close()
}
