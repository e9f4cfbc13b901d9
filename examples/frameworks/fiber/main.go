// Command fiber mounts PondSocket on a gofiber/fiber v2 app, next to a
// plain JSON API, behind fiber's logger, recover and CORS middleware.
//
//	PONDSOCKET_ADDR=:8080 go run .
//	curl localhost:8080/api/users
//	ws://localhost:8080/ws/api/socket?token=alice
//
// The WebSocket route goes through pondHandler (hijack.go), not through
// fiber's net/http adaptor: see README.md. WS_MOUNT=adaptor mounts it with
// adaptor.HTTPHandler as the upstream README shows, to see that fail.
package main

import (
	"context"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/cors"
	"github.com/gofiber/fiber/v2/middleware/logger"
	"github.com/gofiber/fiber/v2/middleware/recover"

	"github.com/pondsocket/pondsocket"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The manager stops (closing every WebSocket with 1001) when ctx ends.
	manager := pondsocket.NewManager(ctx, *pondsocket.DefaultOptions())
	setupPond(manager)

	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(logger.New(), recover.New(), cors.New())

	app.Get("/api/users", func(c *fiber.Ctx) error {
		return c.JSON(users)
	})
	// Every path under /ws/ goes to PondSocket; it answers the upgrade itself.
	if os.Getenv("WS_MOUNT") == "adaptor" {
		// does not work: the adaptor hands over a connection PondSocket's
		// event loops cannot own (README.md)
		app.All("/ws/*", adaptor.HTTPHandler(manager.HTTPHandler()))
	} else {
		app.All("/ws/*", pondHandler(manager.HTTPHandler()))
	}

	l, err := net.Listen("tcp", listenAddr())
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		log.Printf("listening on %s", l.Addr())
		if err := app.Listener(l); err != nil {
			log.Fatal(err)
		}
	}()

	<-ctx.Done()
	log.Print("shutting down")
	_ = app.ShutdownWithTimeout(10 * time.Second)
	_ = manager.Stop(5 * time.Second)
}

// setupPond registers the WebSocket endpoint and its chat channel. The
// endpoint path is the full request path the router hands over: the
// WebSocket route is mounted on /ws/, so clients connect to
// ws://host/ws/api/socket.
func setupPond(manager *pondsocket.Manager) {
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

// users is the plain HTTP API the router serves next to the WebSocket route.
var users = []map[string]any{
	{"id": "1", "username": "john_doe", "status": "online"},
	{"id": "2", "username": "jane_smith", "status": "away"},
}

func listenAddr() string {
	if a := os.Getenv("PONDSOCKET_ADDR"); a != "" {
		return a
	}
	return ":8080"
}
