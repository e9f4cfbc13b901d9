// Command pondsocket runs a PondSocket server. With no flags it is a single
// node with everything in memory, serving a demo chat: a page at /, the
// WebSocket endpoint /api/socket with channel /chat/:roomId and presence,
// /healthz and Prometheus metrics at /metrics.
//
// Every flag can also be set through the environment variable named in its
// help text (the flag wins).
package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/internal/demochat"
)

type config struct {
	addr           string
	eventLoops     int
	maxConnections int
	maxMessageSize int64
	pingInterval   time.Duration
	pongWait       time.Duration
	origins        string
	logLevel       string
	logFormat      string
	drain          time.Duration
	inline         bool

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
}

func main() {
	cfg := parseFlags(os.Args[1:], os.Stderr)
	log := newLogger(cfg, os.Stderr)
	srv, err := newServer(cfg, log)
	if err != nil {
		log.Error("bad configuration", "err", err)
		os.Exit(2)
	}
	if err := srv.Start(); err != nil {
		log.Error("cannot start", "err", err)
		os.Exit(1)
	}
	// The plain line is for scripts and tests that wait for the address.
	fmt.Fprintf(os.Stderr, "listening on %s\n", srv.Addr())
	log.Info("serving", "addr", srv.Addr().String(), "chat", pageURL(srv.Addr()), "endpoint", "/api/socket", "channel", "/chat/:roomId")
	sig := waitForSignal(log, srv.Done())
	log.Info("shutting down", "signal", sig.String(), "drain", cfg.drain.String())
	if err := srv.Stop(cfg.drain); err != nil {
		log.Warn("shutdown", "err", err)
	}
	log.Info("stopped")
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

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(env(name, "")); err == nil {
		return v
	}
	return def
}

func envDur(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(env(name, "")); err == nil {
		return v
	}
	return def
}

func parseFlags(args []string, out io.Writer) config {
	var c config
	fs := flag.NewFlagSet("pondsocket", flag.ExitOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.addr, "addr", env("PONDSOCKET_ADDR", ":8080"), "listen address (PONDSOCKET_ADDR)")
	fs.IntVar(&c.eventLoops, "event-loops", envInt("PONDSOCKET_EVENT_LOOPS", 0), "event loops, 0 = one per core (PONDSOCKET_EVENT_LOOPS)")
	fs.IntVar(&c.maxConnections, "max-connections", envInt("PONDSOCKET_MAX_CONNECTIONS", 0), "refuse upgrades beyond this many connections with 503, 0 = unlimited (PONDSOCKET_MAX_CONNECTIONS)")
	fs.Int64Var(&c.maxMessageSize, "max-message-size", int64(envInt("PONDSOCKET_MAX_MESSAGE_SIZE", 1<<20)), "largest client message in bytes (PONDSOCKET_MAX_MESSAGE_SIZE)")
	fs.DurationVar(&c.pingInterval, "ping-interval", envDur("PONDSOCKET_PING_INTERVAL", 30*time.Second), "ping a connection silent for this long (PONDSOCKET_PING_INTERVAL)")
	fs.DurationVar(&c.pongWait, "pong-wait", envDur("PONDSOCKET_PONG_WAIT", 60*time.Second), "drop a connection silent for this long (PONDSOCKET_PONG_WAIT)")
	fs.StringVar(&c.origins, "origins", env("PONDSOCKET_ORIGINS", ""), "comma-separated allowed Origins; empty = any (PONDSOCKET_ORIGINS)")
	fs.StringVar(&c.logLevel, "log-level", env("PONDSOCKET_LOG_LEVEL", "info"), "debug, info, warn or error (PONDSOCKET_LOG_LEVEL)")
	fs.StringVar(&c.logFormat, "log-format", env("PONDSOCKET_LOG_FORMAT", "text"), "text or json (PONDSOCKET_LOG_FORMAT)")
	fs.DurationVar(&c.drain, "drain-timeout", envDur("PONDSOCKET_DRAIN_TIMEOUT", 10*time.Second), "graceful shutdown budget (PONDSOCKET_DRAIN_TIMEOUT)")
	fs.BoolVar(&c.inline, "inline-handlers", env("PONDSOCKET_INLINE_HANDLERS", "") == "true", "run the demo's handlers on the event loops (they never block) (PONDSOCKET_INLINE_HANDLERS)")
	fs.BoolVar(&c.compression, "compression", env("PONDSOCKET_COMPRESSION", "") == "true", "negotiate permessage-deflate with clients that offer it (PONDSOCKET_COMPRESSION)")
	fs.StringVar(&c.tlsCert, "tls-cert", env("PONDSOCKET_TLS_CERT", ""), "serve wss:// with this PEM certificate (with --tls-key) (PONDSOCKET_TLS_CERT)")
	fs.StringVar(&c.tlsKey, "tls-key", env("PONDSOCKET_TLS_KEY", ""), "PEM private key of --tls-cert (PONDSOCKET_TLS_KEY)")
	fs.Float64Var(&c.messageRate, "message-rate", float64(envInt("PONDSOCKET_MESSAGE_RATE", 1000)), "events per second per connection, negative = unlimited (PONDSOCKET_MESSAGE_RATE)")
	fs.IntVar(&c.messageBurst, "message-burst", envInt("PONDSOCKET_MESSAGE_BURST", 2000), "event burst per connection (PONDSOCKET_MESSAGE_BURST)")
	fs.StringVar(&c.redisAddr, "redis-addr", env("PONDSOCKET_REDIS_ADDR", ""), "cluster over Redis at host:port or redis://… (PONDSOCKET_REDIS_ADDR)")
	fs.StringVar(&c.redisPassword, "redis-password", env("PONDSOCKET_REDIS_PASSWORD", ""), "Redis password (PONDSOCKET_REDIS_PASSWORD)")
	fs.StringVar(&c.kafkaBrokers, "kafka-brokers", env("PONDSOCKET_KAFKA_BROKERS", ""), "cluster over Kafka: comma-separated brokers (PONDSOCKET_KAFKA_BROKERS)")
	fs.StringVar(&c.kafkaTopic, "kafka-topic-prefix", env("PONDSOCKET_KAFKA_TOPIC_PREFIX", "pondsocket"), "prefix of the Kafka topics (PONDSOCKET_KAFKA_TOPIC_PREFIX)")
	fs.StringVar(&c.nodeID, "node-id", env("PONDSOCKET_NODE_ID", ""), "cluster node id, default random (PONDSOCKET_NODE_ID)")
	fs.StringVar(&c.namespace, "cluster-namespace", env("PONDSOCKET_CLUSTER_NAMESPACE", "default"), "nodes sharing a namespace form one cluster (PONDSOCKET_CLUSTER_NAMESPACE)")
	fs.DurationVar(&c.heartbeat, "heartbeat-interval", envDur("PONDSOCKET_HEARTBEAT_INTERVAL", 30*time.Second), "cluster heartbeat period (PONDSOCKET_HEARTBEAT_INTERVAL)")
	fs.DurationVar(&c.nodeTimeout, "heartbeat-timeout", envDur("PONDSOCKET_HEARTBEAT_TIMEOUT", 90*time.Second), "a node silent this long is dead (PONDSOCKET_HEARTBEAT_TIMEOUT)")
	_ = fs.Parse(args)
	return c
}

func newLogger(c config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel)); err != nil {
		lvl = slog.LevelInfo
	}
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
		opts.EventLoops = c.eventLoops
	}
	opts.EnableCompression = c.compression
	opts.MessageRate = c.messageRate
	opts.MessageBurst = c.messageBurst
	opts.MaxConnections = c.maxConnections
	opts.MaxMessageSize = c.maxMessageSize
	opts.PingInterval = c.pingInterval
	opts.PongWait = c.pongWait
	opts.InlineHandlers = c.inline
	if c.origins != "" {
		opts.CheckOrigin = true
		opts.AllowedOrigins = strings.Split(c.origins, ",")
	}
	switch {
	case c.redisAddr != "" && c.kafkaBrokers != "":
		return nil, errors.New("choose one cluster backend: --redis-addr or --kafka-brokers")
	case c.redisAddr != "":
		ro := &pondsocket.RedisPubSubOptions{Password: c.redisPassword}
		if strings.Contains(c.redisAddr, "://") {
			ro.URL = c.redisAddr
		} else {
			host, port, err := net.SplitHostPort(c.redisAddr)
			if err != nil {
				return nil, fmt.Errorf("bad --redis-addr: %w", err)
			}
			ro.Host = host
			ro.Port, _ = strconv.Atoi(port)
		}
		opts.PubSub = pondsocket.NewRedisPubSub(ro)
	case c.kafkaBrokers != "":
		opts.PubSub = pondsocket.NewKafkaPubSub(&pondsocket.KafkaPubSubOptions{Brokers: strings.Split(c.kafkaBrokers, ","), TopicPrefix: c.kafkaTopic})
	}
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
	demochat.Register(srv)
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
	mux.Handle("GET /", pageHandler())
	return srv, nil
}
