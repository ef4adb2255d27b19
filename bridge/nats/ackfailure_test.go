package natsbridge_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
	"github.com/google/uuid"
)

// An event whose ack the server does not confirm (here the bridge may not publish acks)
// is not counted as handled: it is counted as an ack failure, logged at Warn, and the
// server redelivers it after AckWait, to a subscriber that de-duplicates it.
func TestAckFailure(t *testing.T) {
	s, cfg := startServerDenying(t, "$JS.ACK.>")
	b := newBus(t, "bus-b")
	cfg.PublishTimeout = 200 * time.Millisecond
	logs := &logRecorder{}
	cfg.Logger = slog.New(logs)
	br := connect(t, b, cfg, natsbridge.Receive(steps))
	mustSubscribe(t, b, steps, "h", func(context.Context, eventbus.Event[step]) error { return nil },
		eventbus.WithDeduplication(time.Minute, 100))

	e := eventbus.Event[step]{ID: uuid.New(), Type: steps.Name(), Source: "raw", Key: "k", Payload: step{Key: "k"}}
	rawPublish(t, s, cloudEventMsg(t, e, s.subject(natsbridge.Partition("k", cfg.Partitions), "test.step")))

	// AckWait is 2s: the redelivery shows that the server never took the ack.
	eventually(t, 15*time.Second, func() bool { st := br.Stats(); return st.AckFailures >= 1 && st.Redelivered >= 1 },
		func() string { return fmt.Sprintf("stats %+v; want an ack failure, then a redelivery", br.Stats()) })
	if st := br.Stats(); st.Handled != 0 {
		t.Errorf("stats %+v; want 0 handled: no ack was confirmed", st)
	}
	if warns := logs.at(slog.LevelWarn); len(warns) == 0 || !strings.Contains(strings.Join(warns, "\n"), "ack failed") {
		t.Errorf("Warn logs %q; want the ack failure", warns)
	}
	if errs := logs.at(slog.LevelError); len(errs) != 0 {
		t.Errorf("Error logs %q; want none: a lost ack only means a redelivery", errs)
	}
}
