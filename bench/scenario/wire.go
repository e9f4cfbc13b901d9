package scenario

import "github.com/pondsocket/pondsocket/bench/hist"

// The parent and its workers talk in JSON lines: commands on the worker's
// stdin, events on its stdout. An in-process worker uses the same lines over
// pipes, so there is one code path.

// command is parent → worker.
type command struct {
	Op     string `json:"op"` // setup, start, credit, stop, collect, quit
	Spec   *Spec  `json:"spec,omitempty"`
	Worker int    `json:"worker,omitempty"`
	At     int64  `json:"at,omitempty"`     // setup: the series' origin; start: when the measured phase begins (unix ns)
	Allow  int64  `json:"allow,omitempty"`  // credit: the publisher may send every seq <= Allow
	Expect int    `json:"expect,omitempty"` // start (presence): size of the full list
	// start (rooms): joined members per room over all workers, so each
	// worker can count the deliveries its sends should cause.
	RoomMembers map[int]int `json:"room_members,omitempty"`
}

// event is worker → parent.
type event struct {
	Ev     string        `json:"ev"` // progress, ready, result, error
	C      *counters     `json:"c,omitempty"`
	Ready  *readyInfo    `json:"ready,omitempty"`
	Result *workerResult `json:"result,omitempty"`
	Err    string        `json:"err,omitempty"`

	worker int // filled in by the parent
}

// counters are the worker's running totals.
type counters struct {
	Dialed       int64  `json:"dialed"`
	Connected    int64  `json:"connected"` // CONNECT frame received
	Failed       int64  `json:"failed"`    // never connected
	Joined       int64  `json:"joined"`
	JoinFailed   int64  `json:"join_failed"`
	Dropped      int64  `json:"dropped"` // closed after connecting
	Sent         uint64 `json:"sent"`
	Delivered    uint64 `json:"delivered"`
	Expected     uint64 `json:"expected"` // rooms, echo: deliveries the sends so far should cause
	Refused      uint64 `json:"refused"`  // measured messages answered with an ERROR (rate limit, handler error)
	PresenceDone int64  `json:"presence_done"`
	BytesIn      uint64 `json:"bytes_in"`
	Messages     uint64 `json:"messages"` // every server message
}

type readyInfo struct {
	JoinedByRoom map[int]int `json:"joined_by_room,omitempty"`
}

type workerResult struct {
	C counters `json:"c"`

	Connect       hist.Snapshot `json:"connect"`
	Join          hist.Snapshot `json:"join"`
	Latency       hist.Snapshot `json:"latency"`
	LatencyRemote hist.Snapshot `json:"latency_remote"`
	PresenceTime  hist.Snapshot `json:"presence_time"`

	FirstDial     int64 `json:"first_dial"`
	LastConnect   int64 `json:"last_connect"`
	FirstJoin     int64 `json:"first_join"`
	LastJoin      int64 `json:"last_join"`
	FirstDelivery int64 `json:"first_delivery"`
	LastDelivery  int64 `json:"last_delivery"`
	LastPresence  int64 `json:"last_presence"`
	StopAt        int64 `json:"stop_at"`

	SentByRoom      map[int]uint64 `json:"sent_by_room,omitempty"`
	OutOfOrder      uint64         `json:"out_of_order"`
	Duplicates      uint64         `json:"duplicates"`
	Negative        uint64         `json:"negative"`
	BadMessages     uint64         `json:"bad_messages"`
	PresenceMsgs    uint64         `json:"presence_msgs"`
	BytesInRun      uint64         `json:"bytes_in_run"`
	Errors          map[string]int `json:"errors,omitempty"`
	SeriesSent      []uint64       `json:"series_sent"`      // cumulative at each interval edge
	SeriesDelivered []uint64       `json:"series_delivered"` // cumulative at each interval edge
	SeriesConns     []int64        `json:"series_conns"`     // open connections at each interval edge
	SeriesEnd       int64          `json:"series_end"`       // unix ns of the last point (a partial interval)
}
