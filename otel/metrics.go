package eventbusotel

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"time"

	"github.com/ae30fb47/eventbus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/messagingconv"
)

// processDurationBounds are the bucket boundaries, in seconds, that the semantic
// conventions give for messaging durations.
var processDurationBounds = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// Metrics reports a bus's figures as OpenTelemetry metrics. Make one with [NewMetrics];
// then [Metrics.Observe] reports a bus's [eventbus.Stats] through observable instruments,
// read only when the metrics are collected, and [Metrics.Middleware] times every handling
// attempt into the messaging.process.duration histogram:
//
//	m, err := eventbusotel.NewMetrics(eventbusotel.WithMeterProvider(mp))
//	bus := eventbus.New(eventbus.WithMiddleware(m.Middleware()))
//	reg, err := m.Observe(bus)
//	defer reg.Unregister()
//
// The instruments, their units and attributes are listed in the package documentation.
// A Metrics is safe for concurrent use.
type Metrics struct {
	meter           metric.Meter
	processDuration metric.Float64Histogram

	sent, consumed                    metric.Int64ObservableCounter
	handled, duplicates, deadLettered metric.Int64ObservableCounter
	failedAttempts, retries           metric.Int64ObservableCounter
	inFlight, queued, capacity        metric.Int64ObservableUpDownCounter
	circuit                           metric.Int64ObservableGauge
	latency                           metric.Float64ObservableGauge
	observables                       []metric.Observable
}

// NewMetrics makes the instruments of a Metrics from the meter provider of opts
// ([WithMeterProvider]; other options are ignored). It returns the error of the provider
// if it cannot make them.
func NewMetrics(opts ...Option) (*Metrics, error) {
	c := newConfig(opts)
	meter := c.meterProvider.Meter(ScopeName, metric.WithSchemaURL(SchemaURL))
	m := &Metrics{meter: meter}
	var errs []error
	add := func(err error) { errs = append(errs, err) }

	pd, err := messagingconv.NewProcessDuration(meter, metric.WithExplicitBucketBoundaries(processDurationBounds...))
	add(err)
	m.processDuration = pd.Inst()
	sent, err := messagingconv.NewClientSentMessagesObservable(meter)
	add(err)
	m.sent = sent.Inst()
	consumed, err := messagingconv.NewClientConsumedMessagesObservable(meter)
	add(err)
	m.consumed = consumed.Inst()

	counter := func(name, unit, desc string) metric.Int64ObservableCounter {
		c, err := meter.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		add(err)
		return c
	}
	m.handled = counter("eventbus.subscription.handled", "{message}",
		"Events that ended handled: the handler returned nil, or de-duplication skipped a repeat.")
	m.duplicates = counter("eventbus.subscription.duplicates", "{message}",
		"Repeated events that de-duplication skipped.")
	m.deadLettered = counter("eventbus.subscription.dead_lettered", "{message}",
		"Events given to the dead-letter hook.")
	m.failedAttempts = counter("eventbus.subscription.failed_attempts", "{attempt}",
		"Handling attempts that returned an error, panicked or timed out.")
	m.retries = counter("eventbus.subscription.retries", "{attempt}",
		"Failed handling attempts that were followed by another attempt.")

	upDown := func(name, desc string) metric.Int64ObservableUpDownCounter {
		c, err := meter.Int64ObservableUpDownCounter(name, metric.WithUnit("{message}"), metric.WithDescription(desc))
		add(err)
		return c
	}
	m.inFlight = upDown("eventbus.subscription.in_flight",
		"Events a worker holds: in a handler or in the dead-letter hook.")
	m.queued = upDown("eventbus.subscription.queued",
		"Events held and not in flight: waiting to run or to be retried.")
	m.capacity = upDown("eventbus.subscription.capacity",
		"The subscription's buffer: the most events it holds before Publish blocks.")

	m.circuit, err = meter.Int64ObservableGauge("eventbus.subscription.circuit", metric.WithUnit("1"),
		metric.WithDescription("1 for the circuit breaker's current state, 0 for the others."))
	add(err)
	m.latency, err = meter.Float64ObservableGauge("eventbus.subscription.latency", metric.WithUnit("s"),
		metric.WithDescription("Quantiles of handling attempts' durations, sampled one in 64 over the last one to two minutes."))
	add(err)

	m.observables = []metric.Observable{m.sent, m.consumed, m.handled, m.duplicates, m.deadLettered,
		m.failedAttempts, m.retries, m.inFlight, m.queued, m.capacity, m.circuit, m.latency}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

// Observe reports the figures of b's [eventbus.Bus.Stats] through the observable
// instruments of m each time the metrics are collected: a Stats snapshot per collection,
// nothing on the bus's hot path. Unregister the returned registration to stop.
//
// Figures are reported for every topic that has had a subscriber and every current
// subscription: a closed subscription's series end with it. Several buses observed
// through one Metrics must not share topic and subscriber names, or their series merge.
func (m *Metrics) Observe(b *eventbus.Bus) (metric.Registration, error) {
	if b == nil {
		return nil, errors.New("eventbusotel: Observe: nil Bus")
	}
	return m.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		m.observe(o, b.Stats())
		return nil
	}, m.observables...)
}

// quantiles are the latency quantiles reported, with their attribute values.
var quantiles = [...]struct {
	q   float64
	get func(eventbus.Latency) time.Duration
}{
	{0.5, func(l eventbus.Latency) time.Duration { return l.P50 }},
	{0.95, func(l eventbus.Latency) time.Duration { return l.P95 }},
	{0.99, func(l eventbus.Latency) time.Duration { return l.P99 }},
}

var circuitStates = [...]eventbus.CircuitState{eventbus.CircuitClosed, eventbus.CircuitOpen, eventbus.CircuitHalfOpen}

func (m *Metrics) observe(o metric.Observer, st eventbus.Stats) {
	for _, t := range st.Topics {
		dest := semconv.MessagingDestinationName(t.Name)
		o.ObserveInt64(m.sent, clamp(t.Published), metric.WithAttributes(
			systemAttr, semconv.MessagingOperationName(operationPublish), dest))
		for _, s := range t.Subscriptions {
			group := semconv.MessagingConsumerGroupName(s.Name)
			o.ObserveInt64(m.consumed, clamp(s.Delivered), metric.WithAttributes(
				systemAttr, semconv.MessagingOperationName(operationProcess), dest, group))
			attrs := metric.WithAttributeSet(attribute.NewSet(systemAttr, dest, group))
			o.ObserveInt64(m.handled, clamp(s.Handled), attrs)
			o.ObserveInt64(m.duplicates, clamp(s.Duplicates), attrs)
			o.ObserveInt64(m.deadLettered, clamp(s.DeadLettered), attrs)
			o.ObserveInt64(m.failedAttempts, clamp(s.FailedAttempts), attrs)
			o.ObserveInt64(m.retries, clamp(s.Retries), attrs)
			o.ObserveInt64(m.inFlight, int64(s.InFlight), attrs)
			o.ObserveInt64(m.queued, int64(s.Queued), attrs)
			o.ObserveInt64(m.capacity, int64(s.Capacity), attrs)
			for _, c := range circuitStates {
				v := int64(0)
				if s.Circuit == c {
					v = 1
				}
				o.ObserveInt64(m.circuit, v, metric.WithAttributes(systemAttr, dest, group, CircuitStateKey.String(c.String())))
			}
			if s.Latency.Samples == 0 {
				continue
			}
			for _, q := range quantiles {
				o.ObserveFloat64(m.latency, q.get(s.Latency).Seconds(),
					metric.WithAttributes(systemAttr, dest, group, QuantileKey.Float64(q.q)))
			}
		}
	}
}

// clamp converts a counter to the int64 that observers take.
func clamp(n uint64) int64 { return int64(min(n, math.MaxInt64)) }

// processInfo is what one subscription's duration records share.
type processInfo struct {
	topic, subscriber string
	base              []attribute.KeyValue
	ok                []metric.RecordOption // the attributes of a successful attempt, made once
}

func newProcessInfo(d *eventbus.Delivery) *processInfo {
	base := []attribute.KeyValue{
		systemAttr,
		semconv.MessagingOperationName(operationProcess),
		semconv.MessagingDestinationName(d.Type),
		semconv.MessagingConsumerGroupName(d.Subscriber),
	}
	return &processInfo{
		topic: d.Type, subscriber: d.Subscriber, base: base,
		ok: []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(base...))},
	}
}

// Middleware returns the handler middleware that times every handling attempt into the
// messaging.process.duration histogram (in seconds, with the semantic conventions'
// buckets), with error.type on failed attempts (see the package documentation for the
// values). It reads the clock twice per attempt, and does nothing when the histogram is
// disabled (no meter provider, or a view that drops it). Give it to eventbus.New, so that
// it wraps every subscription.
func (m *Metrics) Middleware() eventbus.Middleware {
	return func(next eventbus.Handler) eventbus.Handler {
		var cached atomic.Pointer[processInfo] // one chain serves one subscription
		return func(ctx context.Context, d *eventbus.Delivery) error {
			if !m.processDuration.Enabled(ctx) {
				return next(ctx, d)
			}
			info := cached.Load()
			if info == nil || info.topic != d.Type || info.subscriber != d.Subscriber {
				info = newProcessInfo(d)
				cached.Store(info)
			}
			start := time.Now()
			returned := false
			defer func() {
				if !returned { // a panic, on its way to the bus's recovery
					m.record(ctx, info, start, errTypePanic)
				}
			}()
			err := next(ctx, d)
			returned = true
			switch {
			case timedOut(ctx):
				m.record(ctx, info, start, errTypeTimeout)
			case err != nil:
				m.record(ctx, info, start, errorType(err))
			default:
				m.processDuration.Record(ctx, time.Since(start).Seconds(), info.ok...)
			}
			return err
		}
	}
}

// record records a failed attempt that began at start.
func (m *Metrics) record(ctx context.Context, info *processInfo, start time.Time, errType string) {
	attrs := append(info.base[:len(info.base):len(info.base)], semconv.ErrorTypeKey.String(errType))
	m.processDuration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attrs...))
}
