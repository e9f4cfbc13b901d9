package scenario

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pondsocket/pondsocket/bench/client"
)

// Names lists the scenarios in the order the standard suite runs them.
var Names = []string{"conns", "fanout", "rooms", "presence", "echo", "cluster", "ceiling"}

// Descriptions says in one line what each scenario measures.
var Descriptions = map[string]string{
	"conns":    "open N connections, join each to one of R rooms: connect/join time and rate, server RSS per connection",
	"fanout":   "N members in one room, member 0 publishes M messages with at most W in flight: deliveries/s, delivery latency",
	"rooms":    "N clients in rooms of K, each sending at a fixed rate for a duration: deliveries/s, latency, server CPU",
	"presence": "N clients join one room with presence: time until every client has seen the full list, bytes received",
	"echo":     "request/response: each client keeps D echo requests in flight for a duration: round trips/s, latency",
	"cluster":  "fanout with members spread over several nodes (--target a,b,...): latency on the publisher's node vs the others",
	"ceiling":  "fanout against the bare gnet ceiling server (started here unless --target is given): the physical limit",
}

// Duration is a time.Duration that reads and writes as "1.5s" in JSON.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// Spec is everything a run needs; the parent sends it to every worker.
type Spec struct {
	Scenario string   `json:"scenario"`
	Targets  []string `json:"targets"` // ws:// URLs; connection i goes to Targets[i % len]
	// Transport is how the connections reach the server: "ws" (every one
	// a WebSocket), "sse" (every one an event stream, docs/protocol.md §9,
	// its messages POSTed) or "mixed" (odd connection ids on SSE, even
	// ones on WebSocket, so the fan-out's publisher, id 0, stays on
	// WebSocket and the run measures delivery to both kinds of member).
	Transport string `json:"transport,omitempty"`

	Conns       int      `json:"conns"`        // N
	Rooms       int      `json:"rooms"`        // conns, echo: connection i joins room i % Rooms
	RoomSize    int      `json:"room_size"`    // rooms: K members per room
	Channel     string   `json:"channel"`      // channel pattern; ":param" / "{room}" become the room name
	Event       string   `json:"event"`        // broadcast event
	EchoEvent   string   `json:"echo_event"`   // request/reply event
	Messages    int      `json:"messages"`     // fanout: M
	InFlight    int      `json:"in_flight"`    // fanout: W messages not yet delivered to every member
	Rate        float64  `json:"rate"`         // rooms: messages per second per client; cluster: per second from the publisher (0 = closed loop, InFlight)
	Depth       int      `json:"depth"`        // echo: requests in flight per client
	Duration    Duration `json:"duration"`     // rooms, echo: sending time
	PayloadSize int      `json:"payload_size"` // bytes of the payload object
	Presence    bool     `json:"presence"`     // track presence on join (always on for the presence scenario)
	JoinRate    float64  `json:"join_rate"`    // presence: joins per second (0 = all at once)

	ConnectConcurrency int      `json:"connect_concurrency"` // dials in progress per worker
	ConnectRate        float64  `json:"connect_rate"`        // dials per second, all workers (0 = unlimited)
	ConnectTimeout     Duration `json:"connect_timeout"`
	Hold               Duration `json:"hold"`     // conns: keep everything open this long after the last join
	Grace              Duration `json:"grace"`    // drain: give up when nothing arrives for this long
	Timeout            Duration `json:"timeout"`  // bound on every waiting phase
	Interval           Duration `json:"interval"` // time-series bucket

	Workers int `json:"workers"` // processes (1 = in this process)
	Loops   int `json:"loops"`   // event loops per worker
	// LocalIPs spreads connections over the source addresses 127.0.0.1..N:
	// each address has its own ephemeral port range, and the kernel's port
	// search in connect() slows down badly as one range fills up (twice
	// the connect rate at 51k connections here). 0 = automatic (loopback
	// targets: one address per 2000 connections, up to 64); -1 = let the
	// kernel choose.
	LocalIPs int `json:"local_ips"`

	// CeilingBatch starts the ceiling server in batch mode: frames waiting
	// for a loop leave in one write per connection (the limit for a server
	// that batches writes) instead of one write per message.
	CeilingBatch bool `json:"ceiling_batch,omitempty"`

	// SenderAlone (cluster): the publisher, connection 0, is the only
	// connection on the first target; the others are spread over the other
	// targets. With --conns 101 and two targets: one sender on node A, 100
	// receivers on node B, so every delivery but the sender's echo crosses
	// the bus.
	SenderAlone bool `json:"sender_alone,omitempty"`

	// Queries are extra query strings, one per connection in turn:
	// connection i appends Queries[i % len] to its target's query (e.g.
	// "token=eyJ..." so that every connection carries its own JWT). Read
	// from --query-file by ReadQueryFile.
	Queries []string `json:"queries,omitempty"`

	// Publish is how the fan-out publisher sends: "ws" (default, a
	// BROADCAST over its WebSocket) or "api" (POST /api/broadcast of the
	// standalone server on the first target's host:port, with APIKey).
	// The members join over WebSocket either way.
	Publish string `json:"publish,omitempty"`
	APIKey  string `json:"api_key,omitempty"`
	// APIConns is the number of server API requests in flight at once
	// (default 1, which keeps the messages in order; more may reorder
	// them, which the receivers then count as out of order).
	APIConns int `json:"api_conns,omitempty"`
	// APIAddr is the server API's host:port when it has a listener of its
	// own (cmd/pondsocket --api-addr); empty: the first target's.
	APIAddr string `json:"api_addr,omitempty"`

	// Tag is added to the label, to tell apart runs whose parameters are
	// the same but whose server set-up is not (e.g. "redis", "kafka").
	Tag string `json:"tag,omitempty"`

	RunID string `json:"run_id"` // makes room names unique per run
}

// PerWorkerMax is the most connections one worker process holds: the
// per-process open-files limit here is 20 000.
const PerWorkerMax = 18000

// Defaults returns the default Spec of a scenario.
func Defaults(name string) Spec {
	s := Spec{
		Scenario:           name,
		Targets:            []string{"ws://127.0.0.1:8080/api/socket"},
		Conns:              1000,
		Rooms:              10,
		RoomSize:           10,
		Channel:            "/chat/:roomId",
		Event:              "message",
		EchoEvent:          "echo",
		Messages:           1000,
		InFlight:           16,
		Rate:               5,
		Depth:              1,
		Duration:           Duration(10 * time.Second),
		PayloadSize:        100,
		ConnectConcurrency: 256,
		ConnectTimeout:     Duration(10 * time.Second),
		Hold:               Duration(3 * time.Second),
		Grace:              Duration(3 * time.Second),
		Timeout:            Duration(120 * time.Second),
		Interval:           Duration(500 * time.Millisecond),
		Workers:            1,
		Loops:              2,
	}
	switch name {
	case "presence":
		s.Conns = 200
		s.Presence = true
	case "echo":
		s.Conns = 100
		s.Rooms = 0 // one room per client
	case "ceiling":
		s.Targets = nil // started by the run
	case "cluster":
		s.Rate = 0 // closed loop unless --rate is given
	}
	return s
}

// Validate checks a spec and fills derived defaults.
func (s *Spec) Validate() error {
	known := false
	for _, n := range Names {
		known = known || n == s.Scenario
	}
	if !known {
		return fmt.Errorf("unknown scenario %q (one of %s)", s.Scenario, strings.Join(Names, ", "))
	}
	if s.Conns < 1 {
		return errors.New("--conns must be at least 1")
	}
	if s.Scenario != "ceiling" && len(s.Targets) == 0 {
		return errors.New("--target is required")
	}
	for _, t := range s.Targets {
		if _, err := client.ParseTarget(t); err != nil {
			return err
		}
	}
	switch s.Scenario {
	case "conns":
		if s.Rooms < 1 {
			s.Rooms = 1
		}
	case "echo":
		if s.Rooms <= 0 {
			s.Rooms = s.Conns
		}
		if s.Depth < 1 {
			s.Depth = 1
		}
	case "rooms":
		if s.RoomSize < 1 || s.RoomSize > s.Conns {
			return fmt.Errorf("--room-size %d must be between 1 and --conns %d", s.RoomSize, s.Conns)
		}
		if s.Rate <= 0 {
			return errors.New("--rate must be positive")
		}
	case "fanout", "cluster", "ceiling":
		if s.Messages < 1 || s.InFlight < 1 {
			return errors.New("--messages and --in-flight must be at least 1")
		}
	case "presence":
		s.Presence = true
	}
	switch s.Transport {
	case "":
		s.Transport = "ws"
	case "ws", "sse", "mixed":
	default:
		return fmt.Errorf("--transport %q: one of ws, sse, mixed", s.Transport)
	}
	if s.Scenario == "ceiling" && s.Transport != "ws" {
		return errors.New("ceiling: the bare gnet server speaks WebSocket only (--transport ws)")
	}
	if s.Scenario == "cluster" && len(s.Targets) < 2 {
		return errors.New("cluster needs at least two --target URLs (one per node)")
	}
	if s.SenderAlone && (s.Scenario != "cluster" || s.Conns < 2) {
		return errors.New("--sender-alone is for the cluster scenario, with at least 2 connections")
	}
	if s.Rate < 0 {
		return errors.New("--rate must not be negative")
	}
	switch s.Publish {
	case "", "ws":
		s.Publish = "ws"
	case "api":
		if s.Scenario != "fanout" && s.Scenario != "cluster" {
			return errors.New("--publish api is for the fanout and cluster scenarios")
		}
		if s.APIKey == "" {
			return errors.New("--publish api needs --api-key (the server's api.key)")
		}
		if s.paced() {
			return errors.New("--publish api keeps a window (--in-flight); --rate is not supported with it")
		}
		if s.APIConns < 1 {
			s.APIConns = 1
		}
	default:
		return fmt.Errorf("--publish %q: one of ws, api", s.Publish)
	}
	for i, q := range s.Queries {
		if q == "" || strings.ContainsAny(q, " \t\r\n#") {
			return fmt.Errorf("query %d %q: one non-empty query string without spaces or '#'", i+1, q)
		}
	}
	if s.Loops < 1 {
		s.Loops = 1
	}
	if s.ConnectConcurrency < 1 {
		s.ConnectConcurrency = 1
	}
	if s.Interval <= 0 {
		s.Interval = Duration(500 * time.Millisecond)
	}
	if s.Workers < 1 {
		s.Workers = 1
	}
	if need := (s.Conns + PerWorkerMax - 1) / PerWorkerMax; s.Workers < need {
		s.Workers = need
	}
	if s.Workers > s.Conns {
		s.Workers = s.Conns
	}
	if s.LocalIPs < -1 || s.LocalIPs > 254 {
		return errors.New("--local-ips must be between -1 and 254")
	}
	if s.LocalIPs == 0 {
		s.LocalIPs = -1
		if s.loopbackV4() || (s.Scenario == "ceiling" && len(s.Targets) == 0) {
			s.LocalIPs = min(64, max(1, (s.Conns+1999)/2000))
		}
	}
	return nil
}

// LoopbackOnly reports an error if a target is not on 127.0.0.0/8 (or ::1).
func (s *Spec) LoopbackOnly() error {
	for _, t := range s.Targets {
		tg, err := client.ParseTarget(t)
		if err != nil {
			return err
		}
		host, _, _ := net.SplitHostPort(tg.Addr)
		ips, err := net.LookupIP(host)
		if err != nil {
			return err
		}
		for _, ip := range ips {
			if !ip.IsLoopback() {
				return fmt.Errorf("target %s resolves to %s, which is not a loopback address (pass --allow-remote to load a remote server)", t, ip)
			}
		}
	}
	return nil
}

// loopbackV4 reports whether every target is an IPv4 loopback address
// (where binding a source address in 127.0.0.0/8 is possible).
func (s *Spec) loopbackV4() bool {
	for _, t := range s.Targets {
		tg, err := client.ParseTarget(t)
		if err != nil {
			return false
		}
		host, _, _ := net.SplitHostPort(tg.Addr)
		ip := net.ParseIP(host)
		if ip == nil || ip.To4() == nil || !ip.IsLoopback() {
			return false
		}
	}
	return len(s.Targets) > 0
}

// roomOf is the room connection id joins.
func (s *Spec) roomOf(id int) int {
	switch s.Scenario {
	case "conns", "echo":
		return id % s.Rooms
	case "rooms":
		return id / s.RoomSize
	default:
		return 0
	}
}

// roomCount is the number of rooms.
func (s *Spec) roomCount() int {
	switch s.Scenario {
	case "conns", "echo":
		return s.Rooms
	case "rooms":
		return (s.Conns + s.RoomSize - 1) / s.RoomSize
	default:
		return 1
	}
}

// channelName fills the channel pattern with the room's name.
func (s *Spec) channelName(room int) string {
	name := s.RunID + "-" + strconv.Itoa(room)
	if strings.Contains(s.Channel, "{room}") {
		return strings.ReplaceAll(s.Channel, "{room}", name)
	}
	parts := strings.Split(s.Channel, "/")
	replaced := false
	for i, p := range parts {
		if strings.HasPrefix(p, ":") {
			parts[i] = name
			replaced = true
		}
	}
	if !replaced {
		return strings.TrimRight(s.Channel, "/") + "/" + name
	}
	return strings.Join(parts, "/")
}

// usesSSE says whether connection id opens an event stream.
func (s *Spec) usesSSE(id int) bool {
	return s.Transport == "sse" || (s.Transport == "mixed" && id%2 == 1)
}

// joinsOnConnect says whether a connection joins as soon as it is connected
// (presence joins all together in the measured phase instead).
func (s *Spec) joinsOnConnect() bool { return s.Scenario != "presence" }

// tracksPresence says whether joins ask for presence tracking.
func (s *Spec) tracksPresence() bool { return s.Presence || s.Scenario == "presence" }

// paced says the publisher sends at Rate per second instead of keeping
// InFlight messages in flight (cluster with --rate).
func (s *Spec) paced() bool { return s.Scenario == "cluster" && s.Rate > 0 }

// dialPath is the request target of connection id on tg: the target's
// path and query, the connection's username and its line of Queries.
func (s *Spec) dialPath(tg *client.Target, id int) string {
	p := tg.WithQuery(url.Values{"username": {"u" + strconv.Itoa(id)}})
	if len(s.Queries) > 0 {
		p += "&" + s.Queries[id%len(s.Queries)]
	}
	return p
}

// ReadQueryFile reads one query string per line (blank lines and lines
// starting with '#' are skipped, a leading '?' or '&' is dropped).
func ReadQueryFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		line = strings.TrimLeft(line, "?&")
		if line == "" {
			continue
		}
		out = append(out, line)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no query strings", path)
	}
	return out, nil
}

// targetOf is the target connection id uses.
func (s *Spec) targetOf(id int) int {
	if s.SenderAlone && s.Scenario == "cluster" {
		if id == 0 {
			return 0
		}
		return 1 + (id-1)%(len(s.Targets)-1)
	}
	return id % len(s.Targets)
}

// fanoutLike are the scenarios with one publisher and a credit window.
func (s *Spec) fanoutLike() bool {
	return s.Scenario == "fanout" || s.Scenario == "cluster" || s.Scenario == "ceiling"
}

// share returns the connection ids [lo, hi) of worker w.
func (s *Spec) share(w int) (lo, hi int) {
	per := s.Conns / s.Workers
	extra := s.Conns % s.Workers
	lo = w*per + min(w, extra)
	hi = lo + per
	if w < extra {
		hi++
	}
	return lo, hi
}

// appendPayload appends the payload object of a measured message: the send
// time as a decimal string (a string survives any server that re-encodes
// JSON numbers as float64), the sequence number, the sender and padding up
// to PayloadSize bytes.
func appendPayload(dst []byte, size int, ts int64, seq int64, src int) []byte {
	start := len(dst)
	dst = append(dst, `{"ts":"`...)
	dst = strconv.AppendInt(dst, ts, 10)
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, `,"src":`...)
	dst = strconv.AppendInt(dst, int64(src), 10)
	const padKey = `,"pad":""}`
	pad := size - (len(dst) - start) - len(padKey)
	if pad < 0 {
		return append(dst, '}')
	}
	dst = append(dst, `,"pad":"`...)
	for i := 0; i < pad; i++ {
		dst = append(dst, 'x')
	}
	return append(dst, `"}`...)
}

// appendEvent appends a client BROADCAST message.
func appendEvent(dst []byte, event, channel string, id int, seq int64, payloadSize int, ts int64) []byte {
	dst = append(dst, `{"action":"BROADCAST","event":"`...)
	dst = append(dst, event...)
	dst = append(dst, `","channelName":"`...)
	dst = append(dst, channel...)
	dst = append(dst, `","requestId":"m`...)
	dst = strconv.AppendInt(dst, int64(id), 10)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, `","payload":`...)
	dst = appendPayload(dst, payloadSize, ts, seq, id)
	return append(dst, '}')
}

// joinMessage is the JOIN_CHANNEL of connection id.
func (s *Spec) joinMessage(id int, channel string) []byte {
	payload := `{"presence":false}`
	if s.tracksPresence() {
		payload = `{"username":"u` + strconv.Itoa(id) + `"}`
	}
	return []byte(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"` + channel +
		`","requestId":"j` + strconv.Itoa(id) + `","payload":` + payload + `}`)
}
