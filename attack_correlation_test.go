package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ae30fb47/eventbus"
)

const (
	a16CID = eventbus.CorrelationIDKey
	a16Cau = eventbus.CausationIDKey
)

type a16Seen struct {
	mu  sync.Mutex
	evs map[string][]eventbus.Event[string]
}

func (s *a16Seen) add(name string, ev eventbus.Event[string]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.evs == nil {
		s.evs = map[string][]eventbus.Event[string]{}
	}
	s.evs[name] = append(s.evs[name], ev)
}

func (s *a16Seen) get(name string) []eventbus.Event[string] {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]eventbus.Event[string](nil), s.evs[name]...)
}

func a16WaitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestAttackCorrelationChain(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	a := eventbus.NewTopic[string]("a16.cor.a")
	b := eventbus.NewTopic[string]("a16.cor.b")
	c := eventbus.NewTopic[string]("a16.cor.c")
	var seen a16Seen
	eventbus.Subscribe(bus, a, "a", func(ctx context.Context, ev eventbus.Event[string]) error {
		seen.add("a", ev)
		return eventbus.Publish(ctx, bus, b, "from a")
	})
	eventbus.Subscribe(bus, b, "b", func(ctx context.Context, ev eventbus.Event[string]) error {
		seen.add("b", ev)
		return eventbus.Publish(ctx, bus, c, "from b")
	})
	eventbus.Subscribe(bus, c, "c", func(ctx context.Context, ev eventbus.Event[string]) error {
		seen.add("c", ev)
		return nil
	})
	if err := eventbus.Publish(context.Background(), bus, a, "root"); err != nil {
		t.Fatal(err)
	}
	a16WaitFor(t, func() bool { return len(seen.get("c")) == 1 })
	ea, eb, ec := seen.get("a")[0], seen.get("b")[0], seen.get("c")[0]
	if len(ea.Metadata) != 0 {
		t.Errorf("root event published outside a handler has metadata %v", ea.Metadata)
	}
	if eb.Metadata[a16CID] != ea.ID.String() || eb.Metadata[a16Cau] != ea.ID.String() {
		t.Errorf("b: %v; want both = %s", eb.Metadata, ea.ID)
	}
	if ec.Metadata[a16CID] != ea.ID.String() || ec.Metadata[a16Cau] != eb.ID.String() {
		t.Errorf("c: %v; want cid %s, cau %s", ec.Metadata, ea.ID, eb.ID)
	}
}

func TestAttackCorrelationDerivedCtxAndOwnKeys(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	a := eventbus.NewTopic[string]("a16.cor2.a")
	out := eventbus.NewTopic[string]("a16.cor2.out")
	var seen a16Seen
	type ctxKey struct{}
	userMD := eventbus.Metadata{"x": "y"}
	ownBoth := eventbus.Metadata{a16CID: "C", a16Cau: "P"}
	ownCID := eventbus.Metadata{a16CID: "C"}
	var parentMD eventbus.Metadata
	eventbus.Subscribe(bus, a, "a", func(ctx context.Context, ev eventbus.Event[string]) error {
		parentMD = ev.Metadata
		tctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		vctx := context.WithValue(ctx, ctxKey{}, 1)
		cctx, ccancel := context.WithCancel(vctx)
		defer ccancel()
		for _, p := range []struct {
			ctx  context.Context
			name string
			opts []eventbus.PublishOption
		}{
			{tctx, "timeout", nil},
			{vctx, "value", nil},
			{cctx, "cancel-of-value", nil},
			{ctx, "usermd", []eventbus.PublishOption{eventbus.WithMetadata(userMD)}},
			{ctx, "ownboth", []eventbus.PublishOption{eventbus.WithMetadata(ownBoth)}},
			{ctx, "owncid", []eventbus.PublishOption{eventbus.WithMetadata(ownCID)}},
			{ctx, "wait", []eventbus.PublishOption{eventbus.WithWait()}},
			{context.WithoutCancel(ctx), "withoutcancel", nil},
		} {
			if err := eventbus.Publish(p.ctx, bus, out, p.name, p.opts...); err != nil {
				return err
			}
		}
		return nil
	})
	eventbus.Subscribe(bus, out, "out", func(ctx context.Context, ev eventbus.Event[string]) error {
		seen.add(ev.Payload, ev)
		seen.add("all", ev)
		return nil
	})
	root := uuid.Must(uuid.NewV7())
	if err := eventbus.Publish(context.Background(), bus, a, "root", eventbus.WithID(root), eventbus.WithMetadata(eventbus.Metadata{"m": "1"})); err != nil {
		t.Fatal(err)
	}
	a16WaitFor(t, func() bool { return len(seen.get("all")) == 8 })
	for _, name := range []string{"timeout", "value", "cancel-of-value", "usermd", "wait", "withoutcancel"} {
		ev := seen.get(name)[0]
		if ev.Metadata[a16CID] != root.String() || ev.Metadata[a16Cau] != root.String() {
			t.Errorf("%s: metadata %v; want cid=cau=%s", name, ev.Metadata, root)
		}
	}
	if ev := seen.get("usermd")[0]; ev.Metadata["x"] != "y" {
		t.Errorf("usermd lost its own entry: %v", ev.Metadata)
	}
	if ev := seen.get("ownboth")[0]; ev.Metadata[a16CID] != "C" || ev.Metadata[a16Cau] != "P" {
		t.Errorf("ownboth: %v; want the publisher's own C/P", ev.Metadata)
	}
	if ev := seen.get("owncid")[0]; ev.Metadata[a16CID] != "C" {
		t.Errorf("owncid: %v; want the publisher's own correlationid C", ev.Metadata)
	} else {
		t.Logf("owncid (publisher set only correlationid): %v", ev.Metadata)
	}
	if len(userMD) != 1 || len(ownBoth) != 2 || len(ownCID) != 1 {
		t.Errorf("publisher's maps mutated: %v %v %v", userMD, ownBoth, ownCID)
	}
	if len(parentMD) != 1 || parentMD["m"] != "1" {
		t.Errorf("handled event's Metadata mutated: %v", parentMD)
	}
}

// An incoming event that carries its own correlationid (from a broker) passes it on.
func TestAttackCorrelationInheritsExisting(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	a := eventbus.NewTopic[string]("a16.cor3.a")
	out := eventbus.NewTopic[string]("a16.cor3.out")
	var seen a16Seen
	eventbus.Subscribe(bus, a, "a", func(ctx context.Context, ev eventbus.Event[string]) error {
		return eventbus.Publish(ctx, bus, out, "x")
	})
	eventbus.Subscribe(bus, out, "out", func(ctx context.Context, ev eventbus.Event[string]) error {
		seen.add("out", ev)
		return nil
	})
	md := eventbus.Metadata{a16CID: "ext-corr", a16Cau: "ext-parent"}
	id := uuid.Must(uuid.NewV7())
	eventbus.Publish(context.Background(), bus, a, "r", eventbus.WithID(id), eventbus.WithMetadata(md))
	a16WaitFor(t, func() bool { return len(seen.get("out")) == 1 })
	ev := seen.get("out")[0]
	if ev.Metadata[a16CID] != "ext-corr" || ev.Metadata[a16Cau] != id.String() {
		t.Errorf("child: %v; want cid ext-corr, cau %s", ev.Metadata, id)
	}
}

func TestAttackCorrelationOtherBusAndDeadLetterHook(t *testing.T) {
	bus2 := a16Bus()
	defer a16Close(t, bus2)
	other := eventbus.NewTopic[string]("a16.cor4.other")
	dlt := eventbus.NewTopic[string]("a16.cor4.dlt")
	var seen a16Seen
	eventbus.Subscribe(bus2, other, "o", func(ctx context.Context, ev eventbus.Event[string]) error {
		seen.add("other", ev)
		return nil
	})
	var bus *eventbus.Bus
	hook := eventbus.DeadLetterFunc(func(ctx context.Context, dl eventbus.DeadLetter) error {
		return eventbus.Publish(ctx, bus, dlt, "dl")
	})
	bus = eventbus.New(eventbus.WithDeadLetter(hook))
	defer a16Close(t, bus)
	a := eventbus.NewTopic[string]("a16.cor4.a")
	eventbus.Subscribe(bus, dlt, "d", func(ctx context.Context, ev eventbus.Event[string]) error {
		seen.add("dlt", ev)
		return nil
	})
	eventbus.Subscribe(bus, a, "a", func(ctx context.Context, ev eventbus.Event[string]) error {
		seen.add("a", ev)
		if err := eventbus.Publish(ctx, bus2, other, "x"); err != nil {
			return err
		}
		return eventbus.Permanent(errors.New("dead"))
	})
	eventbus.Publish(context.Background(), bus, a, "r", eventbus.WithMetadata(eventbus.Metadata{a16CID: "C0"}))
	a16WaitFor(t, func() bool { return len(seen.get("dlt")) == 1 && len(seen.get("other")) == 1 })
	ea := seen.get("a")[0]
	if ev := seen.get("other")[0]; ev.Metadata[a16CID] != "C0" || ev.Metadata[a16Cau] != ea.ID.String() {
		t.Errorf("other bus: %v", ev.Metadata)
	}
	if ev := seen.get("dlt")[0]; ev.Metadata[a16CID] != "C0" || ev.Metadata[a16Cau] != ea.ID.String() {
		t.Errorf("dead-letter hook's publish: %v; want cid C0, cau %s", ev.Metadata, ea.ID)
	}
}

// Dead letters made by Close's drain (no attempt): a hook's publish still names the event.
func TestAttackCorrelationDeadLetterHookNoAttempt(t *testing.T) {
	var bus *eventbus.Bus
	dlt := eventbus.NewTopic[string]("a16.cor5.dlt")
	a := eventbus.NewTopic[string]("a16.cor5.a")
	var seen a16Seen
	hook := eventbus.DeadLetterFunc(func(ctx context.Context, dl eventbus.DeadLetter) error {
		return eventbus.Publish(ctx, bus, dlt, dl.Event.ID.String())
	})
	bus = eventbus.New(eventbus.WithDeadLetter(hook), eventbus.WithLogger(a16Discard()))
	block := make(chan struct{})
	eventbus.Subscribe(bus, dlt, "d", func(ctx context.Context, ev eventbus.Event[string]) error {
		seen.add("dlt", ev)
		return nil
	})
	sub, _ := eventbus.Subscribe(bus, a, "a", func(ctx context.Context, ev eventbus.Event[string]) error {
		<-block
		return ctx.Err()
	}, eventbus.WithConcurrency(1))
	for i := 0; i < 5; i++ {
		id := uuid.Must(uuid.NewV7())
		eventbus.Publish(context.Background(), bus, a, "x", eventbus.WithID(id))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	go func() { time.Sleep(60 * time.Millisecond); close(block) }()
	sub.Close(ctx)
	cancel()
	a16Close(t, bus)
	if len(seen.get("dlt")) != 5 {
		t.Errorf("%d dead-letter publishes; want 5", len(seen.get("dlt")))
	}
	for _, ev := range seen.get("dlt") {
		if ev.Metadata[a16Cau] != ev.Payload || ev.Metadata[a16CID] != ev.Payload {
			t.Errorf("hook publish for %s: %v", ev.Payload, ev.Metadata)
		}
	}
	t.Logf("%d dead-letter publishes got through during the cut-short Close", len(seen.get("dlt")))
}

// Many events in flight at once (concurrency > 1, batches under a backlog): each child
// names its own parent.
func TestAttackCorrelationBatchesNameTheirParent(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	a := eventbus.NewTopic[string]("a16.cor6.a")
	out := eventbus.NewTopic[string]("a16.cor6.out")
	var bad, n atomic.Int32
	eventbus.Subscribe(bus, a, "a", func(ctx context.Context, ev eventbus.Event[string]) error {
		if ev.Payload[0] == 's' {
			time.Sleep(100 * time.Microsecond)
		}
		if err := eventbus.Publish(ctx, bus, out, ev.ID.String()); err != nil {
			return err
		}
		return eventbus.Publish(ctx, bus, out, ev.ID.String())
	}, eventbus.WithConcurrency(4))
	for _, name := range []string{"o1", "o2"} {
		eventbus.Subscribe(bus, out, name, func(ctx context.Context, ev eventbus.Event[string]) error {
			if ev.Metadata[a16Cau] != ev.Payload || ev.Metadata[a16CID] != ev.Payload {
				bad.Add(1)
			}
			n.Add(1)
			return nil
		}, eventbus.WithConcurrency(3))
	}
	const N = 3000
	var wg sync.WaitGroup
	for p := 0; p < 2; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := 0; i < N/2; i++ {
				payload := "f"
				if i%7 == 0 {
					payload = "s"
				}
				var opts []eventbus.PublishOption
				if i%3 == 0 {
					opts = append(opts, eventbus.WithKey(fmt.Sprint(i%5)))
				}
				if err := eventbus.Publish(context.Background(), bus, a, payload, opts...); err != nil {
					t.Error(err)
					return
				}
			}
		}(p)
	}
	wg.Wait()
	a16WaitFor(t, func() bool { return n.Load() == 4*N })
	if bad.Load() != 0 {
		t.Errorf("%d of %d children name another event", bad.Load(), 4*N)
	}
}

// A retried attempt publishes again: both children name the same parent.
func TestAttackCorrelationRetriedAttempt(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	a := eventbus.NewTopic[string]("a16.cor7.a")
	out := eventbus.NewTopic[string]("a16.cor7.out")
	var seen a16Seen
	var attempts atomic.Int32
	eventbus.Subscribe(bus, a, "a", func(ctx context.Context, ev eventbus.Event[string]) error {
		seen.add("a", ev)
		if err := eventbus.Publish(ctx, bus, out, fmt.Sprint(attempts.Add(1))); err != nil {
			return err
		}
		if attempts.Load() < 3 {
			return errors.New("again")
		}
		return nil
	}, eventbus.WithRetry(eventbus.RetryPolicy{InitialBackoff: time.Millisecond}))
	eventbus.Subscribe(bus, out, "out", func(ctx context.Context, ev eventbus.Event[string]) error {
		seen.add("out", ev)
		return nil
	})
	eventbus.Publish(context.Background(), bus, a, "r")
	a16WaitFor(t, func() bool { return len(seen.get("out")) == 3 })
	id := seen.get("a")[0].ID.String()
	for _, ev := range seen.get("out") {
		if ev.Metadata[a16CID] != id || ev.Metadata[a16Cau] != id {
			t.Errorf("attempt %s child: %v; want %s", ev.Payload, ev.Metadata, id)
		}
	}
}

// A Request sent from a handler is a consequence of that handler's event; and the request
// handler's own publishes name the request, not the caller's event.
func TestAttackCorrelationThroughRequest(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	a := eventbus.NewTopic[string]("a16.cor9.a")
	out := eventbus.NewTopic[string]("a16.cor9.out")
	rt := eventbus.NewRequestTopic[string, string]("a16.cor9.req")
	var seen a16Seen
	eventbus.Subscribe(bus, a, "a", func(ctx context.Context, ev eventbus.Event[string]) error {
		seen.add("a", ev)
		_, err := eventbus.Request(ctx, bus, rt, "q")
		return err
	})
	eventbus.Handle(bus, rt, "h", func(ctx context.Context, ev eventbus.Event[string]) (string, error) {
		seen.add("req", ev)
		return "ok", eventbus.Publish(ctx, bus, out, "from req")
	})
	eventbus.Subscribe(bus, out, "out", func(ctx context.Context, ev eventbus.Event[string]) error {
		seen.add("out", ev)
		return nil
	})
	eventbus.Publish(context.Background(), bus, a, "r")
	a16WaitFor(t, func() bool { return len(seen.get("out")) == 1 })
	ea, er, eo := seen.get("a")[0], seen.get("req")[0], seen.get("out")[0]
	if er.Metadata[a16CID] != ea.ID.String() || er.Metadata[a16Cau] != ea.ID.String() {
		t.Errorf("request from handler: %v; want cid=cau=%s", er.Metadata, ea.ID)
	}
	if eo.Metadata[a16Cau] != er.ID.String() || eo.Metadata[a16CID] != ea.ID.String() {
		t.Errorf("request handler's publish: %v; want cau %s (the request), cid %s", eo.Metadata, er.ID, ea.ID)
	}
}

// Publishes from middleware with its ctx and from a publish middleware are not covered;
// but a WithWait publish from a handler that is itself retried keeps naming the parent.
func TestAttackCorrelationOutsideHandlersCarryNone(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	a := eventbus.NewTopic[string]("a16.cor10.a")
	var seen a16Seen
	eventbus.Subscribe(bus, a, "a", func(ctx context.Context, ev eventbus.Event[string]) error {
		seen.add("a", ev)
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	eventbus.Publish(ctx, bus, a, "x")
	eventbus.Publish(ctx, bus, a, "y", eventbus.WithWait())
	eventbus.Publish(ctx, bus, a, "z", eventbus.WithMetadata(eventbus.Metadata{"k": "v"}))
	a16WaitFor(t, func() bool { return len(seen.get("a")) == 3 })
	for _, ev := range seen.get("a") {
		if _, ok := ev.Metadata[a16CID]; ok {
			t.Errorf("%s: %v", ev.Payload, ev.Metadata)
		}
		if _, ok := ev.Metadata[a16Cau]; ok {
			t.Errorf("%s: %v", ev.Payload, ev.Metadata)
		}
		if ev.Payload != "z" && ev.Metadata != nil {
			t.Errorf("%s: Metadata %v; want nil (\"nil unless the publisher supplied some\")", ev.Payload, ev.Metadata)
		}
	}
}

// A handler fans its work out to goroutines that publish with its ctx and are joined
// before it returns (contexts are safe for simultaneous use; the ctx names the event
// "while its handler runs"). Run with -race.
func TestAttackCorrelationConcurrentPublishesFromOneHandler(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	a := eventbus.NewTopic[string]("a16.cor11.a")
	out := eventbus.NewTopic[string]("a16.cor11.out")
	var n, bad atomic.Int32
	eventbus.Subscribe(bus, a, "a", func(ctx context.Context, ev eventbus.Event[string]) error {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = eventbus.Publish(ctx, bus, out, ev.ID.String())
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	})
	eventbus.Subscribe(bus, out, "out", func(ctx context.Context, ev eventbus.Event[string]) error {
		if ev.Metadata[a16Cau] != ev.Payload {
			bad.Add(1)
		}
		n.Add(1)
		return nil
	})
	for i := 0; i < 20; i++ {
		eventbus.Publish(context.Background(), bus, a, "x")
	}
	a16WaitFor(t, func() bool { return n.Load() == 40 })
	if bad.Load() != 0 {
		t.Errorf("%d children name the wrong parent", bad.Load())
	}
}

// doc.go: "a goroutine that outlives its handler takes ev.ID and ev.Metadata with it, and
// publishes with a ctx of its own and the two keys in WithMetadata" (a kept handler ctx is
// documented misuse: the worker reuses it). Run with -race.
func TestAttackCorrelationLaterGoroutineAsDocumented(t *testing.T) {
	bus := a16Bus()
	a := eventbus.NewTopic[string]("a16.cor13.a")
	out := eventbus.NewTopic[string]("a16.cor13.out")
	var seen a16Seen
	var wg sync.WaitGroup
	eventbus.Subscribe(bus, a, "a", func(ctx context.Context, ev eventbus.Event[string]) error {
		id, corr := ev.ID.String(), ev.Metadata[eventbus.CorrelationIDKey]
		if corr == "" {
			corr = id
		}
		wg.Go(func() {
			time.Sleep(time.Millisecond) // after the handler returned
			eventbus.Publish(context.Background(), bus, out, id, eventbus.WithMetadata(eventbus.Metadata{
				eventbus.CorrelationIDKey: corr, eventbus.CausationIDKey: id}))
		})
		return nil
	}, eventbus.WithConcurrency(1))
	eventbus.Subscribe(bus, out, "out", func(ctx context.Context, ev eventbus.Event[string]) error {
		seen.add("out", ev)
		return nil
	})
	for range 100 {
		eventbus.Publish(context.Background(), bus, a, "x")
	}
	a16WaitFor(t, func() bool { return len(seen.get("out")) == 100 })
	wg.Wait()
	for _, ev := range seen.get("out") {
		if ev.Metadata[a16Cau] != ev.Payload {
			t.Errorf("late publish: causation %v; want its parent %v", ev.Metadata[a16Cau], ev.Payload)
		}
	}
	a16Close(t, bus)
}
