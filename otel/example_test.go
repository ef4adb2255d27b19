package eventbusotel_test

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/ae30fb47/eventbus"
	eventbusotel "github.com/ae30fb47/eventbus/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// A request publishes an order; the inventory handler reserves stock and publishes again.
// The spans form one trace; each is printed with its parent and the span it links to
// (IDs and times vary from run to run, so they are left out).
func Example() {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	tracing := eventbusotel.NewTracing(eventbusotel.WithTracerProvider(tp))
	bus := eventbus.New(
		eventbus.WithPublishMiddleware(tracing.PublishMiddleware()),
		eventbus.WithMiddleware(tracing.Middleware()),
	)
	placed := eventbus.NewTopic[string]("order.placed")
	reserved := eventbus.NewTopic[string]("stock.reserved")
	_, _ = eventbus.Subscribe(bus, placed, "inventory", func(ctx context.Context, ev eventbus.Event[string]) error {
		// Publishing with the handler's ctx makes the next span a child of this one.
		return eventbus.Publish(ctx, bus, reserved, ev.Payload, eventbus.WithKey(ev.Key))
	})
	_, _ = eventbus.Subscribe(bus, reserved, "notification", func(context.Context, eventbus.Event[string]) error {
		return nil
	})

	ctx, span := tp.Tracer("shop").Start(context.Background(), "POST /orders")
	if err := eventbus.Publish(ctx, bus, placed, "o-1", eventbus.WithKey("o-1")); err != nil {
		fmt.Println(err)
	}
	span.End()
	_ = bus.Close(context.Background())

	spans := exp.GetSpans()
	name := map[string]string{} // span ID -> name
	for _, s := range spans {
		name[s.SpanContext.SpanID().String()] = s.Name
	}
	depth := func(s tracetest.SpanStub) int { // the span's ancestors: it is a chain here
		n := 0
		for p := s.Parent; p.IsValid(); n++ {
			i := slices.IndexFunc(spans, func(o tracetest.SpanStub) bool { return o.SpanContext.SpanID() == p.SpanID() })
			p = spans[i].Parent
		}
		return n
	}
	slices.SortFunc(spans, func(a, b tracetest.SpanStub) int { return cmp.Compare(depth(a), depth(b)) })
	for _, s := range spans {
		line := fmt.Sprintf("%-23s %-8s parent: %-23s", s.Name, s.SpanKind, cmp.Or(name[s.Parent.SpanID().String()], "-"))
		for _, l := range s.Links {
			line += " link: " + name[l.SpanContext.SpanID().String()]
		}
		fmt.Println(strings.TrimRight(line, " "))
	}
	// Output:
	// POST /orders            internal parent: -
	// publish order.placed    producer parent: POST /orders
	// process order.placed    consumer parent: publish order.placed    link: publish order.placed
	// publish stock.reserved  producer parent: process order.placed
	// process stock.reserved  consumer parent: publish stock.reserved  link: publish stock.reserved
}

// Metrics report a bus's Stats when they are collected, here by a manual reader.
func ExampleMetrics() {
	reader := sdkmetric.NewManualReader()
	metrics, err := eventbusotel.NewMetrics(eventbusotel.WithMeterProvider(
		sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	if err != nil {
		fmt.Println(err)
		return
	}
	bus := eventbus.New(eventbus.WithMiddleware(metrics.Middleware()))
	reg, err := metrics.Observe(bus)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer reg.Unregister()

	placed := eventbus.NewTopic[string]("order.placed")
	_, _ = eventbus.Subscribe(bus, placed, "inventory", func(context.Context, eventbus.Event[string]) error {
		return nil
	}, eventbus.WithBuffer(100))
	for _, id := range []string{"o-1", "o-2", "o-3"} {
		if err := eventbus.Publish(context.Background(), bus, placed, id); err != nil {
			fmt.Println(err)
		}
	}
	// Close handles what was published; the final figures stay observable.
	_ = bus.Close(context.Background())

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		fmt.Println(err)
		return
	}
	ms := rm.ScopeMetrics[0].Metrics
	slices.SortFunc(ms, func(a, b metricdata.Metrics) int { return strings.Compare(a.Name, b.Name) })
	for _, m := range ms {
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			for _, p := range d.DataPoints {
				group, _ := p.Attributes.Value("messaging.consumer.group.name")
				fmt.Printf("%-38s %-9s %d\n", m.Name, group.AsString(), p.Value)
			}
		case metricdata.Histogram[float64]:
			for _, p := range d.DataPoints {
				group, _ := p.Attributes.Value("messaging.consumer.group.name")
				fmt.Printf("%-38s %-9s %d attempts\n", m.Name, group.AsString(), p.Count)
			}
		}
	}
	// Output:
	// eventbus.subscription.capacity         inventory 100
	// eventbus.subscription.dead_lettered    inventory 0
	// eventbus.subscription.duplicates       inventory 0
	// eventbus.subscription.failed_attempts  inventory 0
	// eventbus.subscription.handled          inventory 3
	// eventbus.subscription.in_flight        inventory 0
	// eventbus.subscription.queued           inventory 0
	// eventbus.subscription.retries          inventory 0
	// messaging.client.consumed.messages     inventory 3
	// messaging.client.sent.messages                   3
	// messaging.process.duration             inventory 3 attempts
}
