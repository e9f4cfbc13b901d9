package scenario

import (
	"strings"
	"testing"

	"github.com/pondsocket/pondsocket/bench/client"
)

func TestSharesPartitionTheConnections(t *testing.T) {
	for _, c := range []struct{ conns, workers int }{{10, 1}, {10, 3}, {51000, 3}, {7, 7}, {100, 6}} {
		s := Spec{Conns: c.conns, Workers: c.workers}
		next := 0
		for w := 0; w < c.workers; w++ {
			lo, hi := s.share(w)
			if lo != next || hi < lo || hi-lo > c.conns/c.workers+1 {
				t.Fatalf("%+v: worker %d has [%d,%d), expected to start at %d", c, w, lo, hi, next)
			}
			next = hi
		}
		if next != c.conns {
			t.Fatalf("%+v: shares end at %d", c, next)
		}
	}
}

func TestValidateRaisesWorkersAndSpreadsSources(t *testing.T) {
	s := Defaults("conns")
	s.Targets = []string{"ws://127.0.0.1:1/api/socket"}
	s.Conns = 51000
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if s.Workers != 3 {
		t.Errorf("workers %d, want 3 for 51000 connections", s.Workers)
	}
	if s.LocalIPs != 26 {
		t.Errorf("local IPs %d, want 26 (one per 2000 connections)", s.LocalIPs)
	}
	for _, bad := range []func(*Spec){
		func(s *Spec) { s.Scenario = "nope" },
		func(s *Spec) { s.Conns = 0 },
		func(s *Spec) { s.Targets = []string{"wss://x/"} },
		func(s *Spec) { s.Scenario = "rooms"; s.RoomSize = 0 },
		func(s *Spec) { s.Scenario = "cluster" },
	} {
		s := Defaults("conns")
		s.Targets = []string{"ws://127.0.0.1:1/api/socket"}
		bad(&s)
		if err := s.Validate(); err == nil {
			t.Errorf("accepted %+v", s)
		}
	}
}

func TestChannelNames(t *testing.T) {
	s := Spec{RunID: "b1", Channel: "/chat/:roomId"}
	if got := s.channelName(3); got != "/chat/b1-3" {
		t.Errorf("got %s", got)
	}
	s.Channel = "/game/{room}/lobby"
	if got := s.channelName(0); got != "/game/b1-0/lobby" {
		t.Errorf("got %s", got)
	}
	s.Channel = "/plain"
	if got := s.channelName(1); got != "/plain/b1-1" {
		t.Errorf("got %s", got)
	}
}

func TestMeasuredMessageShape(t *testing.T) {
	for _, size := range []int{0, 40, 100, 1000} {
		b := appendEvent(nil, "message", "/chat/r", 7, 42, size, 1763769600123456789)
		var m client.Message
		if err := client.ParseMessage(b, &m); err != nil {
			t.Fatalf("size %d: %v: %s", size, err, b)
		}
		if !m.Is("BROADCAST", "message") || string(m.ChannelName) != "/chat/r" || string(m.RequestID) != "m7.42" {
			t.Fatalf("envelope %s", b)
		}
		if ts, _ := client.FieldInt(m.Payload, "ts"); ts != 1763769600123456789 {
			t.Errorf("ts %d", ts)
		}
		if seq, _ := client.FieldInt(m.Payload, "seq"); seq != 42 {
			t.Errorf("seq %d", seq)
		}
		if size >= 60 && len(m.Payload) != size {
			t.Errorf("payload is %d bytes, want %d", len(m.Payload), size)
		}
		if !isMessageID(m.RequestID, 7) || isMessageID(m.RequestID, 8) || isJoinID(m.RequestID, 7) {
			t.Errorf("request id helpers disagree on %s", m.RequestID)
		}
	}
	j := (&Spec{Scenario: "fanout"}).joinMessage(5, "/chat/x")
	if !strings.Contains(string(j), `"presence":false`) || !strings.Contains(string(j), `"requestId":"j5"`) {
		t.Errorf("join %s", j)
	}
}
