package eventbusotel

import (
	"context"
	"fmt"
	"maps"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/ae30fb47/eventbus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Tracing makes the spans of a bus: a producer span around every Publish, and a consumer
// span around every handling attempt, connected through the trace context that the
// producer writes into the event's Metadata. Make one with [NewTracing] and give both of
// its middleware to eventbus.New:
//
//	tr := eventbusotel.NewTracing(eventbusotel.WithTracerProvider(tp))
//	bus := eventbus.New(
//		eventbus.WithPublishMiddleware(tr.PublishMiddleware()),
//		eventbus.WithMiddleware(tr.Middleware()),
//	)
//
// A Tracing is safe for concurrent use and may serve several buses.
type Tracing struct {
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	fields     []string // the Metadata entries the propagator writes
	newTrace   bool     // ConsumerNewTrace

	mu     sync.Mutex
	topics atomic.Pointer[map[string]*producerInfo] // copied on write, under mu
}

// NewTracing returns a Tracing configured by opts: [WithTracerProvider], [WithPropagator]
// and [WithConsumerSpans] apply; others are ignored.
func NewTracing(opts ...Option) *Tracing {
	c := newConfig(opts)
	t := &Tracing{
		tracer:     c.tracerProvider.Tracer(ScopeName, trace.WithSchemaURL(SchemaURL)),
		propagator: c.propagator,
		fields:     c.propagator.Fields(),
		newTrace:   c.consumerSpans == ConsumerNewTrace,
	}
	t.topics.Store(&map[string]*producerInfo{})
	return t
}

// producerInfo is what the producer spans of one topic share.
type producerInfo struct {
	name string
	opts []trace.SpanStartOption
}

// producer returns the producer span settings of topic, made on first use.
func (t *Tracing) producer(topic string) *producerInfo {
	if p := (*t.topics.Load())[topic]; p != nil {
		return p
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	m := *t.topics.Load()
	if p := m[topic]; p != nil {
		return p
	}
	p := &producerInfo{
		name: operationPublish + " " + topic,
		opts: []trace.SpanStartOption{
			trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(
				systemAttr,
				semconv.MessagingDestinationName(topic),
				semconv.MessagingOperationTypeSend,
				semconv.MessagingOperationName(operationPublish),
			),
		},
	}
	m = maps.Clone(m)
	m[topic] = p
	t.topics.Store(&m)
	return p
}

// PublishMiddleware returns the middleware that makes a producer span (kind PRODUCER,
// named "publish <topic>") around every Publish, and writes that span's context into the
// event's Metadata through the propagator (as traceparent and tracestate by default), so
// that consumer spans, here or across a broker, connect to it. The span lasts as long as
// Publish: through waits for buffer room, and with eventbus.WithWait, until every
// subscriber is done. A Publish that returns an error ends its span with status Error.
//
// The producer span's parent is the span in the publisher's ctx, if there is one: a
// publish from a handler is the child of that handler's consumer span. If the ctx has no
// span but the event already carries a trace context in its Metadata (an event that came
// from a broker and is published again here), that context is the parent, unless consumer
// spans start new traces ([ConsumerNewTrace]): then the producer span is a root. When the
// context the event carried is not the parent, the producer span links to it. Either way,
// the event leaves with the producer span's context in place of the one it came with.
func (t *Tracing) PublishMiddleware() eventbus.PublishMiddleware {
	return func(next eventbus.PublishFunc) eventbus.PublishFunc {
		return func(ctx context.Context, p *eventbus.Publication) error {
			info := t.producer(p.Type)
			carrier := propagation.MapCarrier(p.Metadata)
			parent, opts := ctx, info.opts
			if len(p.Metadata) > 0 {
				own := trace.SpanContextFromContext(ctx)
				carried := t.propagator.Extract(ctx, carrier)
				if sc := trace.SpanContextFromContext(carried); sc.IsValid() && !sc.Equal(own) {
					if !own.IsValid() && !t.newTrace {
						parent = carried
					} else {
						opts = withLink(opts, sc)
					}
				}
				for _, f := range t.fields {
					delete(p.Metadata, f)
				}
			}
			ctx, span := t.tracer.Start(parent, info.name, opts...)
			if span.IsRecording() {
				kv := [...]attribute.KeyValue{semconv.MessagingMessageID(p.ID.String()), MessageKeyKey.String(p.Key)}
				span.SetAttributes(withChain(withKey(kv[:], p.Key), p.Metadata)...)
			}
			t.propagator.Inject(ctx, carrier)
			err := next(ctx, p)
			if err != nil {
				setError(span, errorType(err), err.Error())
			}
			span.End()
			return err
		}
	}
}

// consumerInfo is what the consumer spans of one subscription share.
type consumerInfo struct {
	topic, subscriber string
	name              string
	opts              []trace.SpanStartOption
}

func (t *Tracing) consumer(d *eventbus.Delivery) *consumerInfo {
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			systemAttr,
			semconv.MessagingDestinationName(d.Type),
			semconv.MessagingConsumerGroupName(d.Subscriber),
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingOperationName(operationProcess),
		),
	}
	if t.newTrace {
		opts = append(opts, trace.WithNewRoot())
	}
	return &consumerInfo{topic: d.Type, subscriber: d.Subscriber, name: operationProcess + " " + d.Type, opts: opts}
}

// Middleware returns the handler middleware that makes a consumer span (kind CONSUMER,
// named "process <topic>") around every handling attempt, retries included, each with its
// attempt number. The span links to the producer span whose context the event carries,
// and is its child unless consumer spans start new traces ([WithConsumerSpans]); an event
// without a trace context gets a root span. The handler's ctx carries the consumer span
// (and what else the propagator extracted, such as baggage), so the handler's own spans
// and publishes are its children.
//
// An attempt that fails ends its span with status Error and an error.type attribute: the
// handler's error, a panic (recorded as an exception event with its value and stack, then
// passed on to the bus, which recovers it as usual) or the handler timeout. Give the
// middleware to eventbus.New, so that it wraps every subscription, outside any
// subscription's own middleware.
func (t *Tracing) Middleware() eventbus.Middleware {
	return func(next eventbus.Handler) eventbus.Handler {
		var cached atomic.Pointer[consumerInfo] // one chain serves one subscription
		return func(ctx context.Context, d *eventbus.Delivery) error {
			info := cached.Load()
			if info == nil || info.topic != d.Type || info.subscriber != d.Subscriber {
				info = t.consumer(d)
				cached.Store(info)
			}
			opts := info.opts
			if len(d.Metadata) > 0 {
				own := trace.SpanContextFromContext(ctx)
				ctx = t.propagator.Extract(ctx, propagation.MapCarrier(d.Metadata))
				if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && !sc.Equal(own) {
					opts = withLink(opts, sc)
				}
			}
			attemptCtx := ctx
			ctx, span := t.tracer.Start(ctx, info.name, opts...)
			if span.IsRecording() {
				kv := [...]attribute.KeyValue{
					semconv.MessagingMessageID(d.ID.String()),
					DeliveryAttemptKey.Int(d.Attempt),
					MessageKeyKey.String(d.Key),
				}
				span.SetAttributes(withChain(withKey(kv[:], d.Key), d.Metadata)...)
			}
			returned := false
			defer func() {
				if returned {
					return
				}
				// The handler panicked (or called runtime.Goexit, when r is nil): record
				// it and let the panic go on to the bus's recovery.
				r := recover()
				if r != nil {
					recordPanic(span, r)
				}
				span.End()
				if r != nil {
					panic(r)
				}
			}()
			err := next(ctx, d)
			returned = true
			switch {
			case timedOut(attemptCtx):
				setError(span, errTypeTimeout, context.Cause(attemptCtx).Error())
			case err != nil:
				setError(span, errorType(err), err.Error())
			}
			span.End()
			return err
		}
	}
}

// withKey returns kv, whose last attribute is the message key, without it if key is empty:
// the attributes set in one call, which the SDK stores with one allocation.
func withKey(kv []attribute.KeyValue, key string) []attribute.KeyValue {
	if key == "" {
		return kv[:len(kv)-1]
	}
	return kv
}

// withLink returns opts and a link to sc, leaving opts as they are.
func withLink(opts []trace.SpanStartOption, sc trace.SpanContext) []trace.SpanStartOption {
	return append(opts[:len(opts):len(opts)], trace.WithLinks(trace.Link{SpanContext: sc}))
}

// setError marks span as failed.
func setError(span trace.Span, errType, description string) {
	span.SetStatus(codes.Error, description)
	span.SetAttributes(semconv.ErrorTypeKey.String(errType))
}

// recordPanic marks span as failed by a panic with value r, with an exception event that
// holds the value and the stack.
func recordPanic(span trace.Span, r any) {
	msg := fmt.Sprint(r)
	span.AddEvent(semconv.ExceptionEventName, trace.WithAttributes(
		semconv.ExceptionType(fmt.Sprintf("%T", r)),
		semconv.ExceptionMessage(msg),
		semconv.ExceptionStacktrace(string(debug.Stack())),
	))
	setError(span, errTypePanic, "panic: "+msg)
}
