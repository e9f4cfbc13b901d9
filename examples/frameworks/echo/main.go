// Command echo mounts PondSocket on a labstack/echo server, next to a
// plain JSON API, behind echo's logger, recover and CORS middleware.
//
//	PONDSOCKET_ADDR=:8080 go run .
//	curl localhost:8080/api/users
//	ws://localhost:8080/ws/api/socket?token=alice
package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

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

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Use(middleware.Logger())
	e.Use(middleware.Recover())
	e.Use(middleware.CORS())

	api := e.Group("/api")
	api.GET("/users", func(c echo.Context) error {
		return c.JSON(http.StatusOK, chatapp.Users)
	})
	// Every path under /ws/ goes to PondSocket; it answers the upgrade itself.
	e.Any("/ws/*", echo.WrapHandler(manager.HTTPHandler()))

	// Serve until SIGINT/SIGTERM, then shut echo down before the manager:
	// see chatapp.Serve. Echo serves a listener it is given through
	// e.Listener.
	serve := func(l net.Listener) error {
		e.Listener = l
		return e.Start("")
	}
	chatapp.Serve(ctx, manager, serve, e.Shutdown)
}
