package bridgetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	"github.com/google/uuid"
)

// Run runs the kit's subtests against the bridge that newHarness sets up, one harness per
// subtest (newHarness registers its cleanup with the subtest's t), then checks that no
// goroutine started since Run began is left.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	before := runtime.NumGoroutine()
	for _, st := range []struct {
		name string
		run  func(t *testing.T, h Harness)
	}{
		{"RoundTrip", roundTrip},
		{"KeyOrder", keyOrder},
		{"BrokerRestart", brokerRestart},
		{"ConsumerCrash", consumerCrash},
		{"Poison", poison},
		{"BadInput", badInput},
		{"Close", closeWithin},
	} {
		t.Run(st.name, func(t *testing.T) {
			h := newHarness(t)
			if h.Forward == nil || h.Receive == nil {
				t.Fatal("bridgetest: the Harness needs Forward and Receive")
			}
			st.run(t, h)
		})
	}
	noGoroutineLeft(t, before)
}

// noGoroutineLeft fails t unless the number of goroutines comes back to before within 10 s.
func noGoroutineLeft(t *testing.T, before int) {
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("bridgetest: %d goroutines left, %d before the kit ran:\n%s", runtime.NumGoroutine(), before, buf)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metadataShapes are Metadata that are valid in process and must cross equal.
var metadataShapes = []eventbus.Metadata{
	nil,
	{"tenant": "acme", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	{"source": "checkout", "version": "2", "correlationId": "c-42"},
	{"X-Request-Id": "r 1", "app.kubernetes.io/name": "shop", "type": "t", "partitionkey": "p", "id": "i"},
	{"empty": "", "": "nameless", "line": "a\nb", "greeting": "Grüße, こんにちは 👋", "nonchar": "\ufffe"},
	{"subject": "orders/o-1", "dataschema": "https://example.com/order.json", "q": "100% \"sure\""},
	{"subject": "", "dataschema": "relative/schema"},
}

func roundTrip(t *testing.T, h Harness) {
	a, _ := newBus(t, "/bridgetest/a")
	b, _ := newBus(t, "/bridgetest/b")
	got := make(chan eventbus.Event[any], 100)
	subscribe(t, b, Steps, "collect", func(_ context.Context, ev eventbus.Event[Step]) error { got <- boxed(ev); return nil })
	subscribe(t, b, Blobs, "collect", func(_ context.Context, ev eventbus.Event[[]byte]) error { got <- boxed(ev); return nil })
	subscribe(t, b, Notes, "collect", func(_ context.Context, ev eventbus.Event[string]) error { got <- boxed(ev); return nil })
	connect(t, func(ctx context.Context) (Bridge, error) { return h.Receive(ctx, b, "g") })
	connect(t, func(ctx context.Context) (Bridge, error) { return h.Forward(ctx, a) })

	at := time.Date(2026, 12, 2, 9, 30, 15, 123456789, time.UTC)
	want := map[uuid.UUID]eventbus.Event[any]{}
	publish := func(ev eventbus.Event[any], send func(opts ...eventbus.PublishOption) error) {
		t.Helper()
		ev.ID, ev.Source = uuid.New(), "/bridgetest/a"
		opts := []eventbus.PublishOption{eventbus.WithID(ev.ID), eventbus.WithKey(ev.Key), eventbus.WithMetadata(ev.Metadata)}
		if !ev.Time.IsZero() {
			opts = append(opts, eventbus.WithTime(ev.Time))
		}
		if err := send(opts...); err != nil {
			t.Fatalf("Publish(%+v) = %v", ev, err)
		}
		want[ev.ID] = ev
	}
	for i, md := range metadataShapes {
		step := Step{Key: fmt.Sprint("k", i), Seq: i}
		publish(eventbus.Event[any]{Type: Steps.Name(), Time: at.Add(time.Duration(i)), Key: step.Key, Metadata: md, Payload: step},
			func(opts ...eventbus.PublishOption) error {
				return eventbus.Publish(t.Context(), a, Steps, step, opts...)
			})
	}
	blob := []byte{0, 1, 2, 0x7f, 0x80, 0xfe, 0xff}
	publish(eventbus.Event[any]{Type: Blobs.Name(), Time: at, Key: "blob-1", Payload: blob},
		func(opts ...eventbus.PublishOption) error {
			return eventbus.Publish(t.Context(), a, Blobs, blob, opts...)
		})
	note := "héllo \"world\" \\ \u2028"
	publish(eventbus.Event[any]{Type: Notes.Name(), Payload: note},
		func(opts ...eventbus.PublishOption) error {
			return eventbus.Publish(t.Context(), a, Notes, note, opts...)
		})

	for range want {
		select {
		case ev := <-got:
			w, ok := want[ev.ID]
			if !ok {
				t.Errorf("received an event that was not published, or twice: %+v", ev)
				continue
			}
			delete(want, ev.ID)
			if ev.Type != w.Type || ev.Source != w.Source || ev.Key != w.Key || !maps.Equal(ev.Metadata, w.Metadata) || !samePayload(ev.Payload, w.Payload) {
				t.Errorf("received %+v; want %+v", ev, w)
			}
			if !w.Time.IsZero() && !ev.Time.Equal(w.Time) {
				t.Errorf("event %s: time %v; want %v", ev.ID, ev.Time, w.Time)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%d events did not arrive within 20s: %v", len(want), slicesOf(want))
		}
	}
}

func keyOrder(t *testing.T, h Harness) {
	const keys, perKey = 16, 25
	a, _ := newBus(t, "/bridgetest/a")
	l := newLedger()
	for _, name := range []string{"b1", "b2"} {
		b, _ := newBus(t, "/bridgetest/"+name)
		subscribe(t, b, Steps, "ledger", func(_ context.Context, ev eventbus.Event[Step]) error { l.handled(name, ev); return nil },
			eventbus.WithDeduplication(time.Minute, 10_000))
		connect(t, func(ctx context.Context) (Bridge, error) { return h.Receive(ctx, b, "g") })
	}
	connect(t, func(ctx context.Context) (Bridge, error) { return h.Forward(ctx, a) })
	publishSteps(t, a, keys, perKey)
	eventually(t, 30*time.Second, func() bool { d, _ := l.count(); return d == keys*perKey },
		func() string { d, _ := l.count(); return fmt.Sprintf("handled %d of %d", d, keys*perKey) })
	_, repeats := l.count()
	l.check(t, repeats, 0)
	t.Logf("b1 handled %d, b2 %d", l.byBus("b1"), l.byBus("b2"))
}

func brokerRestart(t *testing.T, h Harness) {
	if h.RestartBroker == nil {
		t.Skip("the Harness has no RestartBroker")
	}
	const keys, total = 20, 1200
	a, outbound := newBus(t, "/bridgetest/a")
	b, _ := newBus(t, "/bridgetest/b")
	l := newLedger()
	subscribe(t, b, Steps, "ledger", func(_ context.Context, ev eventbus.Event[Step]) error { l.handled("b", ev); return nil },
		eventbus.WithDeduplication(time.Minute, 10_000))
	connect(t, func(ctx context.Context) (Bridge, error) { return h.Receive(ctx, b, "g") })
	connect(t, func(ctx context.Context) (Bridge, error) { return h.Forward(ctx, a) })
	var accepted []uuid.UUID
	pace := time.NewTicker(time.Millisecond) // spread the events over the restart
	defer pace.Stop()
	for i := range total {
		<-pace.C
		if i == total/3 {
			if err := h.RestartBroker(); err != nil {
				t.Fatalf("RestartBroker() = %v", err)
			}
		}
		id, key := uuid.New(), fmt.Sprintf("k%02d", i%keys)
		if err := eventbus.Publish(t.Context(), a, Steps, Step{Key: key, Seq: i / keys}, eventbus.WithKey(key), eventbus.WithID(id)); err != nil {
			t.Fatalf("Publish() = %v", err)
		}
		accepted = append(accepted, id)
	}
	eventually(t, 60*time.Second, func() bool { return unaccounted(accepted, l, outbound) == 0 },
		func() string {
			return fmt.Sprintf("%d of %d accepted events neither received nor dead-lettered", unaccounted(accepted, l, outbound), total)
		})
	_, repeats := l.count()
	t.Logf("accepted %d, received %d, dead-lettered on the way out %d, handler repeats %d", total, l.distinct(), len(outbound.ids()), repeats)
	l.check(t, repeats, 0) // redeliveries to the one receiving bus are de-duplicated
}

func consumerCrash(t *testing.T, h Harness) {
	if h.Crash == nil {
		t.Skip("the Harness has no Crash")
	}
	const keys, perKey = 8, 30
	a, _ := newBus(t, "/bridgetest/a")
	l := newLedger()
	slow := func(name string) func(context.Context, eventbus.Event[Step]) error {
		return func(ctx context.Context, ev eventbus.Event[Step]) error {
			select { // slow enough that the crash finds events in flight
			case <-time.After(2 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
			l.handled(name, ev)
			return nil
		}
	}
	// The bridge that crashes never settles again, but its bus keeps running until cleanup.
	victimBus, _ := newBus(t, "/bridgetest/victim")
	subscribe(t, victimBus, Steps, "ledger", slow("victim"), eventbus.WithDeduplication(time.Minute, 10_000))
	victim, err := h.Receive(t.Context(), victimBus, "g")
	if err != nil {
		t.Fatalf("Receive() = %v", err)
	}
	survivorBus, _ := newBus(t, "/bridgetest/survivor")
	subscribe(t, survivorBus, Steps, "ledger", slow("survivor"), eventbus.WithDeduplication(time.Minute, 10_000))
	connect(t, func(ctx context.Context) (Bridge, error) { return h.Receive(ctx, survivorBus, "g") })
	connect(t, func(ctx context.Context) (Bridge, error) { return h.Forward(ctx, a) })
	publishSteps(t, a, keys, perKey)
	eventually(t, 20*time.Second, func() bool { return l.byBus("victim") >= 10 },
		func() string {
			return fmt.Sprintf("the victim handled %d events before the crash; want 10", l.byBus("victim"))
		})
	h.Crash(victim)
	eventually(t, 60*time.Second, func() bool { d, _ := l.count(); return d == keys*perKey },
		func() string {
			d, _ := l.count()
			return fmt.Sprintf("handled %d of %d after the crash", d, keys*perKey)
		})
	_, repeats := l.count()
	t.Logf("the victim handled %d before its crash, the survivor %d; handler repeats %d", l.byBus("victim"), l.byBus("survivor"), repeats)
	l.check(t, 0, 0) // repeats allowed: what the victim handled but never acked goes to the survivor
}

var errPoison = errors.New("bridgetest: poison")

func poison(t *testing.T, h Harness) {
	if h.DeadLetters == nil {
		t.Skip("the Harness has no DeadLetters")
	}
	a, _ := newBus(t, "/bridgetest/a")
	b, _ := newBus(t, "/bridgetest/b")
	l := newLedger()
	var mu sync.Mutex
	calls := map[string]int{}
	subscribe(t, b, Steps, "strict", func(_ context.Context, ev eventbus.Event[Step]) error {
		mu.Lock()
		calls[ev.Key]++
		mu.Unlock()
		switch ev.Key {
		case "failing":
			return errPoison
		case "permanent":
			return eventbus.Permanent(errPoison)
		}
		l.handled("b", ev)
		return nil
	}, eventbus.WithRetry(eventbus.RetryPolicy{MaxAttempts: 1}), eventbus.WithDeadLetter(eventbus.DiscardDeadLetters))
	connect(t, func(ctx context.Context) (Bridge, error) { return h.Receive(ctx, b, "g") })
	connect(t, func(ctx context.Context) (Bridge, error) { return h.Forward(ctx, a) })
	ids := map[string]uuid.UUID{"failing": uuid.New(), "permanent": uuid.New()}
	for key, id := range ids {
		if err := eventbus.Publish(t.Context(), a, Steps, Step{Key: key}, eventbus.WithKey(key), eventbus.WithID(id)); err != nil {
			t.Fatal(err)
		}
	}
	const others = 40
	for i := range others {
		key := fmt.Sprint("k", i%8)
		if err := eventbus.Publish(t.Context(), a, Steps, Step{Key: key, Seq: i / 8}, eventbus.WithKey(key)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, func() bool { return l.distinct() == others },
		func() string {
			return fmt.Sprintf("the other keys: %d of %d handled beside the poison", l.distinct(), others)
		})
	var letters []DeadLetter
	eventually(t, 30*time.Second, func() bool {
		var err error
		letters, err = h.DeadLetters(t.Context())
		return err == nil && len(letters) >= 2
	}, func() string {
		return fmt.Sprintf("dead letters on the broker: %+v; want the 2 poison events", letters)
	})
	for key, reason := range map[string]string{"failing": ReasonFailed, "permanent": ReasonPermanent} {
		found := false
		for _, dl := range letters {
			found = found || (dl.ID == ids[key].String() && dl.Reason == reason)
		}
		if !found {
			t.Errorf("no dead letter of reason %s for the %s event %s among %+v", reason, key, ids[key], letters)
		}
	}
	mu.Lock()
	if calls["permanent"] != 1 {
		t.Errorf("the Permanent failure was attempted %d times; want once", calls["permanent"])
	}
	mu.Unlock()
	l.check(t, 0, 0)
}

func badInput(t *testing.T, h Harness) {
	if h.PublishRaw == nil || h.DeadLetters == nil {
		t.Skip("the Harness has no PublishRaw or no DeadLetters")
	}
	b, _ := newBus(t, "/bridgetest/b")
	var mu sync.Mutex
	var handled []Step
	subscribe(t, b, Steps, "h", func(_ context.Context, ev eventbus.Event[Step]) error {
		mu.Lock()
		handled = append(handled, ev.Payload)
		mu.Unlock()
		return nil
	})
	connect(t, func(ctx context.Context) (Bridge, error) { return h.Receive(ctx, b, "g") })
	inputs := []struct {
		headers map[string]string
		body    string
	}{
		{nil, "not a CloudEvent"},
		{map[string]string{"content-type": "application/cloudevents+json"}, `{"specversion":"1.0","id":"x"`},
		{map[string]string{"content-type": "application/cloudevents+json"},
			`{"specversion":"0.3","id":"0196b1f4-7c2a-7d3e-9f00-0123456789ab","source":"s","type":"bridgetest.step","data":{}}`},
		{map[string]string{"content-type": "application/cloudevents+json"},
			`{"specversion":"1.0","id":"0196b1f4-7c2a-7d3e-9f00-0123456789ab","source":"s","type":"bridgetest.step","data":{"seq":"not a number"}}`},
		{map[string]string{"content-type": "application/cloudevents+json"},
			`{"specversion":"1.0","id":"0196b1f4-7c2a-7d3e-9f00-0123456789ab","source":"s","type":"bridgetest.step","eventbusmetadata":"{\"a\":1}","data":{}}`},
	}
	for _, in := range inputs {
		if err := h.PublishRaw(t.Context(), Steps.Name(), "k", in.headers, []byte(in.body)); err != nil {
			t.Fatalf("PublishRaw() = %v", err)
		}
	}
	var letters []DeadLetter
	eventually(t, 30*time.Second, func() bool {
		var err error
		letters, err = h.DeadLetters(t.Context())
		return err == nil && len(letters) >= len(inputs)
	}, func() string { return fmt.Sprintf("dead letters %+v; want %d", letters, len(inputs)) })
	for _, dl := range letters {
		if dl.Reason != ReasonInvalid {
			t.Errorf("dead letter %+v; want reason %s", dl, ReasonInvalid)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(handled) != 0 {
		t.Errorf("a handler got %+v from bad input; want nothing", handled)
	}
}

func closeWithin(t *testing.T, h Harness) {
	const n = 500
	a, outbound := newBus(t, "/bridgetest/a")
	b, _ := newBus(t, "/bridgetest/b")
	l := newLedger()
	subscribe(t, b, Steps, "ledger", func(ctx context.Context, ev eventbus.Event[Step]) error { l.handled("b", ev); return nil },
		eventbus.WithDeduplication(time.Minute, 10_000))
	connect(t, func(ctx context.Context) (Bridge, error) { return h.Receive(ctx, b, "g") })
	fwd, err := h.Forward(t.Context(), a)
	if err != nil {
		t.Fatalf("Forward() = %v", err)
	}
	ids := make([]uuid.UUID, n)
	for i := range n {
		ids[i] = uuid.New()
		key := fmt.Sprint("k", i%10)
		if err := eventbus.Publish(t.Context(), a, Steps, Step{Key: key, Seq: i / 10}, eventbus.WithKey(key), eventbus.WithID(ids[i])); err != nil {
			t.Fatal(err)
		}
	}
	for _, limit := range []time.Duration{time.Millisecond, 0} { // a short ctx, then a repeat that returns at once
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond+limit)
		start := time.Now()
		fwd.Close(ctx)
		cancel()
		if d := time.Since(start); d > 200*time.Millisecond+limit+time.Second {
			t.Errorf("the forwarding bridge's Close(%v) returned after %v; want within its ctx and a second", 200*time.Millisecond+limit, d)
		}
	}
	eventually(t, 30*time.Second, func() bool { return unaccounted(ids, l, outbound) == 0 },
		func() string {
			return fmt.Sprintf("%d of %d accepted events neither received nor dead-lettered on the bus", unaccounted(ids, l, outbound), n)
		})
	t.Logf("of %d accepted: %d received, %d dead-lettered at Close", n, l.distinct(), len(outbound.ids()))

	receiver, err := h.Receive(t.Context(), b, "g2")
	if err != nil {
		t.Fatalf("Receive() = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	receiver.Close(ctx)
	if d := time.Since(start); d > 100*time.Millisecond+time.Second {
		t.Errorf("the receiving bridge's Close(100ms) returned after %v; want within its ctx and a second", d)
	}
}

// publishSteps publishes perKey steps of each of keys keys on b, round by round, each
// keyed.
func publishSteps(t *testing.T, b *eventbus.Bus, keys, perKey int) {
	t.Helper()
	for seq := range perKey {
		for k := range keys {
			key := fmt.Sprintf("k%02d", k)
			if err := eventbus.Publish(t.Context(), b, Steps, Step{Key: key, Seq: seq}, eventbus.WithKey(key)); err != nil {
				t.Fatalf("Publish() = %v", err)
			}
		}
	}
}

// unaccounted counts the events of ids that the ledger did not see received and the
// publishing bus did not dead-letter: the events lost.
func unaccounted(ids []uuid.UUID, l *ledger, outbound *deadLetters) (lost int) {
	dead := outbound.ids()
	for _, id := range ids {
		if !l.seen(id) && !dead[id] {
			lost++
		}
	}
	return lost
}

// boxed returns ev with its payload as an any.
func boxed[T any](ev eventbus.Event[T]) eventbus.Event[any] {
	return eventbus.Event[any]{ID: ev.ID, Type: ev.Type, Source: ev.Source, Time: ev.Time, Key: ev.Key, Metadata: ev.Metadata, Payload: ev.Payload}
}

func samePayload(a, b any) bool {
	if x, ok := a.([]byte); ok {
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	}
	return a == b
}

func slicesOf(m map[uuid.UUID]eventbus.Event[any]) []string {
	var s []string
	for _, ev := range m {
		s = append(s, ev.Type+"/"+ev.Key)
	}
	return s
}
