package eventbus

import (
	"context"
	"runtime"
	"slices"

	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// Every benchmark here is end to end: it publishes b.N events and returns once every
// subscriber has handled all of them, so ns/op is the cost of one event from Publish to
// the end of its handler.

type benchPayload struct{ N, Key int }

var benchTopic = NewTopic[benchPayload]("bench")

// runBench publishes b.N events to a bus with subs subscribers and waits for all handlers.
func runBench(b *testing.B, subs int, opts ...PublishOption) {
	runBenchWith(b, subs, nil, opts...)
}

func runBenchWith(b *testing.B, subs int, sopts []SubscribeOption, opts ...PublishOption) {
	bus := New()
	defer bus.Close(context.Background())
	var handled atomic.Int64
	done := make(chan struct{})
	want := int64(0)
	for i := range subs {
		_, err := Subscribe(bus, benchTopic, "s"+strconv.Itoa(i), func(_ context.Context, ev Event[benchPayload]) error {
			if handled.Add(1) == atomic.LoadInt64(&want) {
				close(done)
			}
			return nil
		}, sopts...)
		if err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		n++
		if err := Publish(ctx, bus, benchTopic, benchPayload{N: n}, opts...); err != nil {
			b.Fatal(err)
		}
	}
	atomic.StoreInt64(&want, int64(n*subs))
	if handled.Load() != int64(n*subs) {
		<-done
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
}

func BenchmarkOneSubscriber(b *testing.B) { runBench(b, 1) }

func BenchmarkTenSubscribers(b *testing.B) { runBench(b, 10) }

func BenchmarkOneSubscriberConc1(b *testing.B) {
	runBenchWith(b, 1, []SubscribeOption{WithConcurrency(1)})
}

// BenchmarkChannel is the reference: the same end-to-end measure through a plain buffered
// channel and one consumer goroutine, with no envelope, ordering or retries.
func BenchmarkChannel(b *testing.B) {
	ch := make(chan benchPayload, DefaultBuffer)
	done := make(chan int)
	go func() {
		n := 0
		for range ch {
			n++
		}
		done <- n
	}()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		ch <- benchPayload{N: n}
	}
	close(ch)
	if got := <-done; got != n {
		b.Fatalf("channel delivered %d of %d", got, n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
}

// BenchmarkThousandKeysOrdered publishes round-robin over 1,000 keys and checks in the
// handler that each key's events arrive in publish order.
func BenchmarkThousandKeysOrdered(b *testing.B) {
	const keys = 1000
	names := make([]string, keys)
	for i := range names {
		names[i] = "key-" + strconv.Itoa(i)
	}
	bus := New()
	defer bus.Close(context.Background())
	// One event per key runs at a time, and the bus orders runs of a key, so the handler
	// may keep per-key state without a lock.
	next := make([]int, keys)
	var handled, bad atomic.Int64
	_, err := Subscribe(bus, benchTopic, "ordered", func(_ context.Context, ev Event[benchPayload]) error {
		if ev.Payload.N != next[ev.Payload.Key] {
			bad.Add(1)
		}
		next[ev.Payload.Key] = ev.Payload.N + 1
		handled.Add(1)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		k := n % keys
		if err := Publish(ctx, bus, benchTopic, benchPayload{N: n / keys, Key: k}, WithKey(names[k])); err != nil {
			b.Fatal(err)
		}
		n++
	}
	for handled.Load() != int64(n) {
		runtime.Gosched()
	}
	b.StopTimer()
	if bad.Load() > 0 {
		b.Fatalf("%d events out of order", bad.Load())
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
}

// BenchmarkIdleLatency publishes one event at a time and waits until its handler has run,
// so the bus is idle at every publish: it reports the median and 99th percentile of the
// time from Publish to the handler's signal reaching the publisher.
func BenchmarkIdleLatency(b *testing.B) {
	bus := New()
	defer bus.Close(context.Background())
	handled := make(chan struct{})
	_, err := Subscribe(bus, benchTopic, "latency", func(context.Context, Event[benchPayload]) error {
		handled <- struct{}{}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	lat := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		if err := Publish(ctx, bus, benchTopic, benchPayload{}); err != nil {
			b.Fatal(err)
		}
		<-handled
		if len(lat) < cap(lat) {
			lat = append(lat, time.Since(start))
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}
