package main

import (
	"strings"
	"testing"
)

// The command recorded in a result must not carry the server's API key.
func TestRedactKey(t *testing.T) {
	got := strings.Join(redactKey([]string{"--publish", "api", "--api-key", "s3cret", "-api-key=other", "--conns", "5"}), " ")
	if strings.Contains(got, "s3cret") || strings.Contains(got, "other") || !strings.Contains(got, "--conns 5") {
		t.Fatalf("redacted: %q", got)
	}
}
