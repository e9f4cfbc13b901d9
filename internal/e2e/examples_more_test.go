package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/pondsocket/pondsocket/internal/testenv"
)

// The examples under examples/ (auth, ratelimit, gamelobby, collab,
// distributedchat), each built and run as its own process and driven by the
// published JS client through the scenario its README describes.

// upgradeStatus dials url with gorilla and returns the HTTP status of the
// upgrade (101 when it succeeded) and the response body.
func upgradeStatus(t *testing.T, url string, header http.Header) (int, string) {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(url, header)
	if err == nil {
		c.Close()
		return resp.StatusCode, ""
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body)
}

var exReqSeq atomic.Int64

// requestAsync sends a sendForResponse without waiting; exResponse collects
// its answer.
func (p *pond) requestAsync(ch, event string, payload map[string]any) string {
	id := fmt.Sprintf("ex%d", exReqSeq.Add(1))
	p.d.Send(map[string]any{"op": "request", "channel": ch, "event": event, "payload": payload, "id": id})
	return id
}

func (p *pond) exResponse(id string) map[string]any {
	p.t.Helper()
	return p.expect("response", func(e pondEv) bool { return e.ID == id }).Payload
}

// presenceChange waits for a presence change of the user named name that
// satisfies match.
func (p *pond) presenceChange(ch, name string, match func(map[string]any) bool) map[string]any {
	p.t.Helper()
	return p.expect("presence", func(e pondEv) bool {
		c, _ := e.Payload["changed"].(map[string]any)
		return e.Channel == ch && c != nil && c["name"] == name && match(c)
	}).Payload["changed"].(map[string]any)
}

func namesOf(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func TestExampleAuth(t *testing.T) {
	testenv.NodeModules(t)
	const secret = "example-auth-test-secret"
	addr := runProgram(t, "examples/auth", "JWT_SECRET="+secret)
	bin := testenv.Build(t, "examples/auth")
	mint := func(key string, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"-mint"}, args...)...)
		cmd.Env = append(os.Environ(), "JWT_SECRET="+key)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("mint %v: %v\n%s", args, err, stderr.String())
		}
		return strings.TrimSpace(string(out))
	}
	userTok := mint(secret, "-name", "Bob", "bob")
	adminTok := mint(secret, "-name", "Alice", "alice", "admin")
	expiredTok := mint(secret, "-ttl=-1h", "carol", "admin")
	forgedTok := mint("not-the-secret", "mallory", "admin")
	url := "ws://" + addr + "/api/socket"

	// the upgrade itself is refused: no socket for bad credentials
	for _, c := range []struct {
		name, query, body string
	}{
		{"no token", "", "missing token"},
		{"garbage", "?token=not.a.jwt", "invalid token"},
		{"wrong secret", "?token=" + forgedTok, "invalid token"},
		{"expired", "?token=" + expiredTok, "token expired"},
	} {
		if st, body := upgradeStatus(t, url+c.query, nil); st != http.StatusUnauthorized || !strings.Contains(body, c.body) {
			t.Fatalf("%s: upgrade status %d body %q, want 401 %q", c.name, st, body, c.body)
		}
	}
	// Authorization: Bearer works for clients that can set headers
	if st, _ := upgradeStatus(t, url, http.Header{"Authorization": {"Bearer " + userTok}}); st != http.StatusSwitchingProtocols {
		t.Fatalf("bearer header: status %d, want 101", st)
	}
	if st, _ := upgradeStatus(t, url, http.Header{"Authorization": {"Bearer " + expiredTok}}); st != http.StatusUnauthorized {
		t.Fatalf("expired bearer header: status %d, want 401", st)
	}

	// a plain user: rooms yes, admin no; claims became assigns
	user := newPondAt(t, addr, map[string]any{"token": userTok})
	user.join("/rooms/1", nil)
	user.state("/rooms/1", "JOINED")
	if w := user.message("/rooms/1", "welcome"); w["name"] != "Bob" || w["room"] != "1" || len(w["roles"].([]any)) != 0 {
		t.Fatalf("welcome %v", w)
	}
	if me := user.request("/rooms/1", "whoami", map[string]any{}); me["userId"] != "bob" || me["name"] != "Bob" {
		t.Fatalf("whoami %v", me)
	}
	user.join("/admin/1", nil)
	user.state("/admin/1", "DECLINED")
	// per-event authorisation: a user cannot kick
	if r := user.request("/rooms/1", "kick", map[string]any{"userId": "bob"}); r["code"] != float64(403) {
		t.Fatalf("kick by a user: %v", r)
	}

	// an admin: both
	admin := newPondAt(t, addr, map[string]any{"token": adminTok})
	admin.join("/admin/1", nil)
	admin.state("/admin/1", "JOINED")
	admin.join("/rooms/1", nil)
	admin.state("/rooms/1", "JOINED")
	if r := admin.request("/admin/1", "announce", map[string]any{"text": "maintenance at noon"}); r["rooms"] != float64(1) {
		t.Fatalf("announce %v", r)
	}
	if m := user.message("/rooms/1", "announcement"); m["text"] != "maintenance at noon" || m["from"] != "Alice" {
		t.Fatalf("announcement %v", m)
	}
	if r := admin.request("/rooms/1", "kick", map[string]any{"userId": "bob"}); r["connections"] != float64(1) {
		t.Fatalf("kick by an admin: %v", r)
	}
	if m := user.message("/rooms/1", "kicked_out"); m["code"] != float64(403) {
		t.Fatalf("kicked_out %v", m)
	}
	admin.users("/rooms/1", 1)
}

func TestExampleRateLimit(t *testing.T) {
	testenv.NodeModules(t)
	addr := runProgram(t, "examples/ratelimit")
	const room = "/chat/general"
	ann := newPondAt(t, addr, map[string]any{"name": "ann"})
	ben := newPondAt(t, addr, map[string]any{"name": "ben"})
	cal := newPondAt(t, addr, map[string]any{"name": "cal"})
	for _, p := range []*pond{ann, ben, cal} {
		p.join(room, nil)
		p.state(room, "JOINED")
	}

	// ann bursts 8 messages: the bucket holds 5 (plus at most one refilled)
	var ids []string
	for i := 0; i < 8; i++ {
		ids = append(ids, ann.requestAsync(room, "message", map[string]any{"text": fmt.Sprintf("m%d", i)}))
	}
	ok, limited := 0, 0
	for _, id := range ids {
		r := ann.exResponse(id)
		switch {
		case r["code"] == nil && r["from"] == "ann":
			ok++
		case r["code"] == float64(429) && strings.Contains(fmt.Sprint(r["message"]), "slow down"):
			limited++
		default:
			t.Fatalf("unexpected reply %v", r)
		}
	}
	if ok < 5 || ok > 6 || limited < 2 {
		t.Fatalf("burst of 8: %d accepted, %d refused with 429; want 5 or 6 accepted", ok, limited)
	}
	// ben has his own bucket
	if r := ben.request(room, "message", map[string]any{"text": "hi"}); r["code"] != nil || r["text"] != "hi" {
		t.Fatalf("another user was limited: %v", r)
	}

	// the global limiter of "search": 2 for everyone, then 429 for anyone
	s1 := ben.requestAsync(room, "search", map[string]any{"query": "go"})
	s2 := ben.requestAsync(room, "search", map[string]any{"query": "js"})
	for _, id := range []string{s1, s2} {
		if r := ben.exResponse(id); r["code"] != nil || len(r["hits"].([]any)) != 2 {
			t.Fatalf("search %v", r)
		}
	}
	if r := cal.request(room, "search", map[string]any{"query": "rust"}); r["code"] != float64(429) || !strings.Contains(fmt.Sprint(r["message"]), "server busy") {
		t.Fatalf("global limit: %v", r)
	}
	// cal's own bucket is untouched by the global refusal's cause
	if r := cal.request(room, "message", map[string]any{"text": "still here"}); r["code"] != nil {
		t.Fatalf("cal after global limit: %v", r)
	}
}

func TestExampleGameLobby(t *testing.T) {
	testenv.NodeModules(t)
	addr := runProgram(t, "examples/gamelobby")
	const ch = "/lobby/chess"
	a := newPondAt(t, addr, nil)
	b := newPondAt(t, addr, nil)
	a.join(ch, map[string]any{"name": "alice"})
	a.state(ch, "JOINED")
	b.join(ch, map[string]any{"name": "bob"})
	b.state(ch, "JOINED")
	for _, u := range b.users(ch, 2) {
		if u["status"] != "idle" || u["typing"] != false || u["score"] != float64(0) {
			t.Fatalf("initial presence %v", u)
		}
	}
	a.users(ch, 2)

	a.send(ch, "ready", map[string]any{})
	b.presenceChange(ch, "alice", func(c map[string]any) bool { return c["status"] == "ready" })

	// not everyone is ready
	if r := a.request(ch, "start", map[string]any{}); r["code"] != float64(409) || !strings.Contains(fmt.Sprint(r["message"]), "bob") {
		t.Fatalf("early start: %v", r)
	}
	// score only while playing
	if r := a.request(ch, "score", map[string]any{"points": 5}); r["code"] != float64(409) {
		t.Fatalf("score before start: %v", r)
	}

	b.send(ch, "typing", map[string]any{"typing": true})
	a.presenceChange(ch, "bob", func(c map[string]any) bool { return c["typing"] == true })
	b.send(ch, "chat", map[string]any{"text": "one sec"})
	if m := a.message(ch, "chat"); m["from"] != "bob" || m["text"] != "one sec" {
		t.Fatalf("chat %v", m)
	}
	b.send(ch, "ready", map[string]any{})
	a.presenceChange(ch, "bob", func(c map[string]any) bool { return c["status"] == "ready" })

	started := b.request(ch, "start", map[string]any{})
	if got := namesOf(started["players"]); fmt.Sprint(got) != "[alice bob]" || started["startedBy"] != "bob" {
		t.Fatalf("game_started to the starter: %v", started)
	}
	if m := a.message(ch, "game_started"); fmt.Sprint(namesOf(m["players"])) != "[alice bob]" {
		t.Fatalf("game_started %v", m)
	}
	a.presenceChange(ch, "alice", func(c map[string]any) bool { return c["status"] == "playing" })
	b.presenceChange(ch, "bob", func(c map[string]any) bool { return c["status"] == "playing" && c["typing"] == false })

	if r := a.request(ch, "score", map[string]any{"points": 10}); r["score"] != float64(10) {
		t.Fatalf("score %v", r)
	}
	b.presenceChange(ch, "alice", func(c map[string]any) bool { return c["score"] == float64(10) })
	if r := a.request(ch, "start", map[string]any{}); r["code"] != float64(409) {
		t.Fatalf("second start: %v", r)
	}

	// bob leaves a running game: it ends
	b.d.Send(map[string]any{"op": "leave", "channel": ch})
	if m := a.message(ch, "game_ended"); m["scores"].(map[string]any)["alice"] != float64(10) {
		t.Fatalf("game_ended %v", m)
	}
	a.presenceChange(ch, "alice", func(c map[string]any) bool { return c["status"] == "idle" })
}

func TestExampleCollab(t *testing.T) {
	testenv.NodeModules(t)
	addr := runProgram(t, "examples/collab")
	const ch = "/docs/readme"
	a := newPondAt(t, addr, nil)
	b := newPondAt(t, addr, nil)
	a.join(ch, map[string]any{"name": "alice"})
	a.state(ch, "JOINED")
	if s := a.message(ch, "snapshot"); s["text"] != "" || s["version"] != float64(0) {
		t.Fatalf("first snapshot %v", s)
	}
	b.join(ch, map[string]any{"name": "bob"})
	b.state(ch, "JOINED")
	b.message(ch, "snapshot")

	if r := a.request(ch, "edit", map[string]any{"version": 0, "op": "insert", "pos": 0, "text": "hello"}); r["version"] != float64(1) {
		t.Fatalf("ack %v", r)
	}
	if e := b.message(ch, "edit"); e["op"] != "insert" || e["text"] != "hello" || e["pos"] != float64(0) || e["version"] != float64(1) || e["by"] != "alice" {
		t.Fatalf("edit seen by bob %v", e)
	}
	// bob edits on a stale version: conflict with the current document
	if r := b.request(ch, "edit", map[string]any{"version": 0, "op": "insert", "pos": 0, "text": "oops"}); r["text"] != "hello" || r["version"] != float64(1) {
		t.Fatalf("conflict %v", r)
	}
	// rebased
	if r := b.request(ch, "edit", map[string]any{"version": 1, "op": "insert", "pos": 5, "text": " wörld"}); r["version"] != float64(2) {
		t.Fatalf("ack %v", r)
	}
	if e := a.message(ch, "edit"); e["text"] != " wörld" || e["pos"] != float64(5) || e["version"] != float64(2) {
		t.Fatalf("edit seen by alice %v", e)
	}
	if r := a.request(ch, "edit", map[string]any{"version": 2, "op": "delete", "pos": 0, "len": 1}); r["version"] != float64(3) {
		t.Fatalf("delete ack %v", r)
	}
	if e := b.message(ch, "edit"); e["op"] != "delete" || e["text"] != "h" || e["len"] != float64(1) {
		t.Fatalf("delete seen by bob %v", e)
	}
	if r := a.request(ch, "edit", map[string]any{"version": 3, "op": "delete", "pos": 5, "len": 99}); r["code"] != float64(422) {
		t.Fatalf("out of range delete %v", r)
	}

	// cursors are presence
	b.send(ch, "cursor", map[string]any{"pos": 4})
	a.presenceChange(ch, "bob", func(c map[string]any) bool { return c["cursor"] == float64(4) })

	// a late joiner gets the current text and sees both cursors
	c := newPondAt(t, addr, nil)
	c.join(ch, map[string]any{"name": "carol"})
	c.state(ch, "JOINED")
	if s := c.message(ch, "snapshot"); s["text"] != "ello wörld" || s["version"] != float64(3) {
		t.Fatalf("late snapshot %v", s)
	}
	c.expect("users", func(e pondEv) bool {
		for _, u := range e.Users {
			if u["name"] == "bob" && u["cursor"] == float64(4) {
				return len(e.Users) == 3
			}
		}
		return false
	})
}

func TestExampleDistributedChat(t *testing.T) {
	testenv.NodeModules(t)
	broker := testenv.FreeAddr(t)
	startKafka(t, broker, t.TempDir())
	n1 := runProgram(t, "examples/distributedchat", "KAFKA_BROKERS="+broker, "NODE_ID=node-a")
	n2 := runProgram(t, "examples/distributedchat", "KAFKA_BROKERS="+broker, "NODE_ID=node-b")

	const room = "/chat/lobby"
	a := newPondAt(t, n1, map[string]any{"name": "alice"})
	b := newPondAt(t, n2, map[string]any{"name": "bob"})
	a.join(room, nil)
	a.state(room, "JOINED")
	if w := a.message(room, "welcome"); w["node"] != "node-a" {
		t.Fatalf("welcome on node a %v", w)
	}
	b.join(room, nil)
	b.state(room, "JOINED")
	if w := b.message(room, "welcome"); w["node"] != "node-b" {
		t.Fatalf("welcome on node b %v", w)
	}
	// presence across nodes: both clients see both users, with their node
	for _, p := range []*pond{a, b} {
		nodes := map[string]string{}
		for _, u := range p.users(room, 2) {
			nodes[fmt.Sprint(u["name"])] = fmt.Sprint(u["node"])
		}
		if nodes["alice"] != "node-a" || nodes["bob"] != "node-b" {
			t.Fatalf("presence %v", nodes)
		}
	}
	a.send(room, "message", map[string]any{"text": "hello from node a"})
	a.message(room, "message") // Broadcast includes the sender
	if m := b.message(room, "message"); m["text"] != "hello from node a" || m["from"] != "alice" || m["node"] != "node-a" {
		t.Fatalf("message on node b %v", m)
	}
	b.send(room, "message", map[string]any{"text": "hello from node b"})
	if m := a.message(room, "message"); m["text"] != "hello from node b" || m["from"] != "bob" {
		t.Fatalf("message on node a %v", m)
	}
	if me := b.request(room, "whoami", map[string]any{}); me["node"] != "node-b" || me["online"] != float64(2) {
		t.Fatalf("whoami on node b %v", me)
	}
}
