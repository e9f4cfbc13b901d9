package cluster_test

import (
	"testing"
	"time"

	"github.com/pondsocket/pondsocket/cluster"
	"github.com/pondsocket/pondsocket/cluster/internal/pubsubtest"
)

func TestMemoryBusSuite(t *testing.T) {
	bus := cluster.NewMemoryBus()
	pubsubtest.Run(t, pubsubtest.Config{
		Connect:         func(testing.TB) cluster.PubSub { return bus.Connect() },
		CrossTopicOrder: true,
	})
}

func TestMemoryBusRoundTrip(t *testing.T) {
	bus := cluster.NewMemoryBus()
	rtts := pubsubtest.RoundTrips(t, pubsubtest.Config{Connect: func(testing.TB) cluster.PubSub { return bus.Connect() }}, 50)
	t.Logf("memory bus round trip: median %v (min %v, max %v)", rtts[len(rtts)/2], rtts[0], rtts[len(rtts)-1])
}

func TestMemoryBusDown(t *testing.T) {
	bus := cluster.NewMemoryBus()
	cfg := pubsubtest.Config{Connect: func(testing.TB) cluster.PubSub { return bus.Connect() }}
	a, _ := pubsubtest.Started(t, cfg)
	b, inb := pubsubtest.Started(t, cfg)
	pubsubtest.Subscribe(t, b, "t")
	bus.SetDown(true)
	if err := a.Publish(t.Context(), "t", []byte("x")); err != cluster.ErrBusDown {
		t.Fatalf("Publish while down: %v", err)
	}
	if err := bus.Connect().Start(t.Context(), inb.Deliver); err != cluster.ErrBusDown {
		t.Fatalf("Start while down: %v", err)
	}
	bus.SetDown(false)
	pubsubtest.Publish(t, a, "t", "y")
	inb.Expect(t, time.Second, "t", "y")
}
