// Package pondsocket is a PondSocket server for Go: the real-time protocol
// of the PondSocket JavaScript clients (endpoints, channels, presence,
// assigns, broadcasts), served by an event-loop WebSocket engine that holds
// very many connections on few cores.
//
// This package is the public API of the seed README, a thin facade over
// package channel (endpoints, channels, handler contexts), package engine
// (the gnet reactor) and package protocol (the wire messages):
//
//	server := pondsocket.NewServer(&pondsocket.ServerOptions{ServerAddr: ":8080", Options: pondsocket.DefaultOptions()})
//	endpoint := server.CreateEndpoint("/api/socket", func(ctx *pondsocket.ConnectionContext) error { return ctx.Accept() })
//	lobby := endpoint.CreateChannel("/chat/:roomId", func(ctx *pondsocket.JoinContext) error { return ctx.Accept().Err() })
//	lobby.OnEvent("message", func(ctx *pondsocket.EventContext) error { return ctx.Broadcast("message", ctx.Event().Payload).Err() })
//	log.Fatal(server.Listen())
//
// Handlers run on a bounded worker pool, in order per connection, so they
// may block; everything on Channel is safe from any goroutine.
package pondsocket
