package cluster

import (
	"encoding/json"
	"strings"
	"testing"
)

// validValue must accept exactly what json.Valid accepts: Decode relies on
// it instead of a separate json.Valid pass.
var validityCases = []string{
	`{}`, `[]`, `""`, `0`, `-0`, `1.5e+3`, `-12.0E-1`, `true`, `false`, `null`,
	`{"a":[1,{"b":null}],"c":"\u00e9\n\"x\""}`, ` { "a" : 1 , "b" : [ ] } `,
	"\"\xff\xfe\"", `"\/"`, `[1,2,3]`, `{"a":{}}`,
	// invalid
	``, ` `, `{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `[,1]`, `{,}`, `{"a" 1}`,
	`01`, `1.`, `.5`, `-`, `1e`, `1e+`, `+1`, `0x10`, `NaN`, `tru`, `nul`, `truex`,
	`"abc`, `"\x"`, `"\u12"`, `"\u12G4"`, "\"a\tb\"", "\"\x01\"", `{"a":1}}`, `{"a":1} x`,
	`[1 2]`, `{"a":1 "b":2}`, `{1:2}`, `'a'`, `[`, `[[`, `{"a":[}`,
}

func TestValidValueMatchesJSONValid(t *testing.T) {
	deep := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	for _, c := range append(validityCases, deep) {
		b := trimSpace([]byte(c))
		got := len(b) > 0 && validValue(b, 0, 0) == len(b)
		if want := json.Valid([]byte(c)); got != want {
			t.Errorf("validValue(%.40q) = %v, json.Valid = %v", c, got, want)
		}
		if len(b) > 0 && b[0] == '{' {
			if ok := walkObject(b, func(_, _ []byte) {}); ok != json.Valid([]byte(c)) {
				t.Errorf("walkObject(%.40q) = %v, json.Valid = %v", c, ok, !ok)
			}
		}
	}
}

func FuzzValidValue(f *testing.F) {
	for _, c := range validityCases {
		f.Add(c)
	}
	f.Add(valid)
	f.Fuzz(func(t *testing.T, c string) {
		b := trimSpace([]byte(c))
		got := len(b) > 0 && validValue(b, 0, 0) == len(b)
		if want := json.Valid([]byte(c)); got != want {
			t.Fatalf("validValue(%q) = %v, json.Valid = %v", c, got, want)
		}
		if len(b) > 0 && b[0] == '{' {
			if ok := walkObject(b, func(_, _ []byte) {}); ok != got {
				t.Fatalf("walkObject(%q) = %v, json.Valid = %v", c, ok, got)
			}
		}
	})
}

// The protocol and type are matched as bytes on the fast path; spelled
// with escapes they still decode (JSON.parse reads them the same), and a
// wrong one is still refused.
func TestDecodeEscapedProtocolAndType(t *testing.T) {
	esc := strings.NewReplacer(`"USER_MESSAGE"`, `"USER_\u004dESSAGE"`, `"pondsocket.distributed"`, `"pondsocket\u002edistributed"`).Replace(valid)
	e, err := Decode([]byte(esc))
	if err != nil || e.Type != UserMessage || e.Protocol != Protocol || e.Timestamp != 1795301284743 {
		t.Fatalf("Decode(escaped) = %+v, %v", e, err)
	}
	for _, bad := range []string{
		strings.Replace(valid, `"USER_MESSAGE"`, `"USER_MESSAGES"`, 1),
		strings.Replace(valid, `"pondsocket.distributed"`, `"pondsocket.distributes"`, 1),
		strings.Replace(valid, `"USER_MESSAGE"`, `1`, 1),
	} {
		if e, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%s) accepted: %+v", bad, e)
		}
	}
	// timestamps off the integer fast path
	for raw, want := range map[string]int64{`-5`: -5, `1.5e3`: 1500, `0`: 0, `999999999999999999`: 999999999999999999} {
		e, err := Decode([]byte(strings.Replace(valid, `1795301284743`, raw, 1)))
		if err != nil || e.Timestamp != want {
			t.Errorf("timestamp %s: %+v, %v", raw, e, err)
		}
	}
}
