package main

// The Quick Start of the original PondSocket Go README leaves these three helpers to the reader;
// this file supplies demo versions so the program runs as printed.

import "strings"

type userInfo struct {
	ID       string
	Role     string
	Username string
}

// isValidToken accepts tokens of the form "user:<name>" or "admin:<name>".
func isValidToken(token string) bool {
	role, name, ok := strings.Cut(token, ":")
	return ok && name != "" && (role == "user" || role == "admin")
}

func getUserFromToken(token string) userInfo {
	role, name, _ := strings.Cut(token, ":")
	return userInfo{ID: "u-" + name, Role: role, Username: name}
}

// getChannelHistory would read the room's recent messages from a store.
func getChannelHistory(roomID string) []map[string]any {
	return []map[string]any{{"text": "welcome to " + roomID, "username": "system"}}
}
