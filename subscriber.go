package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
)

// Subscription is one subscriber of one topic, as returned by [Subscribe]. Its handler runs
// on the subscription's own worker goroutines until [Subscription.Close] or [Bus.Close].
type Subscription struct {
	core   *subCore
	abort  func()
	detach func() // removes the subscription from its topic, under the bus's mu
	once   sync.Once
}

// Subscribe adds a subscriber named name to topic t on bus b: from now on, every event
// published to t is handled by h on the subscription's workers.
//
// For each subscriber, events with the same non-empty key, published from one goroutine,
// are handled one at a time in publish order, retries included; other events run in
// parallel, up to the concurrency (see [WithConcurrency]). A handler that returns an error
// or panics is retried by the retry policy ([WithRetry]); an event whose attempts run out,
// whose error is [Permanent], or which the bus stops before handling goes to the
// dead-letter hook ([WithDeadLetter]). So every accepted event ends, for every subscriber,
// either handled or dead-lettered.
//
// h receives a ctx that is cancelled only when Close runs out of time; pass it to
// [Publish] to publish from the handler. Subscribe returns an error, and starts nothing,
// for a zero Topic, an empty name, a nil handler, a name already subscribed to t, an
// invalid option, a topic name used with another payload type, or a closed bus
// ([ErrClosed]).
func Subscribe[T any](b *Bus, t Topic[T], name string, h func(context.Context, Event[T]) error, opts ...SubscribeOption) (*Subscription, error) {
	switch {
	case t.name == "":
		return nil, errZeroTopic
	case name == "":
		return nil, errors.New("eventbus: Subscribe: name must not be empty")
	case h == nil:
		return nil, errors.New("eventbus: Subscribe: handler must not be nil")
	}
	cfg := defaultSubscribeConfig()
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("eventbus: Subscribe: nil SubscribeOption")
		}
		o.applySubscribe(&cfg)
	}
	if cfg.err != nil {
		return nil, cfg.err
	}
	var err error
	if cfg.retry, err = cfg.retry.withDefaults(); err != nil {
		return nil, err
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return nil, ErrClosed
	}
	ts, err := lookupTopic(b, t)
	if err != nil {
		return nil, err
	}
	if ts == nil {
		ts = &topicState[T]{}
		ts.subs.Store(&[]*subscription[T]{})
		topics := maps.Clone(*b.topics.Load())
		topics[t.name] = ts
		b.topics.Store(&topics)
	}
	subs := *ts.subs.Load()
	for _, s := range subs {
		if s.name == name {
			return nil, fmt.Errorf("eventbus: Subscribe: topic %q already has a subscriber named %q", t.name, name)
		}
	}
	s := newSubscription(b, t.name, name, h, cfg)
	ts.count(&s.subCore)
	updated := append(slices.Clip(subs), s)
	ts.subs.Store(&updated)
	sub := &Subscription{
		core:  &s.subCore,
		abort: s.abort,
		detach: func() {
			subs := slices.DeleteFunc(slices.Clone(*ts.subs.Load()), func(x *subscription[T]) bool { return x == s })
			ts.subs.Store(&subs)
			if len(subs) == 0 {
				retire(b, t.name, ts)
			}
		},
	}
	b.subs[sub] = struct{}{}
	s.start()
	b.logger.LogAttrs(context.Background(), slog.LevelDebug, "eventbus: subscribed",
		slog.String("topic", t.name), slog.String("subscriber", name),
		slog.Int("concurrency", cfg.concurrency), slog.Int("buffer", cfg.buffer))
	return sub, nil
}

// retire forgets topic name, whose last subscriber has left, so that a program that makes
// topics on the fly does not grow the bus without bound. Publish then treats the name as
// never subscribed; a later Subscribe starts it afresh. b.mu is held.
func retire[T any](b *Bus, name string, ts *topicState[T]) {
	if (*b.topics.Load())[name] != topicEntry(ts) {
		return
	}
	ts.retired.Store(true)
	topics := maps.Clone(*b.topics.Load())
	delete(topics, name)
	b.topics.Store(&topics)
}

// Topic returns the name of the subscription's topic.
func (s *Subscription) Topic() string { return s.core.topic }

// Name returns the subscriber's name.
func (s *Subscription) Name() string { return s.core.name }

// remove takes the subscription off its topic and the bus's live subscriptions, once.
func (s *Subscription) remove() {
	b := s.core.bus
	s.once.Do(func() {
		b.mu.Lock()
		if _, live := b.subs[s]; live {
			delete(b.subs, s)
			b.closing[s] = struct{}{}
			s.core.removed.Store(true) // before it closes: see rejectErr
			s.detach()
		}
		b.mu.Unlock()
	})
}

// Close removes the subscriber and drains it the way [Bus.Close] drains the bus: events
// published from now on do not reach it, and those it accepted are still handled, with
// their retries, until ctx ends; then its handlers' contexts are cancelled and the rest are
// dead-lettered with an error wrapping [ErrClosed], and Close returns ctx.Err(). Close
// returns once the subscription's goroutines have exited. It is idempotent and safe to
// call concurrently, and a no-op (returning nil) once the bus has closed. Called from one
// of the subscription's own handlers (with the ctx the handler was given), which it cannot
// wait for, Close removes the subscriber, lets the drain go on without a deadline (Bus.Close
// drains or cuts it short with the rest) and returns nil at once.
func (s *Subscription) Close(ctx context.Context) error {
	b := s.core.bus
	if publishingHandler(ctx, b) == s.core {
		s.remove()
		go s.Close(context.Background()) //nolint:errcheck // drained by Bus.Close at the latest
		return nil
	}
	s.remove()
	s.core.beginClose()
	err := error(nil)
	select {
	case <-s.core.done:
	case <-ctx.Done():
		s.abort()
		err = ctx.Err()
	}
	s.core.wait()
	b.mu.Lock()
	delete(b.closing, s)
	b.mu.Unlock()
	b.logger.LogAttrs(ctx, slog.LevelDebug, "eventbus: unsubscribed",
		slog.String("topic", s.core.topic), slog.String("subscriber", s.core.name), slog.Any("error", err))
	return err
}
