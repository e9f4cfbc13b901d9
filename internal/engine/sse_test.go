package engine

import (
	"net/http"
	"testing"

	"github.com/pondsocket/pondsocket/internal/wsframe"
)

func TestSSEFrameForm(t *testing.T) {
	for _, tc := range []struct{ payload, want string }{
		{`{"a":1}`, "data: {\"a\":1}\n\n"},
		// several messages sharing a frame: one data line each, one event
		{"{\"a\":1}\n{\"b\":2}", "data: {\"a\":1}\ndata: {\"b\":2}\n\n"},
		{"{\"a\":1}\r\n{\"b\":2}\n", "data: {\"a\":1}\ndata: {\"b\":2}\n\n"},
		{"", ""},
	} {
		f := wsframe.NewStaticFrame(wsframe.OpText, []byte(tc.payload))
		got := sseFrame(f)
		if string(got) != tc.want {
			t.Errorf("%q: SSE form %q, want %q", tc.payload, got, tc.want)
		}
		if again := sseFrame(f); len(got) > 0 && &again[0] != &got[0] {
			t.Errorf("%q: the SSE form was built twice", tc.payload)
		}
		f.Release()
	}
}

func TestWantsEventStream(t *testing.T) {
	for accept, want := range map[string]bool{
		"text/event-stream":                      true,
		"text/html, Text/Event-Stream;q=0.9":     true,
		"*/*":                                    false,
		"application/json, text/event-streamish": false,
	} {
		if got := WantsEventStream(http.Header{"Accept": {accept}}); got != want {
			t.Errorf("Accept %q: %v, want %v", accept, got, want)
		}
	}
}
