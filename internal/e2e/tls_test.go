package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/internal/testenv"
)

// testCert is a self-signed certificate for 127.0.0.1 and the pool that
// trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "pondsocket test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func startTLSDemo(t *testing.T, tweak func(*pondsocket.Options)) (*pondsocket.Server, *x509.CertPool) {
	t.Helper()
	cert, pool := testCert(t)
	opts := pondsocket.DefaultOptions()
	opts.Logger = quiet()
	opts.Transport.HandshakeTimeout = 300 * time.Millisecond
	if tweak != nil {
		tweak(opts)
	}
	srv := pondsocket.NewServer(&pondsocket.ServerOptions{ServerAddr: "127.0.0.1:0", Options: opts,
		ServerTLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	registerReferenceDemo(srv)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(2 * time.Second) })
	return srv, pool
}

func dialTLS(t *testing.T, srv *pondsocket.Server, pool *x509.CertPool, query string) *raw {
	t.Helper()
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}}
	c, _, err := d.Dial(fmt.Sprintf("wss://%s/api/socket?%s", srv.Addr(), query), nil)
	if err != nil {
		t.Fatalf("dial wss: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	r := &raw{t: t, c: c, name: query}
	m := r.next()
	if m["action"] != "CONNECT" {
		t.Fatalf("first frame %v", m)
	}
	r.id = m["payload"].(map[string]any)["connectionId"].(string)
	return r
}

// The fallback transport serves TLS with the same protocol, framing and
// limits as the event loops.
func TestTLSFallbackTransport(t *testing.T) {
	srv, pool := startTLSDemo(t, func(o *pondsocket.Options) { o.MaxMessageSize = 1024 })
	a := dialTLS(t, srv, pool, "token=alice")
	b := dialTLS(t, srv, pool, "token=bob")
	joinRaw(a, "/chat/tls", "ja")
	joinRaw(b, "/chat/tls", "jb")
	a.send(`{"action":"BROADCAST","event":"message","channelName":"/chat/tls","requestId":"m1","payload":{"text":"over tls"}}`)
	for _, r := range []*raw{a, b} {
		r.expect(`{"channelName":"/chat/tls","requestId":"m1","action":"BROADCAST","event":"message","payload":{"text":"over tls","from":"u"}}`, nil)
	}
	a.sync("/chat/tls")

	// client ping → pong
	pong := make(chan string, 1)
	a.c.SetPongHandler(func(s string) error { pong <- s; return nil })
	if err := a.c.WriteControl(websocket.PingMessage, []byte("tls-ping"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	a.sync("/chat/tls") // reading lets gorilla run the pong handler
	select {
	case s := <-pong:
		if s != "tls-ping" {
			t.Fatalf("pong %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong over TLS")
	}

	// a message over the limit gets 413, far over it the frame gets 1009
	a.send(`{"action":"BROADCAST","event":"message","channelName":"/chat/tls","requestId":"big","payload":{"text":"` + strings.Repeat("x", 1500) + `"}}`)
	if m := a.next(); m["event"] != "INVALID_MESSAGE" || m["payload"].(map[string]any)["status"] != float64(413) {
		t.Fatalf("oversized: %v", m)
	}
	if err := a.c.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("y", 200<<10))); err != nil {
		t.Fatal(err)
	}
	a.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := a.c.ReadMessage(); !websocket.IsCloseError(err, 1009) {
		t.Fatalf("huge frame over TLS: %v, want close 1009", err)
	}
	b.sync("/chat/tls") // the neighbour carries on

	// a client close code is echoed
	if err := b.c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye")); err != nil {
		t.Fatal(err)
	}
	b.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := b.c.ReadMessage(); !websocket.IsCloseError(err, 4001) {
		t.Fatalf("close echo over TLS: %v", err)
	}
}

// Bad TLS input ends that connection with a log line and nothing else: a
// handshake that never finishes, a client that does not trust the
// certificate, and plain text on the TLS port.
func TestTLSBadHandshakes(t *testing.T) {
	srv, pool := startTLSDemo(t, nil)
	good := dialTLS(t, srv, pool, "token=alice")
	joinRaw(good, "/chat/x", "j")

	// slowloris: TCP connected, no ClientHello; closed after the timeout
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a silent TLS client was not closed")
	}
	c.Close()
	// untrusted certificate
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: x509.NewCertPool()}}
	if _, _, err := d.Dial(fmt.Sprintf("wss://%s/api/socket?token=x", srv.Addr()), nil); err == nil {
		t.Fatal("an untrusting client connected")
	}
	// plain HTTP on the TLS port
	c, _ = net.Dial("tcp", srv.Addr().String())
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, _ := c.Read(buf)
	c.Close()
	if strings.Contains(string(buf[:n]), "101") {
		t.Fatalf("plain text on the TLS port got %q", buf[:n])
	}
	good.sync("/chat/x")
	// the server counts a failure after its alert is on the wire
	testenv.Eventually(t, 5*time.Second, "3 TLS failures counted", func() bool { return srv.Stats().TLSFailures >= 3 })
}

// Graceful stop closes TLS clients with 1001 and leaves no goroutine behind.
func TestTLSGracefulStop(t *testing.T) {
	before := runtime.NumGoroutine()
	cert, pool := testCert(t)
	opts := pondsocket.DefaultOptions()
	opts.Logger = quiet()
	srv := pondsocket.NewServer(&pondsocket.ServerOptions{ServerAddr: "127.0.0.1:0", Options: opts,
		ServerTLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	registerReferenceDemo(srv)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	var rs []*raw
	for i := 0; i < 5; i++ {
		rs = append(rs, dialTLS(t, srv, pool, fmt.Sprintf("token=u%d", i)))
	}
	done := make(chan error, 1)
	go func() { done <- srv.Stop(5 * time.Second) }()
	for _, r := range rs {
		r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := r.c.ReadMessage(); !websocket.IsCloseError(err, 1001) {
			t.Fatalf("on stop: %v, want 1001", err)
		}
		r.c.Close()
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			buf := make([]byte, 1<<16)
			t.Logf("goroutines: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
	}()
	// the test's own dialer may linger briefly
	testenv.Eventually(t, 5*time.Second, "the connections' goroutines are gone", func() bool { return runtime.NumGoroutine() <= before+2 })
}

// Server pings and the pong wait work on the fallback transport too: a
// peer that answers pings stays, one that does not is dropped.
func TestTLSPingsAndDeadPeer(t *testing.T) {
	srv, pool := startTLSDemo(t, func(o *pondsocket.Options) {
		o.PingInterval = 50 * time.Millisecond
		o.PongWait = 300 * time.Millisecond
	})
	live := dialTLS(t, srv, pool, "token=live")
	joinRaw(live, "/chat/p", "jl")
	// the live peer reads all along (gorilla answers pings while reading)
	got := make(chan string, 16)
	go func() {
		for {
			live.c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, m, err := live.c.ReadMessage()
			if err != nil {
				close(got)
				return
			}
			got <- string(m)
		}
	}()
	dead := dialTLS(t, srv, pool, "token=dead")
	dead.c.SetPingHandler(func(string) error { return nil }) // never answers
	start := time.Now()
	dead.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := dead.c.ReadMessage(); err != nil {
			break
		}
	}
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Fatalf("dropped after %v, before the pong wait", el)
	}
	time.Sleep(400 * time.Millisecond) // longer than the pong wait
	live.send(`{"action":"BROADCAST","event":"ping","channelName":"/chat/p","requestId":"still","payload":{}}`)
	for m := range got {
		if strings.Contains(m, `"requestId":"still"`) {
			if srv.Stats().PongTimeouts < 1 {
				t.Fatalf("pong timeouts %d", srv.Stats().PongTimeouts)
			}
			return
		}
	}
	t.Fatal("the live peer was dropped too")
}
