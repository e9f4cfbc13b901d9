// Command gin mounts PondSocket on a gin-gonic/gin engine, next to a plain
// JSON API, behind gin's logger and recovery middleware.
//
//	PONDSOCKET_ADDR=:8080 go run .
//	curl localhost:8080/api/users
//	ws://localhost:8080/ws/api/socket?token=alice
package main

import (
	"context"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"

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

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Logger(), gin.Recovery()) // what gin.Default() installs

	r.GET("/api/users", func(c *gin.Context) {
		c.JSON(http.StatusOK, chatapp.Users)
	})
	// Every path under /ws/ goes to PondSocket; it answers the upgrade itself.
	r.Any("/ws/*path", gin.WrapH(manager.HTTPHandler()))

	// Serve until SIGINT/SIGTERM, then shut the http.Server down before the
	// manager: see chatapp.Serve.
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	chatapp.Serve(ctx, manager, srv.Serve, srv.Shutdown)
}
