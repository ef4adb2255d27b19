package eventbus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestDeadLetterHookPerSubscriptionOverridesBusDefault(t *testing.T) {
	var busDLs, subDLs recorder
	b := New(WithDeadLetter(&busDLs))
	fail := func(context.Context, Event[order]) error { return Permanent(errFlaky) }
	mustSubscribe(t, b, orders, "own", fail, WithDeadLetter(&subDLs))
	mustSubscribe(t, b, orders, "default", fail)
	mustPublish(t, b, orders, order{ID: "o"}, WithKey("o"))
	closeBus(t, b)
	if got := busDLs.all(); len(got) != 1 || got[0].Subscriber != "default" {
		t.Errorf("bus hook got %+v; want one dead letter of subscriber default", got)
	}
	if got := subDLs.all(); len(got) != 1 || got[0].Subscriber != "own" || got[0].Event.Key != "o" || got[0].Event.Type != "order.created" {
		t.Errorf("subscription hook got %+v; want one dead letter of subscriber own, key o", got)
	}
}

func TestBusDeadLetterHandlerIsTheDefault(t *testing.T) {
	var dls recorder
	b := New(WithDeadLetter(&dls))
	defer closeBus(t, b)
	if h := b.DeadLetterHandler(); h != DeadLetterHandler(&dls) {
		t.Errorf("DeadLetterHandler() = %v; want the hook given to New", h)
	}
	plain := New()
	defer closeBus(t, plain)
	if h := plain.DeadLetterHandler(); h == nil {
		t.Error("DeadLetterHandler() of a bus without WithDeadLetter = nil; want the logging hook")
	}
}

func TestDefaultDeadLetterHookLogs(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{&mu, &buf}, nil))
	b := New(WithLogger(logger))
	mustSubscribe(t, b, orders, "billing", func(context.Context, Event[order]) error { return Permanent(errFlaky) })
	mustPublish(t, b, orders, order{})
	closeBus(t, b)
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, want := range []string{"level=ERROR", "eventbus: dead letter", "topic=order.created", "subscriber=billing", "attempts=1", "error=flaky"} {
		if !strings.Contains(out, want) {
			t.Errorf("log = %q; want it to contain %q", out, want)
		}
	}
}

func TestFailingDeadLetterHookIsLogged(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{&mu, &buf}, nil))
	calls := 0
	hook := DeadLetterFunc(func(context.Context, DeadLetter) error {
		calls++
		if calls == 1 {
			return errors.New("dlq down")
		}
		panic("dlq exploded")
	})
	b := New(WithLogger(logger), WithDeadLetter(hook))
	mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error { return Permanent(errFlaky) }, WithConcurrency(1))
	mustPublish(t, b, orders, order{})
	mustPublish(t, b, orders, order{})
	closeBus(t, b)
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if calls != 2 || !strings.Contains(out, "dlq down") || !strings.Contains(out, "dlq exploded") {
		t.Errorf("hook calls = %d, log = %q; want 2 calls, both failures logged", calls, out)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestPanicIsRecoveredRetriedAndWorkerSurvives(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var dls recorder
		b := New(WithDeadLetter(&dls))
		var handled atomic.Int32
		mustSubscribe(t, b, orders, "s", func(_ context.Context, ev Event[order]) error {
			if ev.Payload.ID == "boom" {
				panic("kaboom")
			}
			handled.Add(1)
			return nil
		}, WithConcurrency(1), WithRetry(RetryPolicy{MaxAttempts: 2}))
		// Three panicking events, each retried once: a worker that died on a panic would
		// stop all consumption here.
		for range 3 {
			mustPublish(t, b, orders, order{ID: "boom"})
		}
		for range 5 {
			mustPublish(t, b, orders, order{ID: "fine"})
		}
		closeBus(t, b)
		if handled.Load() != 5 {
			t.Errorf("handled %d events after the panics; want 5", handled.Load())
		}
		got := dls.all()
		if len(got) != 3 {
			t.Fatalf("dead letters = %d; want 3", len(got))
		}
		var pe *PanicError
		if !errors.As(got[0].Err, &pe) || pe.Value != "kaboom" || got[0].Attempts != 2 {
			t.Fatalf("dead letter error = %v after %d attempts; want a *PanicError of kaboom after 2", got[0].Err, got[0].Attempts)
		}
		if !strings.Contains(string(pe.Stack), "TestPanicIsRecoveredRetriedAndWorkerSurvives") {
			t.Errorf("panic stack does not show the handler:\n%s", pe.Stack)
		}
	})
}

// TestPanicMidBatchRunsTheRestOnce: a worker takes a batch of queued events at once; a
// panic in the middle of it must neither skip the events after it nor run any twice.
func TestPanicMidBatchRunsTheRestOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var dls recorder
		b := New(WithDeadLetter(&dls))
		gate := make(chan struct{})
		calls := map[string]int{}
		mustSubscribe(t, b, orders, "s", func(_ context.Context, ev Event[order]) error {
			calls[ev.Payload.ID]++
			switch ev.Payload.ID {
			case "gate":
				<-gate // hold the worker while the batch queues up
			case "boom-3", "boom-6":
				panic(ev.Payload.ID)
			}
			return nil
		}, WithConcurrency(1), WithRetry(RetryPolicy{MaxAttempts: 1}))
		mustPublish(t, b, orders, order{ID: "gate"})
		synctest.Wait()
		names := []string{"e-1", "e-2", "boom-3", "e-4", "e-5", "boom-6", "e-7"}
		for _, id := range names {
			mustPublish(t, b, orders, order{ID: id})
		}
		close(gate)
		closeBus(t, b)
		for _, id := range names {
			if calls[id] != 1 {
				t.Errorf("handler ran %d times for %s; want 1 (calls: %v)", calls[id], id, calls)
			}
		}
		if got := dls.all(); len(got) != 2 || got[0].Event.Payload.(order).ID != "boom-3" || got[1].Event.Payload.(order).ID != "boom-6" {
			t.Errorf("dead letters = %v; want boom-3, then boom-6", got)
		}
	})
}

func TestPanicWithErrorUnwraps(t *testing.T) {
	pe := &PanicError{Value: errFlaky}
	if !errors.Is(pe, errFlaky) {
		t.Errorf("errors.Is(PanicError{errFlaky}, errFlaky) = false; want true")
	}
}

// TestDeadLetterHookCtxOutlivesCloseDeadline: the hook may publish to a dead-letter topic
// with its ctx, and that ctx is not cancelled even once Close's deadline has cut the drain
// short (then the dead-letter topic's subscribers are stopping too and refuse the event,
// which the hook's returned error gets logged for).
func TestDeadLetterHookCtxOutlivesCloseDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(WithLogger(slog.New(slog.DiscardHandler)))
		dlq := NewTopic[order]("order.dead")
		var parked atomic.Int32
		mustSubscribe(t, b, dlq, "parking", func(context.Context, Event[order]) error {
			parked.Add(1)
			return nil
		})
		var hookErrs []error
		var mu sync.Mutex
		mustSubscribe(t, b, orders, "s", func(ctx context.Context, ev Event[order]) error {
			if ev.Payload.ID == "bad" {
				return Permanent(errFlaky)
			}
			<-ctx.Done()
			return ctx.Err()
		}, WithConcurrency(1), WithDeadLetter(DeadLetterFunc(func(ctx context.Context, dl DeadLetter) error {
			mu.Lock()
			hookErrs = append(hookErrs, ctx.Err())
			mu.Unlock()
			return Publish(ctx, b, dlq, dl.Event.Payload.(order))
		})))
		mustPublish(t, b, orders, order{ID: "bad"})
		synctest.Wait()
		if parked.Load() != 1 {
			t.Fatalf("parked %d dead letters; want the hook's publish to reach the dead-letter topic", parked.Load())
		}
		for range 3 {
			mustPublish(t, b, orders, order{ID: "stuck"})
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := b.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close() = %v; want %v", err, context.DeadlineExceeded)
		}
		mu.Lock()
		defer mu.Unlock()
		if fmt.Sprint(hookErrs) != "[<nil> <nil> <nil> <nil>]" {
			t.Errorf("hook ctx errors = %v; want four nil: the hook's ctx is never cancelled", hookErrs)
		}
	})
}

// TestDeadLetterHookRunsBeforeTheNextEventOfItsKey: the next event with the same key waits
// until the hook has returned, so a hook may keep per-key order in a dead-letter queue.
func TestDeadLetterHookRunsBeforeTheNextEventOfItsKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var mu sync.Mutex
		var log []string
		b := New(WithDeadLetter(DeadLetterFunc(func(context.Context, DeadLetter) error {
			<-release
			mu.Lock()
			log = append(log, "dead letter 1")
			mu.Unlock()
			return nil
		})))
		mustSubscribe(t, b, orders, "s", func(_ context.Context, ev Event[order]) error {
			if ev.Payload.ID == "1" {
				return Permanent(errFlaky)
			}
			mu.Lock()
			log = append(log, "handled "+ev.Payload.ID)
			mu.Unlock()
			return nil
		}, WithConcurrency(4))
		mustPublish(t, b, orders, order{ID: "1"}, WithKey("k"))
		mustPublish(t, b, orders, order{ID: "2"}, WithKey("k"))
		mustPublish(t, b, orders, order{ID: "other"}, WithKey("j"))
		time.Sleep(2 * tick) // an idle worker joins the busy one within a tick
		synctest.Wait()
		mu.Lock()
		if got := fmt.Sprint(log); got != "[handled other]" {
			t.Errorf("while the hook runs: %s; want only the other key handled", got)
		}
		mu.Unlock()
		close(release)
		closeBus(t, b)
		if got := fmt.Sprint(log); got != "[handled other dead letter 1 handled 2]" {
			t.Errorf("log = %s; want the dead letter before the next event of its key", got)
		}
	})
}

// TestHandlerGoexitIsAFailedAttempt: runtime.Goexit in a handler (t.FailNow in a test's
// handler does it) fails the attempt; the worker goes on.
func TestHandlerGoexitIsAFailedAttempt(t *testing.T) {
	var dls recorder
	b := New(WithDeadLetter(&dls), WithLogger(discardLogger))
	var attempts atomic.Int32
	var handled atomic.Int32
	mustSubscribe(t, b, orders, "s", func(_ context.Context, ev Event[order]) error {
		switch {
		case ev.Payload.ID == "always":
			runtime.Goexit()
		case attempts.Add(1) == 1:
			runtime.Goexit()
		}
		handled.Add(1)
		return nil
	}, WithConcurrency(1), WithRetry(fastRetry))
	mustPublish(t, b, orders, order{ID: "once"})
	mustPublish(t, b, orders, order{ID: "always"})
	mustPublish(t, b, orders, order{ID: "after"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close() = %v; want nil", err)
	}
	if handled.Load() != 2 {
		t.Errorf("handled %d; want 2", handled.Load())
	}
	got := dls.all()
	if len(got) != 1 || got[0].Attempts != 3 || errors.Is(got[0].Err, ErrClosed) {
		t.Errorf("dead letters %v; want the event that always exits, after 3 attempts", got)
	}
}

// TestGoexitMidBatchRunsTheRestOnce: a handler that calls runtime.Goexit in the middle of
// a batch ends its attempt, and the worker's new goroutine runs the rest of the batch once.
func TestGoexitMidBatchRunsTheRestOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var dls recorder
		b := New(WithDeadLetter(&dls))
		gate := make(chan struct{})
		calls := map[string]int{}
		sub := mustSubscribe(t, b, orders, "s", func(_ context.Context, ev Event[order]) error {
			calls[ev.Payload.ID]++
			switch ev.Payload.ID {
			case "gate":
				<-gate // hold the worker while the batch queues up
			case "exit-3", "exit-6":
				runtime.Goexit()
			}
			return nil
		}, WithConcurrency(1), WithRetry(RetryPolicy{MaxAttempts: 1}))
		mustPublish(t, b, orders, order{ID: "gate"})
		synctest.Wait()
		names := []string{"e-1", "e-2", "exit-3", "e-4", "e-5", "exit-6", "e-7"}
		for _, id := range names {
			mustPublish(t, b, orders, order{ID: id})
		}
		close(gate)
		synctest.Wait()
		st := sub.Stats()
		closeBus(t, b)
		for _, id := range names {
			if calls[id] != 1 {
				t.Errorf("handler ran %d times for %s; want 1 (calls: %v)", calls[id], id, calls)
			}
		}
		got := dls.all()
		if len(got) != 2 || got[0].Event.Payload.(order).ID != "exit-3" || got[1].Event.Payload.(order).ID != "exit-6" {
			t.Fatalf("dead letters = %v; want exit-3, then exit-6", got)
		}
		if msg := got[0].Err.Error(); !strings.Contains(msg, "runtime.Goexit") {
			t.Errorf("dead letter error = %q; want it to name runtime.Goexit", msg)
		}
		if st.Handled != 6 || st.FailedAttempts != 2 || st.DeadLettered != 2 || st.InFlight != 0 {
			t.Errorf("Stats = %+v; want 6 handled, 2 failed attempts, 2 dead letters, none in flight", st)
		}
	})
}

// TestDeadLetterHookGoexitIsLogged: a dead-letter hook that calls runtime.Goexit counts as
// a failed hook, logged; the event still ends, and the worker goes on.
func TestDeadLetterHookGoexitIsLogged(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{&mu, &buf}, nil))
	var calls atomic.Int32
	hook := DeadLetterFunc(func(context.Context, DeadLetter) error {
		if calls.Add(1) == 1 {
			runtime.Goexit()
		}
		return nil
	})
	b := New(WithLogger(logger), WithDeadLetter(hook))
	var handled atomic.Int32
	sub := mustSubscribe(t, b, orders, "s", func(_ context.Context, ev Event[order]) error {
		if ev.Payload.ID == "bad" {
			return Permanent(errFlaky)
		}
		handled.Add(1)
		return nil
	}, WithConcurrency(1))
	mustPublish(t, b, orders, order{ID: "bad"})
	mustPublish(t, b, orders, order{ID: "bad"})
	mustPublish(t, b, orders, order{ID: "good"})
	closeBus(t, b)
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if st := sub.Stats(); calls.Load() != 2 || handled.Load() != 1 || st.DeadLettered != 2 || !strings.Contains(out, "dead-letter hook called runtime.Goexit") {
		t.Errorf("hook calls = %d, handled %d, %d dead letters, log = %q; want 2 calls, 1 handled, 2 dead letters and the Goexit logged",
			calls.Load(), handled.Load(), st.DeadLettered, out)
	}
}

// TestDeadLetterHookPublishesWhileCloseDrains: a hook publishing to a dead-letter topic of
// the bus while Close drains gets in, and Close drains that topic too.
func TestDeadLetterHookPublishesWhileCloseDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(WithLogger(discardLogger))
		dlq := NewTopic[order]("order.dead")
		var parked atomic.Int32
		mustSubscribe(t, b, dlq, "parking", func(context.Context, Event[order]) error {
			parked.Add(1)
			return nil
		})
		gate := make(chan struct{})
		mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error {
			<-gate
			return Permanent(errFlaky)
		}, WithConcurrency(1), WithDeadLetter(DeadLetterFunc(func(ctx context.Context, dl DeadLetter) error {
			return Publish(ctx, b, dlq, dl.Event.Payload.(order))
		})))
		for range 3 {
			mustPublish(t, b, orders, order{})
		}
		closed := make(chan error, 1)
		go func() { closed <- b.Close(context.Background()) }()
		synctest.Wait()
		close(gate)
		if err := <-closed; err != nil || parked.Load() != 3 {
			t.Errorf("Close() = %v with %d dead letters parked; want nil and 3", err, parked.Load())
		}
	})
}

// TestDeadLetterHookPublishAfterCloseDeadlineIsLogged: once Close's deadline has passed, a
// hook's Publish returns ErrClosed; a hook that returns it has the dead letter logged.
func TestDeadLetterHookPublishAfterCloseDeadlineIsLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		var mu sync.Mutex
		b := New(WithLogger(slog.New(slog.NewTextHandler(&lockedWriter{&mu, &buf}, nil))))
		dlq := NewTopic[order]("order.dead")
		mustSubscribe(t, b, dlq, "parking", func(context.Context, Event[order]) error { return nil })
		var refused atomic.Int32
		mustSubscribe(t, b, orders, "s", func(ctx context.Context, _ Event[order]) error {
			<-ctx.Done()
			return ctx.Err()
		}, WithConcurrency(1), WithDeadLetter(DeadLetterFunc(func(ctx context.Context, dl DeadLetter) error {
			err := Publish(ctx, b, dlq, dl.Event.Payload.(order))
			if errors.Is(err, ErrClosed) {
				refused.Add(1)
			}
			return err
		})))
		for range 3 {
			mustPublish(t, b, orders, order{})
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := b.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close() = %v; want %v", err, context.DeadlineExceeded)
		}
		mu.Lock()
		logged := strings.Count(buf.String(), `msg="eventbus: dead-letter hook failed"`)
		mu.Unlock()
		if refused.Load() != 3 || logged != 3 {
			t.Errorf("%d hook publishes refused, %d hook failures logged; want 3 and 3", refused.Load(), logged)
		}
	})
}
