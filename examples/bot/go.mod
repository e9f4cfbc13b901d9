module github.com/pondsocket/pondsocket/examples/bot

go 1.26.8

require github.com/pondsocket/pondsocket v0.0.0

require (
	github.com/google/uuid v1.6.0 // indirect
	github.com/gorilla/websocket v1.5.3 // indirect
)

replace github.com/pondsocket/pondsocket => ../..
