package eventbus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/uuid"
)

type order struct {
	ID    string
	Total int
}

var orders = NewTopic[order]("order.created")

func TestEnvelopeIsFilledByTheBus(t *testing.T) {
	b := New()
	got := make(chan Event[order], 1)
	mustSubscribe(t, b, orders, "s", func(_ context.Context, ev Event[order]) error {
		got <- ev
		return nil
	})
	before := time.Now()
	mustPublish(t, b, orders, order{"o1", 5}, WithKey("o1"))
	ev := <-got
	closeBus(t, b)

	if ev.ID.Version() != 7 || ev.ID.Variant() != uuid.RFC4122 {
		t.Errorf("ID = %v, version %d variant %v; want a UUIDv7", ev.ID, ev.ID.Version(), ev.ID.Variant())
	}
	if ev.Type != "order.created" {
		t.Errorf("Type = %q; want %q", ev.Type, "order.created")
	}
	if want := filepath.Base(os.Args[0]); ev.Source != want {
		t.Errorf("Source = %q; want the program name %q", ev.Source, want)
	}
	if ev.Time.Before(before.Add(-tick)) || time.Since(ev.Time) > time.Minute {
		t.Errorf("Time = %v; want the time of Publish (after %v, to the clock's tick)", ev.Time, before)
	}
	if ms := time.UnixMilli(idMillis(ev.ID)); ms.Sub(ev.Time.Truncate(time.Millisecond)) != 0 {
		t.Errorf("ID time = %v; want the event time %v to the millisecond", ms, ev.Time)
	}
	if ev.Key != "o1" || ev.Payload != (order{"o1", 5}) || ev.Metadata != nil {
		t.Errorf("Key, Payload, Metadata = %q, %v, %v; want o1, {o1 5}, nil", ev.Key, ev.Payload, ev.Metadata)
	}
}

// idMillis decodes the Unix milliseconds of a UUIDv7.
func idMillis(id uuid.UUID) int64 {
	var ms int64
	for _, c := range id[:6] {
		ms = ms<<8 | int64(c)
	}
	return ms
}

func TestPublisherSuppliedEnvelope(t *testing.T) {
	b := New(WithSource("billing"))
	got := make(chan Event[order], 1)
	mustSubscribe(t, b, orders, "s", func(_ context.Context, ev Event[order]) error {
		got <- ev
		return nil
	})
	id := uuid.Must(uuid.NewV7())
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	md := Metadata{"traceparent": "00-abc-01"}
	mustPublish(t, b, orders, order{ID: "o2"}, WithID(id), WithTime(at), WithMetadata(md))
	md["traceparent"] = "changed after publish" // must not reach the handler
	ev := <-got
	closeBus(t, b)
	if ev.ID != id || !ev.Time.Equal(at) || ev.Source != "billing" {
		t.Errorf("ID, Time, Source = %v, %v, %q; want %v, %v, billing", ev.ID, ev.Time, ev.Source, id, at)
	}
	if ev.Metadata["traceparent"] != "00-abc-01" {
		t.Errorf("Metadata = %v; want the map as it was at Publish", ev.Metadata)
	}
}

// WithTime supplies the Time as it is, the zero Time included (an event from a broker may
// carry 0001-01-01T00:00:00Z), with or without publish middleware.
func TestPublisherSuppliedZeroTime(t *testing.T) {
	passThrough := func(next PublishFunc) PublishFunc { return next }
	for name, opts := range map[string][]Option{"plain": nil, "publish middleware": {WithPublishMiddleware(passThrough)}} {
		t.Run(name, func(t *testing.T) {
			b := New(opts...)
			got := make(chan time.Time, 2)
			mustSubscribe(t, b, orders, "s", func(_ context.Context, ev Event[order]) error {
				got <- ev.Time
				return nil
			}, WithConcurrency(1))
			mustPublish(t, b, orders, order{}, WithTime(time.Time{}))
			mustPublish(t, b, orders, order{})
			closeBus(t, b)
			if tm := <-got; !tm.IsZero() {
				t.Errorf("WithTime(time.Time{}): Time = %v; want the zero Time", tm)
			}
			if tm := <-got; tm.IsZero() {
				t.Error("without WithTime: Time is zero; want the time of publishing")
			}
		})
	}
}

func TestPublisherSuppliedSource(t *testing.T) {
	b := New(WithSource("billing"))
	got := make(chan string, 2)
	mustSubscribe(t, b, orders, "s", func(_ context.Context, ev Event[order]) error {
		got <- ev.Source
		return nil
	}, WithConcurrency(1))
	mustPublish(t, b, orders, order{}, WithEventSource("/broker/orders"))
	mustPublish(t, b, orders, order{}, WithEventSource(""))
	closeBus(t, b)
	if first, second := <-got, <-got; first != "/broker/orders" || second != "billing" {
		t.Errorf("Source = %q, then %q; want /broker/orders, then the bus's billing", first, second)
	}
}

func TestIDsAreTimeOrderedAndUnique(t *testing.T) {
	const n = 100_000
	seen := make(map[uuid.UUID]bool, n)
	start := time.Now()
	var prev uuid.UUID
	for i := range n {
		// IDs made 1µs apart, more than the 244ns resolution of the sub-millisecond field.
		id := idFrom(start.Add(time.Duration(i)*time.Microsecond).UnixNano(), rand.Uint64())
		if seen[id] {
			t.Fatalf("idFrom made %v twice", id)
		}
		seen[id] = true
		if i > 0 && slices.Compare(prev[:8], id[:8]) >= 0 {
			t.Fatalf("idFrom(t+%dµs) = %v sorts before or with %v", i, id, prev)
		}
		prev = id
	}
}

func TestMetadataWriteAfterPublishDoesNotRace(t *testing.T) {
	b := New()
	var wg sync.WaitGroup
	wg.Add(100)
	mustSubscribe(t, b, orders, "s", func(_ context.Context, ev Event[order]) error {
		defer wg.Done()
		_ = ev.Metadata["k"]
		return nil
	})
	md := Metadata{"k": "v"}
	for i := range 100 {
		mustPublish(t, b, orders, order{}, WithMetadata(md))
		md["k"] = strings.Repeat("x", i) // the race detector fails this test if the map is shared
	}
	wg.Wait()
	closeBus(t, b)
}

func TestTopicTypeIsCheckedPerBus(t *testing.T) {
	b := New()
	defer closeBus(t, b)
	mustSubscribe(t, b, NewTopic[int]("numbers"), "s", func(context.Context, Event[int]) error { return nil })
	strs := NewTopic[string]("numbers")
	if _, err := Subscribe(b, strs, "t", func(context.Context, Event[string]) error { return nil }); err == nil || !strings.Contains(err.Error(), "carries int") {
		t.Errorf("Subscribe(string topic over int) = %v; want a type error", err)
	}
	if err := Publish(context.Background(), b, strs, "x"); err == nil || !strings.Contains(err.Error(), "carries int") {
		t.Errorf("Publish(string topic over int) = %v; want a type error", err)
	}
}

// TestTopicValuesWithOneNameAreOneTopic: topics are identified by name, whichever Topic
// value (from whichever NewTopic call) publishes or subscribes, on every bus.
func TestTopicValuesWithOneNameAreOneTopic(t *testing.T) {
	b1, b2 := New(), New()
	first, second := NewTopic[int]("shared"), NewTopic[int]("shared")
	var got [2]atomic.Int32
	mustSubscribe(t, b1, first, "s", func(context.Context, Event[int]) error { got[0].Add(1); return nil })
	mustSubscribe(t, b2, second, "s", func(context.Context, Event[int]) error { got[1].Add(1); return nil })
	for range 3 { // the second round on each bus comes from its topic cache
		for _, b := range []*Bus{b1, b2} {
			mustPublish(t, b, first, 1)
			mustPublish(t, b, second, 2)
		}
	}
	closeBus(t, b1)
	closeBus(t, b2)
	if got[0].Load() != 6 || got[1].Load() != 6 {
		t.Errorf("handled %d and %d events; want 6 on each bus", got[0].Load(), got[1].Load())
	}
}

func TestBadArguments(t *testing.T) {
	b := New()
	defer closeBus(t, b)
	h := func(context.Context, Event[order]) error { return nil }
	mustSubscribe(t, b, orders, "taken", h)
	tests := []struct {
		name string
		sub  func() (*Subscription, error)
		want string
	}{
		{"zero topic", func() (*Subscription, error) { return Subscribe(b, Topic[order]{}, "s", h) }, "zero Topic"},
		{"empty name", func() (*Subscription, error) { return Subscribe(b, orders, "", h) }, "name must not be empty"},
		{"nil handler", func() (*Subscription, error) { return Subscribe(b, orders, "s", nil) }, "handler must not be nil"},
		{"duplicate name", func() (*Subscription, error) { return Subscribe(b, orders, "taken", h) }, `already has a subscriber named "taken"`},
		{"zero concurrency", func() (*Subscription, error) { return Subscribe(b, orders, "s", h, WithConcurrency(0)) }, "WithConcurrency: n must be > 0"},
		{"negative buffer", func() (*Subscription, error) { return Subscribe(b, orders, "s", h, WithBuffer(-1)) }, "WithBuffer: n must be > 0"},
		{"negative attempts", func() (*Subscription, error) {
			return Subscribe(b, orders, "s", h, WithRetry(RetryPolicy{MaxAttempts: -1}))
		}, "MaxAttempts must be >= 0"},
		{"multiplier below one", func() (*Subscription, error) {
			return Subscribe(b, orders, "s", h, WithRetry(RetryPolicy{Multiplier: 0.5}))
		}, "Multiplier must be >= 1"},
		{"nil option", func() (*Subscription, error) { return Subscribe(b, orders, "s", h, nil) }, "nil SubscribeOption"},
		// The rule of the package doc: whatever is given to Subscribe is an error, never a panic.
		{"WithDeadLetter nil", func() (*Subscription, error) { return Subscribe(b, orders, "s", h, WithDeadLetter(nil)) }, "WithDeadLetter: handler must not be nil"},
		{"WithMiddleware nil", func() (*Subscription, error) { return Subscribe(b, orders, "s", h, WithMiddleware(nil)) }, "WithMiddleware: middleware must not be nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := tt.sub()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Subscribe() = %v, %v; want an error containing %q", s, err, tt.want)
			}
		})
	}
	if err := Publish(context.Background(), b, Topic[order]{}, order{}); !errors.Is(err, errZeroTopic) {
		t.Errorf("Publish(zero Topic) = %v; want %v", err, errZeroTopic)
	}
}

func TestConstructionPanics(t *testing.T) {
	tests := []struct {
		name string
		f    func()
		want string
	}{
		{"NewTopic empty", func() { NewTopic[int]("") }, "eventbus: NewTopic: name must not be empty"},
		{"WithSource empty", func() { WithSource("") }, "eventbus: WithSource: source must not be empty"},
		{"WithLogger nil", func() { WithLogger(nil) }, "eventbus: WithLogger: logger must not be nil"},
		{"New with WithDeadLetter nil", func() { New(WithDeadLetter(nil)) }, "eventbus: WithDeadLetter: handler must not be nil"},
		{"New with a nil Option", func() { New(nil) }, "eventbus: New: nil Option"},
		{"New with WithMiddleware nil", func() { New(WithMiddleware(nil)) }, "eventbus: WithMiddleware: middleware must not be nil"},
		{"HTTPHandler nil", func() { HTTPHandler(nil) }, "eventbus: HTTPHandler: nil Bus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != tt.want {
					t.Errorf("panic = %v; want %q", r, tt.want)
				}
			}()
			tt.f()
		})
	}
}

func TestPublishWithoutSubscribers(t *testing.T) {
	b := New()
	defer closeBus(t, b)
	if err := Publish(context.Background(), b, orders, order{}, WithWait()); err != nil {
		t.Errorf("Publish(no subscribers) = %v; want nil", err)
	}
}

// TestPublishDoesNotAllocate covers each way Publish takes: a record written in place (one
// subscriber), the fan-out's copy of it, and the whole envelope that supplied fields need.
// (Metadata is copied when given, one allocation by design.)
func TestPublishDoesNotAllocate(t *testing.T) {
	id := uuid.Must(uuid.NewV7())
	when := time.Unix(1700000000, 0)
	key := strings.Repeat("k", 10)
	for _, tt := range []struct {
		name string
		subs int
		opts []PublishOption
	}{
		{"one subscriber, keyed", 1, []PublishOption{WithKey(key)}},
		{"three subscribers, keyed", 3, []PublishOption{WithKey(key)}},
		{"one subscriber, supplied envelope", 1, []PublishOption{WithKey(key), WithID(id), WithTime(when), WithEventSource("src")}},
		{"three subscribers, supplied envelope", 3, []PublishOption{WithID(id), WithTime(when), WithEventSource("src")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := New()
			defer closeBus(t, b)
			for i := range tt.subs {
				mustSubscribe(t, b, orders, fmt.Sprint("s", i), func(context.Context, Event[order]) error { return nil })
			}
			ctx := context.Background()
			allocs := testing.AllocsPerRun(10_000, func() {
				if err := Publish(ctx, b, orders, order{ID: "o", Total: 1}, tt.opts...); err != nil {
					t.Fatal(err)
				}
			})
			if allocs > 0.01 {
				t.Errorf("Publish allocates %.3f times per event; want 0", allocs)
			}
		})
	}
}

func TestFanOutReachesEverySubscriber(t *testing.T) {
	b := New()
	const subs, events = 5, 200
	var mu sync.Mutex
	got := make(map[string][]int)
	for i := range subs {
		name := string(rune('a' + i))
		mustSubscribe(t, b, NewTopic[int]("n"), name, func(_ context.Context, ev Event[int]) error {
			mu.Lock()
			got[name] = append(got[name], ev.Payload)
			mu.Unlock()
			return nil
		})
	}
	for i := range events {
		mustPublish(t, b, NewTopic[int]("n"), i)
	}
	closeBus(t, b)
	for name, ns := range got {
		slices.Sort(ns)
		if len(ns) != events || ns[0] != 0 || ns[events-1] != events-1 || len(slices.Compact(ns)) != events {
			t.Errorf("subscriber %s got %d distinct events of %d; want each once", name, len(slices.Compact(ns)), events)
		}
	}
	if len(got) != subs {
		t.Errorf("%d subscribers received events; want %d", len(got), subs)
	}
}

// TestFanOutIntoFullRingsLosesNothing publishes from several goroutines to subscribers whose
// buffers are as large as their intake rings or a little smaller, so that publishers keep
// them full and claim each cell the moment a worker frees it: a fan-out claims without
// looking at the cell (pushReserved), and a cell taken before it was free would lose or
// repeat an event. Each subscriber with one worker must see each publisher's events in order.
func TestFanOutIntoFullRingsLosesNothing(t *testing.T) {
	const publishers, events = 4, 3000
	b := New()
	topic := NewTopic[tagged]("full-rings")
	var mu sync.Mutex
	got := make(map[string][]tagged)
	buffers := []int{1, 3, 4, 7, 8}
	for _, buffer := range buffers {
		name := fmt.Sprint("buffer-", buffer)
		mustSubscribe(t, b, topic, name, func(_ context.Context, ev Event[tagged]) error {
			mu.Lock()
			got[name] = append(got[name], ev.Payload)
			mu.Unlock()
			return nil
		}, WithBuffer(buffer), WithConcurrency(1))
	}
	// A cell taken before it was free can also leave a worker waiting for it forever: then
	// the publishers fail at the deadline, and Close never returns (the test times out).
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range events {
				if err := Publish(ctx, b, topic, tagged{Publisher: p, Seq: i}); err != nil {
					t.Errorf("publisher %d, event %d: %v", p, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	closeBus(t, b)
	for name, evs := range got {
		next := make([]int, publishers)
		for _, e := range evs {
			if e.Seq != next[e.Publisher] {
				t.Fatalf("%s: publisher %d's event %d came when %d was due", name, e.Publisher, e.Seq, next[e.Publisher])
			}
			next[e.Publisher]++
		}
		if len(evs) != publishers*events {
			t.Errorf("%s handled %d events; want %d", name, len(evs), publishers*events)
		}
	}
	if len(got) != len(buffers) {
		t.Errorf("%d subscribers handled events; want %d", len(got), len(buffers))
	}
}

func TestSlowSubscriberDoesNotDelayOthers(t *testing.T) {
	b := New()
	release := make(chan struct{})
	mustSubscribe(t, b, orders, "stuck", func(ctx context.Context, _ Event[order]) error {
		<-release
		return nil
	}, WithBuffer(16), WithConcurrency(1))
	fast := make(chan struct{}, 16)
	mustSubscribe(t, b, orders, "fast", func(context.Context, Event[order]) error {
		fast <- struct{}{}
		return nil
	})
	for range 10 {
		mustPublish(t, b, orders, order{})
	}
	for i := range 10 {
		select {
		case <-fast:
		case <-time.After(10 * time.Second):
			t.Fatalf("fast subscriber handled %d of 10 events while the other was stuck", i)
		}
	}
	close(release)
	closeBus(t, b)
}

func TestSubscriberRequired(t *testing.T) {
	b := New()
	lonely := NewTopic[order]("nobody.listens")
	ctx := context.Background()
	for _, opts := range [][]PublishOption{{WithSubscriberRequired()}, {WithSubscriberRequired(), WithWait()}} {
		if err := Publish(ctx, b, lonely, order{}, opts...); !errors.Is(err, ErrNoSubscribers) {
			t.Errorf("Publish(%d options) to a topic without subscribers = %v; want ErrNoSubscribers", len(opts), err)
		}
	}
	if err := Publish(ctx, b, lonely, order{}); err != nil {
		t.Errorf("Publish without WithSubscriberRequired = %v; want nil", err)
	}
	handled := make(chan struct{}, 1)
	sub := mustSubscribe(t, b, lonely, "s", func(context.Context, Event[order]) error { handled <- struct{}{}; return nil })
	if err := Publish(ctx, b, lonely, order{}, WithSubscriberRequired()); err != nil {
		t.Errorf("Publish with a subscriber = %v; want nil", err)
	}
	<-handled
	if st := b.Stats().Topics; len(st) != 1 || st[0].Published != 1 {
		t.Errorf("Stats().Topics = %+v; want the topic with only the event a subscriber accepted", st)
	}
	if err := sub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := Publish(ctx, b, lonely, order{}, WithSubscriberRequired(), WithWait()); !errors.Is(err, ErrNoSubscribers) {
		t.Errorf("Publish after the last subscriber left = %v; want ErrNoSubscribers", err)
	}
	closeBus(t, b)
}

// TestTopicForgottenWithItsLastSubscriber: a bus does not keep topics nobody subscribes to
// any more, and the same Topic value works again after a new Subscribe.
func TestTopicForgottenWithItsLastSubscriber(t *testing.T) {
	b := New()
	topic := NewTopic[int]("churn")
	got := make(chan int, 1)
	for round := range 3 {
		// A Topic value of the same name that Publish has not cached, then the cached one.
		sub := mustSubscribe(t, b, NewTopic[int]("churn"), "s", func(_ context.Context, ev Event[int]) error { got <- ev.Payload; return nil })
		mustPublish(t, b, topic, round)
		select {
		case v := <-got:
			if v != round {
				t.Fatalf("round %d: handled %d", round, v)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: the new subscriber never got the event", round)
		}
		if err := sub.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := len(*b.topics.Load()); n != 0 {
			t.Fatalf("round %d: %d topics kept after their last subscriber left; want 0", round, n)
		}
		if err := Publish(context.Background(), b, topic, -1, WithSubscriberRequired()); !errors.Is(err, ErrNoSubscribers) {
			t.Fatalf("round %d: Publish after the last subscriber left = %v; want ErrNoSubscribers", round, err)
		}
	}
	// A topic of another payload type may take the name once the first is forgotten.
	mustSubscribe(t, b, NewTopic[string]("churn"), "s", func(context.Context, Event[string]) error { return nil })
	closeBus(t, b)
}

func TestTopicIDsDoNotWrap(t *testing.T) {
	saved := topicIDs.Load()
	defer topicIDs.Store(saved)
	topicIDs.Store(maxCachedTopicID - 2)
	if a, b, c := nextTopicID(), nextTopicID(), nextTopicID(); a != maxCachedTopicID-1 || b != 0 || c != 0 {
		t.Errorf("ids at the cache's end = %d, %d, %d; want %d, 0, 0", a, b, c, maxCachedTopicID-1)
	}
	if topicIDs.Load() > maxCachedTopicID {
		t.Errorf("the counter went on to %d; want it to stop at %d, so it never wraps", topicIDs.Load(), maxCachedTopicID)
	}
}

// TestSubscriberRequiredWhenTheLastLeavesMidPublish: a publisher waiting for room in the
// only subscriber learns that the event went nowhere when that subscriber is removed.
func TestSubscriberRequiredWhenTheLastLeavesMidPublish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(WithDeadLetter(DiscardDeadLetters))
		gate := make(chan struct{})
		sub := mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error {
			<-gate
			return nil
		}, WithBuffer(1), WithConcurrency(1))
		mustPublish(t, b, orders, order{})
		result := make(chan error, 1)
		go func() { result <- Publish(context.Background(), b, orders, order{}, WithSubscriberRequired()) }()
		synctest.Wait() // the publisher waits for room
		closed := make(chan error, 1)
		go func() { closed <- sub.Close(context.Background()) }()
		synctest.Wait()
		close(gate)
		if err := <-result; !errors.Is(err, ErrNoSubscribers) {
			t.Errorf("Publish while the only subscriber left = %v; want ErrNoSubscribers", err)
		}
		if err := <-closed; err != nil {
			t.Errorf("Subscription.Close() = %v", err)
		}
		closeBus(t, b)
	})
}

// TestCachedStampsMatch: a worker reuses the time fields of the previous record when the
// publish time repeats; the envelope must be the one computed afresh.
func TestCachedStampsMatch(t *testing.T) {
	var c stampCache
	base := time.Now().UnixNano()
	for i := range 1000 {
		r := record[order]{nanos: base + int64(i/10)*int64(tick), rnd: rand.Uint64(), key: "k"}
		var fresh, cached Event[order]
		r.event(&fresh, "t", "src")
		r.eventCached(&cached, "t", "src", &c)
		if fresh.ID != cached.ID || fresh.Time != cached.Time || fresh.Key != cached.Key {
			t.Fatalf("record %d: cached envelope %v %v; want %v %v", i, cached.ID, cached.Time, fresh.ID, fresh.Time)
		}
	}
}
