package eventbusotel_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/ae30fb47/eventbus"
	eventbusotel "github.com/ae30fb47/eventbus/otel"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Every benchmark here is end to end, as the core's are: it publishes b.N events to a bus
// with one subscriber and returns once the handler has handled all of them, so ns/event is
// the cost of one event from Publish to the end of its handler, middleware included.

var benchTopic = eventbus.NewTopic[int]("bench")

func runBench(b *testing.B, opts ...eventbus.Option) {
	bus := eventbus.New(opts...)
	defer bus.Close(context.Background())
	var handled, want atomic.Int64
	done := make(chan struct{})
	if _, err := eventbus.Subscribe(bus, benchTopic, "s", func(context.Context, eventbus.Event[int]) error {
		if handled.Add(1) == want.Load() {
			close(done)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		if err := eventbus.Publish(ctx, bus, benchTopic, n, eventbus.WithKey(strconv.Itoa(n%64))); err != nil {
			b.Fatal(err)
		}
	}
	want.Store(int64(n))
	if handled.Load() != int64(n) {
		<-done
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
}

// tracingWith returns the bus options of a Tracing over tp.
func tracingWith(tp *sdktrace.TracerProvider) []eventbus.Option {
	tr := eventbusotel.NewTracing(eventbusotel.WithTracerProvider(tp))
	return []eventbus.Option{eventbus.WithPublishMiddleware(tr.PublishMiddleware()), eventbus.WithMiddleware(tr.Middleware())}
}

// discard is a span processor that drops ended spans: the benchmarks measure making and
// recording spans, not exporting them.
type discard struct{}

func (discard) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discard) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discard) Shutdown(context.Context) error                  { return nil }
func (discard) ForceFlush(context.Context) error                { return nil }

// BenchmarkBare is the reference: the bus without middleware.
func BenchmarkBare(b *testing.B) { runBench(b) }

// BenchmarkHandlerPassThrough: a do-nothing handler middleware, the cost of the core's
// handler hook itself.
func BenchmarkHandlerPassThrough(b *testing.B) {
	runBench(b, eventbus.WithMiddleware(func(next eventbus.Handler) eventbus.Handler { return next }))
}

// BenchmarkPassThrough: do-nothing publish and handler middleware, the cost of both of the
// core's hooks, which Tracing uses.
func BenchmarkPassThrough(b *testing.B) {
	runBench(b,
		eventbus.WithPublishMiddleware(func(next eventbus.PublishFunc) eventbus.PublishFunc { return next }),
		eventbus.WithMiddleware(func(next eventbus.Handler) eventbus.Handler { return next }))
}

// BenchmarkTracingNoopProvider: Tracing with the no-op tracer provider, as when no SDK is
// set up: contexts are still propagated through Metadata.
func BenchmarkTracingNoopProvider(b *testing.B) {
	tr := eventbusotel.NewTracing(eventbusotel.WithTracerProvider(noop.NewTracerProvider()))
	runBench(b, eventbus.WithPublishMiddleware(tr.PublishMiddleware()), eventbus.WithMiddleware(tr.Middleware()))
}

// BenchmarkTracingSampled: every span recorded by the SDK (then dropped).
func BenchmarkTracingSampled(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(discard{}))
	defer tp.Shutdown(context.Background())
	runBench(b, tracingWith(tp)...)
}

// BenchmarkTracingUnsampled: the SDK samples nothing; spans are made but not recorded.
func BenchmarkTracingUnsampled(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithSpanProcessor(discard{}))
	defer tp.Shutdown(context.Background())
	runBench(b, tracingWith(tp)...)
}

// BenchmarkMetricsMiddleware: every attempt timed into the SDK's duration histogram.
func BenchmarkMetricsMiddleware(b *testing.B) {
	m, _ := newMetrics(b)
	runBench(b, eventbus.WithMiddleware(m.Middleware()))
}

// BenchmarkMetricsObserved: the Stats instruments registered (and never collected): the
// hot path is the bare bus's.
func BenchmarkMetricsObserved(b *testing.B) {
	m, _ := newMetrics(b)
	bus := eventbus.New()
	defer bus.Close(context.Background())
	if _, err := m.Observe(bus); err != nil {
		b.Fatal(err)
	}
	runBench(b)
}

// BenchmarkCollect is the cost of one collection of the Stats instruments of a bus with
// 10 topics of 2 subscriptions each: ns/op per collection, paid by the reader's goroutine.
func BenchmarkCollect(b *testing.B) {
	m, reader := newMetrics(b)
	bus := eventbus.New()
	defer bus.Close(context.Background())
	if _, err := m.Observe(bus); err != nil {
		b.Fatal(err)
	}
	for i := range 10 {
		topic := eventbus.NewTopic[int]("topic." + strconv.Itoa(i))
		for _, name := range []string{"a", "b"} {
			if _, err := eventbus.Subscribe(bus, topic, name, func(context.Context, eventbus.Event[int]) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	}
	var rm metricdata.ResourceMetrics
	b.ReportAllocs()
	for b.Loop() {
		if err := reader.Collect(context.Background(), &rm); err != nil {
			b.Fatal(err)
		}
	}
}

// The benchmarks below run the middleware alone, on one goroutine, without a bus: the CPU
// cost of the instrumentation per event, free of the hand-off between goroutines that
// makes the end-to-end figures noisy.

// instrumentEvent returns a function that runs one event through publish and handler
// middleware, as a bus with one subscriber would: publish, then one handling attempt.
func instrumentEvent(pub eventbus.PublishMiddleware, handler eventbus.Middleware) func(ctx context.Context, n int) {
	h := handler(func(context.Context, *eventbus.Delivery) error { return nil })
	var d eventbus.Delivery
	send := pub(func(ctx context.Context, p *eventbus.Publication) error {
		d = eventbus.Delivery{ID: p.ID, Type: p.Type, Source: p.Source, Time: p.Time, Key: p.Key,
			Metadata: p.Metadata, Subscriber: "s", Attempt: 1}
		return h(context.Background(), &d)
	})
	id := uuid.Must(uuid.NewV7())
	return func(ctx context.Context, n int) {
		p := eventbus.Publication{ID: id, Type: "bench", Source: "bench", Key: strconv.Itoa(n % 64), Metadata: eventbus.Metadata{}}
		_ = send(ctx, &p)
	}
}

func benchInstrument(b *testing.B, pub eventbus.PublishMiddleware, handler eventbus.Middleware) {
	event := instrumentEvent(pub, handler)
	ctx := context.Background()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n++
		event(ctx, n)
	}
}

func benchSpans(b *testing.B, sampler sdktrace.Sampler) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler), sdktrace.WithSpanProcessor(discard{}))
	defer tp.Shutdown(context.Background())
	tr := eventbusotel.NewTracing(eventbusotel.WithTracerProvider(tp))
	benchInstrument(b, tr.PublishMiddleware(), tr.Middleware())
}

// BenchmarkInstrumentNone is the reference: pass-through middleware.
func BenchmarkInstrumentNone(b *testing.B) {
	benchInstrument(b, func(next eventbus.PublishFunc) eventbus.PublishFunc { return next },
		func(next eventbus.Handler) eventbus.Handler { return next })
}

func BenchmarkInstrumentSpansNoopProvider(b *testing.B) {
	tr := eventbusotel.NewTracing(eventbusotel.WithTracerProvider(noop.NewTracerProvider()))
	benchInstrument(b, tr.PublishMiddleware(), tr.Middleware())
}

func BenchmarkInstrumentSpansSampled(b *testing.B) { benchSpans(b, sdktrace.AlwaysSample()) }

func BenchmarkInstrumentSpansUnsampled(b *testing.B) { benchSpans(b, sdktrace.NeverSample()) }

func BenchmarkInstrumentProcessDuration(b *testing.B) {
	m, _ := newMetrics(b)
	benchInstrument(b, func(next eventbus.PublishFunc) eventbus.PublishFunc { return next }, m.Middleware())
}
