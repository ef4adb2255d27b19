package eventbusotel_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	eventbusotel "github.com/ae30fb47/eventbus/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

type order struct{ ID string }

var (
	orderPlaced   = eventbus.NewTopic[order]("order.placed")
	stockReserved = eventbus.NewTopic[order]("stock.reserved")
)

// fastRetry retries at once, without jitter, so that tests do not wait.
var fastRetry = eventbus.WithRetry(eventbus.RetryPolicy{
	MaxAttempts: 3, InitialBackoff: time.Microsecond, MaxBackoff: time.Microsecond, Jitter: -1,
})

// tracer is a tracer provider that keeps every ended span in memory.
type tracer struct {
	tp  *sdktrace.TracerProvider
	exp *tracetest.InMemoryExporter
}

func newTracer(t *testing.T) tracer {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tracer{tp: tp, exp: exp}
}

// tracedBus returns a bus traced by a Tracing made with opts and tr's provider.
func (tr tracer) tracedBus(t *testing.T, opts ...eventbusotel.Option) *eventbus.Bus {
	t.Helper()
	tracing := eventbusotel.NewTracing(append([]eventbusotel.Option{eventbusotel.WithTracerProvider(tr.tp)}, opts...)...)
	return eventbus.New(
		eventbus.WithPublishMiddleware(tracing.PublishMiddleware()),
		eventbus.WithMiddleware(tracing.Middleware()),
	)
}

// spans returns the ended spans named name, sorted by their consumer group, then their
// attempt, so that tests address them in a fixed order.
func (tr tracer) spans(name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range tr.exp.GetSpans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	slices.SortStableFunc(out, func(a, b tracetest.SpanStub) int {
		return strings.Compare(attrs(a)["messaging.consumer.group.name"]+attrs(a)["messaging.eventbus.message.delivery_attempt"],
			attrs(b)["messaging.consumer.group.name"]+attrs(b)["messaging.eventbus.message.delivery_attempt"])
	})
	return out
}

// span returns the one ended span named name, or fails the test.
func (tr tracer) span(t *testing.T, name string) tracetest.SpanStub {
	t.Helper()
	s := tr.spans(name)
	if len(s) != 1 {
		t.Fatalf("%d spans named %q; want 1 (all: %v)", len(s), name, tr.names())
	}
	return s[0]
}

func (tr tracer) names() []string {
	var names []string
	for _, s := range tr.exp.GetSpans() {
		names = append(names, s.Name)
	}
	return names
}

// attrs returns a span's attributes as strings.
func attrs(s tracetest.SpanStub) map[string]string { return attrMap(s.Attributes) }

// attrMap returns attributes as strings, by key.
func attrMap(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// links returns the span contexts a span links to.
func links(s tracetest.SpanStub) []trace.SpanContext {
	var out []trace.SpanContext
	for _, l := range s.Links {
		out = append(out, l.SpanContext)
	}
	return out
}

// traceparent is the W3C traceparent of sc.
func traceparent(sc trace.SpanContext) string {
	return fmt.Sprintf("00-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags())
}

func mustSubscribe(t *testing.T, b *eventbus.Bus, topic eventbus.Topic[order], name string,
	h func(context.Context, eventbus.Event[order]) error, opts ...eventbus.SubscribeOption) *eventbus.Subscription {
	t.Helper()
	s, err := eventbus.Subscribe(b, topic, name, h, opts...)
	if err != nil {
		t.Fatalf("Subscribe(%q) = %v; want nil", name, err)
	}
	return s
}

func closeBus(t *testing.T, b *eventbus.Bus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close() = %v; want nil", err)
	}
}

// seen keeps what handlers saw, keyed by subscriber.
type seen struct {
	mu     sync.Mutex
	events map[string]eventbus.Event[order]
	spans  map[string]trace.SpanContext // the span in the handler's ctx
	ctxs   map[string]context.Context
}

func newSeen() *seen {
	return &seen{events: map[string]eventbus.Event[order]{}, spans: map[string]trace.SpanContext{}, ctxs: map[string]context.Context{}}
}

// handler records the event and the handler's span under name, then returns err.
func (s *seen) handler(name string, err error) func(context.Context, eventbus.Event[order]) error {
	return func(ctx context.Context, ev eventbus.Event[order]) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.events[name], s.spans[name], s.ctxs[name] = ev, trace.SpanContextFromContext(ctx), ctx
		return err
	}
}
