package natsbridge_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
	"github.com/ae30fb47/eventbus/cloudevents"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
)

type atkOrder struct {
	N int    `json:"n"`
	S string `json:"s"`
}

var atkOrders = eventbus.NewTopic[atkOrder]("attack.orders")

func atkShapes() []eventbus.Metadata {
	vals := []string{"", " ", " lead", "trail ", "\x00", "\n", "a\r\nb", "\t", "\x7f", "\u0085", "\u00a0", "\ufdd0", "\ufffe", "\U0010ffff",
		"\ufeff", "e\u0301", "\U0001F600", "%", "%25", "%zz", "100%", `"q"`, `{"a":"b"}`, "null", "42", "\\", "日本", strings.Repeat("é", 3000)}
	keys := []string{"tenant", "traceparent", "correlationId", "x-request-id", "UPPER", "", "id", "source", "type", "specversion",
		"time", "datacontenttype", "dataschema", "subject", "data", "partitionkey", "eventbusmetadata", "abcdefghijklmnopqrstu",
		"ü", "\x00", "Nats-Msg-Id", "content-type", "ce-id", "Eventbus-Reason"}
	var out []eventbus.Metadata
	for i, k := range keys {
		for j, v := range vals {
			if (i+j)%3 != 0 {
				continue
			}
			out = append(out, eventbus.Metadata{k: v})
		}
	}
	all := eventbus.Metadata{}
	for i, k := range keys {
		all[k] = vals[i%len(vals)]
	}
	out = append(out, all, nil, eventbus.Metadata{"subject": "s", "dataschema": "https://x.example/s"}, eventbus.Metadata{"dataschema": "rel"})
	many := eventbus.Metadata{}
	for i := range 2000 {
		many[fmt.Sprintf("Key-%d", i)] = fmt.Sprint(i)
	}
	out = append(out, many)
	return out
}

// Metadata of every shape crosses Forward -> JetStream -> Receive, with the envelope.
func TestAttackBridgeMetadataEveryShape(t *testing.T) {
	s := atkStartServer(t, 1<<20)
	busA := atkBus(t, "/shop")
	busB := atkBus(t, "/warehouse")
	var mu sync.Mutex
	got := map[uuid.UUID]eventbus.Event[atkOrder]{}
	if _, err := eventbus.Subscribe(busB, atkOrders, "picking", func(_ context.Context, ev eventbus.Event[atkOrder]) error {
		mu.Lock()
		got[ev.ID] = ev
		mu.Unlock()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cfg := atkConfig(s)
	fwd := atkConnect(t, busA, cfg, natsbridge.Forward(atkOrders))
	cfgB := atkConfig(s)
	rcv := atkConnect(t, busB, cfgB, natsbridge.Receive(atkOrders))
	shapes := atkShapes()
	sent := map[uuid.UUID]eventbus.Event[atkOrder]{}
	for i, md := range shapes {
		id := uuid.Must(uuid.NewV7())
		key := []string{"", "k1", "k é", "k%", "k\u00a0", "k\ufeff"}[i%6]
		tm := time.Date(2024, 2, 29, 1, 2, 3, i, time.UTC)
		if i%7 == 0 {
			tm = time.Time{}
		}
		opts := []eventbus.PublishOption{eventbus.WithID(id), eventbus.WithTime(tm), eventbus.WithKey(key), eventbus.WithMetadata(md), eventbus.WithWait()}
		if i%5 == 0 {
			opts = append(opts, eventbus.WithEventSource("urn:x:"+fmt.Sprint(i)))
		}
		if err := eventbus.Publish(context.Background(), busA, atkOrders, atkOrder{N: i, S: "p"}, opts...); err != nil {
			t.Errorf("Publish #%d Metadata %q: %v", i, md, err)
			continue
		}
		src := "/shop"
		if i%5 == 0 {
			src = "urn:x:" + fmt.Sprint(i)
		}
		sent[id] = eventbus.Event[atkOrder]{ID: id, Type: atkOrders.Name(), Source: src, Time: tm, Key: key, Payload: atkOrder{N: i, S: "p"}, Metadata: md}
	}
	atkEventually(t, 60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= len(sent)
	}, func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprintf("received %d of %d; fwd %+v; rcv %+v", len(got), len(sent), fwd.Stats(), rcv.Stats())
	})
	mu.Lock()
	defer mu.Unlock()
	for id, want := range sent {
		ev := got[id]
		if !maps.Equal(ev.Metadata, want.Metadata) {
			t.Errorf("event %v: Metadata\n sent %q\n  got %q", id, atkTrunc(want.Metadata), atkTrunc(ev.Metadata))
		}
		if ev.Key != want.Key || ev.Source != want.Source || !ev.Time.Equal(want.Time) || ev.Payload != want.Payload || ev.Type != want.Type {
			t.Errorf("event %v: envelope\n sent key=%q src=%q time=%v payload=%+v\n  got key=%q src=%q time=%v payload=%+v",
				id, want.Key, want.Source, want.Time, want.Payload, ev.Key, ev.Source, ev.Time, ev.Payload)
		}
	}
	if st := rcv.Stats(); st.Invalid != 0 || st.DeadLettered != 0 {
		t.Errorf("receiver stats %+v", st)
	}
}

func atkTrunc(md eventbus.Metadata) eventbus.Metadata {
	if len(md) > 10 {
		return eventbus.Metadata{"(entries)": fmt.Sprint(len(md))}
	}
	out := eventbus.Metadata{}
	for k, v := range md {
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		out[k] = v
	}
	return out
}

// Many metadata entries whose keys are extension names: each is a ce- header. Does the
// event still cross?
func TestAttackBridgeManyExtensionNamedMetadata(t *testing.T) {
	s := atkStartServer(t, 1<<20)
	busA := atkBus(t, "/shop")
	busB := atkBus(t, "/warehouse")
	var handled atomic.Int32
	var gotMD atomic.Value
	eventbus.Subscribe(busB, atkOrders, "picking", func(_ context.Context, ev eventbus.Event[atkOrder]) error {
		handled.Add(1)
		gotMD.Store(ev.Metadata)
		return nil
	})
	cfg := atkConfig(s)
	fwd := atkConnect(t, busA, cfg, natsbridge.Forward(atkOrders))
	rcv := atkConnect(t, busB, atkConfig(s), natsbridge.Receive(atkOrders))
	md := eventbus.Metadata{}
	for i := range 70 {
		md[fmt.Sprintf("ext%d", i)] = "v"
	}
	err := eventbus.Publish(context.Background(), busA, atkOrders, atkOrder{N: 1}, eventbus.WithMetadata(md), eventbus.WithKey("k"), eventbus.WithWait())
	t.Logf("forward Publish(WithWait) = %v; fwd stats %+v", err, fwd.Stats())
	atkEventually(t, 20*time.Second, func() bool {
		st := rcv.Stats()
		return handled.Load() > 0 || st.DeadLettered > 0
	}, func() string { return fmt.Sprintf("rcv %+v", rcv.Stats()) })
	if handled.Load() == 0 {
		t.Errorf("an event with 70 extension-named Metadata entries was forwarded (Publish WithWait = %v, Forwarded %d) but dead-lettered by the receiver: rcv stats %+v",
			err, fwd.Stats().Forwarded, rcv.Stats())
	} else if m, _ := gotMD.Load().(eventbus.Metadata); !maps.Equal(m, md) {
		t.Errorf("metadata differs")
	}
}

var atkFloats = eventbus.NewTopic[float64]("attack.floats")

// Outbound dead letters by reason, and the forward's error reaching a WithWait publisher.
func TestAttackBridgeForwardDeadLettersByReason(t *testing.T) {
	s := atkStartServer(t, 64<<10)
	var hook atkDLs
	busA := atkBus(t, "/shop")
	cfg := atkConfig(s)
	cfg.Subscriber = "fwd-attack"
	cfg.DeadLetter = &hook
	cfg.PublishRetry = eventbus.RetryPolicy{MaxAttempts: 3, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}
	br := atkConnect(t, busA, cfg, natsbridge.Forward(atkOrders), natsbridge.Forward(atkFloats))
	ctx := context.Background()

	checkDE := func(what string, err error, attempts int) {
		t.Helper()
		var de *eventbus.DeliveryError
		if !errors.As(err, &de) {
			t.Errorf("%s: Publish(WithWait) = %v, want a *DeliveryError", what, err)
			return
		}
		if de.Subscriber != "fwd-attack" {
			t.Errorf("%s: DeliveryError.Subscriber = %q, want Config.Subscriber", what, de.Subscriber)
		}
		if attempts > 0 && de.Attempts != attempts {
			t.Errorf("%s: Attempts = %d, want %d", what, de.Attempts, attempts)
		}
		t.Logf("%s: %v (Stopped %v)", what, err, de.Stopped)
	}
	// invalid: Metadata value not UTF-8.
	checkDE("invalid metadata", eventbus.Publish(ctx, busA, atkOrders, atkOrder{}, eventbus.WithMetadata(eventbus.Metadata{"tenant": "\xff"}), eventbus.WithWait()), 1)
	checkDE("invalid metadata key", eventbus.Publish(ctx, busA, atkOrders, atkOrder{}, eventbus.WithMetadata(eventbus.Metadata{"\xed\xa0\x80": "v"}), eventbus.WithWait()), 1)
	// invalid: Key with a control character.
	checkDE("invalid key", eventbus.Publish(ctx, busA, atkOrders, atkOrder{}, eventbus.WithKey("a\nb"), eventbus.WithWait()), 1)
	// invalid: payload that does not marshal.
	checkDE("NaN payload", eventbus.Publish(ctx, busA, atkFloats, math.NaN(), eventbus.WithWait()), 1)
	checkDE("Inf payload", eventbus.Publish(ctx, busA, atkFloats, math.Inf(1), eventbus.WithWait()), 1)
	// toolarge.
	checkDE("toolarge", eventbus.Publish(ctx, busA, atkOrders, atkOrder{S: strings.Repeat("x", 100<<10)}, eventbus.WithWait()), 1)
	checkDE("toolarge by metadata", eventbus.Publish(ctx, busA, atkOrders, atkOrder{}, eventbus.WithMetadata(eventbus.Metadata{"big": strings.Repeat("é", 15<<10)}), eventbus.WithWait()), 1)
	st := br.Stats().ForwardDeadLetters
	if st.Invalid != 5 || st.TooLarge != 2 || st.Failed != 0 || st.Undelivered != 0 {
		t.Errorf("ForwardDeadLetters = %+v, want Invalid 5, TooLarge 2", st)
	}
	// A good one still flows.
	if err := eventbus.Publish(ctx, busA, atkOrders, atkOrder{N: 1}, eventbus.WithWait()); err != nil {
		t.Errorf("good publish: %v", err)
	}
	// failed: the server is gone.
	s.stop()
	checkDE("failed", eventbus.Publish(ctx, busA, atkOrders, atkOrder{N: 2}, eventbus.WithWait()), 3)
	st = br.Stats().ForwardDeadLetters
	if st.Invalid != 5 || st.TooLarge != 2 || st.Failed != 1 || st.Undelivered != 0 {
		t.Errorf("ForwardDeadLetters = %+v, want Invalid 5, TooLarge 2, Failed 1", st)
	}
	if hook.n() != 8 {
		t.Errorf("Config.DeadLetter got %d dead letters, want 8", hook.n())
	}
	if st.Total() != 8 {
		t.Errorf("Total() = %d", st.Total())
	}
}

// undelivered: the bridge closes before the event was forwarded.
func TestAttackBridgeForwardUndelivered(t *testing.T) {
	s := atkStartServer(t, 1<<20)
	var hook atkDLs
	busA := atkBus(t, "/shop")
	cfg := atkConfig(s)
	cfg.DeadLetter = &hook
	cfg.PublishRetry = eventbus.RetryPolicy{MaxAttempts: 1000, InitialBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	br := atkConnect(t, busA, cfg, natsbridge.Forward(atkOrders))
	s.stop()
	res := make(chan error, 3)
	for i := range 3 {
		go func() {
			res <- eventbus.Publish(context.Background(), busA, atkOrders, atkOrder{N: i}, eventbus.WithKey(fmt.Sprint("k", i)), eventbus.WithWait())
		}()
	}
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	err := br.Close(ctx)
	d := time.Since(t0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want DeadlineExceeded", err)
	}
	if d > 300*time.Millisecond+1500*time.Millisecond {
		t.Errorf("Close took %v with a ctx of 300ms", d)
	}
	for range 3 {
		select {
		case err := <-res:
			var de *eventbus.DeliveryError
			if !errors.As(err, &de) {
				t.Errorf("Publish(WithWait) = %v, want *DeliveryError", err)
			} else if !errors.Is(err, eventbus.ErrClosed) {
				t.Errorf("Publish(WithWait) = %v, want ErrClosed wrapped", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("WithWait publisher not answered after Close")
		}
	}
	st := br.Stats().ForwardDeadLetters
	if st.Undelivered != 3 || st.Failed != 0 {
		t.Errorf("ForwardDeadLetters = %+v, want Undelivered 3", st)
	}
	if hook.n() != 3 {
		t.Errorf("hook got %d", hook.n())
	}
	t.Logf("Close took %v", d)
}

// Close(ctx) with a receiving handler that ignores its ctx returns within ctx plus a little.
func TestAttackBridgeCloseWithinCtx(t *testing.T) {
	s := atkStartServer(t, 1<<20)
	busA := atkBus(t, "/shop")
	busB := atkBus(t, "/warehouse")
	release := make(chan struct{})
	var started atomic.Int32
	eventbus.Subscribe(busB, atkOrders, "stuck", func(ctx context.Context, ev eventbus.Event[atkOrder]) error {
		started.Add(1)
		<-release // ignores ctx
		return nil
	})
	atkConnect(t, busA, atkConfig(s), natsbridge.Forward(atkOrders))
	rcv := atkConnect(t, busB, atkConfig(s), natsbridge.Receive(atkOrders))
	for i := range 4 {
		if err := eventbus.Publish(context.Background(), busA, atkOrders, atkOrder{N: i}, eventbus.WithKey(fmt.Sprint(i)), eventbus.WithWait()); err != nil {
			t.Fatal(err)
		}
	}
	atkEventually(t, 10*time.Second, func() bool { return started.Load() > 0 }, func() string { return "no handler started" })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	err := rcv.Close(ctx)
	d := time.Since(t0)
	close(release)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want ctx.Err()", err)
	}
	if d > 1500*time.Millisecond {
		t.Errorf("Close(300ms ctx) took %v", d)
	}
	if err2 := rcv.Close(context.Background()); !errors.Is(err2, err) && err2 != err {
		t.Errorf("second Close = %v, want the first's %v", err2, err)
	}
	t.Logf("Close took %v; stats %+v", d, rcv.Stats())
}

// Close with an already-cancelled ctx: at once, ctx.Err(), nothing lost on the way out.
func TestAttackBridgeCloseCancelledCtx(t *testing.T) {
	s := atkStartServer(t, 1<<20)
	var hook atkDLs
	busA := atkBus(t, "/shop")
	cfg := atkConfig(s)
	cfg.DeadLetter = &hook
	br := atkConnect(t, busA, cfg, natsbridge.Forward(atkOrders))
	const n = 300
	for i := range n {
		if err := eventbus.Publish(context.Background(), busA, atkOrders, atkOrder{N: i}, eventbus.WithKey(fmt.Sprint(i%7))); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	t0 := time.Now()
	err := br.Close(ctx)
	d := time.Since(t0)
	if d > time.Second {
		t.Errorf("Close(cancelled ctx) took %v", d)
	}
	st := br.Stats()
	t.Logf("Close(cancelled) = %v in %v; Forwarded %d, ForwardDeadLetters %+v, hook %d", err, d, st.Forwarded, st.ForwardDeadLetters, hook.n())
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("Close(cancelled) = %v", err)
	}
	if got := st.Forwarded + st.ForwardDeadLetters.Total(); got != n {
		t.Errorf("forwarded %d + dead-lettered %d = %d, want %d accepted", st.Forwarded, st.ForwardDeadLetters.Total(), got, n)
	}
	if st.ForwardDeadLetters.Failed != 0 || st.ForwardDeadLetters.Invalid != 0 {
		t.Errorf("ForwardDeadLetters %+v: want only Undelivered", st.ForwardDeadLetters)
	}
	if uint64(hook.n()) != st.ForwardDeadLetters.Total() {
		t.Errorf("hook %d vs counted %d", hook.n(), st.ForwardDeadLetters.Total())
	}
	if err2 := br.Close(context.Background()); err2 != err {
		t.Errorf("second Close = %v, first %v", err2, err)
	}
	// Stream content: at least Forwarded, at most n.
	nc, err := nats.Connect(s.url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := nc.JetStream()
	info, err := js.StreamInfo("EVENTBUS")
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs < st.Forwarded || info.State.Msgs > n {
		t.Errorf("stream holds %d, Forwarded %d, accepted %d", info.State.Msgs, st.Forwarded, n)
	}
}

// A receiving subscriber whose handler returns an error wrapping eventbus.ErrClosed (a
// relay to a closed bus) is a failure: NakWithDelay with backoff, not handed back at once.
func TestAttackBridgeHandlerErrClosedIsRetriedWithBackoff(t *testing.T) {
	s := atkStartServer(t, 1<<20)
	busA := atkBus(t, "/shop")
	busB := atkBus(t, "/warehouse", eventbus.WithDeadLetter(eventbus.DiscardDeadLetters))
	var mu sync.Mutex
	var times []time.Time
	eventbus.Subscribe(busB, atkOrders, "relay", func(ctx context.Context, ev eventbus.Event[atkOrder]) error {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		return fmt.Errorf("relay to a closed bus: %w", eventbus.ErrClosed)
	}, eventbus.WithRetry(eventbus.RetryPolicy{MaxAttempts: 1}))
	atkConnect(t, busA, atkConfig(s), natsbridge.Forward(atkOrders))
	cfg := atkConfig(s)
	cfg.Retry = eventbus.RetryPolicy{MaxAttempts: 3, InitialBackoff: 400 * time.Millisecond, MaxBackoff: 400 * time.Millisecond, Jitter: -1}
	rcv := atkConnect(t, busB, cfg, natsbridge.Receive(atkOrders))
	if err := eventbus.Publish(context.Background(), busA, atkOrders, atkOrder{N: 1}, eventbus.WithKey("k"), eventbus.WithWait()); err != nil {
		t.Fatal(err)
	}
	atkEventually(t, 15*time.Second, func() bool { return rcv.Stats().DeadLettered > 0 || rcv.Stats().HandedBack > 0 }, func() string {
		return fmt.Sprintf("rcv %+v", rcv.Stats())
	})
	st := rcv.Stats()
	mu.Lock()
	defer mu.Unlock()
	if st.HandedBack != 0 {
		t.Errorf("HandedBack = %d: a handler's ErrClosed error was handed back as if the bus closed", st.HandedBack)
	}
	if st.Retried != 2 || st.DeadLettered != 1 {
		t.Errorf("stats %+v: want Retried 2, DeadLettered 1 (failed)", st)
	}
	for i := 1; i < len(times); i++ {
		if g := times[i].Sub(times[i-1]); g < 350*time.Millisecond {
			t.Errorf("delivery %d came %v after the previous, want >= the 400ms backoff", i+1, g)
		}
	}
	if len(times) != 3 {
		t.Errorf("handler called %d times, want 3", len(times))
	}
}

// Foreign producers publish straight to the stream: structured and binary, with forged
// eventbusmetadata.
func TestAttackBridgeForeignProducer(t *testing.T) {
	s := atkStartServer(t, 1<<20)
	busB := atkBus(t, "/warehouse")
	var mu sync.Mutex
	got := map[string]eventbus.Event[atkOrder]{}
	eventbus.Subscribe(busB, atkOrders, "picking", func(_ context.Context, ev eventbus.Event[atkOrder]) error {
		mu.Lock()
		got[ev.ID.String()] = ev
		mu.Unlock()
		return nil
	})
	cfg := atkConfig(s)
	rcv := atkConnect(t, busB, cfg, natsbridge.Receive(atkOrders))
	nc, err := nats.Connect(s.url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := nc.JetStream()
	subj := func(key string) string {
		return fmt.Sprintf("eventbus.%d.%s", natsbridge.Partition(key, cfg.Partitions), atkOrders.Name())
	}
	type tc struct {
		id     string
		msg    *nats.Msg
		wantMD eventbus.Metadata // nil with bad: must be dead-lettered
		bad    bool
	}
	mk := func(md string, extra string) (string, *nats.Msg) {
		id := uuid.NewString()
		doc := `{"specversion":"1.0","id":"` + id + `","source":"/foreign","type":"attack.orders","partitionkey":"k","data":{"n":1}`
		if md != "" {
			doc += `,"eventbusmetadata":` + md
		}
		if extra != "" {
			doc += "," + extra
		}
		doc += "}"
		m := nats.NewMsg(subj("k"))
		m.Header.Set("content-type", "application/cloudevents+json")
		m.Data = []byte(doc)
		return id, m
	}
	var cases []tc
	add := func(md, extra string, want eventbus.Metadata, bad bool) {
		id, m := mk(md, extra)
		cases = append(cases, tc{id, m, want, bad})
	}
	add(`"{\"correlationId\":\"c\"}"`, `"tenant":"t","num":42,"flag":true`, eventbus.Metadata{"correlationId": "c", "tenant": "t", "num": "42", "flag": "true"}, false)
	add(`"{\"tenant\":\"u\"}"`, `"tenant":"t"`, nil, true)
	add(`"{\"a\":\"1\",\"a\":\"2\"}"`, ``, nil, true)
	add(`"not json"`, ``, nil, true)
	add(`"{\"a\":1}"`, ``, nil, true)
	add(`"`+strings.Repeat(`[`, 50000)+`"`, ``, nil, true)
	add(`{"a":"b"}`, ``, nil, true)
	add(`"{\"partitionkey\":\"x\"}"`, ``, eventbus.Metadata{"partitionkey": "x"}, false)
	// binary with bad percent-encoding
	bid := uuid.NewString()
	bm := nats.NewMsg(subj("k"))
	bm.Header.Set("ce-specversion", "1.0")
	bm.Header.Set("ce-id", bid)
	bm.Header.Set("ce-source", "/foreign")
	bm.Header.Set("ce-type", "attack.orders")
	bm.Header.Set("ce-partitionkey", "k")
	bm.Header.Set("ce-eventbusmetadata", "%7B%22a%22%3A%22%zz%22%7D")
	bm.Header.Set("content-type", "application/json")
	bm.Data = []byte(`{"n":2}`)
	cases = append(cases, tc{bid, bm, nil, true})
	bid2 := uuid.NewString()
	bm2 := nats.NewMsg(subj("k"))
	for k, v := range bm.Header {
		bm2.Header[k] = v
	}
	bm2.Header.Set("ce-id", bid2)
	bm2.Header.Set("ce-eventbusmetadata", "%7B%22x-request-id%22%3A%22r%20%C3%A9%22%7D")
	bm2.Header.Set("ce-tenant", "t%25")
	bm2.Data = []byte(`{"n":2}`)
	cases = append(cases, tc{bid2, bm2, eventbus.Metadata{"x-request-id": "r é", "tenant": "t%"}, false})
	bad := 0
	for _, c := range cases {
		if _, err := js.PublishMsg(c.msg); err != nil {
			t.Fatalf("raw publish: %v", err)
		}
		if c.bad {
			bad++
		}
	}
	atkEventually(t, 30*time.Second, func() bool {
		st := rcv.Stats()
		mu.Lock()
		defer mu.Unlock()
		return int(st.DeadLettered)+len(got) >= len(cases)
	}, func() string { return fmt.Sprintf("rcv %+v, handled %d", rcv.Stats(), len(got)) })
	mu.Lock()
	defer mu.Unlock()
	for _, c := range cases {
		ev, ok := got[c.id]
		if c.bad && ok {
			t.Errorf("forged event %s handled with Metadata %q, want dead-lettered invalid", c.msg.Data, ev.Metadata)
		}
		if !c.bad {
			if !ok {
				t.Errorf("event %s not handled", c.msg.Data)
			} else if !maps.Equal(ev.Metadata, c.wantMD) {
				t.Errorf("event %s: Metadata %q, want %q", c.msg.Data, ev.Metadata, c.wantMD)
			}
		}
	}
	if st := rcv.Stats(); st.Invalid != uint64(bad) {
		t.Errorf("Invalid = %d, want %d; stats %+v", st.Invalid, bad, st)
	}
	_ = cloudevents.NATS
}

// A receiving bridge closed with an already-cancelled ctx while a handler runs: returns
// at once with ctx.Err(), hands the delivery back.
func TestAttackBridgeReceiveCloseCancelledCtx(t *testing.T) {
	s := atkStartServer(t, 1<<20)
	busA := atkBus(t, "/shop")
	busB := atkBus(t, "/warehouse")
	release := make(chan struct{})
	var started atomic.Int32
	eventbus.Subscribe(busB, atkOrders, "stuck", func(ctx context.Context, ev eventbus.Event[atkOrder]) error {
		started.Add(1)
		<-release
		return nil
	})
	atkConnect(t, busA, atkConfig(s), natsbridge.Forward(atkOrders))
	rcv := atkConnect(t, busB, atkConfig(s), natsbridge.Receive(atkOrders))
	for i := range 4 {
		eventbus.Publish(context.Background(), busA, atkOrders, atkOrder{N: i}, eventbus.WithKey(fmt.Sprint(i)), eventbus.WithWait())
	}
	atkEventually(t, 10*time.Second, func() bool { return started.Load() > 0 }, func() string { return "no handler started" })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	t0 := time.Now()
	err := rcv.Close(ctx)
	d := time.Since(t0)
	close(release)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Close(cancelled) = %v, want context.Canceled", err)
	}
	if d > time.Second {
		t.Errorf("Close(cancelled) took %v", d)
	}
	st := rcv.Stats()
	if st.Handled+st.HandedBack+st.AckFailures+st.Retried+st.DeadLettered+st.Dropped != st.Received {
		t.Errorf("stats do not add up: %+v", st)
	}
	t.Logf("Close(cancelled) in %v: %+v", d, st)
}
