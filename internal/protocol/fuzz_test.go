package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecodeClientMessage checks that decoding never panics, that the
// scanner accepts exactly what encoding/json accepts, that decoded fields
// agree with encoding/json, that they do not alias the input, and that
// re-encoding a decoded message with Encode gives one line of valid JSON
// that decodes to the same message. Seeds: testdata/fuzz/FuzzDecodeClientMessage.
func FuzzDecodeClientMessage(f *testing.F) {
	f.Add([]byte(msgJoin))
	f.Add([]byte(`{"action":"ping"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		m, err := DecodeClientMessage(data, 0)
		if !bytes.Equal(data, orig) {
			t.Fatal("input modified")
		}

		var env envelope
		_, _, scanOK := env.scan(data)
		valid := json.Valid(data)
		if scanOK != valid {
			t.Fatalf("scanner says %v, encoding/json says %v", scanOK, valid)
		}
		if IsClientPing(data) != isPingOracle(data) {
			t.Fatalf("IsClientPing = %v, oracle disagrees", !isPingOracle(data))
		}

		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || (de.Status != 500 && de.Status != 400) || de.Message == "" || (de.Status == 400) != !valid {
				t.Fatalf("bad error %#v", err)
			}
			if IsClientPing(data) && de.Message != "event: Missing required field" {
				t.Fatalf("ping decoded with %q", de.Message)
			}
			return
		}
		if !valid {
			t.Fatal("invalid JSON accepted")
		}
		checkAgainstEncodingJSON(t, data, m)

		// No aliasing: scribbling over the input changes nothing.
		want := ClientMessage{m.Action, strings.Clone(m.Event), strings.Clone(m.ChannelName), strings.Clone(m.RequestID), bytes.Clone(m.Payload)}
		for i := range data {
			data[i] = 'X'
		}
		if !sameMessage(m, want) {
			t.Fatalf("decoded message aliases its input: %+v", m)
		}
		copy(data, orig)

		// Round trip through Encode.
		fr := Encode(m.Action, m.Event, m.ChannelName, m.RequestID, m.Payload)
		line := bytes.Clone(fr.Payload())
		fr.Release()
		if !json.Valid(line) || bytes.ContainsAny(line, "\r\n") || !utf8Valid(line) {
			t.Fatalf("Encode produced %q", line)
		}
		m2, err := DecodeClientMessage(line, 0)
		if err != nil {
			t.Fatalf("re-decoding %q: %v", line, err)
		}
		if !sameMessage(m, m2) {
			t.Fatalf("round trip changed the message:\n%+v\n%+v", m, m2)
		}
	})
}

func sameMessage(a, b ClientMessage) bool {
	return a.Action == b.Action && a.Event == b.Event && a.ChannelName == b.ChannelName &&
		a.RequestID == b.RequestID && bytes.Equal(a.Payload, b.Payload)
}

func utf8Valid(b []byte) bool { return strings.ToValidUTF8(string(b), "") == string(b) }

// checkAgainstEncodingJSON decodes data with encoding/json (maps keep the
// last duplicate key, like JSON.parse) and compares.
func checkAgainstEncodingJSON(t *testing.T, data []byte, m ClientMessage) {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		t.Fatalf("encoding/json rejects an accepted message: %v", err)
	}
	for key, got := range map[string]string{"event": m.Event, "requestId": m.RequestID, "channelName": m.ChannelName, "action": m.Action} {
		var s string
		if err := json.Unmarshal(top[key], &s); err != nil {
			t.Fatalf("%s: encoding/json: %v", key, err)
		}
		if s != got {
			t.Fatalf("%s: got %q, encoding/json %q", key, got, s)
		}
	}
	a, err := decodeObject(top["payload"])
	if err != nil {
		t.Fatalf("payload: encoding/json: %v", err)
	}
	b, err := decodeObject(m.Payload)
	if err != nil {
		t.Fatalf("payload %q: %v", m.Payload, err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("payload %s differs from %s", m.Payload, top["payload"])
	}
	// A payload the scanner found compact is copied as it is: that must be
	// exactly what appendCompact makes of it.
	if want := appendCompact(nil, top["payload"]); !bytes.Equal(m.Payload, want) {
		t.Fatalf("payload %q, appendCompact gives %q", m.Payload, want)
	}
	if len(m.Payload) > len(top["payload"])*6 {
		t.Fatalf("payload grew too much")
	}
}

// decodeObject decodes a JSON object keeping numbers as text (1e400 is
// valid JSON but overflows float64).
func decodeObject(raw []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v map[string]any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if v == nil {
		return nil, errors.New("not an object")
	}
	return v, nil
}

func isPingOracle(data []byte) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil || top == nil || len(top) != 1 {
		return false
	}
	raw, ok := top["action"]
	if !ok || len(raw) == 0 || raw[0] != '"' {
		return false
	}
	var s string
	return json.Unmarshal(raw, &s) == nil && s == "ping"
}
