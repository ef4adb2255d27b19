package eventbus

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/uuid"
)

func TestCircuitBreakerPausesThenProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var log bytes.Buffer
		b := New(WithLogger(slog.New(slog.NewTextHandler(&lockedWriter{&mu, &log}, nil))))
		var down atomic.Bool
		down.Store(true)
		var attempts, handled atomic.Int32
		sub := mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error {
			attempts.Add(1)
			if down.Load() {
				return errors.New("dependency down")
			}
			handled.Add(1)
			return nil
		}, WithConcurrency(1), WithCircuitBreaker(3, 10*time.Second),
			WithRetry(RetryPolicy{MaxAttempts: 100, InitialBackoff: time.Millisecond, MaxBackoff: time.Millisecond}))
		if got := sub.Circuit(); got != CircuitClosed {
			t.Fatalf("Circuit() = %v before any failure; want closed", got)
		}
		for i := range 5 {
			mustPublish(t, b, orders, order{Total: i})
		}
		synctest.Wait()
		time.Sleep(time.Second) // retries every millisecond, if the circuit let them
		if got, n := sub.Circuit(), attempts.Load(); got != CircuitOpen || n != 3 {
			t.Fatalf("after 3 failures: circuit %v with %d attempts; want open after 3", got, n)
		}
		time.Sleep(9*time.Second - time.Millisecond)
		synctest.Wait()
		if n := attempts.Load(); n != 3 {
			t.Fatalf("%d attempts during the cool-down; want none", n-3)
		}
		time.Sleep(time.Millisecond) // the cool-down ends: one probe, which fails
		synctest.Wait()
		if got, n := sub.Circuit(), attempts.Load(); got != CircuitOpen || n != 4 {
			t.Fatalf("after a failed probe: circuit %v with %d attempts; want open after 4", got, n)
		}
		down.Store(false)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := sub.Circuit(); got != CircuitClosed {
			t.Fatalf("after a good probe: circuit %v; want closed", got)
		}
		closeBus(t, b)
		if handled.Load() != 5 {
			t.Errorf("handled %d of 5 events; want every one: the circuit drops nothing", handled.Load())
		}
		mu.Lock()
		defer mu.Unlock()
		var changes []string
		for line := range strings.Lines(log.String()) {
			if _, msg, ok := strings.Cut(line, `msg="eventbus: circuit breaker `); ok {
				level, _, _ := strings.Cut(strings.TrimPrefix(line[strings.Index(line, "level="):], "level="), " ")
				changes = append(changes, level+" "+strings.TrimSuffix(strings.Fields(msg)[0], `"`))
			}
		}
		want := []string{"WARN open", "INFO half-open", "WARN open", "INFO half-open", "INFO closed"}
		if !slices.Equal(changes, want) {
			t.Errorf("logged circuit changes %q; want %q", changes, want)
		}
	})
}

func TestCloseDeadlineEndsACoolDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(WithLogger(discardLogger))
		var dls recorder
		sub := mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error {
			return errors.New("down")
		}, WithConcurrency(1), WithCircuitBreaker(1, time.Hour), WithDeadLetter(&dls))
		mustPublish(t, b, orders, order{ID: "1"})
		mustPublish(t, b, orders, order{ID: "2"})
		synctest.Wait()
		if sub.Circuit() != CircuitOpen {
			t.Fatalf("Circuit() = %v; want open", sub.Circuit())
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		if err := b.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close() = %v; want %v", err, context.DeadlineExceeded)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("Close took %v; want the 1s deadline, not the hour-long cool-down", d)
		}
		got := dls.all()
		if len(got) != 2 || !errors.Is(got[0].Err, ErrClosed) || !errors.Is(got[1].Err, ErrClosed) {
			t.Errorf("dead letters %v; want both events, with ErrClosed", got)
		}
	})
}

// TestCloseEndsACoolDownWithNothingHeld: a circuit that opened on an event since
// dead-lettered keeps Close waiting for nothing, so Close returns at once.
func TestCloseEndsACoolDownWithNothingHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(WithLogger(discardLogger))
		var dls recorder
		sub := mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error {
			return Permanent(errors.New("down"))
		}, WithCircuitBreaker(1, time.Hour), WithDeadLetter(&dls))
		if err := Publish(context.Background(), b, orders, order{ID: "1"}, WithWait()); err == nil {
			t.Fatal("Publish(WithWait) = nil; want the handler's error")
		}
		if sub.Circuit() != CircuitOpen {
			t.Fatalf("Circuit() = %v; want open", sub.Circuit())
		}
		start := time.Now()
		if err := b.Close(context.Background()); err != nil {
			t.Errorf("Close() = %v; want nil", err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Close took %v; want no wait, as nothing is held during the hour-long cool-down", d)
		}
		if got := dls.all(); len(got) != 1 {
			t.Errorf("dead letters %v; want the one event", got)
		}
	})
}

// TestProbeSkippedAsDuplicate: a half-open probe that de-duplication skips decides
// nothing, so the next event probes; the circuit does not stay half-open for ever.
func TestProbeSkippedAsDuplicate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(WithLogger(discardLogger))
		var calls atomic.Int32
		sub := mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error {
			if calls.Add(1) == 1 {
				return errors.New("down")
			}
			return nil
		}, WithConcurrency(1), WithCircuitBreaker(1, 10*time.Millisecond), WithDeduplication(time.Hour, 100),
			WithRetry(RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Second, MaxBackoff: time.Second}),
			WithDeadLetter(&recorder{}))
		id := uuid.New()
		mustPublish(t, b, orders, order{ID: "1"}, WithID(id))
		synctest.Wait() // the first attempt fails: the circuit opens, the event waits to retry
		// The probe is a repeat of it.
		mustPublish(t, b, orders, order{ID: "1 again"}, WithID(id))
		mustPublish(t, b, orders, order{ID: "2"})
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if n, st := calls.Load(), sub.Circuit(); n != 3 || st != CircuitClosed {
			t.Errorf("%d handler calls, circuit %v; want 3 (event 1, its retry, event 2) and closed", n, st)
		}
		closeBus(t, b)
	})
}

// TestClosedCircuitUsesEveryWorker: once a probe closes the circuit, the backlog runs on
// all the subscription's workers again, not on the probe's alone.
func TestClosedCircuitUsesEveryWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(WithLogger(discardLogger))
		var calls, running, peak atomic.Int32
		sub := mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error {
			if calls.Add(1) == 1 {
				return errors.New("down")
			}
			n := running.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(10 * time.Millisecond)
			running.Add(-1)
			return nil
		}, WithConcurrency(4), WithCircuitBreaker(1, 50*time.Millisecond), WithDeadLetter(&recorder{}),
			WithRetry(RetryPolicy{MaxAttempts: 1}))
		mustPublish(t, b, orders, order{ID: "fails"})
		synctest.Wait()
		if sub.Circuit() != CircuitOpen {
			t.Fatalf("Circuit() = %v; want open", sub.Circuit())
		}
		for i := range 16 {
			mustPublish(t, b, orders, order{Total: i})
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n, p := calls.Load(), peak.Load(); n != 17 || p != 4 {
			t.Errorf("%d handler calls, at most %d at once; want 17 and 4 (the concurrency)", n, p)
		}
		closeBus(t, b)
	})
}

func TestWithCircuitBreakerRejectsBadArguments(t *testing.T) {
	b := New()
	defer closeBus(t, b)
	for _, o := range []SubscribeOption{WithCircuitBreaker(0, time.Second), WithCircuitBreaker(1, 0)} {
		if _, err := Subscribe(b, orders, "s", func(context.Context, Event[order]) error { return nil }, o); err == nil {
			t.Error("Subscribe(bad WithCircuitBreaker) = nil; want an error")
		}
	}
	if got := CircuitHalfOpen.String(); got != "half-open" {
		t.Errorf("CircuitHalfOpen.String() = %q", got)
	}
}

// TestProbeAloneDecidesTheHalfOpenCircuit: an attempt that was already running when the
// circuit opened, and ends while the probe runs, decides nothing: the probe's outcome
// closes or reopens the circuit.
func TestProbeAloneDecidesTheHalfOpenCircuit(t *testing.T) {
	down := errors.New("down")
	for _, tt := range []struct {
		name         string
		stale, probe error // the outcomes of the earlier attempt and of the probe
		want         CircuitState
	}{
		{name: "earlier attempt succeeds, probe fails", stale: nil, probe: down, want: CircuitOpen},
		{name: "earlier attempt fails, probe succeeds", stale: down, probe: nil, want: CircuitClosed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := New(WithLogger(discardLogger))
				started := map[string]chan struct{}{"stale": make(chan struct{}), "probe": make(chan struct{})}
				result := map[string]chan error{"stale": make(chan error), "probe": make(chan error)}
				sub := mustSubscribe(t, b, orders, "s", func(_ context.Context, ev Event[order]) error {
					id := ev.Payload.ID
					if id == "fails" {
						return down
					}
					close(started[id])
					return <-result[id]
				}, WithConcurrency(2), WithCircuitBreaker(1, 10*time.Second), WithDeadLetter(DiscardDeadLetters),
					WithRetry(RetryPolicy{MaxAttempts: 1}))
				mustPublish(t, b, orders, order{ID: "stale"})
				<-started["stale"]
				mustPublish(t, b, orders, order{ID: "fails"}) // on the other worker
				time.Sleep(time.Millisecond)
				synctest.Wait()
				if got := sub.Circuit(); got != CircuitOpen {
					t.Fatalf("Circuit() after a failure = %v; want open", got)
				}
				mustPublish(t, b, orders, order{ID: "probe"})
				time.Sleep(10 * time.Second) // the cool-down ends: the probe starts
				<-started["probe"]
				if got := sub.Circuit(); got != CircuitHalfOpen {
					t.Fatalf("Circuit() while the probe runs = %v; want half-open", got)
				}
				result["stale"] <- tt.stale
				synctest.Wait()
				if got := sub.Circuit(); got != CircuitHalfOpen {
					t.Errorf("Circuit() once the earlier attempt ended = %v; want half-open: only the probe decides", got)
				}
				result["probe"] <- tt.probe
				synctest.Wait()
				if got := sub.Circuit(); got != tt.want {
					t.Errorf("Circuit() after the probe = %v; want %v", got, tt.want)
				}
				closeBus(t, b)
			})
		})
	}
}

// TestHalfOpenProbeMayPublishToItsOwnFullTopic: the probe of a half-open circuit is the
// only attempt admitted, so a subscription whose probe waits for room in itself cannot
// drain: it is stalled, and the probe's publish must get in.
func TestHalfOpenProbeMayPublishToItsOwnFullTopic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(WithLogger(discardLogger), WithDeadLetter(DiscardDeadLetters))
		topic := NewTopic[string]("t")
		var handled atomic.Int32
		probePublished := make(chan error, 1)
		mustSubscribe(t, b, topic, "s", func(ctx context.Context, ev Event[string]) error {
			switch ev.Payload {
			case "fail":
				return errFlaky
			case "probe":
				probePublished <- Publish(ctx, b, topic, "child")
			}
			handled.Add(1)
			return nil
		}, WithConcurrency(2), WithBuffer(2), WithCircuitBreaker(1, 10*time.Millisecond), WithRetry(RetryPolicy{MaxAttempts: 1}))
		mustPublish(t, b, topic, "fail") // opens the circuit
		synctest.Wait()
		mustPublish(t, b, topic, "probe")
		mustPublish(t, b, topic, "other") // the buffer is full
		time.Sleep(20 * time.Millisecond) // the cool-down passes; "probe" is the probe
		synctest.Wait()
		select {
		case err := <-probePublished:
			if err != nil {
				t.Errorf("Publish from the probe = %v; want nil", err)
			}
		default:
			t.Error("the half-open probe still waits for room in its own subscription: deadlock")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("Close() = %v; want nil", err)
		}
		if handled.Load() != 3 {
			t.Errorf("handled %d; want 3 (probe, other, child)", handled.Load())
		}
	})
}
