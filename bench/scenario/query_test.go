package scenario

import (
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pondsocket/pondsocket/bench/client"
)

// --query-file: blank and comment lines are skipped, and connection i
// carries line i mod count after its own username.
func TestQueryFileCycles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.txt")
	text := "# tokens\ntoken=a\n\n?token=b\n  token=c&x=1  \n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	q, err := ReadQueryFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(q, "|") != "token=a|token=b|token=c&x=1" {
		t.Fatalf("lines %q", q)
	}
	tg, err := client.ParseTarget("ws://127.0.0.1:9/api/socket?v=2")
	if err != nil {
		t.Fatal(err)
	}
	s := Spec{Queries: q}
	want := []string{"a", "b", "c", "a", "b", "c", "a"}
	for id, tok := range want {
		p := s.dialPath(tg, id)
		u, err := url.Parse(p)
		if err != nil {
			t.Fatalf("%d: %q: %v", id, p, err)
		}
		v := u.Query()
		if u.Path != "/api/socket" || v.Get("v") != "2" || v.Get("token") != tok || v.Get("username") != "u"+strconv.Itoa(id) {
			t.Errorf("connection %d: %q, want token %s", id, p, tok)
		}
	}
	if p := (&Spec{}).dialPath(tg, 3); strings.Contains(p, "token") || !strings.HasSuffix(p, "username=u3") {
		t.Errorf("without queries: %q", p)
	}

	empty := filepath.Join(t.TempDir(), "empty.txt")
	_ = os.WriteFile(empty, []byte("# nothing\n\n"), 0o600)
	if _, err := ReadQueryFile(empty); err == nil {
		t.Error("a file without query strings was accepted")
	}
	bad := Defaults("conns")
	bad.Queries = []string{"token=a b"}
	if err := bad.Validate(); err == nil {
		t.Error("a query string with a space was accepted")
	}
}

func TestPublishValidation(t *testing.T) {
	s := Defaults("fanout")
	s.Publish = "api"
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "api-key") {
		t.Errorf("--publish api without a key: %v", err)
	}
	s.APIKey = "k"
	if err := s.Validate(); err != nil || s.APIConns != 1 {
		t.Errorf("valid spec: %v (api conns %d)", err, s.APIConns)
	}
	c := Defaults("conns")
	c.Publish, c.APIKey = "api", "k"
	if err := c.Validate(); err == nil {
		t.Error("--publish api accepted for conns")
	}
	f := Defaults("fanout")
	f.Publish = "http"
	if err := f.Validate(); err == nil {
		t.Error("--publish http accepted")
	}
}
