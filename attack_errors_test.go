package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
)

func a16NoPanic(t *testing.T, what string, f func() error) error {
	t.Helper()
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("%s: panicked: %v", what, r)
				err = fmt.Errorf("panic")
			}
		}()
		err = f()
	}()
	return err
}

func a16NilH(ctx context.Context, ev eventbus.Event[int]) error { return nil }

var a16BadSubscribeOpts = map[string]eventbus.SubscribeOption{
	"nil option":                   nil,
	"WithConcurrency(0)":           eventbus.WithConcurrency(0),
	"WithConcurrency(-1)":          eventbus.WithConcurrency(-1),
	"WithBuffer(0)":                eventbus.WithBuffer(0),
	"WithBuffer(-5)":               eventbus.WithBuffer(-5),
	"WithDeadLetter(nil)":          eventbus.WithDeadLetter(nil),
	"WithHandlerTimeout(0)":        eventbus.WithHandlerTimeout(0),
	"WithHandlerTimeout(-1)":       eventbus.WithHandlerTimeout(-1),
	"WithDeduplication(0,10)":      eventbus.WithDeduplication(0, 10),
	"WithDeduplication(-1,10)":     eventbus.WithDeduplication(-time.Second, 10),
	"WithDeduplication(1s,0)":      eventbus.WithDeduplication(time.Second, 0),
	"WithDeduplication(1s,-1)":     eventbus.WithDeduplication(time.Second, -1),
	"WithDeduplication(1s,2^24+1)": eventbus.WithDeduplication(time.Second, 1<<24+1),
	"WithCircuitBreaker(0,1s)":     eventbus.WithCircuitBreaker(0, time.Second),
	"WithCircuitBreaker(1,0)":      eventbus.WithCircuitBreaker(1, 0),
	"WithCircuitBreaker(1,-1)":     eventbus.WithCircuitBreaker(1, -1),
	"WithMiddleware(nil)":          eventbus.WithMiddleware(nil),
	"WithMiddleware(ok,nil)":       eventbus.WithMiddleware(func(h eventbus.Handler) eventbus.Handler { return h }, nil),
	"retry MaxAttempts<0":          eventbus.WithRetry(eventbus.RetryPolicy{MaxAttempts: -1}),
	"retry Multiplier 0.5":         eventbus.WithRetry(eventbus.RetryPolicy{Multiplier: 0.5}),
	"retry Multiplier NaN":         eventbus.WithRetry(eventbus.RetryPolicy{Multiplier: math.NaN()}),
	"retry Jitter 2":               eventbus.WithRetry(eventbus.RetryPolicy{Jitter: 2}),
	"retry Jitter NaN":             eventbus.WithRetry(eventbus.RetryPolicy{Jitter: math.NaN()}),
	"retry InitialBackoff<0":       eventbus.WithRetry(eventbus.RetryPolicy{InitialBackoff: -1}),
	"retry MaxBackoff<0":           eventbus.WithRetry(eventbus.RetryPolicy{MaxBackoff: -1}),
	"retry Initial>Max":            eventbus.WithRetry(eventbus.RetryPolicy{InitialBackoff: time.Hour, MaxBackoff: time.Second}),
}

func TestAttackSubscribeBadArgsReturnErrors(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	tp := eventbus.NewTopic[int]("a16.err.sub")
	for name, opt := range a16BadSubscribeOpts {
		err := a16NoPanic(t, name, func() error {
			_, err := eventbus.Subscribe(bus, tp, "s", a16NilH, opt)
			return err
		})
		if err == nil {
			t.Errorf("Subscribe with %s: nil error", name)
		}
		err = a16NoPanic(t, "Handle "+name, func() error {
			_, err := eventbus.Handle(bus, eventbus.NewRequestTopic[int, int]("a16.err.req"), "s", func(ctx context.Context, ev eventbus.Event[int]) (int, error) { return 0, nil }, opt)
			return err
		})
		if err == nil {
			t.Errorf("Handle with %s: nil error", name)
		}
	}
	var zero eventbus.Topic[int]
	if _, err := eventbus.Subscribe(bus, tp, "first", a16NilH); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() error{
		"zero topic":  func() error { _, err := eventbus.Subscribe(bus, zero, "s", a16NilH); return err },
		"empty name":  func() error { _, err := eventbus.Subscribe(bus, tp, "", a16NilH); return err },
		"nil handler": func() error { _, err := eventbus.Subscribe(bus, tp, "s", nil); return err },
		"other type": func() error {
			_, err := eventbus.Subscribe(bus, eventbus.NewTopic[string]("a16.err.sub"), "s2", func(context.Context, eventbus.Event[string]) error { return nil })
			return err
		},
		"duplicate": func() error {
			_, err := eventbus.Subscribe(bus, tp, "first", a16NilH)
			return err
		},
	} {
		if err := a16NoPanic(t, name, f); err == nil {
			t.Errorf("Subscribe with %s: nil error", name)
		}
	}
	// After all that, a good subscription on the topic works.
	if _, err := eventbus.Subscribe(bus, tp, "good", a16NilH); err != nil {
		t.Errorf("good Subscribe: %v", err)
	}
}

func TestAttackPublishBadArgsReturnErrors(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	var zero eventbus.Topic[int]
	tp := eventbus.NewTopic[int]("a16.err.pub")
	eventbus.Subscribe(bus, tp, "s", a16NilH)
	if err := a16NoPanic(t, "other type", func() error {
		return eventbus.Publish(context.Background(), bus, eventbus.NewTopic[string]("a16.err.pub"), "x")
	}); err == nil {
		t.Error("Publish with another payload type: nil error")
	}
	if err := a16NoPanic(t, "zero topic", func() error { return eventbus.Publish(context.Background(), bus, zero, 1) }); err == nil {
		t.Error("Publish zero topic: nil error")
	}
}

// The Errors rule: "a function that returns an error reports them with it" (natsbridge.Connect
// for a nil bus is its example); Subscribe, Handle, Publish and Request all return errors.
func TestAttackNilBusReturnsError(t *testing.T) {
	tp := eventbus.NewTopic[int]("a16.err.nilbus")
	rt := eventbus.NewRequestTopic[int, int]("a16.err.nilbus.req")
	for name, f := range map[string]func() error{
		"Subscribe": func() error { _, err := eventbus.Subscribe(nil, tp, "s", a16NilH); return err },
		"Handle": func() error {
			_, err := eventbus.Handle(nil, rt, "s", func(context.Context, eventbus.Event[int]) (int, error) { return 0, nil })
			return err
		},
		"Publish": func() error { return eventbus.Publish(context.Background(), nil, tp, 1) },
		"Request": func() error { _, err := eventbus.Request(context.Background(), nil, rt, 1); return err },
	} {
		if err := a16NoPanic(t, name+"(nil bus)", f); err == nil {
			t.Errorf("%s(nil bus): nil error", name)
		}
	}
}

// "New panics, with a message that starts "eventbus:", if an option is nil or invalid".
func TestAttackNewBadOptionsPanic(t *testing.T) {
	cases := map[string]eventbus.Option{
		"nil option":                 nil,
		"WithLogger(nil)":            nil, // filled below
		"WithDeadLetter(nil)":        eventbus.WithDeadLetter(nil),
		"WithMiddleware(nil)":        eventbus.WithMiddleware(nil),
		"WithPublishMiddleware(nil)": nil,
		"WithSource(\"\")":           nil,
		"health FullFor<0":           nil,
		"health ratio<0":             nil,
		"health ratio>1":             nil,
		"health ratio NaN":           nil,
		"health MinDeadLetters<0":    nil,
	}
	ctor := map[string]func() eventbus.Option{
		"WithLogger(nil)":            func() eventbus.Option { return eventbus.WithLogger(nil) },
		"WithPublishMiddleware(nil)": func() eventbus.Option { return eventbus.WithPublishMiddleware(nil) },
		"WithSource(\"\")":           func() eventbus.Option { return eventbus.WithSource("") },
		"health FullFor<0":           func() eventbus.Option { return eventbus.WithHealthPolicy(eventbus.HealthPolicy{FullFor: -1}) },
		"health ratio<0":             func() eventbus.Option { return eventbus.WithHealthPolicy(eventbus.HealthPolicy{DeadLetterRatio: -0.5}) },
		"health ratio>1":             func() eventbus.Option { return eventbus.WithHealthPolicy(eventbus.HealthPolicy{DeadLetterRatio: 1.5}) },
		"health ratio NaN": func() eventbus.Option {
			return eventbus.WithHealthPolicy(eventbus.HealthPolicy{DeadLetterRatio: math.NaN()})
		},
		"health MinDeadLetters<0": func() eventbus.Option { return eventbus.WithHealthPolicy(eventbus.HealthPolicy{MinDeadLetters: -1}) },
	}
	for name, opt := range cases {
		var r any
		var bus *eventbus.Bus
		func() {
			defer func() { r = recover() }()
			if c := ctor[name]; c != nil {
				opt = c()
			}
			bus = eventbus.New(opt)
		}()
		if bus != nil {
			bus.Close(context.Background())
		}
		if r == nil {
			t.Errorf("New with %s: no panic", name)
			continue
		}
		if msg := fmt.Sprint(r); !strings.HasPrefix(msg, "eventbus:") {
			t.Errorf("New with %s: panic %q does not start with eventbus:", name, msg)
		}
	}
}

// If a bad-looking option is accepted, nothing may panic later, on an event.
func TestAttackNothingPanicsLater(t *testing.T) {
	var logged sync.Map
	h := &a16LogHandler{fn: func(r slog.Record) { logged.Store(r.Message, true) }}
	bus := eventbus.New(eventbus.WithLogger(slog.New(h)))
	defer a16Close(t, bus)
	tp := eventbus.NewTopic[int]("a16.err.later")
	_, err := eventbus.Subscribe(bus, tp, "s", func(ctx context.Context, ev eventbus.Event[int]) error {
		return eventbus.Permanent(errors.New("dead"))
	}, eventbus.WithMiddleware(func(next eventbus.Handler) eventbus.Handler { return nil }))
	if err != nil {
		t.Logf("middleware returning a nil Handler rejected: %v", err)
		return
	}
	done := make(chan error, 1)
	go func() { done <- eventbus.Publish(context.Background(), bus, tp, 1, eventbus.WithWait()) }()
	select {
	case err := <-done:
		t.Logf("a middleware returning nil: Publish WithWait = %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("hang")
	}
}

type a16LogHandler struct {
	fn func(slog.Record)
}

func (h *a16LogHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *a16LogHandler) Handle(_ context.Context, r slog.Record) error {
	h.fn(r)
	return nil
}
func (h *a16LogHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *a16LogHandler) WithGroup(string) slog.Handler      { return h }

func TestAttackWithTimeZeroKept(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	tp := eventbus.NewTopic[int]("a16.time")
	got := make(chan time.Time, 3)
	eventbus.Subscribe(bus, tp, "s", func(ctx context.Context, ev eventbus.Event[int]) error {
		got <- ev.Time
		return nil
	})
	var pubTimes []time.Time
	bus2 := eventbus.New(eventbus.WithLogger(a16Discard()), eventbus.WithPublishMiddleware(func(next eventbus.PublishFunc) eventbus.PublishFunc {
		return func(ctx context.Context, p *eventbus.Publication) error {
			pubTimes = append(pubTimes, p.Time)
			return next(ctx, p)
		}
	}))
	defer a16Close(t, bus2)
	eventbus.Subscribe(bus2, tp, "s", func(ctx context.Context, ev eventbus.Event[int]) error {
		got <- ev.Time
		return nil
	})
	zone := time.FixedZone("X", 3*3600+1800)
	at := time.Date(2001, 2, 3, 4, 5, 6, 7, zone)
	eventbus.Publish(context.Background(), bus, tp, 1, eventbus.WithTime(time.Time{}), eventbus.WithWait())
	if tm := <-got; !tm.IsZero() || tm != (time.Time{}) {
		t.Errorf("WithTime(zero) -> %v", tm)
	}
	eventbus.Publish(context.Background(), bus, tp, 1, eventbus.WithTime(at), eventbus.WithWait())
	if tm := <-got; tm != at {
		t.Errorf("WithTime(%v) -> %v (\"t as it is\")", at, tm)
	}
	eventbus.Publish(context.Background(), bus2, tp, 1, eventbus.WithTime(time.Time{}), eventbus.WithWait())
	if tm := <-got; !tm.IsZero() || len(pubTimes) != 1 || !pubTimes[0].IsZero() {
		t.Errorf("with publish middleware: handler %v, middleware %v", tm, pubTimes)
	}
	// Later options win? WithTime then nothing: a second publish without WithTime gets now.
	eventbus.Publish(context.Background(), bus, tp, 1, eventbus.WithWait())
	if tm := <-got; tm.IsZero() || time.Since(tm) > time.Second {
		t.Errorf("without WithTime: %v", tm)
	}
}

type a16CountDL struct {
	mu sync.Mutex
	n  int
}

func (c *a16CountDL) HandleDeadLetter(context.Context, eventbus.DeadLetter) error {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return nil
}

func TestAttackBusDeadLetterHandler(t *testing.T) {
	c := &a16CountDL{}
	bus := eventbus.New(eventbus.WithDeadLetter(c), eventbus.WithLogger(a16Discard()))
	if got := bus.DeadLetterHandler(); got != eventbus.DeadLetterHandler(c) {
		t.Errorf("DeadLetterHandler() = %v; want the one given to New", got)
	}
	tp := eventbus.NewTopic[int]("a16.dlh")
	eventbus.Subscribe(bus, tp, "s", func(ctx context.Context, ev eventbus.Event[int]) error {
		return eventbus.Permanent(errors.New("x"))
	})
	rt := eventbus.NewRequestTopic[int, int]("a16.dlh.req")
	eventbus.Handle(bus, rt, "h", func(ctx context.Context, ev eventbus.Event[int]) (int, error) {
		return 0, eventbus.Permanent(errors.New("x"))
	})
	eventbus.Publish(context.Background(), bus, tp, 1, eventbus.WithWait())
	eventbus.Request(context.Background(), bus, rt, 1)
	a16Close(t, bus)
	if c.n != 2 {
		t.Errorf("bus default hook got %d dead letters; want 2", c.n)
	}

	// Default: the returned hook logs at Error through the bus's logger.
	var mu sync.Mutex
	var levels []slog.Level
	lh := &a16LogHandler{fn: func(r slog.Record) {
		mu.Lock()
		if r.Level >= slog.LevelError {
			levels = append(levels, r.Level)
		}
		mu.Unlock()
	}}
	bus2 := eventbus.New(eventbus.WithLogger(slog.New(lh)))
	defer a16Close(t, bus2)
	h := bus2.DeadLetterHandler()
	if h == nil {
		t.Fatal("nil default DeadLetterHandler")
	}
	a16NoPanic(t, "default hook with zero DeadLetter", func() error {
		return h.HandleDeadLetter(context.Background(), eventbus.DeadLetter{Subscriber: "x", Err: errors.New("e")})
	})
	a16NoPanic(t, "default hook with nil Err", func() error {
		return h.HandleDeadLetter(context.Background(), eventbus.DeadLetter{})
	})
	mu.Lock()
	defer mu.Unlock()
	if len(levels) == 0 {
		t.Errorf("default hook logged nothing at Error")
	}
}

// "waits spread out but never exceed MaxBackoff"; a valid policy with extreme fields.
func TestAttackRetryBackoffExtremes(t *testing.T) {
	pols := []eventbus.RetryPolicy{
		{Multiplier: math.Inf(1), Jitter: -1},
		{Multiplier: math.Inf(1)},
		{Multiplier: math.MaxFloat64, Jitter: -1},
		{InitialBackoff: math.MaxInt64, MaxBackoff: math.MaxInt64, Jitter: -1},
		{InitialBackoff: math.MaxInt64 / 2, MaxBackoff: math.MaxInt64, Multiplier: 3, Jitter: -1},
		{InitialBackoff: 1, MaxBackoff: math.MaxInt64, Multiplier: 1e300, Jitter: 1},
		{MaxAttempts: math.MaxInt, InitialBackoff: time.Nanosecond, MaxBackoff: time.Millisecond, Multiplier: 1.0000001},
	}
	for _, p := range pols {
		if err := p.Validate(); err != nil {
			t.Logf("%+v invalid: %v", p, err)
			continue
		}
		maxB := p.MaxBackoff
		if maxB == 0 {
			maxB = 10 * time.Second
		}
		for _, n := range []int{1, 2, 3, 10, 64, 1023, 1024, 1025, 5000, math.MaxInt32, math.MaxInt} {
			var d time.Duration
			a16NoPanic(t, fmt.Sprintf("%+v.Backoff(%d)", p, n), func() error { d = p.Backoff(n); return nil })
			if d < 0 || d > maxB {
				t.Errorf("%+v.Backoff(%d) = %v; want in [0, %v]", p, n, d, maxB)
			}
		}
	}
	// And the bus with Multiplier +Inf actually retries within MaxBackoff.
	bus := a16Bus()
	defer a16Close(t, bus)
	tp := eventbus.NewTopic[int]("a16.retry.inf")
	var mu sync.Mutex
	var times []time.Time
	eventbus.Subscribe(bus, tp, "s", func(ctx context.Context, ev eventbus.Event[int]) error {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		return errors.New("x")
	}, eventbus.WithRetry(eventbus.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, Multiplier: math.Inf(1), Jitter: -1}))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := eventbus.Publish(ctx, bus, tp, 1, eventbus.WithWait())
	var de *eventbus.DeliveryError
	if !errors.As(err, &de) || de.Attempts != 3 {
		t.Errorf("Inf multiplier: %v", err)
	}
	mu.Lock()
	t.Logf("Inf multiplier attempt times: %v", times)
	mu.Unlock()
}

func TestAttackTypedNilDeadLetterFunc(t *testing.T) {
	var logged []string
	var mu sync.Mutex
	lh := &a16LogHandler{fn: func(r slog.Record) { mu.Lock(); logged = append(logged, r.Message); mu.Unlock() }}
	bus := eventbus.New(eventbus.WithLogger(slog.New(lh)))
	defer a16Close(t, bus)
	tp := eventbus.NewTopic[int]("a16.err.typednil")
	sub, err := eventbus.Subscribe(bus, tp, "s", func(ctx context.Context, ev eventbus.Event[int]) error {
		return eventbus.Permanent(errors.New("x"))
	}, eventbus.WithDeadLetter(eventbus.DeadLetterFunc(nil)))
	if err != nil {
		return
	}
	err = a16NoPanic(t, "publish", func() error { return eventbus.Publish(context.Background(), bus, tp, 1, eventbus.WithWait()) })
	mu.Lock()
	t.Logf("typed-nil DeadLetterFunc accepted; Publish=%v; stats dead=%d; logs=%q", err, sub.Stats().DeadLettered, logged)
	mu.Unlock()
}
