package main

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// Every line is token=<JWT> for user u<i>, verifiable with the key the
// server would be configured with.
func TestTokensVerify(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "private.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args   []string
		verify any
		method string
	}{
		{[]string{"-n", "3", "-alg", "HS256", "-secret", "s"}, []byte("s"), "HS256"},
		{[]string{"-n", "3", "-alg", "RS256", "-key", keyFile}, &k.PublicKey, "RS256"},
	} {
		var out bytes.Buffer
		if err := run(c.args, &out); err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 3 {
			t.Fatalf("%s: %d lines", c.method, len(lines))
		}
		for i, l := range lines {
			raw, ok := strings.CutPrefix(l, "token=")
			if !ok {
				t.Fatalf("line %q", l)
			}
			tok, err := jwt.Parse(raw, func(*jwt.Token) (any, error) { return c.verify, nil }, jwt.WithValidMethods([]string{c.method}), jwt.WithExpirationRequired())
			if err != nil {
				t.Fatalf("%s line %d: %v", c.method, i, err)
			}
			if sub, _ := tok.Claims.GetSubject(); sub != "u"+strconv.Itoa(i) {
				t.Errorf("%s line %d: sub %q", c.method, i, sub)
			}
		}
	}
	if err := run([]string{"-alg", "RS256"}, &bytes.Buffer{}); err == nil {
		t.Error("RS256 without -key accepted")
	}
}
