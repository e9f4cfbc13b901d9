// Package chatapp is the chat application that every program under
// examples/frameworks serves, whatever its router: PondSocket's endpoint
// and chat channel, the list of users behind the plain JSON route, the
// listen address and the serve-then-shut-down sequence. Each program keeps
// only what belongs to its framework: how Manager.HTTPHandler is mounted,
// how /api/users is declared and which middleware runs.
//
// It lives in the root module (there is no go.mod here); each example
// module reaches it through its replace directive, and Go's internal rule
// lets only the programs under examples/frameworks import it.
package chatapp

import "github.com/pondsocket/pondsocket"

// Setup registers the WebSocket endpoint and its chat channel. The
// endpoint path is the full request path the router hands over: every
// example mounts the WebSocket route on /ws/, so clients connect to
// ws://host/ws/api/socket.
func Setup(manager *pondsocket.Manager) {
	endpoint := manager.CreateEndpoint("/ws/api/socket", func(ctx *pondsocket.ConnectionContext) error {
		token := ctx.Route.Query.Get("token")
		if token == "" {
			// declined before the upgrade: the client gets a plain 401
			return ctx.Decline(401, "Missing token")
		}
		// A real application verifies the token (a JWT, a session id…);
		// the demo takes it as the user's name.
		return ctx.SetAssigns("username", token).Accept()
	})

	chat := endpoint.CreateChannel("/chat/:roomId", func(ctx *pondsocket.JoinContext) error {
		username, _ := ctx.GetAssigns("username").(string)
		return ctx.Accept().
			Track(map[string]any{"username": username, "status": "online"}).
			Err()
	})

	chat.OnEvent("message", func(ctx *pondsocket.EventContext) error {
		var msg struct {
			Text string `json:"text"`
		}
		if err := ctx.ParsePayload(&msg); err != nil || msg.Text == "" {
			return ctx.Reply("error", map[string]any{"message": "text is required"}).Err()
		}
		username, _ := ctx.GetAssign("username")
		return ctx.Broadcast("message", map[string]any{"text": msg.Text, "username": username}).Err()
	})
}

// Users is what GET /api/users answers, as JSON: the plain HTTP API each
// router serves next to the WebSocket route.
var Users = []map[string]any{
	{"id": "1", "username": "john_doe", "status": "online"},
	{"id": "2", "username": "jane_smith", "status": "away"},
}
