package eventbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestHandlerTimeoutCancelsTheAttemptAndCountsAsFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New()
		var dls recorder
		var attempts []time.Duration // how long each attempt of "stuck" ran
		mustSubscribe(t, b, orders, "s", func(ctx context.Context, ev Event[order]) error {
			start := time.Now()
			switch ev.Payload.ID {
			case "stuck": // honours its ctx
				<-ctx.Done()
				attempts = append(attempts, time.Since(start))
				return ctx.Err()
			case "deaf": // ignores its ctx, and returns nil too late
				time.Sleep(1500 * time.Millisecond)
				return nil
			case "quick":
				time.Sleep(500 * time.Millisecond)
			}
			return nil
		}, WithConcurrency(1), WithHandlerTimeout(time.Second), WithDeadLetter(&dls),
			WithRetry(RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond, Jitter: -1}))
		for _, id := range []string{"stuck", "deaf", "quick"} {
			mustPublish(t, b, orders, order{ID: id})
		}
		closeBus(t, b)

		if len(attempts) != 2 || attempts[0] != time.Second || attempts[1] != time.Second {
			t.Errorf("attempts of the stuck handler ran %v; want 2 attempts cancelled at 1s", attempts)
		}
		got := dls.all()
		if len(got) != 2 {
			t.Fatalf("%d dead letters; want 2 (stuck and deaf)", len(got))
		}
		for _, dl := range got {
			if !errors.Is(dl.Err, ErrHandlerTimeout) || dl.Attempts != 2 {
				t.Errorf("dead letter of %v: err %v after %d attempts; want ErrHandlerTimeout after 2", dl.Event.Payload, dl.Err, dl.Attempts)
			}
		}
	})
}

func TestHandlerTimeoutKeepsTheHandlersError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New()
		errOwn := errors.New("own error")
		mustSubscribe(t, b, orders, "s", func(ctx context.Context, ev Event[order]) error {
			time.Sleep(2 * time.Second)
			return Permanent(errOwn)
		}, WithHandlerTimeout(time.Second), WithDeadLetter(DiscardDeadLetters))
		err := Publish(context.Background(), b, orders, order{}, WithWait())
		if !errors.Is(err, ErrHandlerTimeout) || !errors.Is(err, errOwn) {
			t.Errorf("Publish(WithWait) = %v; want it to wrap ErrHandlerTimeout and the handler's error", err)
		}
		closeBus(t, b)
	})
}

// TestHandlerTimeoutKeepsAPermanentWrappingTheCtxError: a handler that wraps its ctx's
// error with its own words, and marks it Permanent, keeps both: one attempt, and a dead
// letter that says what the handler was doing.
func TestHandlerTimeoutKeepsAPermanentWrappingTheCtxError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New()
		var attempts atomic.Int32
		var dls recorder
		mustSubscribe(t, b, orders, "s", func(ctx context.Context, ev Event[order]) error {
			attempts.Add(1)
			<-ctx.Done()
			return Permanent(fmt.Errorf("query orders: %w", ctx.Err()))
		}, WithHandlerTimeout(time.Second), WithDeadLetter(&dls), WithConcurrency(1))
		mustPublish(t, b, orders, order{})
		time.Sleep(time.Minute)
		synctest.Wait()
		got := dls.all()
		if n := attempts.Load(); n != 1 || len(got) != 1 {
			t.Fatalf("%d attempts, %d dead letters; want 1 and 1", n, len(got))
		}
		if err := got[0].Err; !errors.Is(err, ErrHandlerTimeout) || !IsPermanent(err) || !strings.Contains(err.Error(), "query orders") {
			t.Errorf("dead letter error %q; want it to wrap ErrHandlerTimeout and the handler's Permanent error", err)
		}
		closeBus(t, b)
	})
}

func TestWithHandlerTimeoutRejectsNonPositive(t *testing.T) {
	b := New()
	defer closeBus(t, b)
	for _, d := range []time.Duration{0, -time.Second} {
		if _, err := Subscribe(b, orders, "s", func(context.Context, Event[order]) error { return nil }, WithHandlerTimeout(d)); err == nil {
			t.Errorf("Subscribe(WithHandlerTimeout(%v)) = nil; want an error", d)
		}
	}
}
