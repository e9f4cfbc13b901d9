package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pondsocket/pondsocket"
)

// authConfig: JWT verification at connect (auth.jwt.* in the file).
type authConfig struct {
	hmacSecret    string
	publicKeyFile string
	jwksURL       string
	jwksRefresh   time.Duration
	issuer        string
	audience      string
}

func (a authConfig) enabled() bool {
	return a.hmacSecret != "" || a.publicKeyFile != "" || a.jwksURL != ""
}

// defineAppFlags registers the settings of the application mode (they are
// also file keys, see fileKeyOf).
func defineAppFlags(fs *flag.FlagSet, c *config, def func(name, env string) string) {
	fs.StringVar(&c.auth.hmacSecret, "jwt-hmac-secret", "", "verify connection tokens signed HS256/384/512 with this secret "+def("jwt-hmac-secret", "PONDSOCKET_JWT_HMAC_SECRET"))
	fs.StringVar(&c.auth.publicKeyFile, "jwt-public-key-file", "", "verify RS*/PS*/ES* tokens with this PEM public key "+def("jwt-public-key-file", "PONDSOCKET_JWT_PUBLIC_KEY_FILE"))
	fs.StringVar(&c.auth.jwksURL, "jwt-jwks-url", "", "verify RS*/PS*/ES* tokens with the keys of this JWKS URL "+def("jwt-jwks-url", "PONDSOCKET_JWT_JWKS_URL"))
	fs.DurationVar(&c.auth.jwksRefresh, "jwt-jwks-refresh", 5*time.Minute, "refetch the JWKS this often (and on an unknown kid, at most every 10s) "+def("jwt-jwks-refresh", "PONDSOCKET_JWT_JWKS_REFRESH"))
	fs.StringVar(&c.auth.issuer, "jwt-issuer", "", "required iss claim, empty = any "+def("jwt-issuer", "PONDSOCKET_JWT_ISSUER"))
	fs.StringVar(&c.auth.audience, "jwt-audience", "", "required aud claim, empty = any "+def("jwt-audience", "PONDSOCKET_JWT_AUDIENCE"))
	fs.StringVar(&c.api.key, "api-key", "", "key of the server API and admin page (Authorization: apikey KEY); empty = no server API "+def("api-key", "PONDSOCKET_API_KEY"))
	fs.StringVar(&c.api.addr, "api-addr", "", "serve the server API and the admin page on this address (plain HTTP, net/http) instead of the main port "+def("api-addr", "PONDSOCKET_API_ADDR"))
	fs.Int64Var(&c.api.maxBody, "api-max-body-bytes", 32<<10, "largest server API request body, at most 65536 (the engine's bound on plain HTTP bodies) "+def("api-max-body-bytes", "PONDSOCKET_API_MAX_BODY_BYTES"))
	defineProxyFlags(fs, c, def)
}

// engineMaxBody is the engine's bound on plain HTTP request bodies (larger
// ones get its plain-text 413 before the API sees them).
const engineMaxBody = 64 << 10

// validateApp checks the application settings.
func (c *config) validateApp(bad func(name, want string) error) error {
	if c.app == nil {
		settings := c.appSettings()
		for _, name := range slices.Sorted(maps.Keys(settings)) {
			if settings[name] != "" {
				return bad(name, "needs a configuration file (--config): the demo has no authentication, server API or backend proxy")
			}
		}
		return nil
	}
	if c.testEvents {
		return bad("test-events", "only for the demo, not with --config")
	}
	switch {
	case c.auth.jwksRefresh <= 0:
		return bad("jwt-jwks-refresh", "must be more than 0")
	case c.api.addr != "" && c.api.key == "":
		return bad("api-addr", "needs api.key: without it there is no server API to serve")
	case c.api.maxBody <= 0 || c.api.maxBody > engineMaxBody:
		return bad("api-max-body-bytes", fmt.Sprintf("must be from 1 to %d (the engine's bound on plain HTTP request bodies)", engineMaxBody))
	case c.auth.jwksURL != "" && !strings.HasPrefix(c.auth.jwksURL, "https://") && !strings.HasPrefix(c.auth.jwksURL, "http://"):
		return bad("jwt-jwks-url", "must be an http:// or https:// URL")
	}
	if c.auth.publicKeyFile != "" {
		if _, err := loadPublicKey(c.auth.publicKeyFile); err != nil {
			return bad("jwt-public-key-file", err.Error())
		}
	}
	return c.validateProxy(bad)
}

// appSettings are the settings only a configuration file's application
// uses, by flag name.
func (c *config) appSettings() map[string]string {
	return map[string]string{
		"jwt-hmac-secret":     c.auth.hmacSecret,
		"jwt-public-key-file": c.auth.publicKeyFile,
		"jwt-jwks-url":        c.auth.jwksURL,
		"api-key":             c.api.key,
		"api-addr":            c.api.addr,
		"proxy-connect-url":   c.proxy.connectURL,
		"proxy-join-url":      c.proxy.joinURL,
		"proxy-event-url":     c.proxy.eventURL,
	}
}

// loadPublicKey reads a PEM RSA or ECDSA public key (or certificate).
func loadPublicKey(path string) (any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if k, err := jwt.ParseRSAPublicKeyFromPEM(b); err == nil {
		return k, nil
	}
	if k, err := jwt.ParseECPublicKeyFromPEM(b); err == nil {
		return k, nil
	}
	return nil, errors.New("not a PEM RSA or ECDSA public key")
}

// tokenClaims are the claims the server reads.
type tokenClaims struct {
	jwt.RegisteredClaims
	Channels []string       `json:"channels,omitempty"`
	Info     map[string]any `json:"info,omitempty"`
}

// authenticator verifies connection tokens.
type authenticator struct {
	parser *jwt.Parser
	hmac   []byte
	pub    any
	jwks   *jwksCache
}

func newAuthenticator(c authConfig, log interface{ Warn(string, ...any) }) (*authenticator, error) {
	a := &authenticator{}
	var methods []string
	if c.hmacSecret != "" {
		a.hmac = []byte(c.hmacSecret)
		methods = append(methods, "HS256", "HS384", "HS512")
	}
	asym := []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
	if c.publicKeyFile != "" {
		k, err := loadPublicKey(c.publicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.publicKeyFile, err)
		}
		a.pub = k
	}
	if c.jwksURL != "" {
		a.jwks = &jwksCache{url: c.jwksURL, refresh: c.jwksRefresh, client: &http.Client{Timeout: 5 * time.Second}, log: log}
	}
	if a.pub != nil || a.jwks != nil {
		methods = append(methods, asym...)
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithLeeway(5 * time.Second)}
	if c.issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.issuer))
	}
	if c.audience != "" {
		opts = append(opts, jwt.WithAudience(c.audience))
	}
	a.parser = jwt.NewParser(opts...)
	return a, nil
}

func (a *authenticator) key(t *jwt.Token) (any, error) {
	switch t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		return a.hmac, nil
	}
	kid, _ := t.Header["kid"].(string)
	if a.jwks != nil && (kid != "" || a.pub == nil) {
		return a.jwks.key(kid)
	}
	return a.pub, nil
}

// verify checks a token; the error is the short reason given to the client.
func (a *authenticator) verify(token string) (*tokenClaims, error) {
	if token == "" {
		return nil, errors.New("Token missing")
	}
	var cl tokenClaims
	_, err := a.parser.ParseWithClaims(token, &cl, a.key)
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, errors.New("Token expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return nil, errors.New("Token not valid yet")
	case errors.Is(err, jwt.ErrTokenMalformed):
		return nil, errors.New("Malformed token")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, errors.New("Invalid token signature")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer), errors.Is(err, jwt.ErrTokenInvalidAudience):
		return nil, errors.New("Token not for this server")
	default:
		return nil, errors.New("Invalid token")
	}
	if cl.Subject == "" {
		return nil, errors.New("Token without sub")
	}
	if len(cl.Subject) > pondsocket.MaxUserIDBytes {
		return nil, errors.New("Token sub too long")
	}
	return &cl, nil
}

// tokenOf takes the token from ?token= or Authorization: Bearer.
func tokenOf(ctx *pondsocket.ConnectionContext) string {
	if t := ctx.Route.Query.Get("token"); t != "" {
		return t
	}
	h := ctx.Headers().Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// jwksCache holds the keys of a JWKS URL: fetched on first use, again when
// older than refresh, and on an unknown kid at most every jwksRetry.
type jwksCache struct {
	url     string
	refresh time.Duration
	client  *http.Client
	log     interface{ Warn(string, ...any) }

	mu      sync.Mutex
	keys    map[string]any
	fetched time.Time // last successful fetch
	tried   time.Time // last attempt
}

const jwksRetry = 10 * time.Second

func (j *jwksCache) key(kid string) (any, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	now := time.Now()
	k, ok := j.lookup(kid)
	stale := j.keys == nil || now.Sub(j.fetched) > j.refresh
	if (stale || !ok) && now.Sub(j.tried) >= jwksRetry || j.keys == nil && j.tried.IsZero() {
		j.tried = now
		if keys, err := j.fetch(); err != nil {
			j.log.Warn("JWKS fetch failed; keeping the keys fetched before", "url", j.url, "err", err)
		} else {
			j.keys, j.fetched = keys, now
		}
		k, ok = j.lookup(kid)
	}
	if !ok {
		return nil, errors.New("unknown key id")
	}
	return k, nil
}

func (j *jwksCache) lookup(kid string) (any, bool) {
	if kid == "" && len(j.keys) == 1 {
		for _, k := range j.keys {
			return k, true
		}
	}
	k, ok := j.keys[kid]
	return k, ok
}

func (j *jwksCache) fetch() (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	var set struct {
		Keys []struct {
			Kty, Kid, Use, N, E, Crv, X, Y string
		} `json:"keys"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, err
	}
	keys := map[string]any{}
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		switch k.Kty {
		case "RSA":
			n, e := b64int(k.N), b64int(k.E)
			if n == nil || e == nil || !e.IsInt64() {
				continue
			}
			keys[k.Kid] = &rsa.PublicKey{N: n, E: int(e.Int64())}
		case "EC":
			var curve elliptic.Curve
			switch k.Crv {
			case "P-256":
				curve = elliptic.P256()
			case "P-384":
				curve = elliptic.P384()
			case "P-521":
				curve = elliptic.P521()
			default:
				continue
			}
			x, y := b64int(k.X), b64int(k.Y)
			if x == nil || y == nil {
				continue
			}
			keys[k.Kid] = &ecdsa.PublicKey{Curve: curve, X: x, Y: y}
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("no usable RSA or EC signing key")
	}
	return keys, nil
}

func b64int(s string) *big.Int {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil
	}
	return new(big.Int).SetBytes(b)
}
