package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ae30fb47/eventbus"
)

type a16Req struct{ N int }
type a16Resp struct{ N int }

func a16Bus(opts ...eventbus.Option) *eventbus.Bus {
	opts = append([]eventbus.Option{eventbus.WithLogger(slog.New(slog.DiscardHandler)), eventbus.WithDeadLetter(eventbus.DiscardDeadLetters)}, opts...)
	return eventbus.New(opts...)
}

func a16Close(t *testing.T, b *eventbus.Bus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func a16Double(_ context.Context, ev eventbus.Event[a16Req]) (a16Resp, error) {
	return a16Resp{ev.Payload.N * 2}, nil
}

func TestAttackRequestAnswer(t *testing.T) {
	defer goleak.VerifyNone(t)
	bus := a16Bus()
	rt := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.answer")
	if _, err := eventbus.Handle(bus, rt, "h", a16Double); err != nil {
		t.Fatal(err)
	}
	resp, err := eventbus.Request(context.Background(), bus, rt, a16Req{21})
	if err != nil || resp.N != 42 {
		t.Fatalf("Request = %v, %v; want {42}, nil", resp, err)
	}
	a16Close(t, bus)
}

func TestAttackRequestNoHandlerNamesTopic(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	rt := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.nohandler")
	_, err := eventbus.Request(context.Background(), bus, rt, a16Req{1})
	if !errors.Is(err, eventbus.ErrNoSubscribers) || !strings.Contains(err.Error(), "a16.req.nohandler") {
		t.Fatalf("err = %v; want ErrNoSubscribers naming the topic", err)
	}
	// After the handler's subscription is closed, again no handler.
	sub, err := eventbus.Handle(bus, rt, "h", a16Double)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err = eventbus.Request(context.Background(), bus, rt, a16Req{1})
	if !errors.Is(err, eventbus.ErrNoSubscribers) || !strings.Contains(err.Error(), "a16.req.nohandler") {
		t.Fatalf("after Close: err = %v; want ErrNoSubscribers naming the topic", err)
	}
}

func TestAttackRequestZeroTopic(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	var zero eventbus.RequestTopic[a16Req, a16Resp]
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("Handle on zero RequestTopic panicked: %v", r)
			}
		}()
		if _, err := eventbus.Handle(bus, zero, "h", a16Double); err == nil {
			t.Errorf("Handle on zero RequestTopic: nil error")
		}
	}()
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("Request on zero RequestTopic panicked: %v", r)
			}
		}()
		if _, err := eventbus.Request(context.Background(), bus, zero, a16Req{}); err == nil {
			t.Errorf("Request on zero RequestTopic: nil error")
		}
	}()
}

func TestAttackHandleBadArgs(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	rt := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.bad")
	cases := map[string]func() error{
		"nil handler": func() error { _, err := eventbus.Handle(bus, rt, "h", nil); return err },
		"empty name":  func() error { _, err := eventbus.Handle(bus, rt, "", a16Double); return err },
		"conc 0": func() error {
			_, err := eventbus.Handle(bus, rt, "h", a16Double, eventbus.WithConcurrency(0))
			return err
		},
		"nil dl": func() error {
			_, err := eventbus.Handle(bus, rt, "h", a16Double, eventbus.WithDeadLetter(nil))
			return err
		},
		"nil opt": func() error { _, err := eventbus.Handle(bus, rt, "h", a16Double, nil); return err },
	}
	for name, f := range cases {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: panicked: %v", name, r)
				}
			}()
			if err := f(); err == nil {
				t.Errorf("%s: nil error", name)
			}
		}()
	}
	// The topic must still be free for a good handler.
	if _, err := eventbus.Handle(bus, rt, "h", a16Double); err != nil {
		t.Fatalf("good Handle after bad ones: %v", err)
	}
}

func TestAttackNewRequestTopicEmptyPanics(t *testing.T) {
	defer func() {
		r := recover()
		if r == nil || !strings.HasPrefix(fmt.Sprint(r), "eventbus:") {
			t.Fatalf("recover = %v; want panic starting eventbus:", r)
		}
	}()
	eventbus.NewRequestTopic[a16Req, a16Resp]("")
}

func TestAttackHandleExactlyOne(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	rt := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.one")
	if _, err := eventbus.Handle(bus, rt, "a", a16Double); err != nil {
		t.Fatal(err)
	}
	if _, err := eventbus.Handle(bus, rt, "b", a16Double); err == nil {
		t.Fatal("second Handle on the same topic succeeded")
	}
	// Racing Handle calls on fresh topics: exactly one wins.
	for i := 0; i < 200; i++ {
		rt := eventbus.NewRequestTopic[a16Req, a16Resp](fmt.Sprintf("a16.req.race.%d", i))
		var ok atomic.Int32
		var wg sync.WaitGroup
		for j := 0; j < 4; j++ {
			wg.Add(1)
			go func(j int) {
				defer wg.Done()
				if _, err := eventbus.Handle(bus, rt, fmt.Sprint("h", j), a16Double); err == nil {
					ok.Add(1)
				}
			}(j)
		}
		wg.Wait()
		if ok.Load() != 1 {
			t.Fatalf("round %d: %d Handle calls succeeded, want 1", i, ok.Load())
		}
	}
}

// A plain Topic of the same name and request type must not become a second handler.
func TestAttackHandlePlusSubscribeSameName(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	rt := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.mixed")
	if _, err := eventbus.Handle(bus, rt, "h", a16Double); err != nil {
		t.Fatal(err)
	}
	var plainSaw atomic.Int32
	_, serr := eventbus.Subscribe(bus, eventbus.NewTopic[a16Req]("a16.req.mixed"), "plain", func(ctx context.Context, ev eventbus.Event[a16Req]) error {
		plainSaw.Add(1)
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := eventbus.Request(ctx, bus, rt, a16Req{3})
	t.Logf("Subscribe on the same name: err=%v; Request=%v,%v; plain handler saw %d", serr, resp, err, plainSaw.Load())
	if serr == nil && (err != nil || resp.N != 6) {
		t.Errorf("with a plain subscriber on the same name, Request = %v, %v", resp, err)
	}
}

func TestAttackHandleAfterCloseOfFirst(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	rt := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.reh")
	sub, err := eventbus.Handle(bus, rt, "a", a16Double)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := eventbus.Handle(bus, rt, "b", func(ctx context.Context, ev eventbus.Event[a16Req]) (a16Resp, error) {
		return a16Resp{-1}, nil
	}); err != nil {
		t.Fatalf("Handle after Close of the first: %v", err)
	}
	resp, err := eventbus.Request(context.Background(), bus, rt, a16Req{3})
	if err != nil || resp.N != -1 {
		t.Fatalf("Request = %v, %v; want {-1}", resp, err)
	}
	// Same name again after closing.
	rt2 := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.reh2")
	sub, err = eventbus.Handle(bus, rt2, "a", a16Double)
	if err != nil {
		t.Fatal(err)
	}
	sub.Close(context.Background())
	if _, err := eventbus.Handle(bus, rt2, "a", a16Double); err != nil {
		t.Fatalf("Handle with the same name after Close: %v", err)
	}
}

// Handle closed concurrently with a new Handle and requests in flight.
func TestAttackHandleChurnWithRequests(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	rt := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.churn")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad atomic.Int32
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				resp, err := eventbus.Request(ctx, bus, rt, a16Req{i})
				cancel()
				if err == nil && resp.N != 2*i {
					bad.Add(1)
				}
				if err != nil && !errors.Is(err, eventbus.ErrNoSubscribers) {
					var de *eventbus.DeliveryError
					if !errors.As(err, &de) {
						t.Errorf("unexpected error: %v", err)
						bad.Add(1)
					}
				}
			}
		}()
	}
	for i := 0; i < 100; i++ {
		sub, err := eventbus.Handle(bus, rt, fmt.Sprint("h", i), a16Double)
		if err != nil {
			t.Errorf("Handle %d: %v", i, err)
			break
		}
		time.Sleep(200 * time.Microsecond)
		if err := sub.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d bad outcomes", bad.Load())
	}
}

func TestAttackRequestRacingBusClose(t *testing.T) {
	for round := 0; round < 20; round++ {
		bus := a16Bus()
		rt := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.close")
		if _, err := eventbus.Handle(bus, rt, "h", func(ctx context.Context, ev eventbus.Event[a16Req]) (a16Resp, error) {
			time.Sleep(50 * time.Microsecond)
			return a16Resp{ev.Payload.N * 2}, nil
		}, eventbus.WithConcurrency(2)); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					resp, err := eventbus.Request(ctx, bus, rt, a16Req{i})
					cancel()
					switch {
					case err == nil:
						if resp.N != 2*i {
							t.Errorf("wrong answer %v for %d", resp, i)
						}
					case errors.Is(err, eventbus.ErrClosed):
					default:
						t.Errorf("Request during Close: %v", err)
						return
					}
				}
			}(g)
		}
		time.Sleep(time.Duration(round*100) * time.Microsecond)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := bus.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		cancel()
		wg.Wait()
		if _, err := eventbus.Request(context.Background(), bus, rt, a16Req{1}); !errors.Is(err, eventbus.ErrClosed) {
			t.Errorf("Request after Close = %v; want ErrClosed", err)
		}
	}
}

// Close with a deadline that cuts a running request short.
func TestAttackRequestCloseCutsShort(t *testing.T) {
	defer goleak.VerifyNone(t)
	bus := a16Bus()
	rt := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.cut")
	started := make(chan struct{})
	if _, err := eventbus.Handle(bus, rt, "h", func(ctx context.Context, ev eventbus.Event[a16Req]) (a16Resp, error) {
		close(started)
		<-ctx.Done()
		return a16Resp{}, ctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := eventbus.Request(context.Background(), bus, rt, a16Req{1})
		errc <- err
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := bus.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v", err)
	}
	select {
	case err := <-errc:
		var de *eventbus.DeliveryError
		if !errors.As(err, &de) || !de.Stopped || !errors.Is(err, eventbus.ErrClosed) {
			t.Errorf("Request cut short by Close: %v; want *DeliveryError Stopped wrapping ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Request hangs after Close cut it short")
	}
}

// A handler of a plain topic sends a Request; a request handler sends a request to another
// request topic; all while Close drains ("unless a handler sends it").
func TestAttackRequestFromHandler(t *testing.T) {
	bus := a16Bus()
	rtA := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.fromh.a")
	rtB := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.fromh.b")
	plain := eventbus.NewTopic[int]("a16.req.fromh.plain")
	if _, err := eventbus.Handle(bus, rtB, "b", a16Double); err != nil {
		t.Fatal(err)
	}
	if _, err := eventbus.Handle(bus, rtA, "a", func(ctx context.Context, ev eventbus.Event[a16Req]) (a16Resp, error) {
		r, err := eventbus.Request(ctx, bus, rtB, ev.Payload)
		return a16Resp{r.N + 1}, err
	}); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	release := make(chan struct{})
	if _, err := eventbus.Subscribe(bus, plain, "p", func(ctx context.Context, ev eventbus.Event[int]) error {
		<-release
		r, err := eventbus.Request(ctx, bus, rtA, a16Req{ev.Payload})
		got <- fmt.Sprint(r.N, err)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := eventbus.Publish(context.Background(), bus, plain, 5); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		closed <- bus.Close(ctx)
	}()
	time.Sleep(20 * time.Millisecond)
	close(release)
	select {
	case s := <-got:
		if s != "11 <nil>" {
			t.Errorf("request from handler during Close = %q; want \"11 <nil>\"", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("request from handler hangs")
	}
	if err := <-closed; err != nil {
		t.Errorf("Close = %v", err)
	}
}

// A request handler requesting on its own topic, with spare workers.
func TestAttackRequestSelfRecursive(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	rt := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.self")
	if _, err := eventbus.Handle(bus, rt, "h", func(ctx context.Context, ev eventbus.Event[a16Req]) (a16Resp, error) {
		if ev.Payload.N == 0 {
			return a16Resp{0}, nil
		}
		r, err := eventbus.Request(ctx, bus, rt, a16Req{ev.Payload.N - 1})
		return a16Resp{r.N + 1}, err
	}, eventbus.WithConcurrency(4)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := eventbus.Request(ctx, bus, rt, a16Req{3})
	if err != nil || r.N != 3 {
		t.Fatalf("self-recursive request = %v, %v; want {3}", r, err)
	}
}

func TestAttackRequestDeadlineReachesHandler(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	rt := eventbus.NewRequestTopic[a16Req, time.Time]("a16.req.deadline")
	var attempts atomic.Int32
	if _, err := eventbus.Handle(bus, rt, "h", func(ctx context.Context, ev eventbus.Event[a16Req]) (time.Time, error) {
		d, ok := ctx.Deadline()
		if !ok {
			return time.Time{}, eventbus.Permanent(errors.New("no deadline"))
		}
		if attempts.Add(1) == 1 && ev.Payload.N == 1 {
			return time.Time{}, errors.New("retry me")
		}
		return d, nil
	}, eventbus.WithRetry(eventbus.RetryPolicy{InitialBackoff: time.Millisecond})); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1} {
		attempts.Store(0)
		want := time.Now().Add(3 * time.Second)
		ctx, cancel := context.WithDeadline(context.Background(), want)
		got, err := eventbus.Request(ctx, bus, rt, a16Req{n})
		cancel()
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if !got.Equal(want) {
			t.Errorf("n=%d: handler deadline %v; want caller's %v", n, got, want)
		}
	}
	// Without a deadline, the handler has none.
	rt2 := eventbus.NewRequestTopic[a16Req, bool]("a16.req.nodeadline")
	eventbus.Handle(bus, rt2, "h", func(ctx context.Context, ev eventbus.Event[a16Req]) (bool, error) {
		_, ok := ctx.Deadline()
		return ok, nil
	})
	ok, err := eventbus.Request(context.Background(), bus, rt2, a16Req{})
	if err != nil || ok {
		t.Errorf("no caller deadline: handler has deadline=%v, err=%v", ok, err)
	}
}

func TestAttackRequestCancelReachesHandler(t *testing.T) {
	defer goleak.VerifyNone(t)
	bus := a16Bus()
	rt := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.cancel")
	handlerSawCancel := make(chan error, 1)
	started := make(chan struct{})
	if _, err := eventbus.Handle(bus, rt, "h", func(ctx context.Context, ev eventbus.Event[a16Req]) (a16Resp, error) {
		close(started)
		select {
		case <-ctx.Done():
			handlerSawCancel <- ctx.Err()
		case <-time.After(5 * time.Second):
			handlerSawCancel <- errors.New("not cancelled")
		}
		return a16Resp{}, ctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := eventbus.Request(ctx, bus, rt, a16Req{1})
		errc <- err
	}()
	<-started
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Request after cancel = %v; want wrapping context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Request did not return after cancel")
	}
	if err := <-handlerSawCancel; !errors.Is(err, context.Canceled) {
		t.Errorf("handler ctx: %v", err)
	}
	a16Close(t, bus)
}

type a16DLRec struct {
	mu  sync.Mutex
	dls []eventbus.DeadLetter
}

func (r *a16DLRec) HandleDeadLetter(_ context.Context, dl eventbus.DeadLetter) error {
	r.mu.Lock()
	r.dls = append(r.dls, dl)
	r.mu.Unlock()
	return nil
}

func (r *a16DLRec) all() []eventbus.DeadLetter {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]eventbus.DeadLetter(nil), r.dls...)
}

// The caller gives up; the handler then returns an error: not retried, dead-lettered at once.
// The handler's late answer (or error) must not race with anything.
func TestAttackRequestCallerGaveUpNotRetried(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	rt := eventbus.NewRequestTopic[a16Req, *a16Resp]("a16.req.gaveup")
	var attempts atomic.Int32
	rec := &a16DLRec{}
	if _, err := eventbus.Handle(bus, rt, "h", func(ctx context.Context, ev eventbus.Event[a16Req]) (*a16Resp, error) {
		attempts.Add(1)
		time.Sleep(30 * time.Millisecond) // ignores ctx
		if ev.Payload.N == 0 {
			return &a16Resp{1}, nil // a late answer
		}
		return nil, errors.New("late failure")
	}, eventbus.WithDeadLetter(rec), eventbus.WithRetry(eventbus.RetryPolicy{MaxAttempts: 5, InitialBackoff: time.Millisecond})); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1} {
		attempts.Store(0)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		r, err := eventbus.Request(ctx, bus, rt, a16Req{n})
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || r != nil {
			t.Errorf("n=%d: Request = %v, %v; want nil, DeadlineExceeded", n, r, err)
		}
		time.Sleep(150 * time.Millisecond)
		if got := attempts.Load(); got != 1 {
			t.Errorf("n=%d: %d attempts after the caller gave up; want 1", n, got)
		}
	}
	dls := rec.all()
	if len(dls) != 1 || dls[0].Attempts != 1 {
		t.Fatalf("dead letters %+v; want one with 1 attempt", dls)
	}
	if _, ok := dls[0].Event.Payload.(a16Req); !ok {
		t.Errorf("dead letter payload %T; want a16Req", dls[0].Event.Payload)
	}
	t.Logf("dead letter error: %v", dls[0].Err)
}

// The first attempt fails while the caller waits; the caller gives up during the backoff:
// the README says "a request whose caller gave up is not retried".
func TestAttackRequestCallerGaveUpDuringBackoff(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	rt := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.gaveup.backoff")
	var attempts atomic.Int32
	rec := &a16DLRec{}
	if _, err := eventbus.Handle(bus, rt, "h", func(ctx context.Context, ev eventbus.Event[a16Req]) (a16Resp, error) {
		attempts.Add(1)
		return a16Resp{}, errors.New("fail")
	}, eventbus.WithDeadLetter(rec), eventbus.WithRetry(eventbus.RetryPolicy{MaxAttempts: 3, InitialBackoff: 100 * time.Millisecond, Jitter: -1})); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	_, err := eventbus.Request(ctx, bus, rt, a16Req{1})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Request = %v", err)
	}
	time.Sleep(400 * time.Millisecond)
	if got := attempts.Load(); got != 1 {
		t.Errorf("%d attempts; want 1 (the caller gave up during the first backoff)", got)
	}
	if dls := rec.all(); len(dls) != 1 {
		t.Errorf("%d dead letters; want 1", len(dls))
	} else {
		t.Logf("dead letter: attempts=%d err=%v", dls[0].Attempts, dls[0].Err)
	}
}

func TestAttackRequestRetriesAndFinalError(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	rt := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.retry")
	var attempts atomic.Int32
	boom := errors.New("boom")
	rec := &a16DLRec{}
	var mwPayloads sync.Map
	mw := func(next eventbus.Handler) eventbus.Handler {
		return func(ctx context.Context, d *eventbus.Delivery) error {
			mwPayloads.Store(fmt.Sprintf("%T", d.Payload()), true)
			return next(ctx, d)
		}
	}
	if _, err := eventbus.Handle(bus, rt, "h", func(ctx context.Context, ev eventbus.Event[a16Req]) (a16Resp, error) {
		n := attempts.Add(1)
		switch ev.Payload.N {
		case 0: // succeeds at the third attempt
			if n < 3 {
				return a16Resp{}, boom
			}
			return a16Resp{int(n)}, nil
		case 1:
			return a16Resp{99}, boom
		default:
			return a16Resp{99}, eventbus.Permanent(boom)
		}
	}, eventbus.WithDeadLetter(rec), eventbus.WithMiddleware(mw),
		eventbus.WithRetry(eventbus.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond})); err != nil {
		t.Fatal(err)
	}
	attempts.Store(0)
	r, err := eventbus.Request(context.Background(), bus, rt, a16Req{0})
	if err != nil || r.N != 3 {
		t.Errorf("retried request = %v, %v; want {3}", r, err)
	}
	attempts.Store(0)
	r, err = eventbus.Request(context.Background(), bus, rt, a16Req{1})
	var de *eventbus.DeliveryError
	if !errors.As(err, &de) || de.Attempts != 3 || !errors.Is(err, boom) || de.Stopped || de.Topic != "a16.req.retry" || de.Subscriber != "h" {
		t.Errorf("failing request = %v (%#v); want *DeliveryError, 3 attempts, wrapping boom", err, de)
	}
	if r != (a16Resp{}) {
		t.Logf("note: Resp on error = %v", r)
	}
	attempts.Store(0)
	_, err = eventbus.Request(context.Background(), bus, rt, a16Req{2})
	if !errors.As(err, &de) || de.Attempts != 1 || !errors.Is(err, boom) {
		t.Errorf("permanent: %v", err)
	}
	dls := rec.all()
	if len(dls) != 2 {
		t.Fatalf("%d dead letters; want 2", len(dls))
	}
	for _, dl := range dls {
		if _, ok := dl.Event.Payload.(a16Req); !ok {
			t.Errorf("dead-letter payload is %T; want a16Req", dl.Event.Payload)
		}
		if dl.Event.Type != "a16.req.retry" {
			t.Errorf("dead-letter Type = %q", dl.Event.Type)
		}
	}
	mwPayloads.Range(func(k, _ any) bool {
		if k.(string) != "eventbus_test.a16Req" {
			t.Errorf("middleware saw payload of type %s; want a16Req", k)
		}
		return true
	})
}

// Bus-level middleware and dead-letter default also see the Req.
func TestAttackRequestBusLevelHooksSeeReq(t *testing.T) {
	rec := &a16DLRec{}
	var types sync.Map
	var pubTypes sync.Map
	bus := eventbus.New(eventbus.WithLogger(slog.New(slog.DiscardHandler)), eventbus.WithDeadLetter(rec),
		eventbus.WithMiddleware(func(next eventbus.Handler) eventbus.Handler {
			return func(ctx context.Context, d *eventbus.Delivery) error {
				types.Store(fmt.Sprintf("%T", d.Payload()), true)
				return next(ctx, d)
			}
		}),
		eventbus.WithPublishMiddleware(func(next eventbus.PublishFunc) eventbus.PublishFunc {
			return func(ctx context.Context, p *eventbus.Publication) error {
				pubTypes.Store(fmt.Sprintf("%T", p.Payload()), true)
				return next(ctx, p)
			}
		}))
	defer a16Close(t, bus)
	rt := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.buslevel")
	eventbus.Handle(bus, rt, "h", func(ctx context.Context, ev eventbus.Event[a16Req]) (a16Resp, error) {
		return a16Resp{}, eventbus.Permanent(errors.New("no"))
	})
	eventbus.Request(context.Background(), bus, rt, a16Req{1})
	if dls := rec.all(); len(dls) != 1 {
		t.Fatalf("%d dead letters", len(dls))
	} else if _, ok := dls[0].Event.Payload.(a16Req); !ok {
		t.Errorf("bus dead-letter hook payload %T", dls[0].Event.Payload)
	}
	types.Range(func(k, _ any) bool {
		if k.(string) != "eventbus_test.a16Req" {
			t.Errorf("bus middleware saw %s", k)
		}
		return true
	})
	pubTypes.Range(func(k, _ any) bool {
		if k.(string) != "eventbus_test.a16Req" {
			t.Logf("publish middleware saw %s (not documented either way)", k)
		}
		return true
	})
}

// With WithKey, requests of one key are handled one at a time.
func TestAttackRequestKeyExclusion(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	rt := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.key")
	var running, maxRunning atomic.Int32
	if _, err := eventbus.Handle(bus, rt, "h", func(ctx context.Context, ev eventbus.Event[a16Req]) (a16Resp, error) {
		n := running.Add(1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(200 * time.Microsecond)
		running.Add(-1)
		if ev.Key != "k" {
			return a16Resp{}, errors.New("key lost")
		}
		return a16Resp{ev.Payload.N}, nil
	}, eventbus.WithConcurrency(8)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				n := g*1000 + i
				r, err := eventbus.Request(context.Background(), bus, rt, a16Req{n}, eventbus.WithKey("k"))
				if err != nil || r.N != n {
					t.Errorf("Request %d = %v, %v", n, r, err)
				}
			}
		}(g)
	}
	wg.Wait()
	if maxRunning.Load() != 1 {
		t.Errorf("%d requests of one key ran at once; want 1", maxRunning.Load())
	}
}

func TestAttackRequestManyCallers(t *testing.T) {
	defer goleak.VerifyNone(t)
	bus := a16Bus()
	rt := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.many")
	if _, err := eventbus.Handle(bus, rt, "h", a16Double, eventbus.WithBuffer(4)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				n := g*1000 + i
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				r, err := eventbus.Request(ctx, bus, rt, a16Req{n})
				cancel()
				if err != nil || r.N != 2*n {
					t.Errorf("Request %d = %v, %v", n, r, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	a16Close(t, bus)
}

// Callers that time out en masse, while the handler is slow: no hang, no race, no leak.
func TestAttackRequestManyCallersTimingOut(t *testing.T) {
	defer goleak.VerifyNone(t)
	bus := a16Bus()
	rt := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.many.to")
	if _, err := eventbus.Handle(bus, rt, "h", func(ctx context.Context, ev eventbus.Event[a16Req]) (a16Resp, error) {
		time.Sleep(time.Duration(ev.Payload.N%3) * time.Millisecond)
		if ev.Payload.N%5 == 0 {
			return a16Resp{}, errors.New("odd")
		}
		return a16Resp{ev.Payload.N * 2}, nil
	}, eventbus.WithBuffer(8), eventbus.WithConcurrency(2), eventbus.WithRetry(eventbus.RetryPolicy{InitialBackoff: time.Millisecond})); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				n := g*1000 + i
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%4)*time.Millisecond)
				r, err := eventbus.Request(ctx, bus, rt, a16Req{n})
				cancel()
				if err == nil && r.N != 2*n {
					t.Errorf("Request %d = %v", n, r)
				}
			}
		}(g)
	}
	wg.Wait()
	a16Close(t, bus)
}

func TestAttackRequestMetadataAndTime(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	rt := eventbus.NewRequestTopic[a16Req, eventbus.Event[a16Req]]("a16.req.md")
	eventbus.Handle(bus, rt, "h", func(ctx context.Context, ev eventbus.Event[a16Req]) (eventbus.Event[a16Req], error) {
		return ev, nil
	})
	md := eventbus.Metadata{"a": "1"}
	ev, err := eventbus.Request(context.Background(), bus, rt, a16Req{1}, eventbus.WithMetadata(md), eventbus.WithTime(time.Time{}), eventbus.WithKey("k"))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Metadata["a"] != "1" || !ev.Time.IsZero() || ev.Key != "k" || ev.Type != "a16.req.md" {
		t.Errorf("request envelope %+v", ev)
	}
	if len(ev.Metadata) != 1 {
		t.Errorf("request from outside a handler carries metadata %v", ev.Metadata)
	}
}

// Request with WithWait or WithSubscriberRequired explicitly: implied, must not break anything.
func TestAttackRequestExplicitImpliedOptions(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	rt := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.implied")
	eventbus.Handle(bus, rt, "h", a16Double)
	r, err := eventbus.Request(context.Background(), bus, rt, a16Req{2}, eventbus.WithWait(), eventbus.WithSubscriberRequired())
	if err != nil || r.N != 4 {
		t.Fatalf("Request = %v, %v", r, err)
	}
}

// A handler that ignores ctx and answers after the caller timed out: the caller gets
// DeadlineExceeded; the bus counts it handled (or dead-lettered) exactly once.
func TestAttackRequestLateAnswerStats(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	rt := eventbus.NewRequestTopic[a16Req, []int]("a16.req.late")
	sub, _ := eventbus.Handle(bus, rt, "h", func(ctx context.Context, ev eventbus.Event[a16Req]) ([]int, error) {
		time.Sleep(20 * time.Millisecond)
		s := make([]int, 100)
		for i := range s {
			s[i] = i
		}
		return s, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Millisecond)
	r, err := eventbus.Request(ctx, bus, rt, a16Req{})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || r != nil {
		t.Errorf("Request = %v, %v", r, err)
	}
	time.Sleep(100 * time.Millisecond)
	st := sub.Stats()
	if st.Delivered != 1 || st.Handled+st.DeadLettered != 1 {
		t.Errorf("stats %+v; want 1 delivered, 1 ended", st)
	}
}

func TestAttackRequestAfterClose(t *testing.T) {
	bus := a16Bus()
	rt := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.closed")
	eventbus.Handle(bus, rt, "h", a16Double)
	a16Close(t, bus)
	if _, err := eventbus.Request(context.Background(), bus, rt, a16Req{}); !errors.Is(err, eventbus.ErrClosed) {
		t.Errorf("Request after Close = %v", err)
	}
	if _, err := eventbus.Handle(bus, rt, "h2", a16Double); !errors.Is(err, eventbus.ErrClosed) {
		t.Errorf("Handle after Close = %v", err)
	}
}

// Handler timeout on a request handler: failed attempts, final DeliveryError wrapping
// ErrHandlerTimeout.
func TestAttackRequestHandlerTimeout(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	rt := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.timeout")
	eventbus.Handle(bus, rt, "h", func(ctx context.Context, ev eventbus.Event[a16Req]) (a16Resp, error) {
		<-ctx.Done()
		return a16Resp{1}, nil
	}, eventbus.WithHandlerTimeout(5*time.Millisecond), eventbus.WithRetry(eventbus.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := eventbus.Request(ctx, bus, rt, a16Req{})
	var de *eventbus.DeliveryError
	if !errors.As(err, &de) || de.Attempts != 2 || !errors.Is(err, eventbus.ErrHandlerTimeout) {
		t.Errorf("Request = %v; want *DeliveryError, 2 attempts, ErrHandlerTimeout", err)
	}
}

func a16Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// A request whose caller gives up while it is still queued behind another: Request returns
// at once, and when the handler gets to it, its ctx is already cancelled.
func TestAttackRequestCallerGaveUpWhileQueued(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	rt := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.queued")
	release := make(chan struct{})
	ctxErrAtStart := make(chan error, 1)
	eventbus.Handle(bus, rt, "h", func(ctx context.Context, ev eventbus.Event[a16Req]) (a16Resp, error) {
		if ev.Payload.N == 0 {
			<-release
			return a16Resp{}, nil
		}
		ctxErrAtStart <- ctx.Err()
		return a16Resp{1}, nil
	}, eventbus.WithConcurrency(1))
	go eventbus.Request(context.Background(), bus, rt, a16Req{0})
	time.Sleep(10 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	start := time.Now()
	_, err := eventbus.Request(ctx, bus, rt, a16Req{1})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Errorf("queued Request = %v after %v", err, time.Since(start))
	}
	close(release)
	select {
	case e := <-ctxErrAtStart:
		if e == nil {
			t.Errorf("handler of a request whose caller gave up started with a live ctx")
		}
	case <-time.After(2 * time.Second):
		t.Log("handler never ran for the abandoned request")
	}
}

// Detail for the retry-after-give-up case: the state of the retried attempt's ctx.
func TestAttackRequestRetryAfterGiveUpDetail(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	rt := eventbus.NewRequestTopic[a16Req, a16Resp]("a16.req.gaveup.detail")
	type att struct {
		at     time.Duration
		ctxErr error
	}
	var mu sync.Mutex
	var atts []att
	start := time.Now()
	eventbus.Handle(bus, rt, "h", func(ctx context.Context, ev eventbus.Event[a16Req]) (a16Resp, error) {
		mu.Lock()
		atts = append(atts, att{time.Since(start).Round(time.Millisecond), ctx.Err()})
		n := len(atts)
		mu.Unlock()
		if n == 1 {
			return a16Resp{}, errors.New("transient")
		}
		return a16Resp{7}, nil // the retry succeeds, for nobody
	}, eventbus.WithRetry(eventbus.RetryPolicy{MaxAttempts: 3, InitialBackoff: 100 * time.Millisecond, Jitter: -1}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	_, err := eventbus.Request(ctx, bus, rt, a16Req{})
	cancel()
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("Request = %v; attempts (time since start, ctx.Err at start): %+v", err, atts)
	if len(atts) != 1 {
		t.Errorf("%d attempts; the caller gave up at 20ms, during the 100ms backoff: want no retry", len(atts))
	}
}
