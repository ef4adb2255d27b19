package eventbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestCloseDrainsQueuedEventsWithRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var dls recorder
		b := New(WithDeadLetter(&dls))
		var handled atomic.Int32
		var attempts sync.Map
		mustSubscribe(t, b, orders, "s", func(_ context.Context, ev Event[order]) error {
			n, _ := attempts.LoadOrStore(ev.ID, new(atomic.Int32))
			if n.(*atomic.Int32).Add(1) == 1 {
				return errFlaky // every event fails once and is retried during the drain
			}
			time.Sleep(time.Millisecond)
			handled.Add(1)
			return nil
		}, WithConcurrency(2), WithRetry(RetryPolicy{InitialBackoff: 50 * time.Millisecond}))
		for range 100 {
			mustPublish(t, b, orders, order{})
		}
		if err := b.Close(context.Background()); err != nil {
			t.Fatalf("Close() = %v; want nil", err)
		}
		if handled.Load() != 100 || len(dls.all()) != 0 {
			t.Errorf("handled %d, dead-lettered %d; want all 100 handled by Close", handled.Load(), len(dls.all()))
		}
		if err := Publish(context.Background(), b, orders, order{}); !errors.Is(err, ErrClosed) {
			t.Errorf("Publish(after Close) = %v; want ErrClosed", err)
		}
		if _, err := Subscribe(b, orders, "late", func(context.Context, Event[order]) error { return nil }); !errors.Is(err, ErrClosed) {
			t.Errorf("Subscribe(after Close) = %v; want ErrClosed", err)
		}
		if err := b.Close(context.Background()); err != nil {
			t.Errorf("second Close() = %v; want nil", err)
		}
	})
}

func TestCloseDeadlineDeadLettersTheRest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var dls recorder
		b := New(WithDeadLetter(&dls))
		var handled, cancelled atomic.Int32
		mustSubscribe(t, b, orders, "s", func(ctx context.Context, ev Event[order]) error {
			select {
			case <-time.After(time.Second):
				handled.Add(1)
				return nil
			case <-ctx.Done():
				cancelled.Add(1)
				return context.Cause(ctx)
			}
		}, WithConcurrency(2), WithBuffer(100))
		const accepted = 10
		for range accepted {
			mustPublish(t, b, orders, order{})
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
		defer cancel()
		if err := b.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close() = %v; want %v", err, context.DeadlineExceeded)
		}
		if d := time.Since(start); d != 2500*time.Millisecond {
			t.Errorf("Close took %v; want its 2.5s deadline", d)
		}
		got := dls.all()
		// Two workers handle two events a second: four done by 2s, two cut off at 2.5s.
		if handled.Load() != 4 || cancelled.Load() != 2 || len(got) != accepted-4 {
			t.Errorf("handled %d, cancelled %d, dead-lettered %d; want 4, 2, %d", handled.Load(), cancelled.Load(), len(got), accepted-4)
		}
		for _, dl := range got {
			if !errors.Is(dl.Err, ErrClosed) {
				t.Errorf("dead letter error = %v; want one wrapping ErrClosed", dl.Err)
			}
		}
	})
}

func TestConcurrentCloseCallsShareOneShutdown(t *testing.T) {
	b := New()
	release := make(chan struct{})
	mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error {
		<-release
		return nil
	})
	mustPublish(t, b, orders, order{})
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = b.Close(context.Background()) })
	}
	time.Sleep(10 * time.Millisecond)
	close(release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Close() #%d = %v; want nil", i, err)
		}
	}
}

func TestAnyCloseCallerDeadlineCutsShutdownShort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var dls recorder
		b := New(WithDeadLetter(&dls))
		mustSubscribe(t, b, orders, "s", func(ctx context.Context, _ Event[order]) error {
			<-ctx.Done()
			return ctx.Err()
		})
		mustPublish(t, b, orders, order{})
		patient := make(chan error)
		go func() { patient <- b.Close(context.Background()) }()
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := b.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("impatient Close() = %v; want %v", err, context.DeadlineExceeded)
		}
		if err := <-patient; !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("patient Close() = %v; want the error that cut the shutdown short", err)
		}
		if len(dls.all()) != 1 {
			t.Errorf("dead letters = %d; want 1", len(dls.all()))
		}
	})
}

func TestHandlersMayPublishWhileCloseDrains(t *testing.T) {
	b := New()
	first, second := NewTopic[int]("first"), NewTopic[int]("second")
	var handled atomic.Int32
	mustSubscribe(t, b, first, "s", func(ctx context.Context, ev Event[int]) error {
		time.Sleep(time.Millisecond)
		return Publish(ctx, b, second, ev.Payload)
	})
	mustSubscribe(t, b, second, "s", func(context.Context, Event[int]) error {
		handled.Add(1)
		return nil
	})
	for i := range 20 {
		mustPublish(t, b, first, i)
	}
	closeBus(t, b)
	if handled.Load() != 20 {
		t.Errorf("second topic handled %d; want 20: Close must let the chain finish", handled.Load())
	}
}

func TestCloseFromHandlerDoesNotDeadlock(t *testing.T) {
	b := New()
	returned := make(chan error, 1)
	mustSubscribe(t, b, orders, "s", func(ctx context.Context, _ Event[order]) error {
		returned <- b.Close(ctx)
		return nil
	})
	mustPublish(t, b, orders, order{})
	select {
	case err := <-returned:
		if err != nil {
			t.Errorf("Close(from handler) = %v; want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close from a handler did not return")
	}
	closeBus(t, b) // waits for the shutdown the handler began
	if err := Publish(context.Background(), b, orders, order{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish(after Close from handler) = %v; want ErrClosed", err)
	}
}

func TestSubscriptionCloseDrainsAndDetaches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var dls recorder
		b := New(WithDeadLetter(&dls))
		var handled, other atomic.Int32
		sub := mustSubscribe(t, b, orders, "leaving", func(context.Context, Event[order]) error {
			time.Sleep(time.Millisecond)
			handled.Add(1)
			return nil
		}, WithConcurrency(1))
		mustSubscribe(t, b, orders, "staying", func(context.Context, Event[order]) error {
			other.Add(1)
			return nil
		})
		for range 10 {
			mustPublish(t, b, orders, order{})
		}
		if err := sub.Close(context.Background()); err != nil {
			t.Fatalf("Subscription.Close() = %v; want nil", err)
		}
		if handled.Load() != 10 {
			t.Errorf("leaving subscriber handled %d before Close returned; want 10", handled.Load())
		}
		mustPublish(t, b, orders, order{})
		if err := sub.Close(context.Background()); err != nil {
			t.Errorf("second Subscription.Close() = %v; want nil", err)
		}
		// The name is free again.
		mustSubscribe(t, b, orders, "leaving", func(context.Context, Event[order]) error { return nil })
		closeBus(t, b)
		if handled.Load() != 10 || other.Load() != 11 {
			t.Errorf("handled %d and %d; want 10 (nothing after Close) and 11", handled.Load(), other.Load())
		}
	})
}

// TestSubscriptionCloseDuringBusClose closes a subscription while Bus.Close waits for it
// to empty: Bus.Close must return as soon as the subscription has drained, not when its
// ctx ends.
func TestSubscriptionCloseDuringBusClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New()
		started, release := make(chan struct{}), make(chan struct{})
		sub := mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error {
			close(started)
			<-release
			return nil
		})
		mustPublish(t, b, orders, order{})
		<-started

		busClosed := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			busClosed <- b.Close(ctx)
		}()
		synctest.Wait() // Bus.Close waits for the subscription to empty
		subClosed := make(chan error, 1)
		go func() { subClosed <- sub.Close(context.Background()) }()
		synctest.Wait() // so does Subscription.Close

		start := time.Now()
		close(release)
		if err := <-subClosed; err != nil {
			t.Errorf("Subscription.Close() = %v; want nil", err)
		}
		if err := <-busClosed; err != nil || time.Since(start) != 0 {
			t.Errorf("Bus.Close() = %v after %v; want nil at once", err, time.Since(start))
		}
	})
}

// TestBusCloseWaitsForASubscriptionClosing: Bus.Close, called while a Subscription.Close
// drains a handler, returns only once that handler has returned.
func TestBusCloseWaitsForASubscriptionClosing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New()
		var running atomic.Bool
		sub := mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error {
			running.Store(true)
			time.Sleep(time.Second)
			running.Store(false)
			return nil
		})
		mustPublish(t, b, orders, order{})
		synctest.Wait() // the handler sleeps
		subClosed := make(chan error, 1)
		go func() { subClosed <- sub.Close(context.Background()) }()
		synctest.Wait() // Subscription.Close waits for the handler

		start := time.Now()
		closeBus(t, b)
		if running.Load() || time.Since(start) != time.Second {
			t.Errorf("Bus.Close returned after %v with the handler running: %v; want after the handler's 1s", time.Since(start), running.Load())
		}
		if err := <-subClosed; err != nil {
			t.Errorf("Subscription.Close() = %v; want nil", err)
		}
	})
}

// TestBusCloseDeadlineCutsASubscriptionClosing: a Bus.Close whose ctx ends cuts short a
// Subscription.Close in progress too, dead-lettering what it still held.
func TestBusCloseDeadlineCutsASubscriptionClosing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(WithLogger(discardLogger))
		var dls recorder
		sub := mustSubscribe(t, b, orders, "s", func(ctx context.Context, _ Event[order]) error {
			<-ctx.Done()
			return ctx.Err()
		}, WithConcurrency(1), WithDeadLetter(&dls))
		mustPublish(t, b, orders, order{ID: "1"})
		mustPublish(t, b, orders, order{ID: "2"})
		synctest.Wait()
		subClosed := make(chan error, 1)
		go func() { subClosed <- sub.Close(context.Background()) }()
		synctest.Wait()

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := b.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Bus.Close() = %v; want %v", err, context.DeadlineExceeded)
		}
		if got := dls.all(); len(got) != 2 {
			t.Errorf("dead letters %v; want both events", got)
		}
		if err := <-subClosed; err != nil {
			t.Errorf("Subscription.Close() = %v; want nil (its own ctx never ended)", err)
		}
	})
}

// TestPublishRacingCloseIsNotLost: a publisher that finds the subscription open but
// reserves room only after it closed and its workers exited must not have its event
// accepted, or the event would end nowhere.
func TestPublishRacingCloseIsNotLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(WithLogger(discardLogger))
		var handled atomic.Int32
		var dls recorder
		sub := mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error {
			handled.Add(1)
			return nil
		}, WithDeadLetter(&dls))
		paused, resume := pauseBeforeReserve(sub)
		published := make(chan error, 1)
		go func() { published <- Publish(context.Background(), b, orders, order{}, WithSubscriberRequired()) }()
		<-paused // the publisher saw the subscription open
		if err := sub.Close(context.Background()); err != nil {
			t.Fatalf("Subscription.Close() = %v; want nil", err)
		}
		close(resume)
		err := <-published
		closeBus(t, b)
		if ended := int(handled.Load()) + len(dls.all()); err == nil && ended != 1 || err != nil && ended != 0 {
			t.Errorf("Publish() = %v, and the event ended %d times; want it ended once if accepted, else never", err, ended)
		}
	})
}

// TestSubscriptionCloseFromItsOwnHandler: a handler that unsubscribes after its first
// event returns at once; the subscriber gets no later events, and Bus.Close completes.
func TestSubscriptionCloseFromItsOwnHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(WithLogger(discardLogger))
		var sub *Subscription
		var calls atomic.Int32
		closed := make(chan error, 1)
		sub = mustSubscribe(t, b, orders, "once", func(ctx context.Context, _ Event[order]) error {
			if calls.Add(1) == 1 {
				closed <- sub.Close(ctx)
			}
			return nil
		})
		mustPublish(t, b, orders, order{})
		if err := <-closed; err != nil {
			t.Errorf("Subscription.Close() from its handler = %v; want nil", err)
		}
		synctest.Wait()
		if err := Publish(context.Background(), b, orders, order{}, WithSubscriberRequired()); !errors.Is(err, ErrNoSubscribers) {
			t.Errorf("Publish after the handler unsubscribed = %v; want %v", err, ErrNoSubscribers)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("Bus.Close() = %v; want nil", err)
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("handler called %d times; want 1", n)
		}
	})
}

func TestSubscriptionCloseDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var dls recorder
		b := New(WithDeadLetter(&dls))
		sub := mustSubscribe(t, b, orders, "s", func(ctx context.Context, _ Event[order]) error {
			<-ctx.Done()
			return ctx.Err()
		}, WithConcurrency(1))
		for range 3 {
			mustPublish(t, b, orders, order{})
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := sub.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Subscription.Close() = %v; want %v", err, context.DeadlineExceeded)
		}
		got := dls.all()
		if len(got) != 3 {
			t.Fatalf("dead letters = %d; want 3", len(got))
		}
		for _, dl := range got {
			if !errors.Is(dl.Err, ErrClosed) {
				t.Errorf("dead letter error = %v; want one wrapping ErrClosed", dl.Err)
			}
		}
		closeBus(t, b)
	})
}

func TestWithWaitReturnsFinalErrors(t *testing.T) {
	b := New(WithDeadLetter(DiscardDeadLetters))
	var handled atomic.Bool
	mustSubscribe(t, b, orders, "ok", func(context.Context, Event[order]) error {
		time.Sleep(5 * time.Millisecond)
		handled.Store(true)
		return nil
	})
	mustSubscribe(t, b, orders, "failing", func(_ context.Context, ev Event[order]) error {
		if ev.Payload.ID == "bad" {
			return errFlaky
		}
		return nil
	}, WithRetry(fastRetry))
	ctx := context.Background()
	if err := Publish(ctx, b, orders, order{ID: "good"}, WithWait()); err != nil || !handled.Load() {
		t.Errorf("Publish(WithWait) = %v, handled %v; want nil after the handlers ran", err, handled.Load())
	}
	err := Publish(ctx, b, orders, order{ID: "bad"}, WithWait())
	var de *DeliveryError
	if !errors.Is(err, errFlaky) || !errors.As(err, &de) || de.Subscriber != "failing" || de.Attempts != 3 || de.Topic != "order.created" {
		t.Errorf("Publish(WithWait, failing) = %v; want a DeliveryError of subscriber failing after 3 attempts wrapping %v", err, errFlaky)
	}
	closeBus(t, b)
}

func TestWithWaitCtxEndsTheWaitNotTheDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New()
		var handled atomic.Bool
		mustSubscribe(t, b, orders, "slow", func(context.Context, Event[order]) error {
			time.Sleep(time.Hour)
			handled.Store(true)
			return nil
		})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := Publish(ctx, b, orders, order{}, WithWait()); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Publish(WithWait, slow) = %v; want an error wrapping %v", err, context.DeadlineExceeded)
		}
		if err := b.Close(context.Background()); err != nil {
			t.Fatalf("Close() = %v; want nil", err)
		}
		if !handled.Load() {
			t.Errorf("event not handled; want it delivered although the wait ended")
		}
	})
}

// TestCloseRightAfterWork closes buses whose workers have just run out of events, while they
// may still be looking for more before they sleep: Close must reach them either way.
func TestCloseRightAfterWork(t *testing.T) {
	runWithin(t, 30*time.Second, func() {
		for range 300 {
			b := New()
			handled := make(chan struct{}, 1)
			mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error {
				handled <- struct{}{}
				return nil
			})
			mustPublish(t, b, orders, order{})
			<-handled
			closeBus(t, b)
		}
	})
}

// TestHandlerPublishSkipsASubscriberRemovedWhileCloseDrains: a handler publishing while
// Bus.Close drains looked up the target topic's subscribers before Subscription.Close removed
// one of them. Publish must skip the removed one, as if the event came after the removal,
// and deliver to the rest; not fail with ErrClosed, which handlers are spared while Close
// drains.
func TestHandlerPublishSkipsASubscriberRemovedWhileCloseDrains(t *testing.T) {
	for _, tt := range []struct {
		name    string
		staying bool // the target topic has a subscriber besides the one removed
		opts    []PublishOption
		want    error
	}{
		{name: "fan-out", staying: true},
		{name: "sole subscriber", opts: []PublishOption{WithSubscriberRequired()}, want: ErrNoSubscribers},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := New()
				source, target := NewTopic[int]("source"), NewTopic[int]("target")
				var got atomic.Int32
				var first *Subscription // the first subscriber Publish reserves room in
				if tt.staying {
					first = mustSubscribe(t, b, target, "staying", func(context.Context, Event[int]) error {
						got.Add(1)
						return nil
					})
				}
				leaving := mustSubscribe(t, b, target, "leaving", func(context.Context, Event[int]) error {
					t.Error("the removed subscriber handled an event published after its removal")
					return nil
				})
				if first == nil {
					first = leaving
				}
				started, release := make(chan struct{}), make(chan struct{})
				published := make(chan error, 1)
				mustSubscribe(t, b, source, "s", func(ctx context.Context, _ Event[int]) error {
					close(started)
					<-release
					published <- Publish(ctx, b, target, 1, tt.opts...)
					return nil
				})
				mustPublish(t, b, source, 0)
				<-started
				closed := make(chan error, 1)
				go func() { closed <- b.Close(context.Background()) }()
				synctest.Wait() // Close drains, waiting for the handler
				// Publish has the target's subscribers, leaving among them, when it reserves
				// room in the first: leaving is removed and closed right then.
				testHookBeforeReserve = func(c *subCore) {
					if c != first.core {
						return
					}
					testHookBeforeReserve = nil
					if err := leaving.Close(context.Background()); err != nil {
						t.Errorf("Subscription.Close() = %v; want nil", err)
					}
				}
				close(release)
				if err := <-published; !errors.Is(err, tt.want) || err != nil && tt.want == nil {
					t.Errorf("Publish(from a handler, while Close drains) = %v; want %v", err, tt.want)
				}
				if err := <-closed; err != nil {
					t.Errorf("Close() = %v; want nil", err)
				}
				if tt.staying && got.Load() != 1 {
					t.Errorf("the staying subscriber handled %d events; want 1", got.Load())
				}
			})
		})
	}
}

// An event published while a topic's only subscriber is replaced (Subscribe of the new one,
// then Close of the old) reaches the new one: the old was removed before it could accept
// the event, so the event comes after the removal, when the new one is the subscriber.
func TestPublishReachesTheSubscriberThatReplacedTheOnlyOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New()
		var oldGot, newGot atomic.Int32
		old := mustSubscribe(t, b, orders, "old", func(context.Context, Event[order]) error {
			oldGot.Add(1)
			return nil
		})
		paused, resume := pauseBeforeReserve(old)
		published := make(chan error, 1)
		go func() { published <- Publish(context.Background(), b, orders, order{}, WithSubscriberRequired()) }()
		<-paused // the publisher has only the old subscriber, and saw it open
		mustSubscribe(t, b, orders, "new", func(context.Context, Event[order]) error {
			newGot.Add(1)
			return nil
		})
		if err := old.Close(context.Background()); err != nil {
			t.Fatalf("Subscription.Close() = %v; want nil", err)
		}
		close(resume)
		if err := <-published; err != nil {
			t.Errorf("Publish() = %v; want nil: the new subscriber was there", err)
		}
		synctest.Wait()
		if oldGot.Load() != 0 || newGot.Load() != 1 {
			t.Errorf("old subscriber handled %d events, new one %d; want 0 and 1", oldGot.Load(), newGot.Load())
		}
		closeBus(t, b)
	})
}

// pauseBeforeReserve stops the next publisher that reserves room in sub between its look
// at sub's state and its reservation: paused is closed when it gets there, and it goes on
// once the caller closes resume.
func pauseBeforeReserve(sub *Subscription) (paused, resume chan struct{}) {
	paused, resume = make(chan struct{}), make(chan struct{})
	testHookBeforeReserve = func(c *subCore) {
		if c != sub.core {
			return
		}
		testHookBeforeReserve = nil
		close(paused)
		<-resume
	}
	return paused, resume
}

// TestSubscriptionCloseKeepsToItsCtx: a publisher that waits for room in a slow subscriber
// must not keep another subscriber of the topic from closing within its ctx.
func TestSubscriptionCloseKeepsToItsCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(WithLogger(discardLogger))
		x := NewTopic[int]("x")
		a := mustSubscribe(t, b, x, "a", func(context.Context, Event[int]) error { return nil }, WithBuffer(4))
		mustSubscribe(t, b, x, "slow", func(ctx context.Context, _ Event[int]) error {
			select {
			case <-time.After(3 * time.Second):
			case <-ctx.Done():
			}
			return nil
		}, WithBuffer(1), WithConcurrency(1))
		mustPublish(t, b, x, 1) // slow is busy and full
		synctest.Wait()
		published := make(chan error, 1)
		go func() { published <- Publish(context.Background(), b, x, 2) }()
		synctest.Wait() // the publisher waits for slow
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		a.Close(ctx)
		if d := time.Since(start); d > 50*time.Millisecond {
			t.Errorf("Subscription.Close(50ms) returned after %v; want within its ctx", d)
		}
		if err := <-published; err != nil {
			t.Errorf("Publish() = %v; want nil", err)
		}
		closeBus(t, b)
	})
}

// TestCloseFromAHandlerBeginsTheShutdownAtOnce: Close called from a handler returns nil at
// once, and the shutdown has begun by then: outside publishers and Subscribe get
// ErrClosed, and Health says closed, while the handler still runs.
func TestCloseFromAHandlerBeginsTheShutdownAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(WithLogger(discardLogger))
		closed, proceed := make(chan error, 1), make(chan struct{})
		var handled atomic.Int32
		mustSubscribe(t, b, orders, "s", func(ctx context.Context, ev Event[order]) error {
			if ev.Payload.ID == "closer" {
				closed <- b.Close(ctx)
				<-proceed
			}
			handled.Add(1)
			return nil
		}, WithConcurrency(1))
		mustPublish(t, b, orders, order{ID: "closer"})
		if err := <-closed; err != nil {
			t.Errorf("Close(from a handler) = %v; want nil", err)
		}
		perr := Publish(context.Background(), b, orders, order{ID: "late"})
		_, serr := Subscribe(b, orders, "late", func(context.Context, Event[order]) error { return nil })
		closedNow := b.Health().Closed
		close(proceed)
		if !errors.Is(perr, ErrClosed) || !errors.Is(serr, ErrClosed) || !closedNow {
			t.Errorf("after Close returned in a handler: Publish = %v, Subscribe = %v, Health().Closed = %v; want ErrClosed, ErrClosed, true", perr, serr, closedNow)
		}
		closeBus(t, b)
		if handled.Load() != 1 {
			t.Errorf("handled %d events; want 1, the late one refused", handled.Load())
		}
	})
}

// TestPublisherWaitingWhenCloseBeginsIsRefused: an outside publisher waiting for room when
// Close begins gets ErrClosed, and the event reaches no one; the handlers of the events
// accepted before may still publish, and Close drains them and returns nil.
func TestPublisherWaitingWhenCloseBeginsIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(WithLogger(discardLogger))
		next := NewTopic[int]("next")
		gate := make(chan struct{})
		var chained atomic.Int32
		mustSubscribe(t, b, next, "next", func(context.Context, Event[int]) error {
			chained.Add(1)
			return nil
		})
		var handled atomic.Int32
		mustSubscribe(t, b, orders, "s", func(ctx context.Context, ev Event[order]) error {
			if ev.Payload.ID == "first" {
				<-gate
			}
			handled.Add(1)
			return Publish(ctx, b, next, 1)
		}, WithBuffer(1), WithConcurrency(1))
		mustPublish(t, b, orders, order{ID: "first"}) // the buffer is full
		synctest.Wait()
		waiting := make(chan error, 1)
		go func() { waiting <- Publish(context.Background(), b, orders, order{ID: "waiting"}) }()
		synctest.Wait()
		closed := make(chan error, 1)
		go func() { closed <- b.Close(context.Background()) }()
		synctest.Wait()
		if err := <-waiting; !errors.Is(err, ErrClosed) {
			t.Errorf("Publish waiting for room when Close began = %v; want ErrClosed", err)
		}
		close(gate)
		if err := <-closed; err != nil {
			t.Errorf("Close() = %v; want nil", err)
		}
		if handled.Load() != 1 || chained.Load() != 1 {
			t.Errorf("handled %d, chained %d; want 1 and 1: the refused event nowhere, the accepted one's chain finished", handled.Load(), chained.Load())
		}
	})
}

// TestPublishRacingBusCloseIsRefused: a publisher that looked at a subscription before
// Close began and reserves room only after Close sealed it is refused, and its event
// reaches no one.
func TestPublishRacingBusCloseIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(WithLogger(discardLogger))
		var handled atomic.Int32
		sub := mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error {
			handled.Add(1)
			return nil
		})
		paused, resume := pauseBeforeReserve(sub)
		published := make(chan error, 1)
		go func() { published <- Publish(context.Background(), b, orders, order{}) }()
		<-paused // the publisher saw the subscription open
		closed := make(chan error, 1)
		go func() { closed <- b.Close(context.Background()) }()
		synctest.Wait()
		close(resume)
		if err := <-published; !errors.Is(err, ErrClosed) {
			t.Errorf("Publish that reserved after Close began = %v; want ErrClosed", err)
		}
		if err := <-closed; err != nil || handled.Load() != 0 {
			t.Errorf("Close() = %v, handled %d; want nil and 0", err, handled.Load())
		}
	})
}

// A waiting publisher tells a subscription that stopped before the event's outcome from a
// handler whose own error wraps ErrClosed (a relay to a closed downstream bus): only the
// first is Stopped.
func TestDeliveryErrorStoppedOnlyWhenTheSubscriptionStopped(t *testing.T) {
	t.Run("handler's own ErrClosed", func(t *testing.T) {
		b := New(WithDeadLetter(DiscardDeadLetters))
		defer closeBus(t, b)
		mustSubscribe(t, b, orders, "relay", func(context.Context, Event[order]) error {
			return fmt.Errorf("relay to the warehouse: %w", ErrClosed)
		}, WithRetry(RetryPolicy{MaxAttempts: 1}))
		err := Publish(t.Context(), b, orders, order{}, WithWait())
		var de *DeliveryError
		if !errors.As(err, &de) || de.Stopped || !errors.Is(err, ErrClosed) {
			t.Errorf("Publish = %v (%+v); want a DeliveryError wrapping ErrClosed, not Stopped", err, de)
		}
	})
	t.Run("subscription stopped", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := New(WithDeadLetter(DiscardDeadLetters))
			defer closeBus(t, b)
			sub := mustSubscribe(t, b, orders, "slow", func(ctx context.Context, ev Event[order]) error {
				if ev.Payload.ID == "first" {
					<-ctx.Done()
					return ctx.Err()
				}
				return nil
			}, WithConcurrency(1), WithRetry(RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Hour}))
			first, second := make(chan error, 1), make(chan error, 1)
			go func() { first <- Publish(context.Background(), b, orders, order{ID: "first"}, WithWait()) }()
			synctest.Wait() // the first runs its handler
			go func() { second <- Publish(context.Background(), b, orders, order{ID: "second"}, WithWait()) }()
			synctest.Wait() // the second waits behind it
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			sub.Close(ctx)
			for name, ch := range map[string]chan error{"running": first, "queued": second} {
				err := <-ch
				var de *DeliveryError
				if !errors.As(err, &de) || !de.Stopped || !errors.Is(err, ErrClosed) {
					t.Errorf("%s event: Publish = %v (%+v); want a Stopped DeliveryError wrapping ErrClosed", name, err, de)
				}
			}
		})
	})
}
