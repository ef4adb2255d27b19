package natsbridge_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
)

// BenchmarkRoundTrip measures events from bus A to a handler on bus B through a server
// embedded in the same process, over 64 keys: e2e-ns/event is the whole run divided by
// the events, from the first publish until B handled the last. ns/op is the publish on A,
// which waits for room once A's forwarding subscription is full (backpressure), so it
// tracks the forwarding rate. Every event costs a JetStream publish with its ack, a
// delivery and a confirmed ack.
func BenchmarkRoundTrip(b *testing.B) {
	for _, parts := range []int{1, 8, 32} {
		b.Run("partitions="+strconv.Itoa(parts), func(b *testing.B) {
			s := startServer(b)
			cfg := testConfig(s)
			cfg.Partitions = parts
			busA, busB := newBus(b, "bus-a"), newBus(b, "bus-b")
			connect(b, busA, cfg, natsbridge.Forward(steps))
			connect(b, busB, cfg, natsbridge.Receive(steps))
			var handled atomic.Int64
			mustSubscribe(b, busB, steps, "count", func(context.Context, eventbus.Event[step]) error {
				handled.Add(1)
				return nil
			})
			keys := make([]string, 64)
			for i := range keys {
				keys[i] = "k" + strconv.Itoa(i)
			}
			b.ReportAllocs()
			start := time.Now()
			n := 0
			for b.Loop() {
				k := keys[n%len(keys)]
				if err := eventbus.Publish(context.Background(), busA, steps, step{Key: k, Seq: n}, eventbus.WithKey(k)); err != nil {
					b.Fatal(err)
				}
				n++
			}
			eventually(b, time.Minute, func() bool { return handled.Load() == int64(n) }, func() string {
				return "bus B did not handle every event"
			})
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(n), "e2e-ns/event")
		})
	}
}
