// Package pondsocket is a PondSocket server for Go: the real-time protocol
// of the PondSocket JavaScript clients (endpoints, channels, presence,
// assigns, broadcasts), served by an event-loop WebSocket engine that holds
// very many connections on few cores.
//
// This package is the whole public API: Server (a standalone listener),
// Manager (mounted on an existing net/http router), the handler contexts
// (ConnectionContext, JoinContext, EventContext, LeaveContext), Endpoint
// and Channel handles, Options, the status errors (BadRequest,
// TooManyRequests, …) and the cluster constructors (NewRedisPubSub,
// NewKafkaPubSub). The engine, the wire encoding and the frame type are
// internal; a Go client is in the client subpackage.
//
//	server := pondsocket.NewServer(&pondsocket.ServerOptions{ServerAddr: ":8080", Options: pondsocket.DefaultOptions()})
//	endpoint := server.CreateEndpoint("/api/socket", func(ctx *pondsocket.ConnectionContext) error { return ctx.Accept() })
//	lobby := endpoint.CreateChannel("/chat/:roomId", func(ctx *pondsocket.JoinContext) error { return ctx.Accept().Err() })
//	lobby.OnEvent("message", func(ctx *pondsocket.EventContext) error { return ctx.Broadcast("message", ctx.Event().Payload).Err() })
//	log.Fatal(server.Listen())
//
// Handlers run on a bounded worker pool, in order per connection, so they
// may block; join, event and leave handlers (and middleware) get a context
// (Context()) cancelled when their connection goes away or at
// Options.HandlerTimeout. Everything on Channel is safe
// from any goroutine. Every resource a client can make the server hold is
// bounded; the limits and their defaults are listed in Options and in
// docs/configuration.md.
//
// The wire protocol is docs/protocol.md, the cluster protocol
// docs/distributed.md, and the layout of the code docs/architecture.md.
package pondsocket
