package main

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/cluster"
	"github.com/pondsocket/pondsocket/internal/testenv"
)

type nopHandler struct{}

func (nopHandler) HandleMessage(*cluster.Envelope) {}
func (nopHandler) NodeDown(string)                 {}

// gather scrapes reg: name → the value of its single metric, and the
// labels of that metric.
func gather(t *testing.T, reg *prometheus.Registry) (map[string]float64, map[string]map[string]string) {
	t.Helper()
	fams, err := reg.Gather() // the pedantic registry checks Describe against Collect
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]float64{}
	labels := map[string]map[string]string{}
	for _, f := range fams {
		if len(f.GetMetric()) != 1 || f.GetHelp() == "" {
			t.Fatalf("%s: %d metrics, help %q", f.GetName(), len(f.GetMetric()), f.GetHelp())
		}
		m := f.GetMetric()[0]
		switch f.GetType().String() {
		case "COUNTER":
			vals[f.GetName()] = m.GetCounter().GetValue()
		case "GAUGE":
			vals[f.GetName()] = m.GetGauge().GetValue()
		default:
			t.Fatalf("%s: type %v", f.GetName(), f.GetType())
		}
		labels[f.GetName()] = map[string]string{}
		for _, l := range m.GetLabel() {
			labels[f.GetName()][l.GetName()] = l.GetValue()
		}
	}
	return vals, labels
}

// The collector reads the snapshots at every scrape; the cluster families
// appear only while there is a node, with the node's values.
func TestStatsCollector(t *testing.T) {
	var (
		st   pondsocket.Stats
		node *cluster.Node
	)
	c := newStatsCollector(func() pondsocket.Stats { return st }, func() *cluster.Node { return node })
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)

	st.Connections, st.Joins, st.BytesOut, st.SlowConsumers = 3, 7, 1234, 2
	vals, _ := gather(t, reg)
	if len(vals) != len(c.server) {
		t.Fatalf("single node: %d families, want %d", len(vals), len(c.server))
	}
	for name, want := range map[string]float64{
		"pondsocket_connections": 3, "pondsocket_joins_total": 7,
		"pondsocket_bytes_out_total": 1234, "pondsocket_slow_consumers_total": 2, "pondsocket_leaves_total": 0,
	} {
		if vals[name] != want {
			t.Errorf("%s = %v, want %v", name, vals[name], want)
		}
	}
	st.Joins = 8
	if vals, _ = gather(t, reg); vals["pondsocket_joins_total"] != 8 {
		t.Errorf("second scrape: joins %v, want 8", vals["pondsocket_joins_total"])
	}

	bus := cluster.NewMemoryBus()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	node = cluster.NewNode(bus.Connect(), cluster.Options{NodeID: "node-a", Logger: log, HeartbeatInterval: time.Hour})
	peer := cluster.NewNode(bus.Connect(), cluster.Options{NodeID: "node-b", Logger: log, HeartbeatInterval: time.Hour})
	for _, n := range []*cluster.Node{node, peer} {
		if err := n.Start(context.Background(), nopHandler{}); err != nil {
			t.Fatal(err)
		}
		defer n.Close()
	}
	// Each node sends a heartbeat at start: wait until node-a's was
	// accepted and node-b's heard.
	testenv.Eventually(t, 5*time.Second, "node-a connected, its heartbeat published and node-b's heard", func() bool {
		s := node.Stats()
		return s.NodesAlive >= 1 && s.Published >= 1 && s.Connected
	})
	vals, labels := gather(t, reg)
	if len(vals) != len(c.server)+len(c.cluster)+1 {
		t.Fatalf("clustered: %d families, want %d", len(vals), len(c.server)+len(c.cluster)+1)
	}
	for name, want := range map[string]float64{
		"pondsocket_cluster_connected": 1, "pondsocket_cluster_nodes_alive": 1, "pondsocket_cluster_node_info": 1,
		"pondsocket_cluster_dropped_total": 0, "pondsocket_cluster_decode_errors_total": 0,
	} {
		if vals[name] != want {
			t.Errorf("%s = %v, want %v", name, vals[name], want)
		}
	}
	for _, name := range []string{"pondsocket_cluster_published_total", "pondsocket_cluster_received_total", "pondsocket_cluster_heartbeats_sent_total"} {
		if vals[name] < 1 {
			t.Errorf("%s = %v, want ≥ 1", name, vals[name])
		}
	}
	if id := labels["pondsocket_cluster_node_info"]["node_id"]; id != "node-a" {
		t.Errorf("node_info node_id %q", id)
	}
}

// Every field of pondsocket.Stats is a metric: each gets a distinct value
// and each value must be scraped.
func TestEveryStatIsAMetric(t *testing.T) {
	var st pondsocket.Stats
	v := reflect.ValueOf(&st).Elem()
	for i := 0; i < v.NumField(); i++ {
		v.Field(i).SetInt(int64(7000 + i))
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newStatsCollector(func() pondsocket.Stats { return st }, func() *cluster.Node { return nil }))
	vals, _ := gather(t, reg)
	seen := map[int64]bool{}
	for _, x := range vals {
		seen[int64(x)] = true
	}
	for i := 0; i < v.NumField(); i++ {
		if !seen[int64(7000+i)] {
			t.Errorf("Stats.%s is not in /metrics", v.Type().Field(i).Name)
		}
	}
}
