package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/pondsocket/pondsocket"
)

func waitForSignal() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	<-c
	signal.Stop(c)
}

// writeMetrics writes the server counters in the Prometheus text format.
func writeMetrics(w io.Writer, s pondsocket.Stats) {
	m := []struct {
		name, kind, help string
		v                int64
	}{
		{"pondsocket_connections", "gauge", "Open WebSocket connections.", s.Connections},
		{"pondsocket_channels", "gauge", "Live channels.", s.Channels},
		{"pondsocket_upgrades_accepted_total", "counter", "Upgrades accepted.", s.Accepted},
		{"pondsocket_upgrades_declined_total", "counter", "Upgrades declined.", s.Declined},
		{"pondsocket_joins_total", "counter", "Channel joins accepted.", s.Joins},
		{"pondsocket_joins_declined_total", "counter", "Channel joins declined.", s.JoinsDeclined},
		{"pondsocket_leaves_total", "counter", "Channel leaves.", s.Leaves},
		{"pondsocket_messages_in_total", "counter", "WebSocket messages received.", s.MessagesIn},
		{"pondsocket_bytes_in_total", "counter", "WebSocket bytes received.", s.BytesIn},
		{"pondsocket_frames_out_total", "counter", "WebSocket frames written.", s.FramesOut},
		{"pondsocket_bytes_out_total", "counter", "WebSocket bytes written.", s.BytesOut},
		{"pondsocket_socket_writes_total", "counter", "write/writev calls.", s.Writes},
		{"pondsocket_slow_consumers_total", "counter", "Connections closed for exceeding the outbound limit.", s.SlowConsumers},
		{"pondsocket_protocol_errors_total", "counter", "Connections failed for WebSocket protocol errors.", s.ProtocolErrors},
		{"pondsocket_pong_timeouts_total", "counter", "Connections dropped for missing pongs.", s.PongTimeouts},
		{"pondsocket_handshake_timeouts_total", "counter", "Handshakes that timed out.", s.HandshakeTimeouts},
		{"pondsocket_invalid_messages_total", "counter", "Client messages that failed validation.", s.InvalidMessages},
		{"pondsocket_rate_limited_total", "counter", "Messages and joins refused by rate limits.", s.RateLimited},
		{"pondsocket_handler_errors_total", "counter", "Handler errors.", s.HandlerErrors},
		{"pondsocket_broadcasts_total", "counter", "Messages fanned out.", s.Broadcasts},
		{"pondsocket_deliveries_total", "counter", "Messages × recipients.", s.Deliveries},
		{"pondsocket_presence_messages_total", "counter", "Presence messages fanned out.", s.PresenceMessages},
	}
	for _, x := range m {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", x.name, x.help, x.name, x.kind, x.name, x.v)
	}
}
