package engine

import (
	"log/slog"
	"reflect"
	"runtime"
	"testing"
	"time"
)

// withDefaults fills every zero or negative setting with its default, keeps
// the ones that are set, and raises a burst limit below the steady limit.
func TestConfigWithDefaults(t *testing.T) {
	zero := Config{}.withDefaults()
	negative := Config{
		EventLoops: -1, MaxMessageSize: -1, MaxSSEBody: -1, MaxHeaderBytes: -1, MaxBodyBytes: -1,
		MaxOutboundBytes: -1, MaxOutboundBurst: -1, MaxTotalOutboundBytes: -1, SlowConsumerTimeout: -1,
		MaxInflateRate: -1, MaxPendingUpgrades: -1, HandshakeTimeout: -1, PingInterval: -1, PongWait: -1,
		CloseTimeout: -1, CompressionThreshold: -1, FDHeadroom: -1,
	}.withDefaults()
	want := Config{
		Addr:                  ":8080",
		EventLoops:            runtime.GOMAXPROCS(0),
		MaxMessageSize:        1 << 20,
		MaxSSEBody:            1 << 20,
		MaxHeaderBytes:        8 << 10,
		MaxBodyBytes:          64 << 10,
		MaxOutboundBytes:      4 << 20,
		MaxOutboundBurst:      16 << 20,
		MaxTotalOutboundBytes: 1 << 30,
		SlowConsumerTimeout:   5 * time.Second,
		MaxInflateRate:        32 << 20,
		MaxPendingUpgrades:    1024,
		HandshakeTimeout:      10 * time.Second,
		PingInterval:          30 * time.Second,
		PongWait:              60 * time.Second,
		CloseTimeout:          10 * time.Second,
		CompressionThreshold:  256,
		FDHeadroom:            256,
	}
	for name, got := range map[string]Config{"zero": zero, "negative": negative} {
		want.Logger = slog.Default()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s config filled as\n%+v\nwant\n%+v", name, got, want)
		}
	}

	logger := slog.New(slog.DiscardHandler)
	set := Config{
		Addr: "127.0.0.1:0", EventLoops: 3, MaxMessageSize: 1000, MaxHeaderBytes: 2000, MaxBodyBytes: 3000,
		MaxOutboundBytes: 4000, MaxOutboundBurst: 4500, MaxTotalOutboundBytes: 5000,
		SlowConsumerTimeout: time.Second, MaxInflateRate: 6000, MaxPendingUpgrades: 7,
		HandshakeTimeout: 2 * time.Second, PingInterval: 3 * time.Second, PongWait: 4 * time.Second,
		CloseTimeout: 5 * time.Second, CompressionThreshold: 8, FDHeadroom: 9, Logger: logger,
	}
	got := set.withDefaults()
	want = set
	want.MaxSSEBody = 1000 // follows MaxMessageSize
	if !reflect.DeepEqual(got, want) {
		t.Errorf("set config changed to\n%+v\nwant\n%+v", got, want)
	}

	if got := (Config{MaxOutboundBytes: 1000, MaxOutboundBurst: 999}).withDefaults(); got.MaxOutboundBurst != 4000 {
		t.Errorf("burst below the steady limit: %d, want 4 × 1000", got.MaxOutboundBurst)
	}
}
