package eventbus

import (
	"context"

	"github.com/google/uuid"
)

// Metadata keys of an event's place in a chain of events, set by [Publish] when a handler
// (or a dead-letter hook) publishes with the ctx it was given. Both are valid CloudEvents
// extension names, so a chain survives every bridge.
const (
	// CorrelationIDKey names the conversation an event belongs to: the correlation ID of
	// the event being handled, or that event's ID if it had none. Every event of a chain
	// that began with one outside Publish carries that first event's ID.
	CorrelationIDKey = "correlationid"
	// CausationIDKey names the event whose handler published this one: its ID.
	CausationIDKey = "causationid"
)

// handlerScope is the ctx a handler or a dead-letter hook runs with: its worker's ctx, and
// the event it handles, so that a Publish with it knows where it comes from (see
// publishingHandler) and what it correlates with (see correlate). A worker keeps one per
// position of its batch and sets it before each attempt, so that passing it costs no
// allocation (scopes made fresh per attempt, even in chunks of 64, doubled the worker's
// cost per event in garbage). It is read only while its handler runs, by the handler's
// goroutine or others; once the handler has returned, the worker writes it for the next
// event at that position (see doc.go, "Correlation").
type handlerScope struct {
	context.Context           // the worker's ctx
	core            *subCore  // the subscription whose handler runs
	id              uuid.UUID // the event's ID; uuid.Nil outside a handler
	md              Metadata  // the event's Metadata, read only
}

// Value returns the scope itself for handlerKey, and what the worker's ctx holds otherwise.
func (s *handlerScope) Value(key any) any {
	if key == (handlerKey{}) {
		return s
	}
	return s.Context.Value(key)
}

// handlerKey is the context key under which a handler's ctx holds its *handlerScope.
type handlerKey struct{}

// scopeOf returns the handler scope of ctx, or nil if ctx does not come from a handler.
func scopeOf(ctx context.Context) *handlerScope {
	s, _ := ctx.Value(handlerKey{}).(*handlerScope)
	return s
}

// publishingHandler returns the subscription of b whose handler is publishing with ctx, or
// nil if ctx does not come from a handler of b.
func publishingHandler(ctx context.Context, b *Bus) *subCore {
	if s := scopeOf(ctx); s != nil && s.core.bus == b {
		return s.core
	}
	return nil
}

// correlate gives the event that pc publishes the correlation and causation IDs of the
// event that scope s handles, unless the publisher set them itself: in a copy of the
// publisher's Metadata, which the publish then owns.
func (pc *publishConfig) correlate(s *handlerScope) {
	_, hasCorr := pc.md[CorrelationIDKey]
	_, hasCause := pc.md[CausationIDKey]
	if hasCorr && hasCause {
		return
	}
	md := make(Metadata, len(pc.md)+2)
	for k, v := range pc.md {
		md[k] = v
	}
	parent := s.id.String()
	if !hasCorr {
		corr := s.md[CorrelationIDKey]
		if corr == "" {
			corr = parent
		}
		md[CorrelationIDKey] = corr
	}
	if !hasCause {
		md[CausationIDKey] = parent
	}
	pc.md, pc.ownMD = md, true
}
