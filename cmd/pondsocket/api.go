package main

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pondsocket/pondsocket"
)

// apiConfig: the server API for backends (api.* in the file).
type apiConfig struct {
	key     string
	maxBody int64
	// addr, when set, serves the server API and the admin page on their
	// own listener (net/http), apart from the WebSocket port; mux is that
	// listener's handler, made by main.
	addr string
	mux  *http.ServeMux
}

// CloseDisconnected is the close code of a connection ended by
// POST /api/disconnect.
const CloseDisconnected = 4000

// serverAPI is the HTTP JSON API backends call: every request needs
// Authorization: apikey <key>; errors are {"error": "..."} with a fitting
// status.
type serverAPI struct {
	key     []byte
	maxBody int64
	eps     []*pondsocket.Endpoint
	srv     *pondsocket.Server
	started time.Time
	log     *slog.Logger
	// clustered: calls reach the other nodes, so a user or channel with
	// nothing on this node is no error for broadcast, evict and disconnect
	clustered bool
}

func (a *serverAPI) register(mux *http.ServeMux) {
	mux.Handle("POST /api/broadcast", a.guard(a.broadcast))
	mux.Handle("POST /api/evict", a.guard(a.evict))
	mux.Handle("POST /api/disconnect", a.guard(a.disconnect))
	mux.Handle("GET /api/channels", a.guard(a.channels))
	mux.Handle("GET /api/presence", a.guard(a.presence))
	mux.Handle("GET /api/users/{id}", a.guard(a.user))
	mux.Handle("GET /api/stats", a.guard(a.stats))
	mux.Handle("/api/", a.guard(func(w http.ResponseWriter, r *http.Request) error {
		return apiErr(http.StatusNotFound, "no such call: "+r.Method+" "+r.URL.Path)
	}))
}

type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func apiErr(status int, msg string) error { return &apiError{status, msg} }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// guard checks the key and turns errors into JSON answers.
func (a *serverAPI) guard(fn func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, key, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "apikey") || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(key)), a.key) != 1 {
			w.Header().Set("WWW-Authenticate", "apikey")
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong API key (Authorization: apikey KEY)"})
			return
		}
		if err := fn(w, r); err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				a.log.Error("server API", "path", r.URL.Path, "err", err)
				ae = &apiError{http.StatusInternalServerError, "internal error"}
			}
			writeJSON(w, ae.status, map[string]string{"error": ae.msg})
		}
	})
}

// decode reads a JSON body of at most maxBody bytes with no unknown fields.
func (a *serverAPI) decode(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, a.maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return apiErr(http.StatusRequestEntityTooLarge, "body larger than the limit")
		}
		return apiErr(http.StatusBadRequest, "malformed JSON: "+err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return apiErr(http.StatusBadRequest, "malformed JSON: data after the object")
	}
	return nil
}

// endpoint is the named endpoint, the first configured one by default.
func (a *serverAPI) endpoint(path string) (*pondsocket.Endpoint, error) {
	if path == "" {
		return a.eps[0], nil
	}
	for _, ep := range a.eps {
		if ep.Path() == path {
			return ep, nil
		}
	}
	return nil, apiErr(http.StatusNotFound, "unknown endpoint "+path)
}

func (a *serverAPI) channel(epPath, name string) (*pondsocket.Channel, error) {
	if name == "" {
		return nil, apiErr(http.StatusBadRequest, "channel is required")
	}
	ep, err := a.endpoint(epPath)
	if err != nil {
		return nil, err
	}
	ch, ok := ep.Channel(name)
	if !ok {
		return nil, apiErr(http.StatusNotFound, "channel not found (no members on this node): "+name)
	}
	return ch, nil
}

type broadcastRequest struct {
	Endpoint string          `json:"endpoint"`
	Channel  string          `json:"channel"`
	Event    string          `json:"event"`
	Payload  json.RawMessage `json:"payload"`
	To       []string        `json:"to"`
	Except   string          `json:"except"`
}

func (a *serverAPI) broadcast(w http.ResponseWriter, r *http.Request) error {
	var req broadcastRequest
	if err := a.decode(w, r, &req); err != nil {
		return err
	}
	switch {
	case req.Event == "":
		return apiErr(http.StatusBadRequest, "event is required")
	case req.To != nil && req.Except != "":
		return apiErr(http.StatusBadRequest, "give to or except, not both")
	case req.To != nil && len(req.To) == 0:
		return apiErr(http.StatusBadRequest, "to lists no user")
	}
	payload := req.Payload
	if len(payload) == 0 || string(payload) == "null" {
		payload = json.RawMessage("{}")
	} else if payload[0] != '{' {
		return apiErr(http.StatusBadRequest, "payload must be a JSON object")
	}
	if req.Channel == "" {
		return apiErr(http.StatusBadRequest, "channel is required")
	}
	ep, err := a.endpoint(req.Endpoint)
	if err != nil {
		return err
	}
	// cluster-wide: the nodes holding the channel's members deliver
	if req.To != nil {
		// a user named twice gets the message once
		slices.Sort(req.To)
		req.To = slices.Compact(req.To)
	}
	if err := ep.BroadcastChannel(req.Channel, req.Event, payload, req.To, req.Except); err != nil {
		if errors.Is(err, pondsocket.ErrNotMember) {
			if _, live := ep.Channel(req.Channel); !live {
				return apiErr(http.StatusNotFound, "channel not found: "+req.Channel)
			}
		}
		return libErr(err)
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}

// libErr maps the library's errors to answers.
func libErr(err error) error {
	var pe *pondsocket.Error
	switch {
	case errors.Is(err, pondsocket.ErrNotMember):
		return apiErr(http.StatusNotFound, "user not in the channel")
	case errors.Is(err, pondsocket.ErrChannelClosed):
		return apiErr(http.StatusNotFound, "channel closed")
	case errors.As(err, &pe):
		return apiErr(pe.Status, pe.Message)
	}
	return err
}

func (a *serverAPI) evict(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Endpoint string `json:"endpoint"`
		Channel  string `json:"channel"`
		User     string `json:"user"`
		Reason   string `json:"reason"`
	}
	if err := a.decode(w, r, &req); err != nil {
		return err
	}
	if req.User == "" {
		return apiErr(http.StatusBadRequest, "user is required")
	}
	if req.Channel == "" {
		return apiErr(http.StatusBadRequest, "channel is required")
	}
	ep, err := a.endpoint(req.Endpoint)
	if err != nil {
		return err
	}
	if err := ep.EvictFromChannel(req.Channel, req.User, req.Reason); err != nil {
		if _, live := ep.Channel(req.Channel); !live && errors.Is(err, pondsocket.ErrNotMember) {
			return apiErr(http.StatusNotFound, "channel not found: "+req.Channel)
		}
		return libErr(err)
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}

func (a *serverAPI) disconnect(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		User string `json:"user"`
	}
	if err := a.decode(w, r, &req); err != nil {
		return err
	}
	if req.User == "" {
		return apiErr(http.StatusBadRequest, "user is required")
	}
	n := 0
	for _, ep := range a.eps {
		n += ep.DisconnectUser(req.User, CloseDisconnected, "Disconnected by the server")
	}
	if n == 0 && !a.clustered {
		return apiErr(http.StatusNotFound, "user not connected: "+req.User)
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}

type channelInfo struct {
	Endpoint string `json:"endpoint"`
	Name     string `json:"name"`
	Members  int    `json:"members"`
}

func (a *serverAPI) channels(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"channels": a.channelList()})
	return nil
}

// channelList is this node's live channels, by endpoint and name.
func (a *serverAPI) channelList() []channelInfo {
	out := []channelInfo{}
	for _, ep := range a.eps {
		for _, ch := range ep.Channels() {
			// users, on every node this one knows in the channel
			out = append(out, channelInfo{Endpoint: ep.Path(), Name: ch.Name(), Members: len(ch.GetAssigns())})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Endpoint != out[j].Endpoint {
			return out[i].Endpoint < out[j].Endpoint
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// statsChannels bounds the channel list of /api/stats (the busiest first);
// /api/channels has them all.
const statsChannels = 100

// nodeInfo is one node of the cluster as /api/stats shows it.
type nodeInfo struct {
	ID   string `json:"id"`
	Self bool   `json:"self"`
}

// statsAnswer is GET /api/stats: this node's counters at one instant (the
// admin page turns successive counters into rates), its busiest channels
// and the cluster's nodes.
type statsAnswer struct {
	Time          int64         `json:"time_ms"` // Unix milliseconds of the snapshot
	UptimeSeconds float64       `json:"uptime_s"`
	Node          string        `json:"node"`
	Clustered     bool          `json:"clustered"`
	Ready         bool          `json:"ready"`
	ReadyError    string        `json:"ready_error,omitempty"`
	Nodes         []nodeInfo    `json:"nodes"`
	Connections   int64         `json:"connections"`
	Channels      int64         `json:"channels"`
	MessagesIn    int64         `json:"messages_in"`  // client messages received (counter)
	MessagesOut   int64         `json:"messages_out"` // channel messages delivered (broadcasts and presence × recipients; counter)
	BytesIn       int64         `json:"bytes_in"`
	BytesOut      int64         `json:"bytes_out"`
	Accepted      int64         `json:"connections_accepted"`
	Declined      int64         `json:"connections_declined"`
	Joins         int64         `json:"joins"`
	Leaves        int64         `json:"leaves"`
	ChannelList   []channelInfo `json:"channel_list"`
	MoreChannels  int           `json:"more_channels"` // live channels left out of channel_list
}

func (a *serverAPI) stats(w http.ResponseWriter, r *http.Request) error {
	now := time.Now()
	st := a.srv.Stats()
	out := statsAnswer{
		Time:          now.UnixMilli(),
		UptimeSeconds: now.Sub(a.started).Seconds(),
		Connections:   st.Connections,
		Channels:      st.Channels,
		MessagesIn:    st.MessagesIn,
		MessagesOut:   st.Deliveries,
		BytesIn:       st.BytesIn,
		BytesOut:      st.BytesOut,
		Accepted:      st.Accepted,
		Declined:      st.Declined,
		Joins:         st.Joins,
		Leaves:        st.Leaves,
	}
	if err := a.srv.Ready(); err != nil {
		out.ReadyError = err.Error()
	} else {
		out.Ready = true
	}
	if n := a.srv.ClusterNode(); n != nil {
		out.Clustered = true
		out.Node = n.ID()
		out.Nodes = append(out.Nodes, nodeInfo{ID: n.ID(), Self: true})
		peers := n.Nodes()
		sort.Strings(peers)
		for _, id := range peers {
			out.Nodes = append(out.Nodes, nodeInfo{ID: id})
		}
	} else {
		out.Node = "standalone " + a.srv.Addr().String()
		out.Nodes = []nodeInfo{{ID: out.Node, Self: true}}
	}
	list := a.channelList()
	sort.SliceStable(list, func(i, j int) bool { return list[i].Members > list[j].Members })
	if len(list) > statsChannels {
		out.MoreChannels = len(list) - statsChannels
		list = list[:statsChannels]
	}
	out.ChannelList = list
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *serverAPI) presence(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	ch, err := a.channel(q.Get("endpoint"), q.Get("channel"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"channel": ch.Name(), "presence": ch.GetPresence()})
	return nil
}

func (a *serverAPI) user(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	for _, ep := range a.eps {
		c, ok := ep.Client(id)
		if !ok {
			continue
		}
		assigns := c.Assigns()
		delete(assigns, channelsAssign)
		delete(assigns, presenceAssign)
		chans := c.Channels()
		sort.Strings(chans)
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "endpoint": ep.Path(), "channels": chans, "assigns": assigns,
			"connections": len(ep.Clients(id))})
		return nil
	}
	return apiErr(http.StatusNotFound, "user not connected to this node: "+id)
}
