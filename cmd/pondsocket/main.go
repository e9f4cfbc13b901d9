// Command pondsocket runs a PondSocket server. With no flags it is a single
// node with everything in memory, serving a demo chat: a page at /, the
// WebSocket endpoint /api/socket with channel /chat/:roomId and presence,
// /healthz and Prometheus metrics at /metrics.
//
// Every flag can also be set through the environment variable named in its
// help text (the flag wins); both are parsed and checked the same way, and a
// bad value stops the start with exit status 2.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/internal/demochat"
)

type config struct {
	addr           string
	eventLoops     int
	maxConnections int
	maxConnsUser   int
	maxMessageSize int64
	pingInterval   time.Duration
	pongWait       time.Duration
	origins        string
	logLevel       string
	logFormat      string
	drain          time.Duration
	inline         bool
	testEvents     bool

	tlsCert     string
	tlsKey      string
	compression bool

	messageRate  float64
	messageBurst int

	redisAddr     string
	redisPassword string
	kafkaBrokers  string
	kafkaTopic    string
	nodeID        string
	namespace     string
	heartbeat     time.Duration
	nodeTimeout   time.Duration

	// the application of a configuration file (nil: the demo)
	configFile string
	app        *appConfig
	auth       authConfig
	api        apiConfig
	bus        busConfig
	proxy      proxyConfig
	version    bool
}

func main() {
	cfg, err := parseConfig(os.Args[1:], os.LookupEnv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pondsocket: bad configuration: %v\n", err)
		os.Exit(2)
	}
	if cfg.version {
		fmt.Println("pondsocket", version())
		return
	}
	log := newLogger(cfg, os.Stderr)
	// anything that logs through slog.Default (or the standard log
	// package) writes in the chosen format too
	slog.SetDefault(log)
	if cfg.api.addr != "" {
		cfg.api.mux = http.NewServeMux()
	}
	srv, err := newServer(cfg, log)
	if err != nil {
		log.Error("bad configuration", "err", err)
		os.Exit(2)
	}
	if err := srv.Start(); err != nil {
		log.Error("cannot start", "err", err)
		os.Exit(1)
	}
	apiSrv, err := serveAPIListener(cfg.api, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		_ = srv.Stop(cfg.drain)
		os.Exit(1)
	}
	// Scripts and tests wait for "listening on ADDR" (in the text
	// format's msg="…", or the JSON line's "msg" value): it is written
	// in the chosen format whatever the log level.
	startup := cfg
	startup.logLevel = "info"
	newLogger(startup, os.Stderr).Info("listening on "+srv.Addr().String(), "addr", srv.Addr().String())
	if cfg.app == nil {
		log.Info("serving the demo", "addr", srv.Addr().String(), "chat", pageURL(srv.Addr()), "endpoint", "/api/socket", "channel", "/chat/:roomId", "health", "/healthz /readyz", "metrics", "/metrics")
	} else {
		var eps []string
		for _, e := range cfg.app.Endpoints {
			eps = append(eps, e.Path)
		}
		api, admin := "off (no api.key)", "off (no api.key)"
		if cfg.api.key != "" {
			api, admin = "/api/", "/admin/"
		}
		if apiSrv != nil {
			api, admin = "http://"+apiSrv.Addr+"/api/", "http://"+apiSrv.Addr+"/admin/"
		}
		log.Info("serving", "config", cfg.configFile, "addr", srv.Addr().String(), "endpoints", strings.Join(eps, " "),
			"auth", cfg.auth.describe(), "proxy", cfg.proxy.describe(), "api", api, "admin", admin, "health", "/healthz /readyz", "metrics", "/metrics")
	}
	sig := waitForSignal(log, srv.Done())
	log.Info("shutting down", "signal", sig.String(), "drain", cfg.drain.String())
	if err := srv.Stop(cfg.drain); err != nil {
		log.Warn("shutdown", "err", err)
	}
	if apiSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.drain)
		_ = apiSrv.Shutdown(ctx)
		cancel()
	}
	log.Info("stopped")
}

// serveAPIListener serves the server API and the admin page on c.addr when
// it is set (nil otherwise): a plain net/http server, so backend calls do
// not wait for the event loops, which may be busy writing broadcasts, and
// the API can sit on an address the public cannot reach.
func serveAPIListener(c apiConfig, log *slog.Logger) (*http.Server, error) {
	if c.addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return nil, fmt.Errorf("api.addr: %w", err)
	}
	hs := &http.Server{Addr: ln.Addr().String(), Handler: c.mux, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("api listener stopped", "addr", hs.Addr, "err", err)
		}
	}()
	return hs, nil
}

// pageURL is the chat page's URL for the log, with a dialable host.
func pageURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String() + "/"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// parseConfig reads the flags and, for every flag not given on the command
// line, its environment variable (read with lookupEnv). Both go through the
// flag's own parser, so PONDSOCKET_MAX_CONNECTIONS=2k is the same error as
// --max-connections 2k, and a bad value stops the start with a message
// naming the variable or the flag. Lists are split on commas and trimmed.
func parseConfig(args []string, lookupEnv func(string) (string, bool), out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("pondsocket", flag.ContinueOnError)
	fs.SetOutput(out)
	envOf := map[string]string{}
	// def registers the flag name with its environment variable.
	def := func(name, env string) string { envOf[name] = env; return "(" + env + ")" }
	fs.StringVar(&c.addr, "addr", ":8080", "listen address "+def("addr", "PONDSOCKET_ADDR"))
	fs.IntVar(&c.eventLoops, "event-loops", 0, "event loops, 0 = one per core "+def("event-loops", "PONDSOCKET_EVENT_LOOPS"))
	fs.IntVar(&c.maxConnections, "max-connections", 0, "refuse upgrades beyond this many connections with 503, 0 = unlimited "+def("max-connections", "PONDSOCKET_MAX_CONNECTIONS"))
	fs.IntVar(&c.maxConnsUser, "max-connections-per-user", 16, "decline a user's upgrades beyond this many live connections with 409 "+def("max-connections-per-user", "PONDSOCKET_MAX_CONNECTIONS_PER_USER"))
	fs.Int64Var(&c.maxMessageSize, "max-message-size", 1<<20, "largest client message in bytes "+def("max-message-size", "PONDSOCKET_MAX_MESSAGE_SIZE"))
	fs.DurationVar(&c.pingInterval, "ping-interval", 30*time.Second, "ping a connection silent for this long "+def("ping-interval", "PONDSOCKET_PING_INTERVAL"))
	fs.DurationVar(&c.pongWait, "pong-wait", 60*time.Second, "drop a connection silent for this long "+def("pong-wait", "PONDSOCKET_PONG_WAIT"))
	fs.StringVar(&c.origins, "origins", "", "comma-separated allowed Origins; empty = any "+def("origins", "PONDSOCKET_ORIGINS"))
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error "+def("log-level", "PONDSOCKET_LOG_LEVEL"))
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json "+def("log-format", "PONDSOCKET_LOG_FORMAT"))
	fs.DurationVar(&c.drain, "drain-timeout", 10*time.Second, "graceful shutdown budget "+def("drain-timeout", "PONDSOCKET_DRAIN_TIMEOUT"))
	fs.BoolVar(&c.inline, "inline-handlers", false, "run the demo's handlers on the event loops (they never block) "+def("inline-handlers", "PONDSOCKET_INLINE_HANDLERS"))
	fs.BoolVar(&c.testEvents, "test-events", false, "add the demo's misbehaving events slow, fail and crash for the attack kit (bench/attack); never on a public server "+def("test-events", "PONDSOCKET_TEST_EVENTS"))
	fs.BoolVar(&c.compression, "compression", false, "negotiate permessage-deflate with clients that offer it "+def("compression", "PONDSOCKET_COMPRESSION"))
	fs.StringVar(&c.tlsCert, "tls-cert", "", "serve wss:// with this PEM certificate (with --tls-key) "+def("tls-cert", "PONDSOCKET_TLS_CERT"))
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key of --tls-cert "+def("tls-key", "PONDSOCKET_TLS_KEY"))
	fs.Float64Var(&c.messageRate, "message-rate", 1000, "events per second per connection, negative = unlimited "+def("message-rate", "PONDSOCKET_MESSAGE_RATE"))
	fs.IntVar(&c.messageBurst, "message-burst", 2000, "event burst per connection "+def("message-burst", "PONDSOCKET_MESSAGE_BURST"))
	fs.StringVar(&c.redisAddr, "redis-addr", "", "cluster over Redis at host:port or redis://… "+def("redis-addr", "PONDSOCKET_REDIS_ADDR"))
	fs.StringVar(&c.redisPassword, "redis-password", "", "Redis password "+def("redis-password", "PONDSOCKET_REDIS_PASSWORD"))
	fs.StringVar(&c.kafkaBrokers, "kafka-brokers", "", "cluster over Kafka: comma-separated brokers "+def("kafka-brokers", "PONDSOCKET_KAFKA_BROKERS"))
	fs.StringVar(&c.kafkaTopic, "kafka-topic-prefix", "pondsocket", "prefix of the Kafka topics "+def("kafka-topic-prefix", "PONDSOCKET_KAFKA_TOPIC_PREFIX"))
	fs.StringVar(&c.nodeID, "node-id", "", "cluster node id, default random "+def("node-id", "PONDSOCKET_NODE_ID"))
	fs.StringVar(&c.namespace, "cluster-namespace", "default", "nodes sharing a namespace form one cluster "+def("cluster-namespace", "PONDSOCKET_CLUSTER_NAMESPACE"))
	fs.DurationVar(&c.heartbeat, "heartbeat-interval", 30*time.Second, "cluster heartbeat period "+def("heartbeat-interval", "PONDSOCKET_HEARTBEAT_INTERVAL"))
	fs.DurationVar(&c.nodeTimeout, "heartbeat-timeout", 90*time.Second, "a node silent this long is dead "+def("heartbeat-timeout", "PONDSOCKET_HEARTBEAT_TIMEOUT"))
	fs.StringVar(&c.configFile, "config", "", "serve the application of this YAML file instead of the demo "+def("config", "PONDSOCKET_CONFIG"))
	defineAppFlags(fs, &c, def)
	defineBusFlags(fs, &c, def)
	fs.BoolVar(&c.version, "version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: pondsocket [flags]\n\nWithout --config, pondsocket serves the demo chat (a page at /, endpoint /api/socket,\nchannels /chat/:roomId). With --config FILE it serves the application the file describes\nand no demo. Flags and their environment variables override the file.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		env, ok := envOf[f.Name]
		if !ok || given[f.Name] || envErr != nil {
			return
		}
		if v, ok := lookupEnv(env); ok {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", env, v, err)
			}
		}
	})
	if envErr != nil {
		return c, envErr
	}
	// the file: below the flags and the environment, through the same parsers
	fromFile := map[string]fileValue{}
	if c.configFile != "" && !c.version {
		settable := map[string]bool{}
		fs.VisitAll(func(f *flag.Flag) {
			if f.Name != "config" && f.Name != "version" {
				settable[f.Name] = true
			}
		})
		vals, app, err := loadConfigFile(c.configFile, settable)
		if err != nil {
			return c, err
		}
		for name, v := range vals {
			if given[name] {
				continue
			}
			if _, ok := lookupEnv(envOf[name]); ok {
				continue
			}
			if err := fs.Set(name, v.value); err != nil {
				return c, fmt.Errorf("%s: %q: %w", v.source(c.configFile), v.value, err)
			}
			fromFile[name] = v
		}
		c.app = app
	}
	return c, c.validate(func(name string) string {
		if given[name] {
			return "--" + name
		}
		if v, ok := lookupEnv(envOf[name]); ok {
			return fmt.Sprintf("%s=%q", envOf[name], v)
		}
		if v, ok := fromFile[name]; ok {
			return v.source(c.configFile)
		}
		return "--" + name
	})
}

// validate checks the values' ranges; source names where a value came from
// (the flag or the environment variable).
func (c *config) validate(source func(name string) string) error {
	bad := func(name, want string) error { return fmt.Errorf("%s: %s", source(name), want) }
	switch {
	case c.eventLoops < 0:
		return bad("event-loops", "must be 0 (one per core) or more")
	case c.maxConnections < 0:
		return bad("max-connections", "must be 0 (unlimited) or more")
	case c.maxConnsUser <= 0:
		return bad("max-connections-per-user", "must be more than 0")
	case c.maxMessageSize <= 0:
		return bad("max-message-size", "must be more than 0")
	case c.pingInterval <= 0:
		return bad("ping-interval", "must be more than 0")
	case c.pongWait <= c.pingInterval:
		return bad("pong-wait", "must be longer than the ping interval")
	case c.drain < 0:
		return bad("drain-timeout", "must not be negative")
	case c.messageBurst < 0:
		return bad("message-burst", "must not be negative")
	case c.heartbeat <= 0:
		return bad("heartbeat-interval", "must be more than 0")
	case c.nodeTimeout <= c.heartbeat:
		return bad("heartbeat-timeout", "must be longer than the heartbeat interval")
	case c.logFormat != "text" && c.logFormat != "json":
		return bad("log-format", "must be text or json")
	}
	switch strings.ToLower(c.logLevel) {
	case "debug", "info", "warn", "error":
	default:
		return bad("log-level", "must be debug, info, warn or error")
	}
	if c.origins != "" && len(splitList(c.origins)) == 0 {
		return bad("origins", "lists no origin")
	}
	if err := c.validateBus(bad); err != nil {
		return err
	}
	return c.validateApp(bad)
}

// splitList splits a comma-separated list, trimming spaces and dropping
// empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func newLogger(c config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.logLevel)) // validated by parseConfig
	opts := &slog.HandlerOptions{Level: lvl}
	if c.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// newServer builds the server of the configuration with the demo chat and
// the HTTP routes; it does not start it.
func newServer(c config, log *slog.Logger) (*pondsocket.Server, error) {
	opts := pondsocket.DefaultOptions()
	opts.Logger = log
	if c.eventLoops > 0 {
		opts.Transport.EventLoops = c.eventLoops
	}
	opts.EnableCompression = c.compression
	opts.Inbound.MessageRate = c.messageRate
	opts.Inbound.MessageBurst = c.messageBurst
	opts.MaxConnections = c.maxConnections
	opts.Transport.MaxConnectionsPerUser = c.maxConnsUser
	opts.MaxMessageSize = c.maxMessageSize
	opts.PingInterval = c.pingInterval
	opts.PongWait = c.pongWait
	opts.Handlers.Inline = c.inline
	if c.origins != "" {
		opts.CheckOrigin = true
		opts.AllowedOrigins = splitList(c.origins)
	}
	ps, err := newPubSub(c, log)
	if err != nil {
		return nil, err
	}
	opts.PubSub = ps
	opts.Cluster = pondsocket.ClusterOptions{NodeID: c.nodeID, Namespace: c.namespace, HeartbeatInterval: c.heartbeat, HeartbeatTimeout: c.nodeTimeout}
	mux := http.NewServeMux()
	opts.HTTPHandler = mux
	so := &pondsocket.ServerOptions{ServerAddr: c.addr, Options: opts}
	if c.tlsCert != "" || c.tlsKey != "" {
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		so.ServerTLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	srv := pondsocket.NewServer(so)
	apiMux := mux // the server API and the admin page
	if c.api.mux != nil {
		apiMux = c.api.mux
	}
	if c.app == nil {
		demochat.RegisterWith(srv, demochat.Config{TestEvents: c.testEvents})
		mux.Handle("GET /", pageHandler())
	} else if err := serveApp(srv, apiMux, c, log); err != nil {
		return nil, err
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if !srv.IsRunning() {
			http.Error(w, "stopping", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	})
	// /readyz: 503 while the cluster bus is unreachable (/healthz is
	// about the process only)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := srv.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready")
	})
	mux.Handle("GET /metrics", metricsHandler(srv))
	registerAdmin(apiMux, c.app != nil && c.api.key != "")
	return srv, nil
}
