// Command gamelobby is a game lobby built on presence: every player's
// state (name, status, typing, score) is its presence, so every client
// sees the whole lobby live through onUsersChange / onPresenceChange, and
// the server reads it back (GetAllPresence) to decide when the game may
// start.
//
// Channel /lobby/:game, joined with {"name": "..."}. Events:
//
//	ready  {"ready": true|false}   status idle <-> ready
//	typing {"typing": true|false}  the typing flag
//	score  {"points": 10}          adds to the score (only while playing);
//	                               replies score {score}
//	start  {}                      everyone ready (2+ players): all become
//	                               "playing" and everyone gets game_started
//	                               {players, startedBy}; otherwise 409
//	chat   {"text": "..."}         broadcast as chat {from, text}
//
// Run it with
//
//	go run ./examples/gamelobby
package main

import (
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/pondsocket/pondsocket"
)

const maxPlayers = 8

// Player is a player's presence.
type Player struct {
	Name   string `json:"name"`
	Status string `json:"status"` // idle, ready or playing
	Typing bool   `json:"typing"`
	Score  int    `json:"score"`
}

// game serialises the read-modify-write of presence in one lobby: two
// players' handlers run concurrently, and "start" changes everyone's
// presence.
type game struct {
	mu      sync.Mutex
	started bool
}

// games holds the lobbies by channel name.
type games struct {
	mu sync.Mutex
	m  map[string]*game
}

func (g *games) get(id string) *game {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m[id] == nil {
		g.m[id] = &game{}
	}
	return g.m[id]
}

func (g *games) drop(id string, gm *game) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m[id] == gm {
		delete(g.m, id)
	}
}

// players decodes a presence map (as GetAllPresence returns it).
func players(all map[string]any) map[string]Player {
	out := make(map[string]Player, len(all))
	for id, v := range all {
		m, _ := v.(map[string]any)
		p := Player{}
		p.Name, _ = m["name"].(string)
		p.Status, _ = m["status"].(string)
		p.Typing, _ = m["typing"].(bool)
		if s, ok := m["score"].(float64); ok {
			p.Score = int(s)
		}
		out[id] = p
	}
	return out
}

func sortedNames(ps map[string]Player) []string {
	names := make([]string, 0, len(ps))
	for _, p := range ps {
		names = append(names, p.Name)
	}
	sort.Strings(names)
	return names
}

func main() {
	server := pondsocket.NewServer(&pondsocket.ServerOptions{
		ServerAddr: listenAddr(),
		Options:    pondsocket.DefaultOptions(),
	})
	endpoint := server.CreateEndpoint("/api/socket", func(ctx *pondsocket.ConnectionContext) error {
		return ctx.Accept()
	})
	all := &games{m: map[string]*game{}}

	lobby := endpoint.CreateChannel("/lobby/:game", func(ctx *pondsocket.JoinContext) error {
		var req struct {
			Name string `json:"name"`
		}
		_ = ctx.ParsePayload(&req)
		req.Name = strings.TrimSpace(req.Name)
		if req.Name == "" || len(req.Name) > 24 {
			return ctx.Decline(400, "join with {\"name\": \"...\"} (1-24 characters)")
		}
		g := all.get(ctx.ChannelName())
		g.mu.Lock()
		defer g.mu.Unlock()
		current := players(ctx.GetAllPresence())
		switch {
		case g.started:
			return ctx.Decline(409, "the game has already started")
		case len(current) >= maxPlayers:
			return ctx.Decline(403, "the lobby is full")
		}
		for _, p := range current {
			if strings.EqualFold(p.Name, req.Name) {
				return ctx.Decline(409, "that name is taken")
			}
		}
		return ctx.SetAssigns("name", req.Name).
			Accept().
			Track(Player{Name: req.Name, Status: "idle"}).
			Err()
	})

	// update changes the sender's presence under the game's lock.
	update := func(ctx *pondsocket.EventContext, change func(g *game, p *Player) error) error {
		g := all.get(ctx.ChannelName())
		g.mu.Lock()
		defer g.mu.Unlock()
		var p Player
		if err := ctx.ParsePresence(&p); err != nil {
			return err
		}
		if err := change(g, &p); err != nil {
			return err
		}
		return ctx.UpdatePresence(p).Err()
	}

	lobby.OnEvent("ready", func(ctx *pondsocket.EventContext) error {
		req := struct {
			Ready *bool `json:"ready"`
		}{}
		_ = ctx.ParsePayload(&req)
		return update(ctx, func(g *game, p *Player) error {
			if p.Status == "playing" {
				return pondsocket.Conflict("you are already playing")
			}
			p.Status = "ready"
			if req.Ready != nil && !*req.Ready {
				p.Status = "idle"
			}
			return nil
		})
	})

	lobby.OnEvent("typing", func(ctx *pondsocket.EventContext) error {
		var req struct {
			Typing bool `json:"typing"`
		}
		_ = ctx.ParsePayload(&req)
		return update(ctx, func(_ *game, p *Player) error {
			p.Typing = req.Typing
			return nil
		})
	})

	lobby.OnEvent("score", func(ctx *pondsocket.EventContext) error {
		var req struct {
			Points int `json:"points"`
		}
		if err := ctx.ParsePayload(&req); err != nil || req.Points <= 0 || req.Points > 100 {
			return pondsocket.BadRequest(`expected {"points": 1..100}`)
		}
		score := 0
		err := update(ctx, func(_ *game, p *Player) error {
			if p.Status != "playing" {
				return pondsocket.Conflict("the game has not started")
			}
			p.Score += req.Points
			score = p.Score
			return nil
		})
		if err != nil {
			return err
		}
		return ctx.Reply("score", map[string]any{"score": score}).Err()
	})

	lobby.OnEvent("start", func(ctx *pondsocket.EventContext) error {
		g := all.get(ctx.ChannelName())
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.started {
			return pondsocket.Conflict("the game has already started")
		}
		ps := players(ctx.GetAllPresence())
		if len(ps) < 2 {
			return pondsocket.Conflict("waiting for a second player")
		}
		var waiting []string
		for _, p := range ps {
			if p.Status != "ready" {
				waiting = append(waiting, p.Name)
			}
		}
		if len(waiting) > 0 {
			sort.Strings(waiting)
			return pondsocket.Conflict("not everyone is ready: waiting for " + strings.Join(waiting, ", "))
		}
		ch := ctx.Channel()
		for id, p := range ps {
			p.Status, p.Typing, p.Score = "playing", false, 0
			if err := ch.UpdatePresence(id, p); err != nil {
				return err
			}
		}
		g.started = true
		name, _ := ctx.GetAssign("name")
		return ctx.Broadcast("game_started", map[string]any{"players": sortedNames(ps), "startedBy": name}).Err()
	})

	lobby.OnEvent("chat", func(ctx *pondsocket.EventContext) error {
		var req struct {
			Text string `json:"text"`
		}
		if err := ctx.ParsePayload(&req); err != nil || strings.TrimSpace(req.Text) == "" {
			return pondsocket.BadRequest(`expected {"text": "..."}`)
		}
		name, _ := ctx.GetAssign("name")
		return ctx.Broadcast("chat", map[string]any{"from": name, "text": req.Text}).Err()
	})

	// When a player leaves a running game with fewer than two players
	// left, the game ends and the rest go back to idle; an empty lobby is
	// forgotten.
	lobby.OnLeave(func(ctx *pondsocket.LeaveContext) {
		ch := ctx.Channel()
		id := ch.Name()
		g := all.get(id)
		g.mu.Lock()
		defer g.mu.Unlock()
		ps := players(ch.GetPresence())
		if len(ps) == 0 {
			all.drop(id, g)
			return
		}
		if g.started && len(ps) < 2 {
			g.started = false
			for uid, p := range ps {
				p.Status, p.Typing = "idle", false
				_ = ch.UpdatePresence(uid, p)
			}
			name, _ := ctx.User.Assigns["name"].(string)
			scores := map[string]int{}
			for _, p := range ps {
				scores[p.Name] = p.Score
			}
			_ = ch.Broadcast("game_ended", map[string]any{"reason": fmt.Sprintf("%s left", name), "scores": scores})
		}
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
