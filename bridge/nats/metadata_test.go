package natsbridge_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
	"github.com/ae30fb47/eventbus/cloudevents"
)

// The metadata of the event-design guides (source, version, correlationId) and every other
// shape that is valid in process cross the bridge and come back equal. Before the
// eventbusmetadata extension, every such event was dead-lettered on the way out while
// Publish returned nil.
func TestMetadataOfEveryShapeCrosses(t *testing.T) {
	s := startServer(t)
	shapes := []eventbus.Metadata{
		{"source": "checkout", "version": "2", "correlationId": "c-42"},
		{"X-Request-Id": "r 1", "app.kubernetes.io/name": "shop", "type": "t", "partitionkey": "p"},
		{"empty": "", "": "nameless", "line": "a\nb", "greeting": "Grüße 👋", "nonchar": "\ufffe"},
		{"subject": "", "dataschema": "relative/schema", "q": "100% sure"},
	}
	a, b := newBus(t, "bus-a"), newBus(t, "bus-b")
	got := make(chan eventbus.Metadata, len(shapes))
	if _, err := eventbus.Subscribe(b, steps, "collect", func(_ context.Context, ev eventbus.Event[step]) error {
		got <- ev.Metadata
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	br := connect(t, a, testConfig(s), natsbridge.Forward(steps))
	connect(t, b, testConfig(s), natsbridge.Receive(steps))
	for i, md := range shapes {
		if err := eventbus.Publish(t.Context(), a, steps, step{Seq: i}, eventbus.WithKey("k"),
			eventbus.WithMetadata(md), eventbus.WithWait()); err != nil {
			t.Fatalf("Publish(metadata %q) = %v", md, err)
		}
	}
	for _, md := range shapes {
		select {
		case back := <-got:
			if !maps.Equal(back, md) {
				t.Errorf("metadata came back as %q; want %q", back, md)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("an event did not cross; bridge stats %+v", br.Stats())
		}
	}
	if st := br.Stats(); st.ForwardDeadLetters.Total() != 0 {
		t.Errorf("forward dead letters %+v; want none", st.ForwardDeadLetters)
	}
}

// What still cannot be forwarded is visible: in Stats by reason, in one log line per
// reason per minute, and to a publisher that waits, as Publish's error.
func TestForwardRefusalIsVisible(t *testing.T) {
	s := startServer(t)
	var buf bytes.Buffer
	var mu sync.Mutex
	cfg := testConfig(s)
	cfg.Logger = slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelWarn}))
	dls := &busDeadLetters{}
	cfg.DeadLetter = dls
	a := newBus(t, "bus-a")
	br := connect(t, a, cfg, natsbridge.Forward(steps))

	const n = 5
	for i := range n {
		err := eventbus.Publish(t.Context(), a, steps, step{Seq: i},
			eventbus.WithMetadata(eventbus.Metadata{"trace": "\xff"}), eventbus.WithWait())
		var de *eventbus.DeliveryError
		if !errors.As(err, &de) || !errors.Is(err, cloudevents.ErrInvalid) || de.Subscriber != "nats-bridge" {
			t.Fatalf("Publish(not forwardable) with WithWait = %v; want a DeliveryError of nats-bridge wrapping cloudevents.ErrInvalid", err)
		}
	}
	if st := br.Stats(); st.ForwardDeadLetters != (natsbridge.ForwardDeadLetters{Invalid: n}) {
		t.Errorf("Stats().ForwardDeadLetters = %+v; want %d invalid", st.ForwardDeadLetters, n)
	}
	if got := len(dls.all()); got != n {
		t.Errorf("the dead-letter hook got %d; want %d", got, n)
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if lines := strings.Count(out, "was not forwarded"); lines != 1 || !strings.Contains(out, "reason=invalid") {
		t.Errorf("log:\n%s\nwant one line for reason invalid", out)
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
