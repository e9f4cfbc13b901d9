package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issue 13: RS256 tokens checked with a PEM public key file and ES256
// tokens with the keys of a JWKS URL (served here by a real HTTP server),
// fetched once and cached; a token of an unknown key id or of the other key
// type is declined 401.
func TestJWTPublicKeyAndJWKS(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	der, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	pubFile := filepath.Join(dir, "rsa.pem")
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	var fetches atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	jwksSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{
			{"kty": "EC", "kid": "k1", "use": "sig", "crv": "P-256", "x": b64(ecKey.X.FillBytes(make([]byte, 32))), "y": b64(ecKey.Y.FillBytes(make([]byte, 32)))},
		}})
	})}
	go jwksSrv.Serve(ln)
	t.Cleanup(func() { jwksSrv.Close() })
	cfg := filepath.Join(dir, "app.yaml")
	os.WriteFile(cfg, []byte("auth:\n  jwt:\n    public_key_file: "+pubFile+"\n    jwks_url: http://"+ln.Addr().String()+"/jwks.json\n"+
		"endpoints:\n  - path: /api/socket\n    channels:\n      - pattern: /room/:id\n"), 0o600)
	addr := startConfigured(t, buildBinary(t), "--config", cfg)
	ws := "ws://" + addr + "/api/socket?token="
	sign := func(m jwt.SigningMethod, key any, kid, sub string) string {
		tok := jwt.NewWithClaims(m, jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()})
		if kid != "" {
			tok.Header["kid"] = kid
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if status, body, connect := dialStatus(t, ws+sign(jwt.SigningMethodRS256, rsaKey, "", "rsa-user"), nil); status != 0 || !strings.Contains(connect, `"connectionId":"rsa-user"`) {
		t.Fatalf("RS256: %d %q %s", status, body, connect)
	}
	for i := 0; i < 3; i++ {
		if status, body, connect := dialStatus(t, ws+sign(jwt.SigningMethodES256, ecKey, "k1", "ec-user"), nil); status != 0 || !strings.Contains(connect, `"connectionId":"ec-user"`) {
			t.Fatalf("ES256 via JWKS: %d %q %s", status, body, connect)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times for 3 connections, want 1 (cached)", n)
	}
	otherEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, tok := range map[string]string{
		"unknown kid":        sign(jwt.SigningMethodES256, ecKey, "k2", "x"),
		"wrong EC key":       sign(jwt.SigningMethodES256, otherEC, "k1", "x"),
		"HS256 not accepted": token(t, "whatever", jwt.MapClaims{"sub": "x"}),
	} {
		if status, body, _ := dialStatus(t, ws+tok, nil); status != 401 {
			t.Errorf("%s: %d %q, want 401", name, status, body)
		}
	}
}

// The CPU cost of checking one connection's token, by algorithm (the
// work auth adds to an upgrade): go test -run X -bench Verify ./cmd/pondsocket
func BenchmarkVerify(b *testing.B) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	claims := jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(time.Hour).Unix(), "info": map[string]any{"name": "Ann"}}
	for _, c := range []struct {
		name string
		m    jwt.SigningMethod
		sign any
		auth *authenticator
	}{
		{"HS256", jwt.SigningMethodHS256, []byte("secret"), &authenticator{hmac: []byte("secret")}},
		{"RS256", jwt.SigningMethodRS256, rsaKey, &authenticator{pub: &rsaKey.PublicKey}},
		{"ES256", jwt.SigningMethodES256, ecKey, &authenticator{pub: &ecKey.PublicKey}},
	} {
		tok, err := jwt.NewWithClaims(c.m, claims).SignedString(c.sign)
		if err != nil {
			b.Fatal(err)
		}
		c.auth.parser = jwt.NewParser(jwt.WithValidMethods([]string{c.name}))
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := c.auth.verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
