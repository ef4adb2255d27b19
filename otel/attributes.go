package eventbusotel

import (
	"context"
	"errors"
	"fmt"

	"github.com/ae30fb47/eventbus"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// ScopeName is the instrumentation scope of the tracer and meter this package uses.
const ScopeName = "github.com/ae30fb47/eventbus/otel"

// SchemaURL is the OpenTelemetry semantic conventions version that the spans' and metrics'
// names and attributes follow.
const SchemaURL = semconv.SchemaURL

// System is the value of messaging.system on every span and metric.
const System = "eventbus"

// Attributes of our own, for what the semantic conventions name only per messaging system
// (as messaging.kafka.message.key or messaging.gcp_pubsub.message.delivery_attempt): they
// live in the messaging.eventbus namespace, as the conventions ask of system-specific
// attributes.
const (
	// MessageKeyKey is the event's ordering key (eventbus.WithKey), on producer and
	// consumer spans, when it is not empty.
	MessageKeyKey = attribute.Key("messaging.eventbus.message.key")
	// DeliveryAttemptKey is the handling attempt a consumer span covers: 1 for the first,
	// 2 for the first retry, and so on.
	DeliveryAttemptKey = attribute.Key("messaging.eventbus.message.delivery_attempt")
	// CircuitStateKey is the circuit breaker state of the eventbus.subscription.circuit
	// metric: "closed", "open" or "half-open".
	CircuitStateKey = attribute.Key("messaging.eventbus.circuit.state")
	// QuantileKey is the quantile of the eventbus.subscription.latency metric: 0.5, 0.95 or
	// 0.99.
	QuantileKey = attribute.Key("messaging.eventbus.latency.quantile")
	// CausationIDKey is the ID of the event whose handler published this one (its
	// eventbus.CausationIDKey metadata), on producer and consumer spans, when it has one.
	// The correlation ID goes in messaging.message.conversation_id, the conventions' name
	// for it.
	CausationIDKey = attribute.Key("messaging.eventbus.message.causation_id")
)

// withChain appends the correlation and causation IDs that md carries (see
// eventbus.CorrelationIDKey), if any.
func withChain(kv []attribute.KeyValue, md eventbus.Metadata) []attribute.KeyValue {
	if c := md[eventbus.CorrelationIDKey]; c != "" {
		kv = append(kv, semconv.MessagingMessageConversationID(c))
	}
	if c := md[eventbus.CausationIDKey]; c != "" {
		kv = append(kv, CausationIDKey.String(c))
	}
	return kv
}

// Operation names (messaging.operation.name) and the span names built from them.
const (
	operationPublish = "publish"
	operationProcess = "process"
)

var systemAttr = semconv.MessagingSystemKey.String(System)

// Error types (error.type) of failed operations. The semantic conventions ask for a low
// cardinality class of error; these are the ones the bus defines, and any other error is
// named by its Go type, as "*errors.errorString" or "*fs.PathError".
const (
	errTypePanic     = "panic"             // a *eventbus.PanicError: the handler panicked
	errTypeTimeout   = "timeout"           // the handler timeout expired (eventbus.ErrHandlerTimeout)
	errTypePermanent = "permanent"         // eventbus.Permanent: no retry will follow
	errTypeClosed    = "closed"            // eventbus.ErrClosed
	errTypeCanceled  = "canceled"          // context.Canceled
	errTypeDeadline  = "deadline_exceeded" // context.DeadlineExceeded
)

// errorType returns the error.type of err.
func errorType(err error) string {
	var pe *eventbus.PanicError
	switch {
	case errors.As(err, &pe):
		return errTypePanic
	case errors.Is(err, eventbus.ErrHandlerTimeout):
		return errTypeTimeout
	case eventbus.IsPermanent(err):
		return errTypePermanent
	case errors.Is(err, eventbus.ErrClosed):
		return errTypeClosed
	case errors.Is(err, context.Canceled):
		return errTypeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return errTypeDeadline
	}
	return fmt.Sprintf("%T", err)
}

// timedOut reports whether the handler timeout cut an attempt short: the bus then counts
// the attempt as failed even if the handler returned nil. ctx is the attempt's.
func timedOut(ctx context.Context) bool {
	return ctx.Err() != nil && errors.Is(context.Cause(ctx), eventbus.ErrHandlerTimeout)
}
