// Command distributedchat is a chat that runs on several nodes at once,
// joined over Kafka: clients connected to different nodes share the same
// rooms, messages and presence.
//
// Environment:
//
//	KAFKA_BROKERS    comma-separated brokers (default 127.0.0.1:9092)
//	NODE_ID          this node's id (default: the host name and pid)
//	PONDSOCKET_ADDR  listen address (default :8080)
//
// Connect with ?name=..., join /chat/:room. Events: "message" {text}
// (broadcast as message {from, text, node}) and "whoami".
//
// Run a broker and two nodes:
//
//	go run ./cmd/devkafka --port 9092 --data /tmp/devkafka
//	NODE_ID=node-a PONDSOCKET_ADDR=:8081 go run ./examples/distributedchat
//	NODE_ID=node-b PONDSOCKET_ADDR=:8082 go run ./examples/distributedchat
package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/pondsocket/pondsocket"
)

func main() {
	brokers := splitList(os.Getenv("KAFKA_BROKERS"))
	if len(brokers) == 0 {
		brokers = []string{"127.0.0.1:9092"}
	}
	nodeID := os.Getenv("NODE_ID")
	if nodeID == "" {
		host, _ := os.Hostname()
		nodeID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}

	opts := pondsocket.DefaultOptions()
	opts.PubSub = pondsocket.NewKafkaPubSub(&pondsocket.KafkaPubSubOptions{
		Brokers:  brokers,
		ClientID: "distributedchat-" + nodeID,
	})
	opts.Cluster.NodeID = nodeID
	// Nodes see each other when they share the broker, KeyPrefix and
	// Namespace; a namespace keeps this demo apart from other apps.
	opts.Cluster.Namespace = "distributedchat"

	server := pondsocket.NewServer(&pondsocket.ServerOptions{
		ServerAddr: listenAddr(),
		Options:    opts,
	})

	endpoint := server.CreateEndpoint("/api/socket", func(ctx *pondsocket.ConnectionContext) error {
		name := strings.TrimSpace(ctx.Route.Query.Get("name"))
		if name == "" {
			return ctx.Decline(400, "connect with ?name=...")
		}
		return ctx.SetAssigns("name", name).Accept()
	})

	rooms := endpoint.CreateChannel("/chat/:room", func(ctx *pondsocket.JoinContext) error {
		name, _ := ctx.GetAssigns("name").(string)
		return ctx.Accept().
			// Presence is cluster-wide: clients on every node see this.
			Track(map[string]any{"name": name, "node": nodeID}).
			Reply("welcome", map[string]any{"room": ctx.Route.Params["room"], "node": nodeID}).
			Err()
	})

	rooms.OnEvent("message", func(ctx *pondsocket.EventContext) error {
		var req struct {
			Text string `json:"text"`
		}
		if err := ctx.ParsePayload(&req); err != nil || strings.TrimSpace(req.Text) == "" {
			return pondsocket.BadRequest(`expected {"text": "..."}`)
		}
		name, _ := ctx.GetAssign("name")
		// With a PubSub, Broadcast reaches the room's members on every node.
		return ctx.Broadcast("message", map[string]any{"from": name, "text": req.Text, "node": nodeID}).Err()
	})

	rooms.OnEvent("whoami", func(ctx *pondsocket.EventContext) error {
		name, _ := ctx.GetAssign("name")
		// GetAllPresence is cluster-wide too.
		return ctx.Reply("whoami", map[string]any{"id": ctx.GetUser().UserID, "name": name, "node": nodeID,
			"online": len(ctx.GetAllPresence())}).Err()
	})

	slog.Info("distributed chat node", "node", nodeID, "brokers", brokers)
	if err := server.Listen(); err != nil {
		slog.Error("server failed", "err", err)
		os.Exit(1)
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// listenAddr is PONDSOCKET_ADDR, the variable every example and
// cmd/pondsocket listen on, or :8080.
func listenAddr() string {
	if a := os.Getenv("PONDSOCKET_ADDR"); a != "" {
		return a
	}
	return ":8080"
}
