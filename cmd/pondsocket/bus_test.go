package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pondsocket/pondsocket/apiclient"
	"github.com/pondsocket/pondsocket/internal/testenv"
)

// redisServer runs a redis-server without persistence on a free port of
// 127.0.0.1 with extra arguments; it returns its address. With tlsPort the
// port is the TLS one and the plain port is off.
func redisServer(t *testing.T, tlsPort bool, extra ...string) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	testenv.Require(t, "redis-server", err == nil, "install it with apt-get install -y redis-server (.ci/run does)")
	addr := testenv.FreeAddr(t)
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	args := []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}
	if tlsPort {
		args = []string{"--port", "0", "--tls-port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}
	}
	testenv.Start(t, p, testenv.ProcOptions{Args: append(args, extra...), Ready: "Ready to accept connections"})
	return addr
}

// writeBusConfig writes a configuration file with one endpoint and the
// given extra lines, returning its path.
func writeBusConfig(t *testing.T, extra string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.yaml")
	body := extra + `
endpoints:
  - path: /api/socket
    channels:
      - pattern: /chat/:roomId
        presence: true
        events:
          message: broadcast
`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Issue 13 point 5: the Redis password is settable in the file, and every
// line the binary writes — its own, the cluster node's, the Redis
// backend's — follows --log-format json, "listening on" included.
func TestRedisPasswordFromFileAndJSONLogs(t *testing.T) {
	bin := buildBinary(t)
	redisAddr := redisServer(t, false, "--requirepass", "s3cret pass")
	cfg := writeBusConfig(t, fmt.Sprintf("redis_addr: %s\nredis_password: \"s3cret pass\"\nheartbeat_interval: 200ms\nheartbeat_timeout: 1s\n", redisAddr))
	p := testenv.Start(t, bin, testenv.ProcOptions{
		Args:  []string{"--addr", "127.0.0.1:0", "--config", cfg, "--log-format", "json", "--node-id", "jsonnode"},
		Ready: "listening on ",
	})
	if _, _, err := net.SplitHostPort(p.Ready); err != nil {
		t.Fatalf("Ready %q is not an address: %v", p.Ready, err)
	}
	// a connection, so the server has something to do
	c, _, err := websocket.DefaultDialer.Dial("ws://"+p.Ready+"/api/socket", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := p.Stop(10 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	lines := p.Log()
	var sawListening, sawNode bool
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("not a JSON line: %q (%v)", l, err)
			continue
		}
		msg, _ := rec["msg"].(string)
		if strings.HasPrefix(msg, "listening on ") && rec["addr"] == p.Ready {
			sawListening = true
		}
		if msg == "cluster node started" && rec["node"] == "jsonnode" {
			sawNode = true
		}
	}
	if !sawListening || !sawNode {
		t.Fatalf("listening line %v, cluster line %v in %q", sawListening, sawNode, lines)
	}
}

// The Redis backend's own lines (a lost connection) are JSON too.
func TestRedisBackendLogsJSON(t *testing.T) {
	bin := buildBinary(t)
	p, err := exec.LookPath("redis-server")
	testenv.Require(t, "redis-server", err == nil, "install it with apt-get install -y redis-server (.ci/run does)")
	addr := testenv.FreeAddr(t)
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	redis := testenv.Start(t, p, testenv.ProcOptions{Args: []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"},
		Ready: "Ready to accept connections"})
	node := testenv.Start(t, bin, testenv.ProcOptions{
		Args:  []string{"--addr", "127.0.0.1:0", "--redis-addr", addr, "--log-format", "json"},
		Ready: "listening on ",
	})
	redis.Kill()
	msgOf := func(l string) (string, map[string]any) {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) != nil {
			return "", nil
		}
		msg, _ := rec["msg"].(string)
		return msg, rec
	}
	testenv.Eventually(t, 30*time.Second, "the Redis backend logs the lost connection", func() bool {
		for _, l := range node.Log() {
			if msg, _ := msgOf(l); strings.HasPrefix(msg, "redis: ") {
				return true
			}
		}
		return false
	})
	for _, l := range node.Log() {
		msg, rec := msgOf(l)
		if rec == nil {
			t.Errorf("not a JSON line: %q", l)
		}
		if strings.HasPrefix(msg, "redis: ") && rec["component"] != "cluster/redis" {
			t.Errorf("backend line without its component: %q", l)
		}
	}
}

// A wrong Redis password stops the start with a message that says so.
func TestRedisWrongPasswordStopsTheStart(t *testing.T) {
	bin := buildBinary(t)
	redisAddr := redisServer(t, false, "--requirepass", "right")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--addr", "127.0.0.1:0", "--redis-addr", redisAddr, "--redis-password", "wrong").CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want status 1; output %s", err, out)
	}
	if !strings.Contains(string(out), "cannot start") || !strings.Contains(string(out), "WRONGPASS") {
		t.Fatalf("output does not say the password was refused: %s", out)
	}
}

// Redis over TLS (Debian's redis-server is built with TLS): the CA file
// from the configuration file is what makes the server's certificate
// trusted; without it the start fails (a certificate that does not verify
// is not retried).
func TestRedisTLS(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	ca, cert, key := writeTestPKI(t, dir)
	redisAddr := redisServer(t, true, "--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca,
		"--tls-auth-clients", "no", "--requirepass", "pw")
	cfg := writeBusConfig(t, fmt.Sprintf("redis_addr: %s\nredis_password: pw\nredis_tls_ca_file: %s\n", redisAddr, ca))
	p := testenv.Start(t, bin, testenv.ProcOptions{
		Args:  []string{"--addr", "127.0.0.1:0", "--config", cfg, "--node-id", "tlsnode"},
		Ready: "listening on ",
	})
	found := false
	for _, l := range p.Log() {
		found = found || strings.Contains(l, "cluster node started")
	}
	if !found {
		t.Fatalf("no cluster node over TLS: %q", p.Log())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// TLS with the system roots only: the test CA is not trusted
	out, err := exec.CommandContext(ctx, bin, "--addr", "127.0.0.1:0", "--redis-addr", redisAddr, "--redis-password", "pw", "--redis-tls").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "certificate") {
		t.Fatalf("untrusted certificate: exit %v; output %s", err, out)
	}
}

// writeTestPKI writes a CA and a server certificate for 127.0.0.1 signed
// by it.
func writeTestPKI(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "EC PRIVATE KEY", keyDER)
}

// Bad bus settings stop the start with a message naming the setting.
func TestBusConfigErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--kafka-brokers", "127.0.0.1:9092", "--kafka-sasl-mechanism", "gssapi", "--kafka-sasl-username", "u"}, "--kafka-sasl-mechanism: must be plain"},
		{[]string{"--kafka-brokers", "127.0.0.1:9092", "--kafka-sasl-mechanism", "plain"}, "--kafka-sasl-username: is needed"},
		{[]string{"--kafka-brokers", "127.0.0.1:9092", "--kafka-sasl-password", "p"}, "--kafka-sasl-mechanism: is needed"},
		{[]string{"--redis-addr", "127.0.0.1:6379", "--redis-tls-cert-file", "c.pem"}, "--redis-tls-key-file: is needed"},
	} {
		_, err := parseConfig(c.args, noEnv, &strings.Builder{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
	// SASL and TLS from the file build a Kafka backend (the plumbing; no
	// SASL broker is started here)
	cfg := writeBusConfig(t, "kafka_brokers: [127.0.0.1:9092]\nkafka_sasl_mechanism: scram-sha-512\nkafka_sasl_username: u\nkafka_sasl_password: p\nkafka_tls: true\n")
	c, err := parseConfig([]string{"--config", cfg}, noEnv, &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if c.bus.kafkaSASL != "scram-sha-512" || c.bus.kafkaSASLUsername != "u" || !c.bus.kafkaTLS.on {
		t.Fatalf("file settings not applied: %+v", c.bus)
	}
	if ps, err := newPubSub(c, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil || ps == nil {
		t.Fatalf("newPubSub: %v %v", ps, err)
	}
}

// The server API is cluster-wide (issue 13 point 3): calls through node A,
// which has no member of the channel, reach the members on node B over a
// real redis-server: broadcast, to, evict and disconnect.
func TestServerAPIAcrossNodes(t *testing.T) {
	testenv.NodeModules(t)
	bin := buildBinary(t)
	redisAddr := redisServer(t, false)
	node := func(id string) string {
		return startConfigured(t, bin, "--config", exampleConfig, "--redis-addr", redisAddr, "--node-id", id,
			"--cluster-namespace", "apitest", "--heartbeat-interval", "200ms", "--heartbeat-timeout", "2s")
	}
	addrA, addrB := node("api-a"), node("api-b")
	ctx := context.Background()
	apiA := apiclient.New("http://"+addrA, "backend-secret")
	bob := newJS(t, addrB, userToken(t, "bob", nil))
	ann := newJS(t, addrB, userToken(t, "ann", nil))
	bob.join("/chat/far", "JOINED")
	ann.join("/chat/far", "JOINED")
	bob.expect("users", func(e jsEv) bool { return e.Channel == "/chat/far" && len(e.Users) == 2 })
	// node B's subscription to the channel's topic may trail the join by
	// a moment: broadcast until one arrives
	got := func(c *jsClient, event string) bool {
		for _, e := range c.d.History() {
			var j jsEv
			if e.Decode(&j) == nil && j.Ev == "message" && j.Event == event {
				return true
			}
		}
		return false
	}
	testenv.Eventually(t, 15*time.Second, "a broadcast through node A reaches bob on node B", func() bool {
		if err := apiA.Broadcast(ctx, apiclient.Broadcast{Channel: "/chat/far", Event: "news", Payload: map[string]any{"n": 1}}); err != nil {
			t.Fatalf("broadcast through node A: %v", err)
		}
		return got(bob, "news")
	})
	if err := apiA.Broadcast(ctx, apiclient.Broadcast{Channel: "/chat/far", Event: "to-bob", To: []string{"bob"}}); err != nil {
		t.Fatal(err)
	}
	bob.expect("message", func(e jsEv) bool { return e.Event == "to-bob" })
	if err := apiA.Broadcast(ctx, apiclient.Broadcast{Channel: "/chat/far", Event: "not-bob", Except: "bob"}); err != nil {
		t.Fatal(err)
	}
	ann.expect("message", func(e jsEv) bool { return e.Event == "not-bob" })
	if got(ann, "to-bob") || got(bob, "not-bob") {
		t.Fatal("to/except reached the wrong user")
	}
	// evict ann from node A: she is kicked out on node B, bob sees her go
	if err := apiA.Evict(ctx, "/chat/far", "ann", "bye"); err != nil {
		t.Fatal(err)
	}
	if m := ann.expect("message", func(e jsEv) bool { return e.Event == "kicked_out" }); m.Payload["message"] != "bye" {
		t.Fatalf("kicked_out %v", m.Payload)
	}
	bob.expect("users", func(e jsEv) bool { return e.Channel == "/chat/far" && len(e.Users) == 1 })
	// disconnect bob from node A
	if err := apiA.Disconnect(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	bob.expect("conn", func(e jsEv) bool { return !strings.EqualFold(e.State, "connected") })
	// ann, only evicted, is still connected to node B
	u, err := apiclient.New("http://"+addrB, "backend-secret").User(ctx, "ann")
	if err != nil || u.Connections != 1 {
		t.Fatalf("ann on node B after the eviction: %+v %v", u, err)
	}
}

// Kafka SASL (PLAIN and SCRAM) from the configuration file against
// cmd/devkafka requiring it; with a wrong password the node is not ready.
func TestKafkaSASL(t *testing.T) {
	bin := buildBinary(t)
	brokerAddr := testenv.FreeAddr(t)
	port := brokerAddr[strings.LastIndexByte(brokerAddr, ':')+1:]
	testenv.Start(t, testenv.Build(t, "cmd/devkafka"), testenv.ProcOptions{
		Args:  []string{"--port", port, "--sasl", "PLAIN:alice:pw-a,SCRAM-SHA-512:bob:pw-b"},
		Ready: "kafka broker listening on ",
	})
	for _, c := range []struct{ mech, user, pass string }{{"plain", "alice", "pw-a"}, {"scram-sha-512", "bob", "pw-b"}} {
		cfg := writeBusConfig(t, fmt.Sprintf("kafka_brokers: [%s]\nkafka_sasl_mechanism: %s\nkafka_sasl_username: %s\nkafka_sasl_password: %s\n",
			brokerAddr, c.mech, c.user, c.pass))
		p := testenv.Start(t, bin, testenv.ProcOptions{Args: []string{"--addr", "127.0.0.1:0", "--config", cfg}, Ready: "listening on "})
		found := false
		for _, l := range p.Log() {
			found = found || strings.Contains(l, "cluster node started")
		}
		if !found {
			t.Fatalf("%s: no cluster node: %q", c.mech, p.Log())
		}
		p.Stop(10 * time.Second)
	}
	// A wrong password: a broker answering SaslAuthenticate with an error
	// stops the start (cluster.ErrRefused); devkafka (kfake) closes the
	// connection instead, which looks like a network fault, so the node
	// keeps retrying, says so, and is not ready.
	p := testenv.Start(t, bin, testenv.ProcOptions{Args: []string{"--addr", "127.0.0.1:0", "--kafka-brokers", brokerAddr,
		"--kafka-sasl-mechanism", "scram-sha-512", "--kafka-sasl-username", "bob", "--kafka-sasl-password", "wrong"}, Ready: "listening on "})
	resp, err := http.Get("http://" + p.Ready + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with a wrong SASL password: %d, want 503", resp.StatusCode)
	}
	said := false
	for _, l := range p.Log() {
		said = said || (strings.Contains(l, "cannot connect to the bus") && strings.Contains(l, "SASL"))
	}
	if !said {
		t.Fatalf("no line says the bus refused or was unreachable: %q", p.Log())
	}
}
