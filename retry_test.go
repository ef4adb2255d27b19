package eventbus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

var errFlaky = errors.New("flaky")

// attemptTimes subscribes a handler that always fails and returns, once the event is
// dead-lettered, the offsets from the publish at which each attempt started.
func attemptTimes(t *testing.T, p RetryPolicy) ([]time.Duration, DeadLetter) {
	t.Helper()
	var times []time.Duration
	var dl DeadLetter
	synctest.Test(t, func(t *testing.T) {
		b := New()
		start := time.Now()
		var mu sync.Mutex
		dead := make(chan DeadLetter, 1)
		mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error {
			mu.Lock()
			times = append(times, time.Since(start))
			mu.Unlock()
			return errFlaky
		}, WithRetry(p), WithDeadLetter(DeadLetterFunc(func(_ context.Context, d DeadLetter) error {
			dead <- d
			return nil
		})))
		mustPublish(t, b, orders, order{ID: "o"})
		dl = <-dead
		closeBus(t, b)
	})
	return times, dl
}

func TestRetryBackoffIsExponentialAndCapped(t *testing.T) {
	times, dl := attemptTimes(t, RetryPolicy{MaxAttempts: 5, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, Multiplier: 2, Jitter: -1})
	want := []time.Duration{0, 100 * time.Millisecond, 300 * time.Millisecond, 600 * time.Millisecond, 900 * time.Millisecond}
	if fmt.Sprint(times) != fmt.Sprint(want) {
		t.Errorf("attempts at %v; want %v", times, want)
	}
	if dl.Attempts != 5 || !errors.Is(dl.Err, errFlaky) || dl.Subscriber != "s" || dl.Event.Payload.(order).ID != "o" {
		t.Errorf("dead letter = %+v; want 5 attempts of subscriber s, event o, error %v", dl, errFlaky)
	}
}

func TestZeroRetryPolicyIsTheDocumentedDefault(t *testing.T) {
	times, dl := attemptTimes(t, RetryPolicy{})
	if len(times) != 3 || dl.Attempts != 3 {
		t.Fatalf("attempts at %v, dead letter after %d; want 3 attempts", times, dl.Attempts)
	}
	// Waits of 100ms then 200ms, each shortened by up to 20% jitter.
	if w := times[1] - times[0]; w < 80*time.Millisecond || w > 100*time.Millisecond {
		t.Errorf("first wait = %v; want within [80ms, 100ms]", w)
	}
	if w := times[2] - times[1]; w < 160*time.Millisecond || w > 200*time.Millisecond {
		t.Errorf("second wait = %v; want within [160ms, 200ms]", w)
	}
}

func TestPermanentErrorEndsRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var dls recorder
		b := New(WithDeadLetter(&dls))
		attempts := 0
		mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error {
			attempts++
			return fmt.Errorf("bad order: %w", Permanent(errFlaky))
		}, WithRetry(RetryPolicy{MaxAttempts: 10}))
		mustPublish(t, b, orders, order{})
		closeBus(t, b)
		got := dls.all()
		if attempts != 1 || len(got) != 1 || got[0].Attempts != 1 || !errors.Is(got[0].Err, errFlaky) {
			t.Errorf("attempts = %d, dead letters = %+v; want 1 attempt, 1 dead letter wrapping %v", attempts, got, errFlaky)
		}
		if Permanent(nil) != nil {
			t.Errorf("Permanent(nil) != nil")
		}
	})
}

func TestIsPermanentSeesThroughWaitErrors(t *testing.T) {
	b := New(WithDeadLetter(DiscardDeadLetters))
	defer closeBus(t, b)
	mustSubscribe(t, b, orders, "permanent", func(context.Context, Event[order]) error {
		return fmt.Errorf("bad order: %w", Permanent(errFlaky))
	})
	mustSubscribe(t, b, orders, "ok", func(context.Context, Event[order]) error { return nil })
	err := Publish(t.Context(), b, orders, order{}, WithWait())
	if !IsPermanent(err) || !errors.Is(err, errFlaky) {
		t.Errorf("IsPermanent(%v) = false; want true for a joined DeliveryError of a Permanent error", err)
	}
	for _, err := range []error{nil, errFlaky, fmt.Errorf("wrapped: %w", errFlaky), errors.Join(errFlaky, ErrClosed)} {
		if IsPermanent(err) {
			t.Errorf("IsPermanent(%v) = true; want false", err)
		}
	}
}

func TestCloseDeadlineEndsRetryWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var dls recorder
		b := New(WithDeadLetter(&dls))
		mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error {
			return errFlaky
		}, WithRetry(RetryPolicy{InitialBackoff: time.Hour, MaxAttempts: 2}))
		mustPublish(t, b, orders, order{})
		synctest.Wait() // the first attempt failed; the event waits an hour
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := b.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close() = %v; want %v", err, context.DeadlineExceeded)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("Close took %v; want the 1s deadline", d)
		}
		got := dls.all()
		if len(got) != 1 || !errors.Is(got[0].Err, ErrClosed) || !errors.Is(got[0].Err, errFlaky) || got[0].Attempts != 1 {
			t.Errorf("dead letters = %+v; want one after 1 attempt, wrapping ErrClosed and the last error", got)
		}
	})
}

func TestBackoffStaysWithinBounds(t *testing.T) {
	p, err := RetryPolicy{MaxAttempts: 100, InitialBackoff: time.Millisecond, MaxBackoff: time.Second, Multiplier: 1.7, Jitter: 0.5}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	prev := time.Duration(0)
	for n := 1; n < 100; n++ {
		base := p.baseBackoff(n)
		if base < prev || base > p.MaxBackoff {
			t.Fatalf("baseBackoff(%d) = %v after %v; want non-decreasing, at most %v", n, base, prev, p.MaxBackoff)
		}
		prev = base
		for range 20 {
			if d := p.backoff(n); d < base/2 || d > base {
				t.Fatalf("backoff(%d) = %v; want within [%v, %v]", n, d, base/2, base)
			}
		}
	}
}

func TestRetryPolicyValidation(t *testing.T) {
	tests := []struct {
		p    RetryPolicy
		want string // "" for valid
	}{
		{RetryPolicy{}, ""},
		{RetryPolicy{MaxAttempts: 1}, ""},
		{RetryPolicy{Jitter: -1}, ""},
		{RetryPolicy{InitialBackoff: time.Minute}, ""}, // MaxBackoff defaults to at least it
		{RetryPolicy{MaxAttempts: -1}, "MaxAttempts"},
		{RetryPolicy{InitialBackoff: -1}, "InitialBackoff"},
		{RetryPolicy{MaxBackoff: -1}, "MaxBackoff must be >= 0"},
		{RetryPolicy{InitialBackoff: time.Second, MaxBackoff: time.Millisecond}, "below InitialBackoff"},
		{RetryPolicy{Multiplier: 0.9}, "Multiplier"},
		{RetryPolicy{Jitter: 1.5}, "Jitter"},
	}
	for _, tt := range tests {
		err := tt.p.Validate()
		if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v.Validate() = %v; want error containing %q", tt.p, err, tt.want)
		}
		if err != nil && tt.p.Backoff(1) != 0 {
			t.Errorf("%+v.Backoff(1) = %v; want 0 for an invalid policy", tt.p, tt.p.Backoff(1))
		}
	}
}

// TestExportedBackoffIsThePolicys: what bridges schedule with is what the bus waits.
func TestExportedBackoffIsThePolicys(t *testing.T) {
	p := RetryPolicy{InitialBackoff: time.Second, MaxBackoff: 3 * time.Second, Jitter: -1}
	for n, want := range map[int]time.Duration{0: time.Second, 1: time.Second, 2: 2 * time.Second, 3: 3 * time.Second, 9: 3 * time.Second} {
		if got := p.Backoff(n); got != want {
			t.Errorf("Backoff(%d) = %v; want %v", n, got, want)
		}
	}
	if got := (RetryPolicy{}).Backoff(1); got < 80*time.Millisecond || got > 100*time.Millisecond {
		t.Errorf("zero policy Backoff(1) = %v; want the default 100ms less up to 20%% jitter", got)
	}
}

// TestBackoffOfHugeAttemptCounts: a broker's delivery count can be anything; Backoff stays
// cheap whatever the Multiplier, and still within its bounds.
func TestBackoffOfHugeAttemptCounts(t *testing.T) {
	for _, m := range []float64{1, 1 + 1e-12, 2} {
		p := RetryPolicy{InitialBackoff: time.Millisecond, MaxBackoff: time.Hour, Multiplier: m, Jitter: -1}
		done := make(chan time.Duration, 1)
		go func() { done <- p.Backoff(math.MaxInt) }()
		select {
		case d := <-done:
			if d < time.Millisecond || d > time.Hour {
				t.Errorf("Multiplier %v: Backoff(MaxInt) = %v; want within [1ms, 1h]", m, d)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Multiplier %v: Backoff(MaxInt) has not returned after 10s", m)
		}
	}
}
