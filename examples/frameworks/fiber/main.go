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
	"os"
	"os/signal"
	"syscall"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/cors"
	"github.com/gofiber/fiber/v2/middleware/logger"
	"github.com/gofiber/fiber/v2/middleware/recover"

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/examples/frameworks/internal/chatapp"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The manager stops (closing every WebSocket with 1001) when ctx ends.
	manager := pondsocket.NewManager(ctx, *pondsocket.DefaultOptions())
	// the chat application every framework example serves (../internal/chatapp)
	chatapp.Setup(manager)

	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(logger.New(), recover.New(), cors.New())

	app.Get("/api/users", func(c *fiber.Ctx) error {
		return c.JSON(chatapp.Users)
	})
	// Every path under /ws/ goes to PondSocket; it answers the upgrade itself.
	if os.Getenv("WS_MOUNT") == "adaptor" {
		// does not work: the adaptor hands over a connection PondSocket's
		// event loops cannot own (README.md)
		app.All("/ws/*", adaptor.HTTPHandler(manager.HTTPHandler()))
	} else {
		app.All("/ws/*", pondHandler(manager.HTTPHandler()))
	}

	// Serve until SIGINT/SIGTERM, then shut fiber down before the manager:
	// see chatapp.Serve.
	chatapp.Serve(ctx, manager, app.Listener, app.ShutdownWithContext)
}
