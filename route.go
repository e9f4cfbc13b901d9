package pondsocket

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Query is a parsed query string: flat, the last value of a repeated key
// wins.
type Query map[string]string

// Get returns the value of key, or "" (also on a nil Query).
func (q Query) Get(key string) string { return q[key] }

// Route is the result of a successful Pattern.Match.
type Route struct {
	// Path is the matched string without its query string.
	Path string
	// Params holds the ":name" parameters (URL-decoded) and, under "*",
	// the wildcard value. Never nil after a match.
	Params map[string]string
	// Query is the parsed query string of the matched string. Never nil
	// after a match.
	Query Query
}

type segKind uint8

const (
	segLiteral segKind = iota
	segParam
	segWildcard
)

type segment struct {
	kind segKind
	text string // literal text, or parameter name
}

// pattern is a compiled route pattern (docs/protocol.md §7.1), used for endpoint
// paths, channel names and event names. The pattern is split on "/"; each
// segment is a literal, ":name" (one non-empty segment, URL-decoded) or "*"
// (the rest of the path, possibly empty; last segment only).
//
// A pattern is immutable and safe for concurrent use.
type pattern struct {
	raw      string
	segs     []segment
	nParams  int
	wildcard bool
}

// compilePattern compiles a route pattern. It rejects a '?' anywhere, ':'
// or '*' that do not occupy a whole segment ("job:*", "pre:id"), parameter
// names that are not identifiers ([A-Za-z_][A-Za-z0-9_]*), duplicate
// parameter names, more than one '*' and a '*' that is not the last
// segment.
func compilePattern(p string) (*pattern, error) {
	if strings.IndexByte(p, '?') >= 0 {
		return nil, patternError(p, "'?' is not allowed in a pattern (a query string belongs to the matched name)")
	}
	parts := strings.Split(p, "/")
	stars := 0
	for _, s := range parts {
		if s == "*" {
			stars++
		}
	}
	if stars > 1 {
		return nil, patternError(p, "only one '*' is allowed")
	}
	pat := &pattern{raw: p, segs: make([]segment, len(parts))}
	for i, s := range parts {
		switch {
		case s == "*":
			if i != len(parts)-1 {
				return nil, patternError(p, "'*' must be the last segment")
			}
			pat.segs[i] = segment{kind: segWildcard}
			pat.wildcard = true
		case strings.HasPrefix(s, ":"):
			name := s[1:]
			if !isIdentifier(name) {
				return nil, patternError(p, fmt.Sprintf("parameter name %q in segment %q is not an identifier ([A-Za-z_][A-Za-z0-9_]*)", name, s))
			}
			for _, prev := range pat.segs[:i] {
				if prev.kind == segParam && prev.text == name {
					return nil, patternError(p, fmt.Sprintf("duplicate parameter name %q", name))
				}
			}
			pat.segs[i] = segment{kind: segParam, text: name}
			pat.nParams++
		case strings.ContainsAny(s, ":*"):
			return nil, patternError(p, fmt.Sprintf("':' and '*' must occupy a whole segment, got segment %q", s))
		default:
			pat.segs[i] = segment{kind: segLiteral, text: s}
		}
	}
	return pat, nil
}

func patternError(p, why string) error {
	return fmt.Errorf("channel: invalid route pattern %q: %s", p, why)
}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// String returns the pattern as given to CompilePattern.
func (p *pattern) String() string { return p.raw }

// IsLiteral reports whether the pattern has no parameter and no wildcard,
// so that it matches exactly one path (itself) and callers may index it in
// a map.
func (p *pattern) IsLiteral() bool { return p.nParams == 0 && !p.wildcard }

// Match matches s (a path, channel name or event name, optionally followed
// by "?query") against the pattern. The path part must match as a whole,
// case-sensitively, with no trailing-slash tolerance. A parameter matches
// one non-empty segment that percent-decodes to valid UTF-8; the wildcard
// matches the rest of the path (possibly empty), and its value is that rest
// prefixed with "/", repeated slashes collapsed, not decoded. The query
// string (after the first '?') is parsed as
// application/x-www-form-urlencoded; pairs that fail to decode are skipped.
//
// A failed match does not allocate; a successful one allocates the two
// maps (and decoded values).
func (p *pattern) Match(s string) (Route, bool) {
	path, rawQuery, _ := strings.Cut(s, "?")
	if !p.matchPath(path) {
		return Route{}, false
	}
	r := Route{Path: path, Query: parseQuery(rawQuery)}
	if p.IsLiteral() {
		r.Params = map[string]string{}
		return r, true
	}
	n := p.nParams
	if p.wildcard {
		n++
	}
	r.Params = make(map[string]string, n)
	pos := 0
	for j, sg := range p.segs {
		if j > 0 {
			pos++ // the '/' checked by matchPath
		}
		if sg.kind == segWildcard {
			r.Params["*"] = wildcardValue(path, pos)
			break
		}
		end := segmentEnd(path, pos)
		if sg.kind == segParam {
			r.Params[sg.text] = pathUnescape(path[pos:end])
		}
		pos = end
	}
	return r, true
}

// Matches reports whether Match(s) would succeed, without building the
// Route. It never allocates.
func (p *pattern) Matches(s string) bool {
	if p.IsLiteral() && len(s) == len(p.raw) {
		return s == p.raw // the same length: no room for a query
	}
	path, _, _ := strings.Cut(s, "?")
	return p.matchPath(path)
}

func segmentEnd(path string, pos int) int {
	if i := strings.IndexByte(path[pos:], '/'); i >= 0 {
		return pos + i
	}
	return len(path)
}

func (p *pattern) matchPath(path string) bool {
	if p.IsLiteral() {
		return path == p.raw
	}
	pos := 0
	for j, sg := range p.segs {
		if j > 0 {
			if pos >= len(path) || path[pos] != '/' {
				return false
			}
			pos++
		}
		if sg.kind == segWildcard {
			return true
		}
		end := segmentEnd(path, pos)
		seg := path[pos:end]
		switch sg.kind {
		case segLiteral:
			if seg != sg.text {
				return false
			}
		case segParam:
			if seg == "" || !validEscapes(seg) {
				return false
			}
		}
		pos = end
	}
	return pos == len(path)
}

// wildcardValue is "/" + path[pos:] with runs of slashes collapsed. It
// reuses path's memory when it can.
func wildcardValue(path string, pos int) string {
	var v string
	switch {
	case pos > 0: // path[pos-1] is the separating '/'
		v = path[pos-1:]
	case strings.HasPrefix(path, "/"):
		v = path
	default:
		v = "/" + path
	}
	if !strings.Contains(v, "//") {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		if v[i] == '/' && i > 0 && v[i-1] == '/' {
			continue
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// validEscapes reports whether every '%' of s starts a %XX escape and the
// decoded bytes are valid UTF-8 (what decodeURIComponent accepts).
func validEscapes(s string) bool {
	if strings.IndexByte(s, '%') < 0 {
		return utf8.ValidString(s)
	}
	_, ok := unescape(s, false)
	return ok
}

// pathUnescape decodes a segment already checked by validEscapes.
func pathUnescape(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	v, _ := unescape(s, false)
	return v
}

// unescape percent-decodes s ('+' is a space when plus is set) and checks
// that the result is valid UTF-8. It returns s itself when there is
// nothing to decode.
func unescape(s string, plus bool) (string, bool) {
	n := 0
	hasPlus := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '%':
			if i+2 >= len(s) {
				return "", false
			}
			if _, ok := unhex(s[i+1]); !ok {
				return "", false
			}
			if _, ok := unhex(s[i+2]); !ok {
				return "", false
			}
			n++
			i += 2
		case '+':
			hasPlus = plus
		}
	}
	if n == 0 && !hasPlus {
		return s, utf8.ValidString(s)
	}
	b := make([]byte, 0, len(s)-2*n)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '%':
			hi, _ := unhex(s[i+1])
			lo, _ := unhex(s[i+2])
			b = append(b, hi<<4|lo)
			i += 2
		case c == '+' && plus:
			b = append(b, ' ')
		default:
			b = append(b, c)
		}
	}
	if !utf8.Valid(b) {
		return "", false
	}
	return string(b), true
}

// parseQuery parses an application/x-www-form-urlencoded query. Empty
// pairs are ignored, a pair without '=' has the value "", the last value
// of a key wins and pairs whose key or value fails to decode are skipped.
func parseQuery(raw string) Query {
	if raw == "" {
		return Query{}
	}
	q := make(Query, strings.Count(raw, "&")+1)
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, ok := unescape(k, true)
		if !ok {
			continue
		}
		val, ok := unescape(v, true)
		if !ok {
			continue
		}
		q[key] = val
	}
	return q
}
