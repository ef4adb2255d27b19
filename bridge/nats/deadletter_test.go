package natsbridge_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// A message within max_payload whose dead letter would not be (its headers and body plus
// the bridge's headers) is dead-lettered without its body, or, if that is not enough,
// without its headers too; the dead letter says what it left out, and the partition
// flows on.
func TestDeadLetterOverMaxPayload(t *testing.T) {
	tests := []struct {
		name       string
		maxPayload int32
		msg        *nats.Msg
		omitted    string
	}{
		{"body", 1 << 20, &nats.Msg{Data: []byte(strings.Repeat("x", 1<<20-200))}, "data"},
		// JetStream takes at most 64 KiB of headers, so a server with a small max_payload.
		{"headers", 32 << 10, &nats.Msg{Header: nats.Header{"X-Big": {strings.Repeat("h", 32<<10-100)}}, Data: []byte("hi")}, "data, headers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServerWith(t, func(o *server.Options) { o.MaxPayload = tt.maxPayload })
			b := newBus(t, "bus-b")
			cfg := testConfig(s)
			br := connect(t, b, cfg, natsbridge.Receive(steps))
			dls := watchDeadLetters(t, s)
			var handled atomic.Int32
			mustSubscribe(t, b, steps, "h", func(context.Context, eventbus.Event[step]) error { handled.Add(1); return nil })

			tt.msg.Subject = s.subject(0, "test.step")
			key := keyInPartition(0, cfg.Partitions)
			e := eventbus.Event[step]{ID: uuid.New(), Type: steps.Name(), Source: "raw", Key: key, Payload: step{Key: key}}
			rawPublish(t, s, tt.msg, cloudEventMsg(t, e, s.subject(0, "test.step")))

			eventually(t, 15*time.Second, func() bool { return handled.Load() == 1 && len(dls.all()) == 1 }, func() string {
				return fmt.Sprintf("%d dead letters, %d handled; want 1 and the event behind it; stats %+v", len(dls.all()), handled.Load(), br.Stats())
			})
			dl := dls.all()[0]
			h := dl.Headers()
			if h.Get(natsbridge.HeaderOmitted) != tt.omitted || len(dl.Data()) != 0 || h.Get(natsbridge.HeaderReason) != natsbridge.ReasonInvalid ||
				h.Get(natsbridge.HeaderSequence) != "1" || (tt.omitted == "data, headers" && h.Get("X-Big") != "") {
				t.Errorf("dead letter headers %.300v, body of %d bytes; want %q omitted, reason invalid, sequence 1", h, len(dl.Data()), tt.omitted)
			}
			if st := br.Stats(); st.DeadLettered != 1 || st.DeadLetterFailures != 0 || st.Dropped != 0 {
				t.Errorf("stats %+v; want 1 dead-lettered, no failure", st)
			}
		})
	}
}

// A dead letter that cannot be published at all (here the bridge may not publish to the
// dead-letter subjects) is retried by PublishRetry; then the event is terminated, counted
// as dropped and logged at Error with its stream sequence, where it stays. Its partition
// is not held up for ever.
func TestDeadLetterUnpublishable(t *testing.T) {
	s, cfg := startServerDenying(t, "eventbus.deadletter.>")
	b := newBus(t, "bus-b")
	cfg.PublishRetry = eventbus.RetryPolicy{MaxAttempts: 3, InitialBackoff: 10 * time.Millisecond}
	cfg.PublishTimeout = 200 * time.Millisecond
	logs := &logRecorder{}
	cfg.Logger = slog.New(logs)
	br := connect(t, b, cfg, natsbridge.Receive(steps))
	var handled atomic.Int32
	mustSubscribe(t, b, steps, "h", func(context.Context, eventbus.Event[step]) error { handled.Add(1); return nil })

	rawPublish(t, s, &nats.Msg{Subject: s.subject(0, "test.step"), Data: []byte("not a CloudEvent")})
	key := keyInPartition(0, cfg.Partitions)
	e := eventbus.Event[step]{ID: uuid.New(), Type: steps.Name(), Source: "raw", Key: key, Payload: step{Key: key}}
	rawPublish(t, s, cloudEventMsg(t, e, s.subject(0, "test.step")))

	eventually(t, 15*time.Second, func() bool { return handled.Load() == 1 }, func() string {
		return fmt.Sprintf("the event behind the one that cannot be dead-lettered was not handled; stats %+v", br.Stats())
	})
	// The bridge counts an event as handled once its ack is confirmed, after the handler.
	eventually(t, 10*time.Second, func() bool { return br.Stats().Handled == 1 },
		func() string { return fmt.Sprintf("stats %+v; want the event handled", br.Stats()) })
	if st := br.Stats(); st.Dropped != 1 || st.DeadLetterFailures != 3 || st.DeadLettered != 0 {
		t.Errorf("stats %+v; want 1 dropped after 3 failed dead-letter publishes", st)
	}
	checkSettled(t, br.Stats())
	if errs := logs.at(slog.LevelError); len(errs) != 1 || !strings.Contains(errs[0], "sequence=1") || !strings.Contains(errs[0], "reason=invalid") {
		t.Errorf("Error logs %q; want one about the event at sequence 1, reason invalid", errs)
	}
}
