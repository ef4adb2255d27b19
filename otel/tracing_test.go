package eventbusotel_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	eventbusotel "github.com/ae30fb47/eventbus/otel"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestSpansOfOnePublish: one publish to two subscribers makes a producer span, child of the
// publisher's span, and a consumer span per subscriber, child of and linked to the producer
// span, with the messaging attributes; the handlers' ctx carries their consumer span, and
// the event carries the producer span's context as traceparent.
func TestSpansOfOnePublish(t *testing.T) {
	tr := newTracer(t)
	b := tr.tracedBus(t)
	got := newSeen()
	mustSubscribe(t, b, orderPlaced, "inventory", got.handler("inventory", nil))
	mustSubscribe(t, b, orderPlaced, "billing", got.handler("billing", nil))

	ctx, root := tr.tp.Tracer("test").Start(context.Background(), "POST /orders")
	err := eventbus.Publish(ctx, b, orderPlaced, order{ID: "o-1"},
		eventbus.WithKey("o-1"), eventbus.WithMetadata(eventbus.Metadata{"tenant": "t1"}))
	if err != nil {
		t.Fatal(err)
	}
	root.End()
	closeBus(t, b)

	pub := tr.span(t, "publish order.placed")
	if pub.SpanKind != trace.SpanKindProducer || pub.Parent.SpanID() != root.SpanContext().SpanID() ||
		pub.SpanContext.TraceID() != root.SpanContext().TraceID() || len(pub.Links) != 0 {
		t.Errorf("producer span: kind %v, parent %v, trace %v, links %v; want producer, child of %v, no links",
			pub.SpanKind, pub.Parent.SpanID(), pub.SpanContext.TraceID(), pub.Links, root.SpanContext().SpanID())
	}
	id := got.events["inventory"].ID.String()
	wantPub := map[string]string{
		"messaging.system":               "eventbus",
		"messaging.destination.name":     "order.placed",
		"messaging.operation.type":       "send",
		"messaging.operation.name":       "publish",
		"messaging.message.id":           id,
		"messaging.eventbus.message.key": "o-1",
	}
	if a := attrs(pub); !maps.Equal(a, wantPub) {
		t.Errorf("producer span attributes = %v; want %v", a, wantPub)
	}
	if pub.Status.Code != codes.Unset {
		t.Errorf("producer span status = %v; want Unset", pub.Status)
	}
	if pub.InstrumentationScope.Name != eventbusotel.ScopeName || pub.InstrumentationScope.SchemaURL != eventbusotel.SchemaURL {
		t.Errorf("scope = %+v; want %s with %s", pub.InstrumentationScope, eventbusotel.ScopeName, eventbusotel.SchemaURL)
	}

	consumers := tr.spans("process order.placed")
	if len(consumers) != 2 {
		t.Fatalf("%d consumer spans; want 2 (spans: %v)", len(consumers), tr.names())
	}
	for i, sub := range []string{"billing", "inventory"} {
		c := consumers[i]
		if c.SpanKind != trace.SpanKindConsumer || c.Parent.SpanID() != pub.SpanContext.SpanID() ||
			c.SpanContext.TraceID() != pub.SpanContext.TraceID() {
			t.Errorf("%s: kind %v, parent %v; want consumer, child of the producer span %v", sub, c.SpanKind, c.Parent.SpanID(), pub.SpanContext.SpanID())
		}
		if l := links(c); len(l) != 1 || !l[0].Equal(pub.SpanContext.WithRemote(true)) {
			t.Errorf("%s: links %v; want one, to the producer span %v", sub, l, pub.SpanContext)
		}
		want := map[string]string{
			"messaging.system":                            "eventbus",
			"messaging.destination.name":                  "order.placed",
			"messaging.consumer.group.name":               sub,
			"messaging.operation.type":                    "process",
			"messaging.operation.name":                    "process",
			"messaging.message.id":                        id,
			"messaging.eventbus.message.key":              "o-1",
			"messaging.eventbus.message.delivery_attempt": "1",
		}
		if a := attrs(c); !maps.Equal(a, want) {
			t.Errorf("%s: consumer span attributes = %v; want %v", sub, a, want)
		}
		if got.spans[sub].SpanID() != c.SpanContext.SpanID() {
			t.Errorf("%s: the handler's ctx carries span %v; want its consumer span %v", sub, got.spans[sub].SpanID(), c.SpanContext.SpanID())
		}
		md := got.events[sub].Metadata
		if md["traceparent"] != traceparent(pub.SpanContext) || md["tenant"] != "t1" {
			t.Errorf("%s: event Metadata = %v; want traceparent %s and the publisher's tenant", sub, md, traceparent(pub.SpanContext))
		}
	}
}

// TestConsumerNewTrace: with ConsumerNewTrace, a consumer span is the root of a new trace,
// linked to the producer span.
func TestConsumerNewTrace(t *testing.T) {
	tr := newTracer(t)
	b := tr.tracedBus(t, eventbusotel.WithConsumerSpans(eventbusotel.ConsumerNewTrace))
	got := newSeen()
	mustSubscribe(t, b, orderPlaced, "inventory", got.handler("inventory", nil))
	if err := eventbus.Publish(context.Background(), b, orderPlaced, order{ID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	closeBus(t, b)

	pub, c := tr.span(t, "publish order.placed"), tr.span(t, "process order.placed")
	if c.Parent.IsValid() || c.SpanContext.TraceID() == pub.SpanContext.TraceID() {
		t.Errorf("consumer span: parent %v, trace %v; want a root in a trace other than the producer's %v",
			c.Parent, c.SpanContext.TraceID(), pub.SpanContext.TraceID())
	}
	if l := links(c); len(l) != 1 || l[0].SpanID() != pub.SpanContext.SpanID() || l[0].TraceID() != pub.SpanContext.TraceID() {
		t.Errorf("consumer span links = %v; want one, to the producer span %v", l, pub.SpanContext)
	}
	if got.spans["inventory"].SpanID() != c.SpanContext.SpanID() {
		t.Errorf("the handler's ctx carries span %v; want its consumer span %v", got.spans["inventory"], c.SpanContext)
	}
}

// TestPublishFromHandler: a handler that publishes with its ctx makes a producer span that
// is the child of its consumer span, so one request and every handler it sets off make one
// trace.
func TestPublishFromHandler(t *testing.T) {
	tr := newTracer(t)
	b := tr.tracedBus(t)
	mustSubscribe(t, b, orderPlaced, "inventory", func(ctx context.Context, ev eventbus.Event[order]) error {
		return eventbus.Publish(ctx, b, stockReserved, ev.Payload)
	})
	mustSubscribe(t, b, stockReserved, "notification", func(context.Context, eventbus.Event[order]) error { return nil })
	ctx, root := tr.tp.Tracer("test").Start(context.Background(), "POST /orders")
	if err := eventbus.Publish(ctx, b, orderPlaced, order{ID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	root.End()
	closeBus(t, b)

	chain := []tracetest.SpanStub{
		tr.span(t, "POST /orders"),
		tr.span(t, "publish order.placed"),
		tr.span(t, "process order.placed"),
		tr.span(t, "publish stock.reserved"),
		tr.span(t, "process stock.reserved"),
	}
	for i := 1; i < len(chain); i++ {
		if chain[i].Parent.SpanID() != chain[i-1].SpanContext.SpanID() || chain[i].SpanContext.TraceID() != root.SpanContext().TraceID() {
			t.Errorf("%q: parent %v in trace %v; want %q (%v) in trace %v", chain[i].Name, chain[i].Parent.SpanID(),
				chain[i].SpanContext.TraceID(), chain[i-1].Name, chain[i-1].SpanContext.SpanID(), root.SpanContext().TraceID())
		}
	}
	// The event the handler published names the first as its correlation and cause, on
	// both of its spans; the first has neither.
	first := attrs(chain[1])["messaging.message.id"]
	for _, s := range chain[3:] {
		a := attrs(s)
		if a["messaging.message.conversation_id"] != first || a["messaging.eventbus.message.causation_id"] != first {
			t.Errorf("%q: conversation_id %q, causation_id %q; want both %s", s.Name,
				a["messaging.message.conversation_id"], a["messaging.eventbus.message.causation_id"], first)
		}
	}
	for _, s := range chain[1:3] {
		if a := attrs(s); a["messaging.message.conversation_id"] != "" || a["messaging.eventbus.message.causation_id"] != "" {
			t.Errorf("%q, published outside a handler: attributes %v; want no conversation or causation", s.Name, a)
		}
	}
}

// TestCarriedContext: an event published with a trace context already in its Metadata (as
// one that came from a broker) gets a producer span that continues it, or links to it when
// the publisher's ctx has a span or consumer spans start new traces; the event leaves with
// the new producer span's context in place of the one it came with.
func TestCarriedContext(t *testing.T) {
	state, err := trace.ParseTraceState("vendor=v1")
	if err != nil {
		t.Fatal(err)
	}
	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceState: state,
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
		Remote:     true,
	})
	carried := eventbus.Metadata{"traceparent": traceparent(remote), "tracestate": state.String(), "tenant": "t1"}
	tests := []struct {
		name       string
		opts       []eventbusotel.Option
		ctxSpan    bool
		wantParent string // "remote", "ctx" or "" for a root
		wantLink   bool
	}{
		{name: "continues the carried trace", wantParent: "remote"},
		{name: "publisher's span wins, with a link", ctxSpan: true, wantParent: "ctx", wantLink: true},
		{name: "new trace, with a link", opts: []eventbusotel.Option{eventbusotel.WithConsumerSpans(eventbusotel.ConsumerNewTrace)}, wantLink: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracer(t)
			b := tr.tracedBus(t, tt.opts...)
			got := newSeen()
			mustSubscribe(t, b, orderPlaced, "inventory", got.handler("inventory", nil))
			ctx := context.Background()
			var ctxSpan trace.Span
			if tt.ctxSpan {
				ctx, ctxSpan = tr.tp.Tracer("test").Start(ctx, "local")
				defer ctxSpan.End()
			}
			if err := eventbus.Publish(ctx, b, orderPlaced, order{ID: "o-1"}, eventbus.WithMetadata(carried)); err != nil {
				t.Fatal(err)
			}
			closeBus(t, b)

			pub := tr.span(t, "publish order.placed")
			switch tt.wantParent {
			case "remote":
				if !pub.Parent.Equal(remote) {
					t.Errorf("producer span's parent = %v; want the carried %v", pub.Parent, remote)
				}
			case "ctx":
				if pub.Parent.SpanID() != ctxSpan.SpanContext().SpanID() {
					t.Errorf("producer span's parent = %v; want the publisher's span %v", pub.Parent, ctxSpan.SpanContext())
				}
			default:
				if pub.Parent.IsValid() {
					t.Errorf("producer span's parent = %v; want none", pub.Parent)
				}
			}
			var wantLinks []trace.SpanContext
			if tt.wantLink {
				wantLinks = []trace.SpanContext{remote}
			}
			if l := links(pub); len(l) != len(wantLinks) || (len(l) == 1 && (l[0].SpanID() != remote.SpanID() || l[0].TraceID() != remote.TraceID())) {
				t.Errorf("producer span links = %v; want %v", l, wantLinks)
			}
			md := got.events["inventory"].Metadata
			if md["traceparent"] != traceparent(pub.SpanContext) || md["tenant"] != "t1" {
				t.Errorf("event Metadata = %v; want the producer span's traceparent %s and the tenant", md, traceparent(pub.SpanContext))
			}
			wantState := pub.SpanContext.TraceState().String()
			if tt.wantParent == "remote" && wantState != "vendor=v1" {
				t.Errorf("producer span's tracestate = %q; want the carried vendor=v1", wantState)
			}
			if md["tracestate"] != wantState {
				t.Errorf("event tracestate = %q; want the producer span's %q", md["tracestate"], wantState)
			}
			if carried["traceparent"] != traceparent(remote) {
				t.Errorf("the publisher's Metadata changed: %v", carried)
			}
		})
	}
}

// TestFailedAttempts: every attempt has its span, numbered; a failed one ends with status
// Error and an error.type, and a panic is recorded as an exception event, then reaches the
// bus unchanged, with the handler's stack.
func TestFailedAttempts(t *testing.T) {
	tr := newTracer(t)
	b := tr.tracedBus(t)
	attempt := 0
	mustSubscribe(t, b, orderPlaced, "billing", func(context.Context, eventbus.Event[order]) error {
		switch attempt++; attempt {
		case 1:
			return errors.New("card declined")
		case 2:
			panicInHandler()
		}
		return nil
	}, fastRetry, eventbus.WithConcurrency(1))
	dead := make(chan eventbus.DeadLetter, 1)
	mustSubscribe(t, b, orderPlaced, "fraud", func(context.Context, eventbus.Event[order]) error {
		panicInHandler()
		return nil
	}, eventbus.WithRetry(eventbus.RetryPolicy{MaxAttempts: 1}), eventbus.WithDeadLetter(eventbus.DeadLetterFunc(
		func(_ context.Context, dl eventbus.DeadLetter) error { dead <- dl; return nil })))
	if err := eventbus.Publish(context.Background(), b, orderPlaced, order{ID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	closeBus(t, b)

	spans := tr.spans("process order.placed") // billing 1, 2, 3, then fraud 1
	if len(spans) != 4 {
		t.Fatalf("%d consumer spans; want 4 (spans: %v)", len(spans), tr.names())
	}
	want := []struct {
		attempt, errType, status string
	}{
		{"1", "*errors.errorString", "card declined"},
		{"2", "panic", "panic: boom"},
		{"3", "", ""},
		{"1", "panic", "panic: boom"},
	}
	for i, w := range want {
		s, a := spans[i], attrs(spans[i])
		if a["messaging.eventbus.message.delivery_attempt"] != w.attempt || a["error.type"] != w.errType {
			t.Errorf("span %d: attempt %s, error.type %q; want %s, %q", i, a["messaging.eventbus.message.delivery_attempt"], a["error.type"], w.attempt, w.errType)
		}
		wantCode := codes.Error
		if w.status == "" {
			wantCode = codes.Unset
		}
		if s.Status.Code != wantCode || s.Status.Description != w.status {
			t.Errorf("span %d: status %v; want %v %q", i, s.Status, wantCode, w.status)
		}
		if w.errType != "panic" {
			continue
		}
		if len(s.Events) != 1 || s.Events[0].Name != "exception" {
			t.Fatalf("span %d: events %v; want one exception", i, s.Events)
		}
		ev := attrMap(s.Events[0].Attributes)
		if ev["exception.type"] != "string" || ev["exception.message"] != "boom" || !strings.Contains(ev["exception.stacktrace"], "panicInHandler") {
			t.Errorf("span %d: exception %v; want type string, message boom, and a stack through panicInHandler", i, ev)
		}
	}
	dl := <-dead
	var pe *eventbus.PanicError
	if !errors.As(dl.Err, &pe) || pe.Value != "boom" || !strings.Contains(string(pe.Stack), "panicInHandler") {
		t.Errorf("dead letter error = %v; want the bus's *PanicError of boom with the handler's stack", dl.Err)
	}
}

func panicInHandler() { panic("boom") }

// TestTimedOutAttempt: an attempt cut short by the handler timeout is a failure, even when
// the handler then returns nil.
func TestTimedOutAttempt(t *testing.T) {
	tr := newTracer(t)
	b := tr.tracedBus(t)
	mustSubscribe(t, b, orderPlaced, "slow", func(ctx context.Context, _ eventbus.Event[order]) error {
		<-ctx.Done()
		return nil
	}, eventbus.WithHandlerTimeout(time.Millisecond), eventbus.WithRetry(eventbus.RetryPolicy{MaxAttempts: 1}),
		eventbus.WithDeadLetter(eventbus.DiscardDeadLetters))
	if err := eventbus.Publish(context.Background(), b, orderPlaced, order{ID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	closeBus(t, b)
	s := tr.span(t, "process order.placed")
	if a := attrs(s); a["error.type"] != "timeout" || s.Status.Code != codes.Error || !strings.Contains(s.Status.Description, "timed out") {
		t.Errorf("span: error.type %q, status %v; want timeout, Error with the timeout's cause", a["error.type"], s.Status)
	}
}

type refusedError struct{}

func (refusedError) Error() string { return "refused" }

// TestFailedPublish: a Publish that returns an error ends its producer span with status
// Error and the error's type.
func TestFailedPublish(t *testing.T) {
	tr := newTracer(t)
	tracing := eventbusotel.NewTracing(eventbusotel.WithTracerProvider(tr.tp))
	refuse := func(eventbus.PublishFunc) eventbus.PublishFunc {
		return func(context.Context, *eventbus.Publication) error { return refusedError{} }
	}
	b := eventbus.New(eventbus.WithPublishMiddleware(tracing.PublishMiddleware(), refuse))
	if err := eventbus.Publish(context.Background(), b, orderPlaced, order{ID: "o-1"}); !errors.As(err, new(refusedError)) {
		t.Fatalf("Publish() = %v; want refused", err)
	}
	closeBus(t, b)
	s := tr.span(t, "publish order.placed")
	if a := attrs(s); a["error.type"] != "eventbusotel_test.refusedError" || s.Status.Code != codes.Error || s.Status.Description != "refused" {
		t.Errorf("producer span: error.type %q, status %v; want eventbusotel_test.refusedError, Error refused", a["error.type"], s.Status)
	}
}

// TestConsumerWithoutProducerSpan: a bus with the handler middleware only makes root
// consumer spans without links, as nothing carries a context to them.
func TestConsumerWithoutProducerSpan(t *testing.T) {
	tr := newTracer(t)
	tracing := eventbusotel.NewTracing(eventbusotel.WithTracerProvider(tr.tp))
	b := eventbus.New(eventbus.WithMiddleware(tracing.Middleware()))
	mustSubscribe(t, b, orderPlaced, "inventory", func(context.Context, eventbus.Event[order]) error { return nil })
	if err := eventbus.Publish(context.Background(), b, orderPlaced, order{ID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	closeBus(t, b)
	s := tr.span(t, "process order.placed")
	if s.Parent.IsValid() || len(s.Links) != 0 {
		t.Errorf("consumer span: parent %v, links %v; want a root without links", s.Parent, s.Links)
	}
}

// TestBaggageThroughPropagator: with a propagator that carries baggage, the handler's ctx
// has the publisher's baggage.
func TestBaggageThroughPropagator(t *testing.T) {
	tr := newTracer(t)
	b := tr.tracedBus(t, eventbusotel.WithPropagator(
		propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})))
	got := newSeen()
	mustSubscribe(t, b, orderPlaced, "inventory", got.handler("inventory", nil))
	member, err := baggage.NewMember("tenant", "t1")
	if err != nil {
		t.Fatal(err)
	}
	bag, err := baggage.New(member)
	if err != nil {
		t.Fatal(err)
	}
	ctx := baggage.ContextWithBaggage(context.Background(), bag)
	if err := eventbus.Publish(ctx, b, orderPlaced, order{ID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	closeBus(t, b)
	if v := baggage.FromContext(got.ctxs["inventory"]).Member("tenant").Value(); v != "t1" {
		t.Errorf("handler's baggage tenant = %q; want t1 (Metadata %v)", v, got.events["inventory"].Metadata)
	}
	if got.events["inventory"].Metadata["baggage"] != "tenant=t1" {
		t.Errorf("event Metadata = %v; want baggage tenant=t1", got.events["inventory"].Metadata)
	}
}

func TestWithConsumerSpansRejectsUnknownMode(t *testing.T) {
	defer func() {
		if r := recover(); r != "eventbusotel: WithConsumerSpans: unknown mode" {
			t.Errorf("panic = %v; want the unknown-mode message", r)
		}
	}()
	eventbusotel.WithConsumerSpans(7)
}
