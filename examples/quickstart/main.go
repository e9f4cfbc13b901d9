package main

import (
	"log"
	"strings"
	"time"

	"github.com/pondsocket/pondsocket"
)

func main() {
	// Create server with default options
	server := pondsocket.NewServer(&pondsocket.ServerOptions{
		ServerAddr: ":8080",
		Options:    pondsocket.DefaultOptions(),
	})

	// Create a WebSocket endpoint
	endpoint := server.CreateEndpoint("/api/socket", handleConnection)

	// Create a channel for chat rooms
	lobby := endpoint.CreateChannel("/chat/:roomId", handleJoin)

	// Handle message events
	lobby.OnEvent("message", handleMessage)

	// Start the server
	log.Println("Starting PondSocket server on :8080")
	if err := server.Listen(); err != nil {
		log.Fatal("Server failed:", err)
	}
}

func handleConnection(ctx *pondsocket.ConnectionContext) error {
	// Access query parameters safely
	token := ctx.Route.Query.Get("token")

	// Alternative: access from headers
	if token == "" {
		authHeader := ctx.Headers().Get("Authorization")
		if strings.HasPrefix(authHeader, "Bearer ") {
			token = strings.TrimPrefix(authHeader, "Bearer ")
		}
	}

	if isValidToken(token) {
		userInfo := getUserFromToken(token)
		// Set assigns using the proper method
		return ctx.SetAssigns("userId", userInfo.ID).
			SetAssigns("role", userInfo.Role).
			SetAssigns("username", userInfo.Username).
			Accept()
	}

	return ctx.Decline(401, "Invalid token")
}

func handleJoin(ctx *pondsocket.JoinContext) error {
	// Access user assigns safely
	userRole := ctx.GetAssigns("role")
	if userRole == nil {
		return ctx.Decline(401, "No role assigned")
	}

	// Access route parameters safely
	roomId := ctx.Route.Params["roomId"]

	// Parse join payload safely
	var joinParams struct {
		Username string `json:"username"`
	}
	if err := ctx.ParsePayload(&joinParams); err != nil {
		return ctx.Decline(400, "Invalid join parameters")
	}

	if userRole.(string) == "user" {
		return ctx.Accept().
			SetAssigns("username", joinParams.Username).
			Track(map[string]interface{}{
				"username": joinParams.Username,
				"status":   "online",
				"joinedAt": time.Now().Unix(),
			}).
			Reply("history", map[string]interface{}{
				"messages": getChannelHistory(roomId),
			}).
			Err()
	}

	return ctx.Decline(403, "Unauthorized")
}

func handleMessage(ctx *pondsocket.EventContext) error {
	// Parse message payload safely
	var message struct {
		Text string `json:"text"`
	}
	if err := ctx.ParsePayload(&message); err != nil {
		return ctx.Reply("error", map[string]interface{}{
			"message": "Invalid message format",
		}).Err()
	}

	// Get user assigns safely
	username, err := ctx.GetAssign("username")
	if err != nil {
		return ctx.Reply("error", map[string]interface{}{
			"message": "Username not found",
		}).Err()
	}

	// Broadcast message to all users in the channel
	return ctx.Broadcast("message", map[string]interface{}{
		"text":      message.Text,
		"username":  username,
		"timestamp": time.Now().Unix(),
	}).Err()
}
