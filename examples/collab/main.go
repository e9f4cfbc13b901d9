// Command collab is a collaborative text document with live cursors.
//
// Channel /docs/:docId, joined with {"name": "..."}. The server owns each
// document's text and version (in memory):
//
//   - a joiner gets "snapshot" {text, version};
//   - "edit" {version, op: "insert"|"delete", pos, text | len} applies when
//     version is the current one: the editor gets "ack" {version} and the
//     others get the op as "edit" {op, pos, text, len, version, by}; on a
//     stale version the editor gets "conflict" {text, version} and rebases;
//   - "cursor" {pos} updates the sender's presence {name, cursor}, so every
//     client sees every cursor through onUsersChange.
//
// Positions and lengths count UTF-16 code units, as JavaScript strings do,
// so a browser can use them directly with String.prototype.slice.
//
// Run it with
//
//	go run ./examples/collab
package main

import (
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"unicode/utf16"

	"github.com/pondsocket/pondsocket"
)

const maxDocUnits = 1 << 20

// doc is one document. The mutex orders edits: the broadcast of version n
// leaves before anyone can produce version n+1, so every client receives
// the ops in version order.
type doc struct {
	mu      sync.Mutex
	text    []uint16
	version int
}

func (d *doc) snapshot() map[string]any {
	return map[string]any{"text": string(utf16.Decode(d.text)), "version": d.version}
}

type docs struct {
	mu sync.Mutex
	m  map[string]*doc
}

func (s *docs) get(id string) *doc {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.m[id]
	if d == nil {
		d = &doc{}
		s.m[id] = d
	}
	return d
}

// Edit is the payload of an "edit" event.
type Edit struct {
	Version int    `json:"version"`
	Op      string `json:"op"`
	Pos     int    `json:"pos"`
	Text    string `json:"text,omitempty"`
	Len     int    `json:"len,omitempty"`
}

// Cursor is a collaborator's presence.
type Cursor struct {
	Name   string `json:"name"`
	Cursor int    `json:"cursor"`
}

// apply changes d.text or says why it cannot.
func (d *doc) apply(e *Edit) error {
	if e.Pos < 0 || e.Pos > len(d.text) {
		return pondsocket.UnprocessableEntity("pos is outside the document")
	}
	switch e.Op {
	case "insert":
		ins := utf16.Encode([]rune(e.Text))
		if len(ins) == 0 {
			return pondsocket.UnprocessableEntity("insert needs text")
		}
		if len(d.text)+len(ins) > maxDocUnits {
			return pondsocket.PayloadTooLarge("the document is full")
		}
		d.text = slices.Insert(d.text, e.Pos, ins...)
		e.Len = len(ins)
	case "delete":
		n := e.Len
		if n == 0 {
			n = len(utf16.Encode([]rune(e.Text)))
		}
		if n <= 0 || e.Pos+n > len(d.text) {
			return pondsocket.UnprocessableEntity("delete needs len (or text) within the document")
		}
		e.Text = string(utf16.Decode(d.text[e.Pos : e.Pos+n]))
		e.Len = n
		d.text = slices.Delete(d.text, e.Pos, e.Pos+n)
	default:
		return pondsocket.BadRequest(`op must be "insert" or "delete"`)
	}
	return nil
}

func main() {
	server := pondsocket.NewServer(&pondsocket.ServerOptions{
		ServerAddr: listenAddr(),
		Options:    pondsocket.DefaultOptions(),
	})
	endpoint := server.CreateEndpoint("/api/socket", func(ctx *pondsocket.ConnectionContext) error {
		return ctx.Accept()
	})
	store := &docs{m: map[string]*doc{}}

	documents := endpoint.CreateChannel("/docs/:docId", func(ctx *pondsocket.JoinContext) error {
		var req struct {
			Name string `json:"name"`
		}
		_ = ctx.ParsePayload(&req)
		if req.Name = strings.TrimSpace(req.Name); req.Name == "" {
			return ctx.Decline(400, `join with {"name": "..."}`)
		}
		d := store.get(ctx.Route.Params["docId"])
		d.mu.Lock()
		defer d.mu.Unlock()
		// Under the lock: the snapshot and the edits broadcast after it
		// reach this user in order (no edit is missed or applied twice).
		return ctx.SetAssigns("name", req.Name).
			Accept().
			Track(Cursor{Name: req.Name}).
			Reply("snapshot", d.snapshot()).
			Err()
	})

	documents.OnEvent("edit", func(ctx *pondsocket.EventContext) error {
		var e Edit
		if err := ctx.ParsePayload(&e); err != nil {
			return pondsocket.BadRequest(`expected {"version", "op", "pos", "text" | "len"}`)
		}
		d := store.get(ctx.Route.Params["docId"])
		d.mu.Lock()
		defer d.mu.Unlock()
		if e.Version != d.version {
			return ctx.Reply("conflict", d.snapshot()).Err()
		}
		if err := d.apply(&e); err != nil {
			return err
		}
		d.version++
		name, _ := ctx.GetAssign("name")
		return ctx.BroadcastFrom("edit", map[string]any{"op": e.Op, "pos": e.Pos, "text": e.Text, "len": e.Len,
			"version": d.version, "by": name}).
			Reply("ack", map[string]any{"version": d.version}).
			Err()
	})

	documents.OnEvent("cursor", func(ctx *pondsocket.EventContext) error {
		var req struct {
			Pos int `json:"pos"`
		}
		if err := ctx.ParsePayload(&req); err != nil || req.Pos < 0 {
			return pondsocket.BadRequest(`expected {"pos": n}`)
		}
		var c Cursor
		if err := ctx.ParsePresence(&c); err != nil {
			return err
		}
		c.Cursor = req.Pos
		return ctx.UpdatePresence(c).Err()
	})

	documents.OnEvent("sync", func(ctx *pondsocket.EventContext) error {
		d := store.get(ctx.Route.Params["docId"])
		d.mu.Lock()
		defer d.mu.Unlock()
		return ctx.Reply("snapshot", d.snapshot()).Err()
	})

	if err := server.Listen(); err != nil {
		slog.Error("server failed", "err", err)
		os.Exit(1)
	}
}

// listenAddr is PONDSOCKET_ADDR, the variable every example and
// cmd/pondsocket listen on, or :8080.
func listenAddr() string {
	if a := os.Getenv("PONDSOCKET_ADDR"); a != "" {
		return a
	}
	return ":8080"
}
