// Package apiclient calls the server API of the standalone pondsocket
// server (cmd/pondsocket with a configuration file) from a Go backend:
// broadcast to a channel (to everyone, to some users, to all but one),
// evict a user from a channel, disconnect a user, list channels, read a
// channel's presence and a user's channels and assigns.
//
//	api := apiclient.New("http://127.0.0.1:8080", "backend-secret")
//	err := api.Broadcast(ctx, apiclient.Broadcast{Channel: "/chat/1", Event: "news", Payload: map[string]any{"text": "hi"}})
//
// Every call returns an *Error when the server answers with an error
// status.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls one server. Its methods are safe for concurrent use.
type Client struct {
	base string
	key  string
	// HTTP is the client requests go through (default: 10 s timeout).
	HTTP *http.Client
}

// New returns a client of the server at base (http://host:port) with the
// server's api.key.
func New(base, key string) *Client {
	return &Client{base: strings.TrimSuffix(base, "/"), key: key, HTTP: &http.Client{Timeout: 10 * time.Second}}
}

// Error is an error answer of the server.
type Error struct {
	Status  int    // HTTP status
	Message string // the server's "error" text
}

func (e *Error) Error() string { return fmt.Sprintf("pondsocket API: %d %s", e.Status, e.Message) }

// Broadcast is a message sent to a channel's members. With To, only those
// users get it; with Except, everyone but that user.
type Broadcast struct {
	Endpoint string   `json:"endpoint,omitempty"` // default: the first configured endpoint
	Channel  string   `json:"channel"`
	Event    string   `json:"event"`
	Payload  any      `json:"payload,omitempty"` // a JSON object
	To       []string `json:"to,omitempty"`
	Except   string   `json:"except,omitempty"`
}

// Channel is a live channel and its member count (on the server called).
type Channel struct {
	Endpoint string `json:"endpoint"`
	Name     string `json:"name"`
	Members  int    `json:"members"`
}

// User is a connected user.
type User struct {
	ID       string         `json:"id"`
	Endpoint string         `json:"endpoint"`
	Channels []string       `json:"channels"`
	Assigns  map[string]any `json:"assigns"`
	// Connections is the user's live connections on the node asked
	// (its first connection's channels and assigns are the ones shown).
	Connections int `json:"connections"`
}

// Broadcast sends a message to a channel.
func (c *Client) Broadcast(ctx context.Context, b Broadcast) error {
	return c.do(ctx, http.MethodPost, "/api/broadcast", b, nil)
}

// Evict removes a user from a channel; reason reaches the user.
func (c *Client) Evict(ctx context.Context, channel, user, reason string) error {
	return c.do(ctx, http.MethodPost, "/api/evict", map[string]string{"channel": channel, "user": user, "reason": reason}, nil)
}

// Disconnect closes a user's connection.
func (c *Client) Disconnect(ctx context.Context, user string) error {
	return c.do(ctx, http.MethodPost, "/api/disconnect", map[string]string{"user": user}, nil)
}

// Channels lists the live channels.
func (c *Client) Channels(ctx context.Context) ([]Channel, error) {
	var out struct {
		Channels []Channel `json:"channels"`
	}
	err := c.do(ctx, http.MethodGet, "/api/channels", nil, &out)
	return out.Channels, err
}

// Presence returns a channel's presence by user id.
func (c *Client) Presence(ctx context.Context, channel string) (map[string]map[string]any, error) {
	var out struct {
		Presence map[string]map[string]any `json:"presence"`
	}
	err := c.do(ctx, http.MethodGet, "/api/presence?channel="+url.QueryEscape(channel), nil, &out)
	return out.Presence, err
}

// User returns a connected user's channels and assigns.
func (c *Client) User(ctx context.Context, id string) (*User, error) {
	var u User
	if err := c.do(ctx, http.MethodGet, "/api/users/"+url.PathEscape(id), nil, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "apikey "+c.key)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return &Error{Status: resp.StatusCode, Message: e.Error}
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}
