package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/cluster"
)

// metricsHandler serves /metrics: the server's counters (read at scrape
// time), the cluster node's when clustered, and the Go runtime and process
// collectors, from a registry of its own (so several servers can live in
// one process, as in the tests).
func metricsHandler(srv *pondsocket.Server) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newStatsCollector(srv.Stats, srv.ClusterNode),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		// A failing collector must not hide the others.
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
	})
}

// metric is one value read from a snapshot.
type metric[S any] struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(*S) float64
}

func newMetric[S any](name string, kind prometheus.ValueType, help string, value func(*S) float64) metric[S] {
	return metric[S]{desc: prometheus.NewDesc(name, help, nil, nil), kind: kind, value: value}
}

func counter[S any](name, help string, v func(*S) int64) metric[S] {
	return newMetric(name, prometheus.CounterValue, help, func(s *S) float64 { return float64(v(s)) })
}

func gauge[S any](name, help string, v func(*S) int64) metric[S] {
	return newMetric(name, prometheus.GaugeValue, help, func(s *S) float64 { return float64(v(s)) })
}

func ucounter(name, help string, v func(*cluster.NodeStats) uint64) metric[cluster.NodeStats] {
	return newMetric(name, prometheus.CounterValue, help, func(s *cluster.NodeStats) float64 { return float64(v(s)) })
}

// statsCollector turns Server.Stats() and, when the server is clustered,
// ClusterNode().Stats() into Prometheus metrics at every scrape: nothing is
// counted twice and nothing runs between scrapes.
type statsCollector struct {
	stats    func() pondsocket.Stats
	node     func() *cluster.Node
	server   []metric[pondsocket.Stats]
	cluster  []metric[cluster.NodeStats]
	nodeInfo *prometheus.Desc
}

func newStatsCollector(stats func() pondsocket.Stats, node func() *cluster.Node) *statsCollector {
	type S = pondsocket.Stats
	type N = cluster.NodeStats
	return &statsCollector{
		stats: stats,
		node:  node,
		server: []metric[S]{
			gauge("pondsocket_connections", "Open WebSocket connections.", func(s *S) int64 { return s.Connections }),
			gauge("pondsocket_channels", "Live channels.", func(s *S) int64 { return s.Channels }),
			gauge("pondsocket_state_bytes", "Bytes of channel names, presence and assigns held for clients.", func(s *S) int64 { return s.StateBytes }),
			counter("pondsocket_upgrades_accepted_total", "WebSocket upgrades accepted.", func(s *S) int64 { return s.Accepted }),
			counter("pondsocket_upgrades_declined_total", "WebSocket upgrades declined (by the connection handler or a limit).", func(s *S) int64 { return s.Declined }),
			counter("pondsocket_http_requests_total", "Plain HTTP requests served (this page, /metrics, /healthz).", func(s *S) int64 { return s.HTTPRequests }),
			counter("pondsocket_joins_total", "Channel joins accepted.", func(s *S) int64 { return s.Joins }),
			counter("pondsocket_joins_declined_total", "Channel joins declined.", func(s *S) int64 { return s.JoinsDeclined }),
			counter("pondsocket_leaves_total", "Channel leaves (leave, disconnect, eviction).", func(s *S) int64 { return s.Leaves }),
			counter("pondsocket_messages_in_total", "WebSocket messages received.", func(s *S) int64 { return s.MessagesIn }),
			counter("pondsocket_bytes_in_total", "WebSocket payload bytes received.", func(s *S) int64 { return s.BytesIn }),
			counter("pondsocket_frames_out_total", "WebSocket frames written.", func(s *S) int64 { return s.FramesOut }),
			counter("pondsocket_bytes_out_total", "WebSocket bytes written.", func(s *S) int64 { return s.BytesOut }),
			counter("pondsocket_socket_writes_total", "write/writev system calls.", func(s *S) int64 { return s.Writes }),
			counter("pondsocket_slow_consumers_total", "Connections closed (1008) for exceeding the outbound byte limit.", func(s *S) int64 { return s.SlowConsumers }),
			counter("pondsocket_rate_limited_total", "Messages and joins refused by the rate limits.", func(s *S) int64 { return s.RateLimited }),
			counter("pondsocket_receive_queue_closes_total", "Connections closed (1008) because their receive queue stayed full.", func(s *S) int64 { return s.QueueClosed }),
			counter("pondsocket_handler_timeouts_total", "Handler calls that overran HandlerTimeout (the client got 504).", func(s *S) int64 { return s.HandlerTimeouts }),
			counter("pondsocket_handler_errors_total", "Errors returned by application handlers.", func(s *S) int64 { return s.HandlerErrors }),
			counter("pondsocket_invalid_messages_total", "Client messages that failed validation.", func(s *S) int64 { return s.InvalidMessages }),
			counter("pondsocket_protocol_errors_total", "Connections failed for WebSocket protocol errors.", func(s *S) int64 { return s.ProtocolErrors }),
			counter("pondsocket_pong_timeouts_total", "Connections dropped for missing pongs.", func(s *S) int64 { return s.PongTimeouts }),
			counter("pondsocket_idle_timeouts_total", "Connections closed for sending nothing for IdleTimeout.", func(s *S) int64 { return s.IdleTimeouts }),
			counter("pondsocket_accept_errors_total", "Accepts that failed (for example out of file descriptors: accepting pauses).", func(s *S) int64 { return s.AcceptErrors }),
			counter("pondsocket_pongs_collapsed_total", "Pings answered by the pong of a later ping (ping floods).", func(s *S) int64 { return s.PongsCollapsed }),
			counter("pondsocket_handshake_timeouts_total", "Connections dropped for not finishing the HTTP handshake in time.", func(s *S) int64 { return s.HandshakeTimeouts }),
			counter("pondsocket_tls_handshake_failures_total", "TLS handshakes that failed or timed out.", func(s *S) int64 { return s.TLSFailures }),
			counter("pondsocket_compressed_connections_total", "Connections that negotiated permessage-deflate.", func(s *S) int64 { return s.CompressedConnections }),
			counter("pondsocket_broadcasts_total", "Messages fanned out to channel members.", func(s *S) int64 { return s.Broadcasts }),
			counter("pondsocket_deliveries_total", "Messages times recipients.", func(s *S) int64 { return s.Deliveries }),
			counter("pondsocket_presence_messages_total", "Presence messages fanned out.", func(s *S) int64 { return s.PresenceMessages }),
		},
		cluster: []metric[N]{
			ucounter("pondsocket_cluster_published_total", "Messages the pub/sub backend accepted (heartbeats included).", func(s *N) uint64 { return s.Published }),
			ucounter("pondsocket_cluster_publish_failures_total", "Failed publish attempts (each retry counts).", func(s *N) uint64 { return s.PublishFailures }),
			ucounter("pondsocket_cluster_dropped_total", "Outbound messages given up (buffer overflow, shutdown).", func(s *N) uint64 { return s.Dropped }),
			ucounter("pondsocket_cluster_buffer_overflow_total", "Oldest outbound messages dropped because the publish buffer was full (part of dropped).", func(s *N) uint64 { return s.Overflowed }),
			ucounter("pondsocket_cluster_nodes_declared_down_total", "Times another node was declared down after the heartbeat timeout.", func(s *N) uint64 { return s.NodesDeclaredDown }),
			ucounter("pondsocket_cluster_nodes_back_total", "Times a node declared down was heard from again.", func(s *N) uint64 { return s.NodesBack }),
			ucounter("pondsocket_cluster_resyncs_total", "Membership resynchronisations (a node back, the bus back, a stall, dropped messages).", func(s *N) uint64 { return s.Resyncs }),
			ucounter("pondsocket_cluster_stalls_total", "Times this process stalled longer than half the heartbeat timeout.", func(s *N) uint64 { return s.Stalls }),
			ucounter("pondsocket_cluster_received_total", "Messages the pub/sub backend delivered.", func(s *N) uint64 { return s.Received }),
			ucounter("pondsocket_cluster_decode_errors_total", "Received messages that failed validation (dropped).", func(s *N) uint64 { return s.DecodeErrors }),
			ucounter("pondsocket_cluster_handled_total", "Received messages handed to the channels.", func(s *N) uint64 { return s.Handled }),
			ucounter("pondsocket_cluster_heartbeats_sent_total", "Heartbeats published.", func(s *N) uint64 { return s.HeartbeatsSent }),
			newMetric("pondsocket_cluster_nodes_alive", prometheus.GaugeValue, "Other nodes heard from within the heartbeat timeout.", func(s *N) float64 { return float64(s.NodesAlive) }),
			newMetric("pondsocket_cluster_nodes_down", prometheus.GaugeValue, "Nodes declared down and not heard from since.", func(s *N) float64 { return float64(s.NodesDown) }),
			newMetric("pondsocket_cluster_buffered_messages", prometheus.GaugeValue, "Outbound messages waiting for the bus (publish lag, or an outage).", func(s *N) float64 { return float64(s.Buffered) }),
			newMetric("pondsocket_cluster_buffered_bytes", prometheus.GaugeValue, "Their bytes, as counted against the publish buffer.", func(s *N) float64 { return float64(s.BufferedBytes) }),
			newMetric("pondsocket_cluster_connected", prometheus.GaugeValue, "1 while the bus is reachable (publishing and receiving).", func(s *N) float64 {
				if s.Connected {
					return 1
				}
				return 0
			}),
			newMetric("pondsocket_cluster_last_publish_latency_seconds", prometheus.GaugeValue, "Time from Publish to backend acceptance of the last message.", func(s *N) float64 { return s.LastPublishLatency.Seconds() }),
		},
		nodeInfo: prometheus.NewDesc("pondsocket_cluster_node_info", "This node's cluster id (value 1; present only when clustered).", []string{"node_id"}, nil),
	}
}

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.server {
		ch <- m.desc
	}
	for _, m := range c.cluster {
		ch <- m.desc
	}
	ch <- c.nodeInfo
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	for _, m := range c.server {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(&s))
	}
	n := c.node()
	if n == nil {
		return
	}
	ns := n.Stats()
	for _, m := range c.cluster {
		ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(&ns))
	}
	ch <- prometheus.MustNewConstMetric(c.nodeInfo, prometheus.GaugeValue, 1, n.ID())
}
