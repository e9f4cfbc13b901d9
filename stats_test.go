package pondsocket

import (
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/pondsocket/pondsocket/internal/counter"
	"github.com/pondsocket/pondsocket/internal/engine"
)

// Every counter the engine and the hub keep reaches the Stats snapshot
// (and from there /metrics, checked in cmd/pondsocket): each gets a
// distinct value and each value must come out of collectStats.
// (engine.Stats.IdleTimeouts once never left the engine.)
func TestStatsCarryEveryCounter(t *testing.T) {
	e := engine.New(engine.Config{NoListener: true}, nil)
	h := newHub(Options{}, nil)
	want := map[int64]string{}
	next := int64(1000)
	fill := func(prefix string, v reflect.Value) {
		for i := 0; i < v.NumField(); i++ {
			next++
			switch c := v.Field(i).Addr().Interface().(type) {
			case *atomic.Int64:
				c.Store(next)
			case *counter.Sharded:
				c.Add(i, next) // the counter is fresh: its sum is next
			case *counter.Pair:
				next++
				c.Add(i, next-1, next)
				want[next-1] = prefix + "." + v.Type().Field(i).Name + " (first)"
			default:
				t.Fatalf("%s.%s is neither an atomic.Int64 nor a counter.Sharded nor a counter.Pair", prefix, v.Type().Field(i).Name)
			}
			want[next] = prefix + "." + v.Type().Field(i).Name
		}
	}
	fill("engine.Stats", reflect.ValueOf(e.Stats()).Elem())
	fill("hubStats", reflect.ValueOf(h.Stats()).Elem())
	got := map[int64]bool{}
	st := reflect.ValueOf(collectStats(e, h))
	for i := 0; i < st.NumField(); i++ {
		got[st.Field(i).Int()] = true
	}
	for v, name := range want {
		if !got[v] {
			t.Errorf("%s does not reach Stats", name)
		}
	}
}

// The engine keeps fallback defaults of its own (for its tests); they must
// be the library's defaults, which live in options.go.
func TestEngineDefaultsAgree(t *testing.T) {
	got := engine.New(engine.Config{NoListener: true}, nil).Config()
	want := engineConfig("", ServerOptions{}, mergeOptions(nil))
	for _, f := range []string{"MaxOutboundBytes", "MaxOutboundBurst", "MaxTotalOutboundBytes", "SlowConsumerTimeout",
		"MaxInflateRate", "MaxPendingUpgrades", "FDHeadroom", "HandshakeTimeout", "PingInterval", "PongWait", "CloseTimeout", "EventLoops"} {
		g := reflect.ValueOf(got).FieldByName(f).Interface()
		w := reflect.ValueOf(want).FieldByName(f).Interface()
		if g != w {
			t.Errorf("%s: engine fallback %v, library default %v", f, g, w)
		}
	}
}
