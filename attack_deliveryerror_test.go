package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
)

var atkT = eventbus.NewTopic[int]("attack.de")

func atkOneDeliveryError(t *testing.T, err error) *eventbus.DeliveryError {
	t.Helper()
	var de *eventbus.DeliveryError
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T) holds no *DeliveryError", err, err)
	}
	return de
}

// A handler's own error that wraps ErrClosed: retried with the policy's backoff, and
// Stopped stays false.
func TestAttackHandlerErrClosedIsRetriedNotStopped(t *testing.T) {
	bus := eventbus.New(eventbus.WithDeadLetter(eventbus.DiscardDeadLetters))
	defer bus.Close(context.Background())
	var mu sync.Mutex
	var times []time.Time
	_, err := eventbus.Subscribe(bus, atkT, "relay", func(ctx context.Context, ev eventbus.Event[int]) error {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		return fmt.Errorf("relay to a closed bus: %w", eventbus.ErrClosed)
	}, eventbus.WithRetry(eventbus.RetryPolicy{MaxAttempts: 3, InitialBackoff: 50 * time.Millisecond, Jitter: -1}))
	if err != nil {
		t.Fatal(err)
	}
	perr := eventbus.Publish(context.Background(), bus, atkT, 1, eventbus.WithWait())
	de := atkOneDeliveryError(t, perr)
	if de.Stopped {
		t.Errorf("Stopped = true for a handler's own ErrClosed error")
	}
	if de.Attempts != 3 {
		t.Errorf("Attempts = %d, want 3 (retried by the policy)", de.Attempts)
	}
	if !errors.Is(de.Err, eventbus.ErrClosed) {
		t.Errorf("Err %v does not wrap ErrClosed", de.Err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 3 {
		t.Fatalf("handler called %d times", len(times))
	}
	if g := times[1].Sub(times[0]); g < 45*time.Millisecond {
		t.Errorf("first retry after %v, want >= 50ms backoff", g)
	}
	if g := times[2].Sub(times[1]); g < 95*time.Millisecond {
		t.Errorf("second retry after %v, want >= 100ms backoff", g)
	}
}

// The same while Close drains the bus: retried until handled.
func TestAttackHandlerErrClosedDuringDrainIsRetried(t *testing.T) {
	var dls atomic.Int32
	bus := eventbus.New(eventbus.WithDeadLetter(eventbus.DeadLetterFunc(func(context.Context, eventbus.DeadLetter) error {
		dls.Add(1)
		return nil
	})))
	var calls atomic.Int32
	release := make(chan struct{})
	_, err := eventbus.Subscribe(bus, atkT, "relay", func(ctx context.Context, ev eventbus.Event[int]) error {
		n := calls.Add(1)
		if n == 1 {
			<-release
		}
		if n < 3 {
			return fmt.Errorf("relay: %w", eventbus.ErrClosed)
		}
		return nil
	}, eventbus.WithRetry(eventbus.RetryPolicy{MaxAttempts: 5, InitialBackoff: 10 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	if err := eventbus.Publish(context.Background(), bus, atkT, 1); err != nil {
		t.Fatal(err)
	}
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	done := make(chan error)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- bus.Close(ctx)
	}()
	time.Sleep(20 * time.Millisecond)
	close(release)
	if err := <-done; err != nil {
		t.Errorf("Close = %v", err)
	}
	if calls.Load() != 3 || dls.Load() != 0 {
		t.Errorf("calls %d, dead letters %d; want 3 calls and the event handled", calls.Load(), dls.Load())
	}
}

// Permanent(ErrClosed-wrapping) from the handler: Stopped false.
func TestAttackPermanentErrClosedNotStopped(t *testing.T) {
	bus := eventbus.New(eventbus.WithDeadLetter(eventbus.DiscardDeadLetters))
	defer bus.Close(context.Background())
	eventbus.Subscribe(bus, atkT, "p", func(ctx context.Context, ev eventbus.Event[int]) error {
		return eventbus.Permanent(fmt.Errorf("x: %w", eventbus.ErrClosed))
	})
	de := atkOneDeliveryError(t, eventbus.Publish(context.Background(), bus, atkT, 1, eventbus.WithWait()))
	if de.Stopped || de.Attempts != 1 || !eventbus.IsPermanent(de) {
		t.Errorf("DeliveryError %+v: want Stopped false, Attempts 1, permanent", de)
	}
}

// Stopped true: waiting for a retry when the subscription closes with an ended ctx; Err
// wraps ErrClosed and the last handler error.
func TestAttackStoppedWhileWaitingForRetry(t *testing.T) {
	bus := eventbus.New(eventbus.WithDeadLetter(eventbus.DiscardDeadLetters))
	defer bus.Close(context.Background())
	errX := errors.New("handler failure X")
	var calls atomic.Int32
	sub, _ := eventbus.Subscribe(bus, atkT, "w", func(ctx context.Context, ev eventbus.Event[int]) error {
		calls.Add(1)
		return errX
	}, eventbus.WithRetry(eventbus.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Hour, MaxBackoff: time.Hour}))
	res := make(chan error, 1)
	go func() { res <- eventbus.Publish(context.Background(), bus, atkT, 1, eventbus.WithWait()) }()
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	t0 := time.Now()
	if err := sub.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Subscription.Close(cancelled) = %v", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("Subscription.Close(cancelled) took %v", d)
	}
	de := atkOneDeliveryError(t, <-res)
	if !de.Stopped || !errors.Is(de.Err, eventbus.ErrClosed) || !errors.Is(de.Err, errX) || de.Attempts != 1 {
		t.Errorf("DeliveryError %+v (Err %v): want Stopped, ErrClosed and errX wrapped, Attempts 1", de, de.Err)
	}
}

// Stopped true: never started (queued behind a busy worker) when Bus.Close's ctx ends.
func TestAttackStoppedBeforeAnyAttempt(t *testing.T) {
	bus := eventbus.New(eventbus.WithDeadLetter(eventbus.DiscardDeadLetters))
	release := make(chan struct{})
	var started atomic.Int32
	eventbus.Subscribe(bus, atkT, "busy", func(ctx context.Context, ev eventbus.Event[int]) error {
		started.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return ctx.Err()
	}, eventbus.WithConcurrency(1))
	res := make(chan error, 2)
	go func() {
		res <- eventbus.Publish(context.Background(), bus, atkT, 1, eventbus.WithWait(), eventbus.WithKey("k"))
	}()
	for started.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	go func() {
		res <- eventbus.Publish(context.Background(), bus, atkT, 2, eventbus.WithWait(), eventbus.WithKey("k"))
	}()
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	if err := bus.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v", err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	close(release)
	var sawZero, sawRunning bool
	for range 2 {
		de := atkOneDeliveryError(t, <-res)
		if !de.Stopped || !errors.Is(de.Err, eventbus.ErrClosed) {
			t.Errorf("DeliveryError %+v (Err %v): want Stopped and ErrClosed", de, de.Err)
		}
		if de.Attempts == 0 {
			sawZero = true
		}
		if de.Attempts == 1 {
			sawRunning = true
			if !errors.Is(de.Err, context.Canceled) {
				t.Logf("note: running attempt's handler error (context.Canceled) not wrapped in Err %v", de.Err)
			}
		}
	}
	if !sawZero || !sawRunning {
		t.Errorf("want one with Attempts 0 and one with Attempts 1")
	}
}
