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

// Plain strings share one allocation, escaped or non-ASCII ones are
// unquoted on their own: mixed in one message, every field is right.
func TestDecodeMixedStrings(t *testing.T) {
	in := strings.NewReplacer(`"fromUserId":"u1"`, `"fromUserId":"u\u0031"`, `"event":"message"`, `"event":"mé"`).Replace(valid)
	e, err := Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	got := []string{e.MessageID, e.SourceNodeID, e.EndpointName, e.ChannelName, e.FromUserID, e.Event, e.RequestID}
	want := []string{"m1", "n1", "api/socket", "/chat/lobby", "u1", "mé", "r1"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
	hb, err := Decode([]byte(`{"protocol":"pondsocket.distributed","version":1,"type":"NODE_HEARTBEAT","messageId":"h","sourceNodeId":"node-7","endpointName":"__heartbeat__","channelName":"__heartbeat__","timestamp":1}`))
	if err != nil || hb.NodeID != "node-7" || hb.SourceNodeID != "node-7" {
		t.Fatalf("heartbeat without nodeId: %+v, %v", hb, err)
	}
}
