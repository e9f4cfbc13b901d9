package main

import (
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/google/uuid"
	"github.com/pondsocket/pondsocket"
)

// ============== Type Definitions ==============

// User types
type UserInfo struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Email    string `json:"email,omitempty"`
	Role     string `json:"role"`
}

type UserAssigns struct {
	UserID   string `json:"userId"`
	Username string `json:"username"`
	Role     string `json:"role"`
	Score    int    `json:"score,omitempty"`
	Level    int    `json:"level,omitempty"`
	JoinedAt int64  `json:"joinedAt"`
}

type UserPresence struct {
	Status   string `json:"status"` // online, away, busy, offline
	LastSeen int64  `json:"lastSeen"`
	IsTyping bool   `json:"isTyping,omitempty"`
	Location string `json:"location,omitempty"`
}

// Request/Response types
type JoinRequest struct {
	Username string `json:"username"`
	Avatar   string `json:"avatar,omitempty"`
}

type MessageRequest struct {
	Text     string   `json:"text"`
	Type     string   `json:"type,omitempty"`
	Mentions []string `json:"mentions,omitempty"`
	ReplyTo  string   `json:"replyTo,omitempty"`
}

type MessageResponse struct {
	ID        string   `json:"id"`
	Text      string   `json:"text"`
	Username  string   `json:"username"`
	UserID    string   `json:"userId"`
	Timestamp int64    `json:"timestamp"`
	Type      string   `json:"type,omitempty"`
	Mentions  []string `json:"mentions,omitempty"`
}

type ErrorResponse struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details string `json:"details,omitempty"`
}

type TypingEvent struct {
	IsTyping bool `json:"isTyping"`
}

type TypingNotification struct {
	UserID   string `json:"userId"`
	Username string `json:"username"`
	IsTyping bool   `json:"isTyping"`
}

// Error codes
const (
	ErrInvalidFormat  = "INVALID_FORMAT"
	ErrUnauthorized   = "UNAUTHORIZED"
	ErrUserNotFound   = "USER_NOT_FOUND"
	ErrRoomNotFound   = "ROOM_NOT_FOUND"
	ErrMessageTooLong = "MESSAGE_TOO_LONG"
	ErrRateLimited    = "RATE_LIMITED"
)

// ============== Main Application ==============

func main() {
	// Create server with proper configuration
	server := pondsocket.NewServer(&pondsocket.ServerOptions{
		ServerAddr:         ":8080",
		ServerReadTimeout:  30 * time.Second,
		ServerWriteTimeout: 30 * time.Second,
		Options:            createOptions(),
	})

	// Create endpoint with authentication
	endpoint := server.CreateEndpoint("/api/socket", handleConnection)

	// Create channel with authorization
	lobby := endpoint.CreateChannel("/chat/:roomId", handleJoin)

	// Register event handlers
	registerEventHandlers(lobby)

	// Start server
	log.Println("Starting PondSocket server on :8080")
	if err := server.Listen(); err != nil {
		log.Fatal("Server failed:", err)
	}
}

func createOptions() *pondsocket.Options {
	opts := pondsocket.DefaultOptions()
	opts.MaxMessageSize = 1024 * 1024 // 1MB
	opts.PingInterval = 30 * time.Second
	opts.PongWait = 60 * time.Second
	return opts
}

// ============== Connection Handler ==============

func handleConnection(ctx *pondsocket.ConnectionContext) error {
	// Extract and validate token
	token := extractToken(ctx)
	if token == "" {
		return ctx.Decline(401, "Authentication required")
	}

	// Validate token and get user info
	userInfo, err := validateTokenAndGetUser(token)
	if err != nil {
		return ctx.Decline(401, "Invalid or expired token")
	}

	// Create structured assigns
	userAssigns := UserAssigns{
		UserID:   userInfo.ID,
		Username: userInfo.Username,
		Role:     userInfo.Role,
		JoinedAt: time.Now().Unix(),
	}

	// Accept connection with structured data
	return ctx.SetAssigns("userInfo", userAssigns).Accept()
}

func extractToken(ctx *pondsocket.ConnectionContext) string {
	// Try query parameter first
	if token := ctx.Route.Query.Get("token"); token != "" {
		return token
	}

	// Try Authorization header
	if auth := ctx.Headers().Get("Authorization"); auth != "" {
		if len(auth) > 7 && auth[:7] == "Bearer " {
			return auth[7:]
		}
	}

	return ""
}

// ============== Join Handler ==============

func handleJoin(ctx *pondsocket.JoinContext) error {
	// Parse and validate user assigns
	var userAssigns UserAssigns
	if err := ctx.ParseAssigns(&userAssigns); err != nil {
		return ctx.Decline(401, "User information not found")
	}

	// Validate room access
	roomId := ctx.Route.Params["roomId"]
	if !canAccessRoom(userAssigns, roomId) {
		return ctx.Decline(403, "Access denied to this room")
	}

	// Parse optional join request
	var joinReq JoinRequest
	ctx.ParsePayload(&joinReq) // Ignore error as payload is optional

	// Create presence data
	presence := UserPresence{
		Status:   "online",
		LastSeen: time.Now().Unix(),
		Location: roomId,
	}

	// Get room data
	history, roomInfo := getRoomData(roomId)

	// Create structured welcome message
	welcomeMsg := struct {
		Messages []MessageResponse `json:"messages"`
		Room     RoomInfo          `json:"room"`
		User     UserAssigns       `json:"user"`
	}{
		Messages: history,
		Room:     roomInfo,
		User:     userAssigns,
	}

	// Accept with all data
	return ctx.Accept().
		SetAssigns("userInfo", userAssigns).
		SetAssigns("currentRoom", roomId).
		Track(presence).
		Reply("welcome", welcomeMsg).
		Err()
}

// ============== Event Handlers ==============

func registerEventHandlers(lobby *pondsocket.Channel) {
	lobby.OnEvent("message", handleMessage)
	lobby.OnEvent("typing", handleTyping)
	lobby.OnEvent("status_update", handleStatusUpdate)
	lobby.OnEvent("private_message", handlePrivateMessage)
}

func handleMessage(ctx *pondsocket.EventContext) error {
	// Parse and validate message
	var msgReq MessageRequest
	if err := ctx.ParsePayload(&msgReq); err != nil {
		return sendError(ctx, ErrInvalidFormat, "Invalid message format")
	}

	// Validate message content
	if err := validateMessage(msgReq); err != nil {
		return sendError(ctx, ErrMessageTooLong, err.Error())
	}

	// Parse user data
	var userAssigns UserAssigns
	if err := ctx.ParseAssigns(&userAssigns); err != nil {
		return sendError(ctx, ErrUserNotFound, "User data not found")
	}

	// Update typing status if needed
	var presence UserPresence
	if err := ctx.ParsePresence(&presence); err == nil && presence.IsTyping {
		presence.IsTyping = false
		ctx.UpdatePresence(presence)
	}

	// Create response
	msgResp := MessageResponse{
		ID:        uuid.NewString(),
		Text:      msgReq.Text,
		Username:  userAssigns.Username,
		UserID:    userAssigns.UserID,
		Timestamp: time.Now().Unix(),
		Type:      msgReq.Type,
		Mentions:  msgReq.Mentions,
	}

	// Store and broadcast
	roomId := ctx.Route.Params["roomId"]
	storeMessage(roomId, msgResp)

	return ctx.Broadcast("message", msgResp).Err()
}

func handleTyping(ctx *pondsocket.EventContext) error {
	// Parse typing event
	var typingEvent TypingEvent
	if err := ctx.ParsePayload(&typingEvent); err != nil {
		return nil // Silently ignore invalid typing events
	}

	// Parse user data
	var userAssigns UserAssigns
	if err := ctx.ParseAssigns(&userAssigns); err != nil {
		return nil
	}

	// Update presence
	var presence UserPresence
	if err := ctx.ParsePresence(&presence); err == nil {
		presence.IsTyping = typingEvent.IsTyping
		presence.LastSeen = time.Now().Unix()
		ctx.UpdatePresence(presence)
	}

	// Notify others
	notification := TypingNotification{
		UserID:   userAssigns.UserID,
		Username: userAssigns.Username,
		IsTyping: typingEvent.IsTyping,
	}

	return ctx.BroadcastFrom("typing", notification).Err()
}

func handleStatusUpdate(ctx *pondsocket.EventContext) error {
	type StatusUpdate struct {
		Status string `json:"status"`
	}

	var update StatusUpdate
	if err := ctx.ParsePayload(&update); err != nil {
		return sendError(ctx, ErrInvalidFormat, "Invalid status format")
	}

	// Validate status
	validStatuses := []string{"online", "away", "busy", "offline"}
	if !contains(validStatuses, update.Status) {
		return sendError(ctx, ErrInvalidFormat, "Invalid status value")
	}

	// Update presence
	var presence UserPresence
	if err := ctx.ParsePresence(&presence); err != nil {
		presence = UserPresence{}
	}

	presence.Status = update.Status
	presence.LastSeen = time.Now().Unix()

	return ctx.UpdatePresence(presence).Err()
}

func handlePrivateMessage(ctx *pondsocket.EventContext) error {
	type PrivateMessageReq struct {
		To   string `json:"to"`
		Text string `json:"text"`
	}

	var req PrivateMessageReq
	if err := ctx.ParsePayload(&req); err != nil {
		return sendError(ctx, ErrInvalidFormat, "Invalid private message format")
	}

	// Validate message
	if len(req.Text) == 0 || len(req.Text) > 500 {
		return sendError(ctx, ErrMessageTooLong, "Message must be 1-500 characters")
	}

	// Parse sender data
	var sender UserAssigns
	if err := ctx.ParseAssigns(&sender); err != nil {
		return sendError(ctx, ErrUserNotFound, "Sender data not found")
	}

	// Create private message
	privateMsg := struct {
		ID        string `json:"id"`
		From      string `json:"from"`
		FromName  string `json:"fromName"`
		Text      string `json:"text"`
		Timestamp int64  `json:"timestamp"`
	}{
		ID:        uuid.NewString(),
		From:      sender.UserID,
		FromName:  sender.Username,
		Text:      req.Text,
		Timestamp: time.Now().Unix(),
	}

	// Send to recipient
	return ctx.BroadcastTo("private_message", privateMsg, req.To).Err()
}

// ============== Helper Functions ==============

func sendError(ctx *pondsocket.EventContext, code, message string) error {
	return ctx.Reply("error", ErrorResponse{
		Code:    code,
		Message: message,
	}).Err()
}

func validateMessage(msg MessageRequest) error {
	if len(msg.Text) == 0 {
		return errors.New("message cannot be empty")
	}
	if len(msg.Text) > 1000 {
		return fmt.Errorf("message too long (%d/1000)", len(msg.Text))
	}
	return nil
}

func canAccessRoom(user UserAssigns, roomId string) bool {
	// Implement your authorization logic
	return true
}

func contains(slice []string, item string) bool {
	for _, s := range slice {
		if s == item {
			return true
		}
	}
	return false
}

// ============== Data Access Functions ==============

type RoomInfo struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	MaxUsers    int    `json:"maxUsers"`
	ActiveUsers int    `json:"activeUsers"`
}

func validateTokenAndGetUser(token string) (*UserInfo, error) {
	// Implement your token validation
	// In production, validate JWT and query database
	if len(token) < 10 {
		return nil, errors.New("invalid token")
	}

	return &UserInfo{
		ID:       uuid.NewString(),
		Username: "john_doe",
		Email:    "john@example.com",
		Role:     "user",
	}, nil
}

func getRoomData(roomId string) ([]MessageResponse, RoomInfo) {
	// In production, fetch from database
	history := []MessageResponse{}
	info := RoomInfo{
		ID:          roomId,
		Name:        "General Chat",
		Description: "Public chat room",
		MaxUsers:    100,
		ActiveUsers: 5,
	}
	return history, info
}

func storeMessage(roomId string, msg MessageResponse) {
	// In production, store in database
	log.Printf("Message stored in room %s: %s", roomId, msg.ID)
}
