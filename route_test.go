package pondsocket

import (
	"maps"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCompilePatternErrors(t *testing.T) {
	tests := []struct{ pattern, wantErr string }{
		{"/a?b", `channel: invalid route pattern "/a?b": '?' is not allowed in a pattern (a query string belongs to the matched name)`},
		{"/chat/:id?", `'?' is not allowed`},
		{"job:*", `':' and '*' must occupy a whole segment, got segment "job:*"`},
		{"/pre:id", `':' and '*' must occupy a whole segment, got segment "pre:id"`},
		{"/a*", `':' and '*' must occupy a whole segment, got segment "a*"`},
		{"/**", `':' and '*' must occupy a whole segment, got segment "**"`},
		{"/:", `parameter name "" in segment ":" is not an identifier`},
		{"/:1id", `parameter name "1id" in segment ":1id" is not an identifier`},
		{"/:a-b", `parameter name "a-b" in segment ":a-b" is not an identifier`},
		{"/:a:b", `parameter name "a:b" in segment ":a:b" is not an identifier`},
		{"/:a*", `parameter name "a*" in segment ":a*" is not an identifier`},
		{"/:é", `is not an identifier`},
		{"/:a/:a", `channel: invalid route pattern "/:a/:a": duplicate parameter name "a"`},
		{"/:a/x/:b/:a", `duplicate parameter name "a"`},
		{"/*/*", `channel: invalid route pattern "/*/*": only one '*' is allowed`},
		{"/*/x", `channel: invalid route pattern "/*/x": '*' must be the last segment`},
		{"*/", `'*' must be the last segment`},
	}
	for _, tt := range tests {
		p, err := compilePattern(tt.pattern)
		if err == nil {
			t.Errorf("CompilePattern(%q) = %v, want error", tt.pattern, p)
			continue
		}
		if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.pattern) {
			t.Errorf("CompilePattern(%q) error %q, want it to contain %q and the pattern", tt.pattern, err, tt.wantErr)
		}
	}
}

func TestCompilePatternAccepts(t *testing.T) {
	for _, tt := range []struct {
		pattern string
		literal bool
	}{
		{"/api/socket", true},
		{"", true},
		{"/", true},
		{"message", true},
		{"/a//b/", true},
		{"/chat/:roomId", false},
		{"message/:id", false},
		{"/files/*", false},
		{"*", false},
		{"/:_/:a_1/:B", false},
		{"/org/:org/repo/:repo/*", false},
	} {
		p, err := compilePattern(tt.pattern)
		if err != nil {
			t.Errorf("CompilePattern(%q): %v", tt.pattern, err)
			continue
		}
		if p.String() != tt.pattern || p.IsLiteral() != tt.literal {
			t.Errorf("%q: String %q IsLiteral %v", tt.pattern, p.String(), p.IsLiteral())
		}
	}
}

func TestMatch(t *testing.T) {
	type m = map[string]string
	tests := []struct {
		pattern, in string
		ok          bool
		path        string
		params      m
		query       m
	}{
		// docs/protocol.md §7.1 and Appendix A
		{"/files/*", "/files/a/b/c.txt?mode=ro", true, "/files/a/b/c.txt", m{"*": "/a/b/c.txt"}, m{"mode": "ro"}},
		{"/files/*", "/files", false, "", nil, nil},
		{"/files/*", "/files/", true, "/files/", m{"*": "/"}, m{}},
		{"/files/*", "/files//a///b/", true, "/files//a///b/", m{"*": "/a/b/"}, m{}},
		{"/files/*", "/files/a%20b", true, "/files/a%20b", m{"*": "/a%20b"}, m{}},
		{"/files/*", "/filesx/a", false, "", nil, nil},
		{"message/:id", "message/42?draft=1", true, "message/42", m{"id": "42"}, m{"draft": "1"}},
		{"message/:id", "message/42/x", false, "", nil, nil},
		{"message/:id", "message/", false, "", nil, nil},
		{"message/:id", "message", false, "", nil, nil},
		{"/chat/:roomId", "/chat/lobby", true, "/chat/lobby", m{"roomId": "lobby"}, m{}},
		{"/chat/:roomId", "/chat/lobby/", false, "", nil, nil},
		{"/chat/:roomId", "/Chat/lobby", false, "", nil, nil},
		{"/chat/:roomId", "chat/lobby", false, "", nil, nil},
		{"/chat/:roomId", "/chat/caf%C3%A9%2Fx", true, "/chat/caf%C3%A9%2Fx", m{"roomId": "café/x"}, m{}},
		{"/chat/:roomId", "/chat/a+b", true, "/chat/a+b", m{"roomId": "a+b"}, m{}},
		{"/chat/:roomId", "/chat/%zz", false, "", nil, nil},
		{"/chat/:roomId", "/chat/%4", false, "", nil, nil},
		{"/chat/:roomId", "/chat/%ff", false, "", nil, nil}, // not UTF-8: decodeURIComponent throws
		{"/api/socket", "/api/socket?token=alice&greet=1", true, "/api/socket", m{}, m{"token": "alice", "greet": "1"}},
		{"/api/socket", "/api/socket/", false, "", nil, nil}, // Appendix A E1
		{"/api/socket", "/api/socket?", true, "/api/socket", m{}, m{}},
		{"/a//b/", "/a//b/", true, "/a//b/", m{}, m{}},
		{"", "", true, "", m{}, m{}},
		{"", "?x=1", true, "", m{}, m{"x": "1"}},
		{"*", "anything/at//all", true, "anything/at//all", m{"*": "/anything/at/all"}, m{}},
		{"*", "", true, "", m{"*": "/"}, m{}},
		{"*", "/x", true, "/x", m{"*": "/x"}, m{}},
		{"/*", "", false, "", nil, nil},
		{"/*", "/", true, "/", m{"*": "/"}, m{}},
		{"/org/:org/repo/:repo/*", "/org/go/repo/net/a/b", true, "/org/go/repo/net/a/b", m{"org": "go", "repo": "net", "*": "/a/b"}, m{}},
		{"/:a/:b", "/x/y?a=1&a=2&b&=e&c=%zz&%zz=c&d=a+b%20c&&e=%C3%A9?q", true, "/x/y", m{"a": "x", "b": "y"},
			m{"a": "2", "b": "", "": "e", "d": "a b c", "e": "é?q"}},
	}
	for _, tt := range tests {
		p, err := compilePattern(tt.pattern)
		if err != nil {
			t.Fatalf("CompilePattern(%q): %v", tt.pattern, err)
		}
		r, ok := p.Match(tt.in)
		if ok != tt.ok || p.Matches(tt.in) != tt.ok {
			t.Errorf("%q.Match(%q) ok = %v, want %v", tt.pattern, tt.in, ok, tt.ok)
			continue
		}
		if !ok {
			if r.Params != nil || r.Query != nil || r.Path != "" {
				t.Errorf("%q.Match(%q) failed but returned %+v", tt.pattern, tt.in, r)
			}
			continue
		}
		if r.Path != tt.path || !maps.Equal(r.Params, tt.params) || !maps.Equal(r.Query, tt.query) {
			t.Errorf("%q.Match(%q) = %+v, want path %q params %v query %v", tt.pattern, tt.in, r, tt.path, tt.params, tt.query)
		}
		if r.Params == nil || r.Query == nil {
			t.Errorf("%q.Match(%q): nil map in %+v", tt.pattern, tt.in, r)
		}
	}
}

func TestQueryGet(t *testing.T) {
	var q Query
	if q.Get("x") != "" {
		t.Error("nil Query")
	}
	q = Query{"x": "1"}
	if q.Get("x") != "1" || q.Get("y") != "" {
		t.Error("Get")
	}
}

func TestMatchAllocs(t *testing.T) {
	lit, _ := compilePattern("message")
	par, _ := compilePattern("/chat/:roomId")
	wild, _ := compilePattern("/files/*")
	for _, c := range []struct {
		name string
		fn   func()
		max  float64
	}{
		{"literal miss", func() { lit.Match("other") }, 0},
		{"param miss", func() { par.Match("/chat/a/b?x=1") }, 0},
		{"wildcard miss", func() { wild.Match("/file/a") }, 0},
		{"Matches hit", func() { par.Matches("/chat/lobby?x=1") }, 0},
		// An empty map costs one allocation, a filled one two (header and
		// group); values that need no decoding are substrings of the input.
		{"literal hit", func() { lit.Match("message") }, 2},
		{"param hit", func() { par.Match("/chat/lobby") }, 3},
		{"wildcard hit", func() { wild.Match("/files/a/b/c.txt") }, 3},
		{"query hit", func() { lit.Match("message?draft=1&x=2") }, 3},
	} {
		if n := testing.AllocsPerRun(100, c.fn); n > c.max {
			t.Errorf("%s: %v allocations, want <= %v", c.name, n, c.max)
		}
	}
}

func TestPatternConcurrentUse(t *testing.T) {
	p, _ := compilePattern("/chat/:roomId/*")
	done := make(chan bool)
	for i := range 8 {
		go func() {
			for range 200 {
				r, ok := p.Match("/chat/room/x/y?i=1")
				if !ok || r.Params["roomId"] != "room" || r.Params["*"] != "/x/y" {
					t.Errorf("goroutine %d: %+v", i, r)
				}
			}
			done <- true
		}()
	}
	for range 8 {
		<-done
	}
}

// oracle is an independent, regexp-based reading of §6.2, used by the fuzz
// target to check Match.
func oracle(pattern, s string) (Route, bool) {
	var re strings.Builder
	re.WriteString("(?s)^")
	var names []string
	for i, seg := range strings.Split(pattern, "/") {
		if i > 0 {
			re.WriteString("/")
		}
		switch {
		case seg == "*":
			re.WriteString("(.*)")
			names = append(names, "*")
		case strings.HasPrefix(seg, ":"):
			re.WriteString("([^/]+)")
			names = append(names, seg[1:])
		default:
			re.WriteString(regexp.QuoteMeta(seg))
		}
	}
	re.WriteString("$")
	path, rawQuery, _ := strings.Cut(s, "?")
	sub := regexp.MustCompile(re.String()).FindStringSubmatch(path)
	if sub == nil {
		return Route{}, false
	}
	r := Route{Path: path, Params: map[string]string{}, Query: Query{}}
	for i, name := range names {
		v := sub[i+1]
		if name == "*" {
			v = regexp.MustCompile("/+").ReplaceAllString("/"+v, "/")
		} else {
			d, err := url.PathUnescape(v)
			if err != nil || !utf8.ValidString(d) || !utf8.ValidString(v) {
				return Route{}, false
			}
			v = d
		}
		r.Params[name] = v
	}
	for _, pair := range strings.Split(rawQuery, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		dk, err1 := url.QueryUnescape(k)
		dv, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil || !utf8.ValidString(dk) || !utf8.ValidString(dv) {
			continue
		}
		r.Query[dk] = dv
	}
	return r, true
}

// FuzzPatternMatch checks that CompilePattern and Match never panic, that
// a literal pattern only matches itself, and that Match agrees with the
// regexp oracle. Seeds: testdata/fuzz/FuzzPatternMatch.
func FuzzPatternMatch(f *testing.F) {
	f.Add("/chat/:roomId", "/chat/lobby?x=1")
	f.Fuzz(func(t *testing.T, pattern, s string) {
		p, err := compilePattern(pattern)
		if err != nil {
			if p != nil {
				t.Fatal("pattern returned with an error")
			}
			return
		}
		if p.String() != pattern {
			t.Fatalf("String() = %q", p.String())
		}
		r, ok := p.Match(s)
		if ok != p.Matches(s) {
			t.Fatal("Match and Matches disagree")
		}
		if p.IsLiteral() {
			// A literal pattern matches itself and only itself.
			if _, self := p.Match(pattern); !self {
				t.Fatalf("literal %q does not match itself", pattern)
			}
			if ok && r.Path != pattern {
				t.Fatalf("literal %q matched %q with Path %q", pattern, s, r.Path)
			}
		}
		if ok && (r.Params == nil || r.Query == nil || strings.Contains(r.Path, "?")) {
			t.Fatalf("bad route %+v", r)
		}
		if !utf8.ValidString(pattern) {
			return // regexp works on runes; the oracle cannot express raw bytes
		}
		want, wantOK := oracle(pattern, s)
		if ok != wantOK {
			t.Fatalf("%q.Match(%q) = %v, oracle %v", pattern, s, ok, wantOK)
		}
		if ok && (r.Path != want.Path || !maps.Equal(r.Params, want.Params) || !maps.Equal(r.Query, want.Query)) {
			t.Fatalf("%q.Match(%q) = %+v, oracle %+v", pattern, s, r, want)
		}
	})
}
