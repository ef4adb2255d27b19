package natsbridge_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
	"github.com/ae30fb47/eventbus/cloudevents"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestConnectRejects(t *testing.T) {
	s := startServer(t)
	b := newBus(t, "bus")
	tests := []struct {
		name   string
		edit   func(*natsbridge.Config)
		routes []natsbridge.Route
		want   string
	}{
		{"negative partitions", func(c *natsbridge.Config) { c.Partitions = -1 }, nil, "Partitions"},
		{"invalid retry", func(c *natsbridge.Config) { c.Retry = eventbus.RetryPolicy{Multiplier: 0.5} }, nil, "Retry"},
		{"wildcard prefix", func(c *natsbridge.Config) { c.SubjectPrefix = "events.*" }, nil, "SubjectPrefix"},
		{"dotted stream", func(c *natsbridge.Config) { c.Stream = "A.B" }, nil, "Stream"},
		{"zero route", nil, []natsbridge.Route{{}}, "zero Route"},
		{"topic with a space", nil, []natsbridge.Route{natsbridge.Forward(eventbus.NewTopic[int]("bad topic"))}, "cannot be a subject"},
		{"loop", nil, []natsbridge.Route{natsbridge.Forward(steps), natsbridge.Receive(steps)}, "both forwarded and received"},
		{"received twice", nil, []natsbridge.Route{natsbridge.Receive(steps), natsbridge.Receive(steps)}, "already registered"},
		{"no server", func(c *natsbridge.Config) { c.URL = "nats://127.0.0.1:1" }, nil, "connect to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(s)
			if tt.edit != nil {
				tt.edit(&cfg)
			}
			br, err := natsbridge.Connect(t.Context(), b, cfg, tt.routes...)
			if err == nil {
				br.Close(t.Context())
				t.Fatalf("Connect() = nil error; want one about %s", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Connect() = %v; want an error about %s", err, tt.want)
			}
		})
	}

	t.Run("existing stream without our subjects", func(t *testing.T) {
		if _, err := jsClient(t, s).CreateStream(t.Context(), jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}}); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(s)
		cfg.Stream = "OTHER"
		if br, err := natsbridge.Connect(t.Context(), b, cfg); err == nil || !strings.Contains(err.Error(), "does not capture") {
			if err == nil {
				br.Close(t.Context())
			}
			t.Errorf("Connect(stream OTHER) = %v; want an error that it does not capture eventbus.>", err)
		}
	})
}

// An event that cannot be forwarded is dead-lettered on the local bus, never dropped:
// at once if it cannot be a CloudEvent, after the retries if the broker is down.
func TestForwardDeadLetters(t *testing.T) {
	s := startServer(t)
	dls := &busDeadLetters{}
	a := newBus(t, "bus-a")
	cfg := testConfig(s)
	cfg.PublishRetry = eventbus.RetryPolicy{MaxAttempts: 3, InitialBackoff: 10 * time.Millisecond}
	cfg.PublishTimeout = 200 * time.Millisecond
	cfg.DeadLetter = dls
	br := connect(t, a, cfg, natsbridge.Forward(steps))
	count := func() int { return len(dls.all()) }

	if err := eventbus.Publish(t.Context(), a, steps, step{}, eventbus.WithMetadata(eventbus.Metadata{"trace": "\xff"})); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { return count() == 1 }, func() string { return "no dead letter for a value that is not UTF-8" })
	if dl := dls.all()[0]; dl.Attempts != 1 || !errors.Is(dl.Err, cloudevents.ErrInvalid) || dl.Subscriber != "nats-bridge" {
		t.Errorf("dead letter = %+v; want 1 attempt by nats-bridge with cloudevents.ErrInvalid", dl)
	}

	s.stop()
	if err := eventbus.Publish(t.Context(), a, steps, step{Key: "k"}, eventbus.WithKey("k")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { return count() == 2 }, func() string { return "no dead letter while the broker is down" })
	if dl := dls.all()[1]; dl.Attempts != 3 || dl.Event.Key != "k" {
		t.Errorf("dead letter = %+v; want the event with key k after 3 attempts", dl)
	}
	want := natsbridge.ForwardDeadLetters{Invalid: 1, Failed: 1}
	if st := br.Stats(); st.ForwardFailures != 3 || st.Forwarded != 0 || st.ForwardDeadLetters != want {
		t.Errorf("stats = %+v; want 3 forward failures, 0 forwarded, dead letters %+v", st, want)
	}
}

// An event larger than the server's max_payload is dead-lettered on the bus after one
// attempt, not retried: no retry can make it fit.
func TestForwardOverMaxPayload(t *testing.T) {
	s := startServer(t)
	dls := &busDeadLetters{}
	a := newBus(t, "bus-a")
	cfg := testConfig(s)
	cfg.DeadLetter = dls
	br := connect(t, a, cfg, natsbridge.Forward(blobStored))
	if err := eventbus.Publish(t.Context(), a, blobStored, make([]byte, 2<<20)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { return len(dls.all()) == 1 },
		func() string { return fmt.Sprintf("no dead letter; stats %+v", br.Stats()) })
	if dl := dls.all()[0]; dl.Attempts != 1 || !errors.Is(dl.Err, nats.ErrMaxPayload) {
		t.Errorf("dead letter after %d attempts with %v; want 1 attempt, nats.ErrMaxPayload", dl.Attempts, dl.Err)
	}
	if st := br.Stats(); st.Forwarded != 0 || st.ForwardFailures != 1 || st.ForwardDeadLetters != (natsbridge.ForwardDeadLetters{TooLarge: 1}) {
		t.Errorf("stats %+v; want 1 forward failure, none forwarded, one dead letter too large", st)
	}
}

// Close forwards what the bus accepted before it returns.
func TestCloseForwardsAccepted(t *testing.T) {
	const n = 300
	s := startServer(t)
	a := newBus(t, "bus-a")
	br, err := natsbridge.Connect(t.Context(), a, testConfig(s), natsbridge.Forward(steps))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := eventbus.Publish(t.Context(), a, steps, step{Key: fmt.Sprint(i % 7), Seq: i}, eventbus.WithKey(fmt.Sprint(i%7))); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := br.Close(ctx); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := br.Close(ctx); err != nil {
		t.Errorf("second Close() = %v; want the first's result, nil", err)
	}
	if st := br.Stats(); st.Forwarded != n {
		t.Errorf("forwarded %d; want all %d accepted events before Close returned", st.Forwarded, n)
	}
	stream, err := jsClient(t, s).Stream(t.Context(), s.stream)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := stream.Info(t.Context()); err != nil || info.State.Msgs != n {
		t.Errorf("stream holds %v messages (err %v); want %d", info.State.Msgs, err, n)
	}
}

// A bridge that stops and another that starts later (a consumer restart) go on where the
// first left off: nothing acked is delivered again, nothing is skipped, keys stay in order,
// and what the first had fetched but not delivered is handed back at once, not after
// AckWait.
func TestConsumerRestart(t *testing.T) {
	const keys, perKey = 5, 40
	s := startServer(t)
	cfg := testConfig(s)
	cfg.AckWait = time.Minute // longer than the test may take
	a := newBus(t, "bus-a")
	connect(t, a, testConfig(s), natsbridge.Forward(steps))
	l := newLedger()

	b1 := eventbus.New(eventbus.WithSource("bus-b1"))
	mustSubscribe(t, b1, steps, "ledger", func(_ context.Context, ev eventbus.Event[step]) error {
		l.handled("bus-b1", ev)
		return nil
	})
	br1, err := natsbridge.Connect(t.Context(), b1, cfg, natsbridge.Receive(steps))
	if err != nil {
		t.Fatal(err)
	}
	publish := func(from, to int) {
		for seq := from; seq < to; seq++ {
			for k := range keys {
				key := fmt.Sprint("k", k)
				if err := eventbus.Publish(t.Context(), a, steps, step{Key: key, Seq: seq}, eventbus.WithKey(key)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	publish(0, perKey/2)
	eventually(t, 10*time.Second, func() bool { d, _ := l.count(); return d >= keys*perKey/4 },
		func() string { return "bus B1 handled too little before its restart" })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := br1.Close(ctx); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := b1.Close(ctx); err != nil {
		t.Fatalf("bus Close() = %v", err)
	}
	publish(perKey/2, perKey)

	b2 := newBus(t, "bus-b2")
	mustSubscribe(t, b2, steps, "ledger", func(_ context.Context, ev eventbus.Event[step]) error {
		l.handled("bus-b2", ev)
		return nil
	})
	br2 := connect(t, b2, cfg, natsbridge.Receive(steps))
	eventually(t, 20*time.Second, func() bool { d, _ := l.count(); return d == keys*perKey }, func() string {
		d, _ := l.count()
		return fmt.Sprintf("handled %d of %d; stats %+v", d, keys*perKey, br2.Stats())
	})
	_, repeats := l.count()
	l.mu.Lock()
	defer l.mu.Unlock()
	if repeats != 0 || len(l.order) != 0 {
		t.Errorf("repeats %d, order violations %v; want none across the restart", repeats, l.order)
	}
	t.Logf("bus-b1 handled %d, bus-b2 %d", l.byBus["bus-b1"], l.byBus["bus-b2"])
}

// A bus closed before its bridge makes the bridge stop receiving, without spinning on
// redeliveries nor dead-lettering: the events wait for another bridge.
func TestBusClosedBeforeBridge(t *testing.T) {
	const n = 40
	s := startServer(t)
	a := newBus(t, "bus-a")
	connect(t, a, testConfig(s), natsbridge.Forward(steps))
	b1 := eventbus.New(eventbus.WithSource("bus-b1"))
	mustSubscribe(t, b1, steps, "h", func(context.Context, eventbus.Event[step]) error { return nil })
	br1 := connect(t, b1, testConfig(s), natsbridge.Receive(steps))
	if err := b1.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := eventbus.Publish(t.Context(), a, steps, step{Key: fmt.Sprint(i % 8), Seq: i}, eventbus.WithKey(fmt.Sprint(i%8))); err != nil {
			t.Fatal(err)
		}
	}
	l := newLedger()
	b2 := newBus(t, "bus-b2")
	mustSubscribe(t, b2, steps, "h", func(_ context.Context, ev eventbus.Event[step]) error {
		l.handled("bus-b2", ev)
		return nil
	})
	connect(t, b2, testConfig(s), natsbridge.Receive(steps))
	eventually(t, 10*time.Second, func() bool { d, _ := l.count(); return d == n }, func() string {
		d, _ := l.count()
		return fmt.Sprintf("bus B2 handled %d of %d; bridge B1 %+v", d, n, br1.Stats())
	})
	if st := br1.Stats(); st.Received > 4 || st.DeadLettered != 0 || st.Handled != 0 {
		t.Errorf("bridge of the closed bus: %+v; want at most one delivery per partition (4), handed back, no dead letter", st)
	}
}

// Several received topics need nats-server 2.10 (consumers with several filter subjects):
// on an older server Connect refuses them, naming both versions, before it creates
// anything, so the stream does not stay behind.
func TestConnectRefusesSeveralTopicsBefore210(t *testing.T) {
	s := startServer(t)
	if v := serverVersion(t, s); !before210(v) {
		t.Skipf("nats-server %s takes several filter subjects; NATSBRIDGE_TEST_SERVER runs this against 2.9", v)
	}
	b := newBus(t, "bus")
	other := eventbus.NewTopic[step]("test.other")
	_, err := natsbridge.Connect(t.Context(), b, testConfig(s), natsbridge.Receive(steps), natsbridge.Receive(other))
	if err == nil || !strings.Contains(err.Error(), "2.10 or later") || !strings.Contains(err.Error(), serverVersion(t, s)) {
		t.Fatalf("Connect(two received topics) = %v; want an error naming 2.10 and the server's version", err)
	}
	if _, err := jsClient(t, s).Stream(t.Context(), s.stream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("after the refused Connect, stream %s: %v; want none", s.stream, err)
	}
	br := connect(t, b, testConfig(s), natsbridge.Receive(steps)) // one topic is fine
	_ = br
}

// A Connect that fails after it created consumers deletes them, and only them: the
// consumer that stopped it, made by another program, stays, and so does the stream, which
// was there before.
func TestFailedConnectDeletesTheConsumersItMade(t *testing.T) {
	s := startServer(t)
	b := newBus(t, "bus")
	js := jsClient(t, s)
	cfg := testConfig(s)
	cfg.Partitions = 3
	connect(t, b, cfg).Close(t.Context()) // creates the stream
	// A push consumer under the name of partition 2's: the bridge cannot make it a pull one.
	if _, err := js.CreateOrUpdatePushConsumer(t.Context(), s.stream, jetstream.ConsumerConfig{
		Durable: "eventbus-2", DeliverSubject: "elsewhere", AckPolicy: jetstream.AckExplicitPolicy,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := natsbridge.Connect(t.Context(), b, cfg, natsbridge.Receive(steps)); err == nil {
		t.Fatal("Connect() = nil error; want the consumer it cannot make")
	}
	stream, err := js.Stream(t.Context(), s.stream)
	if err != nil {
		t.Fatalf("stream %s: %v; want it kept", s.stream, err)
	}
	names := stream.ConsumerNames(t.Context())
	var got []string
	for name := range names.Name() {
		got = append(got, name)
	}
	if names.Err() != nil || len(got) != 1 || got[0] != "eventbus-2" {
		t.Errorf("after the failed Connect, consumers %v (%v); want only eventbus-2, the other program's", got, names.Err())
	}
}

// A Connect that fails after it created the stream deletes it: here partition 2's consumer
// may not be created (the bridge's user lacks the permission).
func TestFailedConnectDeletesTheStreamItMade(t *testing.T) {
	deny := []string{"$JS.API.CONSUMER.CREATE.EVENTBUS.eventbus-2", "$JS.API.CONSUMER.CREATE.EVENTBUS.eventbus-2.>",
		"$JS.API.CONSUMER.DURABLE.CREATE.EVENTBUS.eventbus-2"}
	s := startServerWith(t, func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "admin", Password: "a"},
			{Username: "bridge", Password: "b", Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: deny},
			}},
		}
	})
	b := newBus(t, "bus")
	cfg := testConfig(s)
	cfg.URL = strings.Replace(s.url(), "admin:a@", "bridge:b@", 1)
	cfg.Options = append(cfg.Options, nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	cfg.Partitions = 3
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := natsbridge.Connect(ctx, b, cfg, natsbridge.Receive(steps)); err == nil {
		t.Fatal("Connect() = nil error; want the consumer it may not create")
	}
	if _, err := jsClient(t, s).Stream(t.Context(), s.stream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("after the failed Connect, stream %s: %v; want it deleted", s.stream, err)
	}
}

// serverVersion returns the version of s, as its INFO gives it.
func serverVersion(t testing.TB, s *testServer) string {
	t.Helper()
	nc, err := nats.Connect(s.url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	return nc.ConnectedServerVersion()
}

// before210 reports whether the server version v is older than 2.10.
func before210(v string) bool {
	var major, minor int
	fmt.Sscanf(v, "%d.%d", &major, &minor)
	return major < 2 || (major == 2 && minor < 10)
}
