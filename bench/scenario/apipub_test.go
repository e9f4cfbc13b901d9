package scenario_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pondsocket/pondsocket/bench/scenario"
)

const authConfig = `auth:
  jwt:
    hmac_secret: "bench-secret"
api:
  key: "bench-key"
endpoints:
  - path: /api/socket
    channels:
      - pattern: /chat/:roomId
        presence: false
        events:
          message: broadcast
`

// startAuthServer runs cmd/pondsocket with JWT verification and the server
// API (the set-up of scripts/auth-rate.sh).
func startAuthServer(t *testing.T) (url string, pid int) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "pondsocket.yaml")
	if err := os.WriteFile(cfg, []byte(authConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	return startServer(t, buildServer(t), "--config", cfg, "--log-level", "warn")
}

// userTokens are query strings with one HS256 token per user u<i>.
func userTokens(t *testing.T, n int) []string {
	t.Helper()
	out := make([]string, n)
	exp := time.Now().Add(time.Hour).Unix()
	for i := range out {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u" + strconv.Itoa(i), "exp": exp}).SignedString([]byte("bench-secret"))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = "token=" + s
	}
	return out
}

// --publish api against the real standalone server: the members join over
// WebSocket, each with its own token (--query-file), the messages go
// through POST /api/broadcast, and every one reaches every member in order.
func TestAPIPublisherAgainstServer(t *testing.T) {
	url, pid := startAuthServer(t)

	t.Run("tokens are required", func(t *testing.T) {
		spec := small("conns", url)
		spec.Conns = 5
		_, err := scenario.Run(context.Background(), spec, scenario.Options{ServerPid: -1, Exe: os.Args[0]})
		if err == nil || !strings.Contains(err.Error(), "no connection succeeded") {
			t.Fatalf("conns without tokens: %v, want every connection refused", err)
		}
	})

	t.Run("fanout", func(t *testing.T) {
		spec := small("fanout", url)
		spec.Conns, spec.Messages, spec.InFlight = 50, 20, 4
		spec.Publish, spec.APIKey = "api", "bench-key"
		spec.Queries = userTokens(t, spec.Conns)
		res := runSpec(t, spec, pid)
		checkResult(t, spec, res)
		tr := res.Traffic
		if tr.Sent != 20 || tr.Refused != 0 || tr.Delivered != 50*20 || tr.OutOfOrder != 0 || tr.Duplicates != 0 {
			t.Fatalf("traffic %+v, want 20 sent and 1000 delivered in order", tr)
		}
		if res.Latency == nil || res.Latency.Count != 1000 {
			t.Errorf("latency %+v, want 1000 samples", res.Latency)
		}
		if !strings.Contains(res.Label, "publish=api") || res.Params["publish"] != "api" {
			t.Errorf("label %q / params %v do not say the API published", res.Label, res.Params)
		}
	})

	t.Run("wrong key is refused", func(t *testing.T) {
		spec := small("fanout", url)
		spec.Conns, spec.Messages, spec.InFlight = 10, 5, 2
		spec.Publish, spec.APIKey = "api", "not-the-key"
		spec.Queries = userTokens(t, spec.Conns)
		res := runSpec(t, spec, pid)
		if tr := res.Traffic; tr.Sent != 5 || tr.Refused != 5 || tr.Delivered != 0 {
			t.Fatalf("traffic %+v, want 5 sent, all refused", tr)
		}
		found := false
		for k := range res.Conns.Errors {
			found = found || strings.Contains(k, "server API 401")
		}
		if !found {
			t.Errorf("errors %v do not name the 401", res.Conns.Errors)
		}
	})
}
