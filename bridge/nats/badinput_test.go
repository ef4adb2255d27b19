package natsbridge_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
)

// Messages on the wire that are not CloudEvents of a received topic are counted,
// dead-lettered with the reason, never given to a handler, and do not stop the partition.
func TestBadInput(t *testing.T) {
	s := startServer(t)
	b := newBus(t, "bus-b")
	cfg := testConfig(s)
	cfg.MaxEventBytes = 4096
	brB := connect(t, b, cfg, natsbridge.Receive(steps))
	dls := watchDeadLetters(t, s)
	var calls atomic.Int32
	var got atomic.Value
	mustSubscribe(t, b, steps, "h", func(_ context.Context, ev eventbus.Event[step]) error {
		calls.Add(1)
		got.Store(ev.ID)
		return nil
	})

	good := func() nats.Header {
		return nats.Header{
			"ce-specversion": {"1.0"}, "ce-id": {uuid.NewString()}, "ce-source": {"/raw"},
			"ce-type": {"test.step"}, "content-type": {"application/json"},
		}
	}
	with := func(edit func(nats.Header)) nats.Header { h := good(); edit(h); return h }
	tests := []struct {
		name   string
		header nats.Header
		body   string
		want   string // in the dead letter's error
		tries  int    // deliveries before the dead letter: 1, but the retry policy's for an unknown type
	}{
		{"malformed JSON data", good(), `{"key":`, "malformed event \"data\"", 1},
		{"malformed structured JSON", nats.Header{"content-type": {"application/cloudevents+json"}}, `{"specversion":"1.0",`, "malformed event", 1},
		{"missing id", with(func(h nats.Header) { delete(h, "ce-id") }), `{}`, `invalid attribute "id": missing`, 1},
		{"wrong specversion", with(func(h nats.Header) { h["ce-specversion"] = []string{"0.3"} }), `{}`, `"specversion": must be 1.0`, 1},
		{"oversized data", good(), `"` + strings.Repeat("x", 8000) + `"`, "event too large", 1},
		{"unknown type", with(func(h nats.Header) { h["ce-type"] = []string{"test.unknown"} }), `{}`, "unknown event type", cfg.Retry.MaxAttempts},
		{"id not a UUID", with(func(h nats.Header) { h["ce-id"] = []string{"abc"} }), `{}`, `invalid attribute "id"`, 1},
		{"data of the wrong shape", good(), `{"key":5}`, "data does not fit", 1},
		{"not a CloudEvent", nil, "hello", "specversion", 1},
	}

	for _, tt := range tests {
		rawPublish(t, s, &nats.Msg{Subject: s.subject(0, "test.step"), Header: tt.header, Data: []byte(tt.body)})
	}
	// A good event behind them, in the same partition.
	a := newBus(t, "bus-a")
	connect(t, a, testConfig(s), natsbridge.Forward(steps))
	key := "k0"
	for i := 0; natsbridge.Partition(key, cfg.Partitions) != 0; i++ {
		key = fmt.Sprintf("k%d", i)
	}
	goodID := uuid.New()
	if err := eventbus.Publish(t.Context(), a, steps, step{Key: key}, eventbus.WithKey(key), eventbus.WithID(goodID)); err != nil {
		t.Fatal(err)
	}

	eventually(t, 10*time.Second, func() bool { return calls.Load() == 1 && len(dls.all()) == len(tests) }, func() string {
		return fmt.Sprintf("%d handler calls, %d dead letters; want 1 and %d; stats %+v", calls.Load(), len(dls.all()), len(tests), brB.Stats())
	})
	// The bridge counts an event as handled once its ack is confirmed, after the handler.
	eventually(t, 10*time.Second, func() bool { return brB.Stats().Handled == 1 },
		func() string { return fmt.Sprintf("stats %+v; want the good event handled", brB.Stats()) })
	if id := got.Load(); id != goodID {
		t.Errorf("the handler got event %v; want only the good one, %v", id, goodID)
	}
	for i, dl := range dls.all() {
		tt := tests[i] // dead letters come in the order of the partition
		h := dl.Headers()
		if h.Get(natsbridge.HeaderReason) != natsbridge.ReasonInvalid || !strings.Contains(h.Get(natsbridge.HeaderError), tt.want) ||
			h.Get(natsbridge.HeaderSubject) != s.subject(0, "test.step") || dl.Subject() != s.prefix+".deadletter.0.test.step" ||
			string(dl.Data()) != tt.body || h.Get(natsbridge.HeaderAttempts) != fmt.Sprint(tt.tries) {
			t.Errorf("%s: dead letter on %s, headers %v; want reason invalid, an error with %q, the original body, %d attempts",
				tt.name, dl.Subject(), h, tt.want, tt.tries)
		}
	}
	if st := brB.Stats(); st.Invalid != uint64(len(tests)) || st.DeadLettered != uint64(len(tests)) || st.Handled != 1 {
		t.Errorf("stats = %+v; want %d invalid and dead-lettered, 1 handled", st, len(tests))
	}
	checkSettled(t, brB.Stats())
}
