package eventbus

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Shutdown: Bus.Close and Subscription.Close drain subscriptions in the same two steps.
//
//  1. Draining: the subscriptions take no events from outside (Bus.Close seals them, and
//     Publish returns ErrClosed, even to a publisher already waiting for room; a removed
//     subscription is skipped), but their handlers may still publish, so that chains of
//     events finish; the closer waits until every subscription is empty at once.
//  2. Closing: each subscription stops taking events at all (stateClosing), and its workers
//     exit once it is empty.
//
// If the closer's ctx ends first, every subscription aborts: handlers' contexts are
// cancelled, retry waits end, and every event still held is dead-lettered with an error
// wrapping ErrClosed. The closer then waits only for the running handlers and hooks to
// return: publishers never hold room while they wait (see handoff.go), so nothing else
// keeps a subscription from emptying.

// shutdown is a bus's shutdown state, shared by every Close call.
type shutdown struct {
	closed atomic.Bool   // set once, by the first Close
	gen    atomic.Uint64 // counts events accepted from handlers while closing; see quiescent
	quiet  chan struct{} // a subscription emptied while closing; capacity 1

	done    chan struct{} // closed when Close has finished
	err     error         // Close's result, set before done is closed
	abortCh chan struct{} // closed when a Close caller's ctx ends
	abortBy error         // that ctx's error, set before abortCh is closed
	once    sync.Once
}

func newShutdown() shutdown {
	return shutdown{quiet: make(chan struct{}, 1), done: make(chan struct{}), abortCh: make(chan struct{})}
}

// Close shuts the bus down gracefully, in the manner of http.Server.Shutdown:
//
//  1. [Publish] and [Subscribe] return [ErrClosed] from now on, a Publish already waiting
//     for room included, except that handlers (and dead-letter hooks) may still publish
//     with the ctx they were given, so that chains of events finish.
//  2. Accepted events are still handled, with their retries, until every subscription is
//     empty; then the workers exit and Close returns nil.
//  3. If ctx ends first, handlers' contexts are cancelled, retry waits end, and every event
//     not handled yet is dead-lettered with an error for which errors.Is(err, ErrClosed)
//     holds; from then on every Publish returns ErrClosed, a handler's or hook's too. Close
//     waits for running handlers to return and for those dead letters, then returns
//     ctx.Err().
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
	subs, first := b.beginShutdown()
	if publishingHandler(ctx, b) != nil {
		if first {
			go b.finishShutdown(context.Background(), subs) //nolint:errcheck // waited for by later Close calls
		}
		return nil
	}
	if !first {
		select {
		case <-b.sd.done:
			return b.sd.err
		case <-ctx.Done():
			b.abort(ctx.Err())
			<-b.sd.done
			return ctx.Err()
		}
	}
	return b.finishShutdown(ctx, subs)
}

// beginShutdown begins Close's step 1, once: it marks the bus closed and seals every
// subscription, so that from now on only handlers and dead-letter hooks of the bus may
// publish, and returns the subscriptions to drain, and whether this call began it.
// Subscriptions that a Subscription.Close is draining are drained (or cut short) with the
// rest, so that none of their handlers outlives Close.
func (b *Bus) beginShutdown() (subs []*Subscription, first bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sd.closed.Load() {
		return nil, false
	}
	b.sd.closed.Store(true)
	for s := range b.subs {
		subs = append(subs, s)
		s.core.seal()
	}
	for s := range b.closing {
		subs = append(subs, s)
	}
	return subs, true
}

// finishShutdown runs the rest of the shutdown that beginShutdown began, and returns its
// result; see Close.
func (b *Bus) finishShutdown(ctx context.Context, subs []*Subscription) error {
	start := time.Now()
	b.sd.err = b.shutdown(ctx, subs)
	b.clock.shutdown()
	if b.sd.err != nil {
		b.logger.LogAttrs(ctx, slog.LevelWarn, "eventbus: close cut short; undelivered events were dead-lettered",
			slog.Int("subscriptions", len(subs)), slog.Duration("took", time.Since(start)), slog.Any("error", b.sd.err))
	} else {
		b.logger.LogAttrs(ctx, slog.LevelDebug, "eventbus: closed",
			slog.Int("subscriptions", len(subs)), slog.Duration("took", time.Since(start)))
	}
	close(b.sd.done)
	return b.sd.err
}

// abort cuts a Close short with err, from the first caller whose ctx ends.
func (b *Bus) abort(err error) {
	b.sd.once.Do(func() {
		b.sd.abortBy = err
		close(b.sd.abortCh)
	})
}

// shutdown runs Close's steps for the subscriptions live when it began; Subscribe fails
// from then on, so there are no others.
func (b *Bus) shutdown(ctx context.Context, subs []*Subscription) error {
	// Step 1: wait until every subscription is empty at once. Handlers may still publish,
	// so an empty subscription can fill again: gen tells whether one did while we looked,
	// and every subscription that empties while closed signals quiet.
	for !b.quiescent(subs) {
		if !b.await(ctx, b.sd.quiet) {
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
	case <-b.sd.abortCh:
		return false
	}
}

// quiescent reports whether every subscription was empty, with no event accepted from a
// handler while it looked.
func (b *Bus) quiescent(subs []*Subscription) bool {
	gen := b.sd.gen.Load()
	for _, s := range subs {
		if s.core.held.Load() > 0 {
			return false
		}
	}
	return b.sd.gen.Load() == gen
}

// hardStop aborts every subscription and waits for their workers; it returns the error of
// the ctx that cut Close short.
func (b *Bus) hardStop(subs []*Subscription) error {
	for _, s := range subs {
		s.core.typed.abort()
	}
	for _, s := range subs {
		s.core.wait()
	}
	return b.sd.abortBy
}

// signalQuiet tells a waiting Close that a subscription has emptied.
func (b *Bus) signalQuiet() {
	select {
	case b.sd.quiet <- struct{}{}:
	default:
	}
}

// noteAccepted counts an event accepted from a handler while Close drains (see quiescent).
func (b *Bus) noteAccepted() {
	if b.sd.closed.Load() {
		b.sd.gen.Add(1)
	}
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
		s.core.typed.abort()
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

// remove takes the subscription off its topic and the bus's live subscriptions, once.
func (s *Subscription) remove() {
	b := s.core.bus
	s.once.Do(func() {
		b.mu.Lock()
		if _, live := b.subs[s]; live {
			delete(b.subs, s)
			b.closing[s] = struct{}{}
			s.core.removed.Store(true) // before it closes: see rejection
			s.core.typed.detach()
		}
		b.mu.Unlock()
	})
}

// seal makes the subscription take events from handlers (and dead-letter hooks) of the bus
// only: publishers outside waiting for room get ErrClosed. A Publish that reserved room
// before is accepted, and is drained with the rest.
func (c *subCore) seal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state.CompareAndSwap(stateOpen, stateSealed)
	c.notifyRoomLocked()
}

// beginClose stops intake; the workers handle what was accepted, then exit.
func (c *subCore) beginClose() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.state.Load(); st == stateOpen || st == stateSealed {
		c.state.Store(stateClosing)
	}
	c.notifyRoomLocked()
	c.work.Broadcast()
}

// abort stops the subscription hard: handlers' contexts are cancelled, retry waits end, and
// every event not yet handled is dead-lettered with an error wrapping ErrClosed.
func (s *subscription[T]) abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Load() == stateAborting {
		return
	}
	s.state.Store(stateAborting)
	s.cancel(ErrClosed)
	s.stopBreakerLocked()
	for i := range s.slots {
		sl := &s.slots[i]
		if sl.state == slotBackoff && sl.timer.Stop() {
			s.timers.Done()
			s.retryDueLocked(int32(i))
		}
	}
	s.notifyRoomLocked()
	s.work.Broadcast()
}

// detach takes the subscription off its topic; the bus's mu is held.
func (s *subscription[T]) detach() { s.topicState.remove(s.bus, s.topic, s) }

// wait blocks until the workers and retry timers are gone. Once the workers are, nothing
// is held, so a cool-down of the circuit breaker has nothing left to hold back: it ends
// rather than keep Close waiting.
func (c *subCore) wait() {
	<-c.done
	c.mu.Lock()
	c.stopBreakerLocked()
	c.mu.Unlock()
	c.timers.Wait()
}

// closedError is the error of an event dead-lettered because its subscription stopped
// (its Close, or the bus's): a *stoppedError, which wraps ErrClosed and the last error of
// a handler, if any. [DeliveryError.Stopped] tells it from a handler's own error that
// wraps ErrClosed.
func closedError(last error) error { return &stoppedError{last: last} }

// stoppedError is the error of an event whose subscription stopped before its outcome.
type stoppedError struct{ last error }

func (e *stoppedError) Error() string {
	if e.last == nil {
		return ErrClosed.Error()
	}
	return ErrClosed.Error() + "; last error: " + e.last.Error()
}

func (e *stoppedError) Unwrap() []error {
	if e.last == nil {
		return []error{ErrClosed}
	}
	return []error{ErrClosed, e.last}
}
