package eventbusotel

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// An Option configures [NewTracing] or [NewMetrics]. Each option says which of the two it
// applies to; the other ignores it, so one list of options can serve both.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
	propagator     propagation.TextMapPropagator
	consumerSpans  ConsumerSpans
}

func newConfig(opts []Option) config {
	c := config{consumerSpans: ConsumerChildOfProducer}
	for _, o := range opts {
		o.apply(&c)
	}
	if c.tracerProvider == nil {
		c.tracerProvider = otel.GetTracerProvider()
	}
	if c.meterProvider == nil {
		c.meterProvider = otel.GetMeterProvider()
	}
	if c.propagator == nil {
		c.propagator = propagation.TraceContext{}
	}
	return c
}

// WithTracerProvider sets where [Tracing] gets its tracer. The default is the global
// provider (otel.GetTracerProvider), which does nothing until one is set with
// otel.SetTracerProvider. A nil tp means the default.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tracerProvider = tp })
}

// WithMeterProvider sets where [Metrics] gets its meter. The default is the global provider
// (otel.GetMeterProvider), which does nothing until one is set with otel.SetMeterProvider.
// A nil mp means the default.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.meterProvider = mp })
}

// WithPropagator sets how [Tracing] writes the trace context into an event's Metadata and
// reads it back. The default is W3C Trace Context alone (propagation.TraceContext: the
// traceparent and tracestate entries), not the global propagator, which does nothing
// unless one was set. Pass a composite with propagation.Baggage to carry baggage too.
// A nil p means the default.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return optionFunc(func(c *config) { c.propagator = p })
}

// ConsumerSpans says how a consumer span relates to the producer span of its event; see
// [WithConsumerSpans].
type ConsumerSpans int

const (
	// ConsumerChildOfProducer makes every consumer span a child of the producer span, in
	// its trace, and links it to the producer span as well. One request, its publishes and
	// every handler they set off make one trace. The default.
	ConsumerChildOfProducer ConsumerSpans = iota
	// ConsumerNewTrace starts every consumer span as the root of a new trace, linked to the
	// producer span. Each handling attempt is a trace of its own (with what its handler
	// publishes), and the link leads back to the publisher's trace.
	ConsumerNewTrace
)

// WithConsumerSpans sets how consumer spans relate to producer spans: children with a
// link ([ConsumerChildOfProducer], the default) or new traces with a link
// ([ConsumerNewTrace]). It applies to [Tracing]. It panics for any other value.
func WithConsumerSpans(m ConsumerSpans) Option {
	if m != ConsumerChildOfProducer && m != ConsumerNewTrace {
		panic("eventbusotel: WithConsumerSpans: unknown mode")
	}
	return optionFunc(func(c *config) { c.consumerSpans = m })
}
