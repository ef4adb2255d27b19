// Command otel-trace prints the trace of one order flowing through three handlers on a bus
// traced with OpenTelemetry: "order.placed" goes to inventory, which reserves stock and
// publishes "stock.reserved" to notification, and to billing, whose first attempt fails and
// whose retry succeeds. Every span is printed in its place in the trace, with its kind,
// attributes, status and links. Trace and span IDs change from run to run, so they are
// replaced by labels (T1, S1, S2, ...) given in the order the tree is printed, and times
// are left out.
//
//	go run ./examples/otel-trace
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/ae30fb47/eventbus"
	eventbusotel "github.com/ae30fb47/eventbus/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// Order is the payload of both topics.
type Order struct {
	ID  string
	SKU string
}

var (
	orderPlaced   = eventbus.NewTopic[Order]("order.placed")
	stockReserved = eventbus.NewTopic[Order]("stock.reserved")
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "otel-trace:", err)
		os.Exit(1)
	}
}

// run places one order on a traced bus and prints its trace to w.
func run(w io.Writer) error {
	// An SDK tracer provider that keeps ended spans in memory; a service would export
	// them (OTLP, say) with a batching span processor instead.
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	shop := tp.Tracer("shop")

	tracing := eventbusotel.NewTracing(eventbusotel.WithTracerProvider(tp))
	bus := eventbus.New(
		eventbus.WithPublishMiddleware(tracing.PublishMiddleware()),
		eventbus.WithMiddleware(tracing.Middleware()),
		eventbus.WithSource("shop"),
	)

	// inventory reserves the stock in a span of its own (a child of its consumer span, which
	// the handler's ctx carries) and publishes with the same ctx.
	if _, err := eventbus.Subscribe(bus, orderPlaced, "inventory", func(ctx context.Context, ev eventbus.Event[Order]) error {
		_, span := shop.Start(ctx, "reserve stock")
		span.End()
		return eventbus.Publish(ctx, bus, stockReserved, ev.Payload, eventbus.WithKey(ev.Key))
	}); err != nil {
		return err
	}
	// billing fails its first attempt; the bus retries it.
	var charges atomic.Int32
	if _, err := eventbus.Subscribe(bus, orderPlaced, "billing", func(context.Context, eventbus.Event[Order]) error {
		if charges.Add(1) == 1 {
			return errors.New("payment service unavailable")
		}
		return nil
	}, eventbus.WithRetry(eventbus.RetryPolicy{InitialBackoff: time.Millisecond})); err != nil {
		return err
	}
	// notification sends an email; it prints the trace context its event carried.
	carried := make(chan string, 1)
	if _, err := eventbus.Subscribe(bus, stockReserved, "notification", func(ctx context.Context, ev eventbus.Event[Order]) error {
		_, span := shop.Start(ctx, "send email")
		span.End()
		carried <- ev.Metadata["traceparent"]
		return nil
	}); err != nil {
		return err
	}

	// The request that places the order.
	ctx, request := shop.Start(context.Background(), "POST /orders", trace.WithSpanKind(trace.SpanKindServer))
	err := eventbus.Publish(ctx, bus, orderPlaced, Order{ID: "o-1", SKU: "book"}, eventbus.WithKey("o-1"))
	request.End()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := bus.Close(ctx); err != nil { // every handler has run, so every span has ended
		return err
	}

	labels := newLabels()
	printTree(w, exp.GetSpans(), labels)
	fmt.Fprintf(w, "\nstock.reserved carried traceparent %s\n", labels.traceparent(<-carried))
	return nil
}
