package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/pondsocket/pondsocket"
)

// busConfig holds the cluster bus settings beyond the address: Redis
// credentials and TLS, Kafka SASL and TLS.
type busConfig struct {
	redisUsername string
	redisTLS      tlsFiles

	kafkaSASL         string // "", plain, scram-sha-256, scram-sha-512
	kafkaSASLUsername string
	kafkaSASLPassword string
	kafkaTLS          tlsFiles
}

// tlsFiles is a client TLS setting: on/off, a CA bundle to trust instead
// of the system roots, and a client certificate.
type tlsFiles struct {
	on       bool
	caFile   string
	certFile string
	keyFile  string
}

func (t tlsFiles) wanted() bool { return t.on || t.caFile != "" || t.certFile != "" || t.keyFile != "" }

func defineBusFlags(fs *flag.FlagSet, c *config, def func(name, env string) string) {
	b := &c.bus
	fs.StringVar(&b.redisUsername, "redis-username", "", "Redis ACL user name, empty = default "+def("redis-username", "PONDSOCKET_REDIS_USERNAME"))
	defineTLSFlags(fs, &b.redisTLS, "redis", "Redis", def)
	fs.StringVar(&b.kafkaSASL, "kafka-sasl-mechanism", "", "Kafka SASL: plain, scram-sha-256 or scram-sha-512; empty = none "+def("kafka-sasl-mechanism", "PONDSOCKET_KAFKA_SASL_MECHANISM"))
	fs.StringVar(&b.kafkaSASLUsername, "kafka-sasl-username", "", "Kafka SASL user name "+def("kafka-sasl-username", "PONDSOCKET_KAFKA_SASL_USERNAME"))
	fs.StringVar(&b.kafkaSASLPassword, "kafka-sasl-password", "", "Kafka SASL password "+def("kafka-sasl-password", "PONDSOCKET_KAFKA_SASL_PASSWORD"))
	defineTLSFlags(fs, &b.kafkaTLS, "kafka", "Kafka", def)
}

func defineTLSFlags(fs *flag.FlagSet, t *tlsFiles, prefix, name string, def func(name, env string) string) {
	env := "PONDSOCKET_" + strings.ToUpper(prefix) + "_TLS"
	fs.BoolVar(&t.on, prefix+"-tls", false, "connect to "+name+" over TLS (implied by the other "+prefix+"-tls flags) "+def(prefix+"-tls", env))
	fs.StringVar(&t.caFile, prefix+"-tls-ca-file", "", "PEM CA bundle to verify "+name+" with, instead of the system roots "+def(prefix+"-tls-ca-file", env+"_CA_FILE"))
	fs.StringVar(&t.certFile, prefix+"-tls-cert-file", "", "PEM client certificate for "+name+" (with the key file) "+def(prefix+"-tls-cert-file", env+"_CERT_FILE"))
	fs.StringVar(&t.keyFile, prefix+"-tls-key-file", "", "PEM private key of the "+name+" client certificate "+def(prefix+"-tls-key-file", env+"_KEY_FILE"))
}

// validateBus checks the bus settings that need no file access.
func (c *config) validateBus(bad func(name, want string) error) error {
	b := &c.bus
	for _, t := range []struct {
		prefix string
		f      tlsFiles
	}{{"redis", b.redisTLS}, {"kafka", b.kafkaTLS}} {
		if (t.f.certFile == "") != (t.f.keyFile == "") {
			if t.f.certFile == "" {
				return bad(t.prefix+"-tls-cert-file", "is needed with --"+t.prefix+"-tls-key-file")
			}
			return bad(t.prefix+"-tls-key-file", "is needed with --"+t.prefix+"-tls-cert-file")
		}
	}
	switch b.kafkaSASL {
	case "":
		if b.kafkaSASLUsername != "" || b.kafkaSASLPassword != "" {
			return bad("kafka-sasl-mechanism", "is needed with a Kafka SASL user name or password (plain, scram-sha-256 or scram-sha-512)")
		}
	case "plain", "scram-sha-256", "scram-sha-512":
		if b.kafkaSASLUsername == "" {
			return bad("kafka-sasl-username", "is needed with --kafka-sasl-mechanism")
		}
	default:
		return bad("kafka-sasl-mechanism", "must be plain, scram-sha-256 or scram-sha-512")
	}
	return nil
}

// clientTLS builds the TLS configuration of t (nil when TLS is off). name
// is the flag prefix, for the messages.
func clientTLS(t tlsFiles, name string) (*tls.Config, error) {
	if !t.wanted() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if t.caFile != "" {
		pem, err := os.ReadFile(t.caFile)
		if err != nil {
			return nil, fmt.Errorf("--%s-tls-ca-file: %w", name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--%s-tls-ca-file: %s holds no PEM certificate", name, t.caFile)
		}
		cfg.RootCAs = pool
	}
	if t.certFile != "" {
		cert, err := tls.LoadX509KeyPair(t.certFile, t.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--%s-tls-cert-file/--%s-tls-key-file: %w", name, name, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// newPubSub builds the configured cluster backend (nil: none), logging
// through log.
func newPubSub(c config, log *slog.Logger) (pondsocket.PubSub, error) {
	switch {
	case c.redisAddr != "" && c.kafkaBrokers != "":
		return nil, errors.New("choose one cluster backend: --redis-addr or --kafka-brokers")
	case c.redisAddr != "":
		tc, err := clientTLS(c.bus.redisTLS, "redis")
		if err != nil {
			return nil, err
		}
		ro := &pondsocket.RedisPubSubOptions{Username: c.bus.redisUsername, Password: c.redisPassword, TLS: tc,
			Logger: log.With("component", "cluster/redis")}
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
		if tc != nil && ro.URL == "" {
			tc.ServerName = ro.Host
		}
		return pondsocket.NewRedisPubSub(ro), nil
	case c.kafkaBrokers != "":
		tc, err := clientTLS(c.bus.kafkaTLS, "kafka")
		if err != nil {
			return nil, err
		}
		var mech sasl.Mechanism
		switch c.bus.kafkaSASL {
		case "plain":
			mech = plain.Mechanism{Username: c.bus.kafkaSASLUsername, Password: c.bus.kafkaSASLPassword}
		case "scram-sha-256", "scram-sha-512":
			algo := scram.SHA256
			if c.bus.kafkaSASL == "scram-sha-512" {
				algo = scram.SHA512
			}
			if mech, err = scram.Mechanism(algo, c.bus.kafkaSASLUsername, c.bus.kafkaSASLPassword); err != nil {
				return nil, fmt.Errorf("--kafka-sasl-mechanism %s: %w", c.bus.kafkaSASL, err)
			}
		}
		return pondsocket.NewKafkaPubSub(&pondsocket.KafkaPubSubOptions{Brokers: splitList(c.kafkaBrokers), TopicPrefix: c.kafkaTopic,
			SASL: mech, TLS: tc, Logger: log.With("component", "cluster/kafka")}), nil
	}
	return nil, nil
}
