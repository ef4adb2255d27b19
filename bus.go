package eventbus

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Bus is an in-process event bus. Publishers send typed events to topics with [Publish];
// every subscriber of the topic (see [Subscribe]) receives each event on its own workers,
// in order per key, with retries and a dead-letter hook. Make one with [New] and stop it
// with [Bus.Close]. A Bus is safe for concurrent use.
type Bus struct {
	source       string
	logger       *slog.Logger
	deadLetter   DeadLetterHandler
	middleware   []Middleware // around every subscription's handler
	health       HealthPolicy
	publishChain PublishFunc // the publish middleware around sendPublication, or nil
	clock        clock

	// topics maps a topic name to its *topicState[T]. Publish reads it without a lock;
	// Subscribe and Subscription.Close replace it, copy-on-write, under mu.
	topics atomic.Pointer[map[string]topicEntry]
	// byID caches topics by the id of the Topic value used, for Publish; see lookupTopic.
	byID    atomic.Pointer[[]topicEntry]
	cacheMu sync.Mutex // serializes updates of byID

	closed   atomic.Bool   // set once, by the first Close
	closeGen atomic.Uint64 // counts events accepted from handlers while closing
	quiet    chan struct{} // a subscription emptied while closing; capacity 1

	mu      sync.Mutex
	subs    map[*Subscription]struct{} // live subscriptions
	closing map[*Subscription]struct{} // removed by Subscription.Close and not yet drained

	closeDone chan struct{} // closed when Close has finished
	closeErr  error         // Close's result, set before closeDone is closed
	abortCh   chan struct{} // closed when a Close caller's ctx ends
	abortErr  error         // that ctx's error, set before abortCh is closed
	abortOnce sync.Once
}

// topicEntry is a *topicState[T] of any T.
type topicEntry interface {
	payloadType() string
	published() uint64
}

// topicState holds the subscriptions of one topic. The slice is replaced, never changed, so
// Publish reads it without a lock.
type topicState[T any] struct {
	subs     atomic.Pointer[[]*subscription[T]]
	accepted atomic.Uint64 // events Publish accepted, but see counting
	retired  atomic.Bool   // its last subscriber left and the bus forgot it; see retire

	// counting holds the subscriptions whose published counts are not yet in accepted: a
	// publish to a topic's only subscription counts there, on a line its publishers write
	// anyway, so that parallel publishers do not trade accepted's line on every event. A
	// subscription's count moves into accepted once its workers have exited.
	mu       sync.Mutex
	counting []*subCore
}

func (*topicState[T]) payloadType() string { return fmt.Sprintf("%T", *new(T)) }

// published returns the events Publish accepted for the topic; see TopicStats.Published.
func (ts *topicState[T]) published() uint64 {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	n := ts.accepted.Load()
	for _, c := range ts.counting {
		n += c.published.Load()
	}
	return n
}

// count adds c to the subscriptions whose published counts ts sums, until c's workers exit.
func (ts *topicState[T]) count(c *subCore) {
	ts.mu.Lock()
	ts.counting = append(ts.counting, c)
	ts.mu.Unlock()
	c.exited = func() {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		ts.accepted.Add(c.published.Load())
		ts.counting = slices.DeleteFunc(ts.counting, func(x *subCore) bool { return x == c })
	}
}

// New returns a running bus. It panics if an option is invalid; options are checked when
// they are made, so that is a programmer error caught at start-up.
func New(opts ...Option) *Bus {
	cfg := defaultBusConfig()
	for _, o := range opts {
		o.applyBus(&cfg)
	}
	if cfg.deadLetter == nil {
		cfg.deadLetter = logDeadLetters{cfg.logger}
	}
	b := &Bus{
		source:     cfg.source,
		logger:     cfg.logger,
		deadLetter: cfg.deadLetter,
		quiet:      make(chan struct{}, 1),
		subs:       make(map[*Subscription]struct{}),
		closing:    make(map[*Subscription]struct{}),
		closeDone:  make(chan struct{}),
		abortCh:    make(chan struct{}),
	}
	b.middleware = cfg.middleware
	b.health = cfg.health
	if len(cfg.publishMW) > 0 {
		b.publishChain = sendPublication
		for i := len(cfg.publishMW) - 1; i >= 0; i-- {
			b.publishChain = cfg.publishMW[i](b.publishChain)
		}
	}
	b.topics.Store(&map[string]topicEntry{})
	return b
}

// lookupTopic returns the state of topic t, nil if it has never had a subscriber, or an
// error if its subscribers take another payload type than T. Publish calls it for every
// event, so it first looks in the cache indexed by the Topic value's id, which spares
// hashing the name.
func lookupTopic[T any](b *Bus, t Topic[T]) (*topicState[T], error) {
	if cache := b.byID.Load(); cache != nil && int(t.id) < len(*cache) {
		if ts, ok := (*cache)[t.id].(*topicState[T]); ok && !ts.retired.Load() {
			return ts, nil
		}
	}
	e, ok := (*b.topics.Load())[t.name]
	if !ok {
		return nil, nil
	}
	ts, ok := e.(*topicState[T])
	if !ok {
		return nil, fmt.Errorf("eventbus: topic %q carries %s, not %T", t.name, e.payloadType(), *new(T))
	}
	b.cacheTopic(t.id, ts)
	return ts, nil
}

// maxCachedTopicID bounds the topic cache: a program that makes topics on the fly, one
// NewTopic per name, looks the later ones up by name only.
const maxCachedTopicID = 4096

// cacheTopic records ts as the state of the Topic value numbered id, copy-on-write.
func (b *Bus) cacheTopic(id uint32, ts topicEntry) {
	if id == 0 || id >= maxCachedTopicID {
		return
	}
	b.cacheMu.Lock()
	defer b.cacheMu.Unlock()
	var old []topicEntry
	if p := b.byID.Load(); p != nil {
		old = *p
	}
	if int(id) < len(old) && old[id] == ts {
		return
	}
	cache := make([]topicEntry, max(len(old), int(id)+1))
	copy(cache, old)
	cache[id] = ts
	b.byID.Store(&cache)
}

// Close shuts the bus down gracefully, in the manner of http.Server.Shutdown:
//
//  1. [Publish] and [Subscribe] return [ErrClosed] from now on, except that handlers (and
//     dead-letter hooks) may still publish with the ctx they were given, so that chains of
//     events finish.
//  2. Accepted events are still handled, with their retries, until every subscription is
//     empty; then the workers exit and Close returns nil.
//  3. If ctx ends first, handlers' contexts are cancelled, retry waits end, and every event
//     not handled yet is dead-lettered with an error for which errors.Is(err, ErrClosed)
//     holds. Close waits for running handlers to return and for those dead letters, then
//     returns ctx.Err().
//
// When Close returns, no goroutine of the bus is left. Close may be called concurrently
// and more than once: each call waits for the same shutdown, and the ctx of any caller that
// ends first cuts it short. Calls after the shutdown return its result at once.
//
// Close cannot wait for the handler that calls it. Called from a handler or dead-letter hook
// with the ctx it was given, Close begins the shutdown and returns nil at once; the shutdown
// goes on, without a deadline, once that handler has returned, and a later Close from
// outside waits for it (or cuts it short).
func (b *Bus) Close(ctx context.Context) error {
	if publishingHandler(ctx, b) != nil {
		if !b.closed.Load() {
			go b.Close(context.Background()) //nolint:errcheck // waited for by later Close calls
		}
		return nil
	}
	b.mu.Lock()
	first := !b.closed.Load()
	var subs []*Subscription
	if first {
		b.closed.Store(true)
		// Subscriptions that a Subscription.Close is draining are drained (or cut short)
		// with the rest, so that none of their handlers outlives Close.
		for s := range b.subs {
			subs = append(subs, s)
		}
		for s := range b.closing {
			subs = append(subs, s)
		}
	}
	b.mu.Unlock()
	if !first {
		select {
		case <-b.closeDone:
			return b.closeErr
		case <-ctx.Done():
			b.abort(ctx.Err())
			<-b.closeDone
			return ctx.Err()
		}
	}
	start := time.Now()
	b.closeErr = b.shutdown(ctx, subs)
	b.clock.shutdown()
	if b.closeErr != nil {
		b.logger.LogAttrs(ctx, slog.LevelWarn, "eventbus: close cut short; undelivered events were dead-lettered",
			slog.Int("subscriptions", len(subs)), slog.Duration("took", time.Since(start)), slog.Any("error", b.closeErr))
	} else {
		b.logger.LogAttrs(ctx, slog.LevelDebug, "eventbus: closed",
			slog.Int("subscriptions", len(subs)), slog.Duration("took", time.Since(start)))
	}
	close(b.closeDone)
	return b.closeErr
}

// abort cuts a Close short with err, from the first caller whose ctx ends.
func (b *Bus) abort(err error) {
	b.abortOnce.Do(func() {
		b.abortErr = err
		close(b.abortCh)
	})
}

// shutdown runs Close's steps for the subscriptions live when it began; Subscribe fails
// from then on, so there are no others.
func (b *Bus) shutdown(ctx context.Context, subs []*Subscription) error {
	// Step 1: wait until every subscription is empty at once. Handlers may still publish,
	// so an empty subscription can fill again: closeGen tells whether one did while we
	// looked, and every subscription that empties while closed signals quiet.
	for !b.quiescent(subs) {
		if !b.await(ctx, b.quiet) {
			return b.hardStop(subs)
		}
	}
	// Step 2: refuse new events and let the workers exit.
	for _, s := range subs {
		s.core.beginClose()
	}
	for _, s := range subs {
		if !b.await(ctx, s.core.done) {
			return b.hardStop(subs)
		}
	}
	for _, s := range subs {
		s.core.wait()
	}
	return nil
}

// await waits for ch and reports true, or reports false once the shutdown is cut short:
// by ctx, which then cuts it short for every caller, or by another caller's ctx.
func (b *Bus) await(ctx context.Context, ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		b.abort(ctx.Err())
		return false
	case <-b.abortCh:
		return false
	}
}

// quiescent reports whether every subscription was empty, with no event accepted from a
// handler while it looked.
func (b *Bus) quiescent(subs []*Subscription) bool {
	gen := b.closeGen.Load()
	for _, s := range subs {
		if s.core.held.Load() > 0 {
			return false
		}
	}
	return b.closeGen.Load() == gen
}

// hardStop aborts every subscription and waits for their workers; it returns the error of
// the ctx that cut Close short.
func (b *Bus) hardStop(subs []*Subscription) error {
	for _, s := range subs {
		s.abort()
	}
	for _, s := range subs {
		s.core.wait()
	}
	return b.abortErr
}

// signalQuiet tells a waiting Close that a subscription has emptied.
func (b *Bus) signalQuiet() {
	select {
	case b.quiet <- struct{}{}:
	default:
	}
}

// deliverDeadLetter calls the hook h (or the bus default if h is nil), logging its error
// or panic: a dead letter is never lost to a failing hook without a trace.
func (b *Bus) deliverDeadLetter(ctx context.Context, h DeadLetterHandler, dl DeadLetter) {
	if h == nil {
		h = b.deadLetter
	}
	defer func() {
		if r := recover(); r != nil {
			b.logDeadLetterFailure(ctx, dl, &PanicError{Value: r})
		}
	}()
	if err := h.HandleDeadLetter(ctx, dl); err != nil {
		b.logDeadLetterFailure(ctx, dl, err)
	}
}

func (b *Bus) logDeadLetterFailure(ctx context.Context, dl DeadLetter, err error) {
	b.logger.LogAttrs(ctx, slog.LevelError, "eventbus: dead-letter hook failed",
		slog.String("topic", dl.Event.Type),
		slog.String("subscriber", dl.Subscriber),
		slog.String("id", dl.Event.ID.String()),
		slog.Any("dead_letter_error", dl.Err),
		slog.Any("error", err),
	)
}
