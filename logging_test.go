package eventbus

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

// records is a slog.Handler that keeps every record's level and message.
type records struct {
	mu  sync.Mutex
	got []string
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *records) WithGroup(string) slog.Handler            { return r }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, rec.Level.String()+" "+rec.Message)
	return nil
}

// TestLogLevels: lifecycle and retries at Debug, dead letters at Error, a Close cut short
// at Warn, and nothing at Info or above for events that are handled.
func TestLogLevels(t *testing.T) {
	var rec records
	b := New(WithLogger(slog.New(&rec)))
	sub := mustSubscribe(t, b, orders, "s", func(_ context.Context, ev Event[order]) error {
		switch ev.Payload.ID {
		case "flaky", "poison":
			return errFlaky
		case "stuck":
			time.Sleep(50 * time.Millisecond)
		}
		return nil
	}, WithConcurrency(1), WithRetry(RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond}))
	for range 100 {
		mustPublish(t, b, orders, order{})
	}
	mustPublish(t, b, orders, order{ID: "poison"})
	if err := sub.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustSubscribe(t, b, orders, "t", func(_ context.Context, ev Event[order]) error {
		time.Sleep(50 * time.Millisecond)
		return nil
	}, WithConcurrency(1))
	for range 3 {
		mustPublish(t, b, orders, order{})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	b.Close(ctx)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	want := []string{
		"DEBUG eventbus: subscribed",
		"DEBUG eventbus: retrying",
		"ERROR eventbus: dead letter",
		"DEBUG eventbus: unsubscribed",
		"DEBUG eventbus: subscribed",
		"ERROR eventbus: dead letter", // events Close could not deliver in time
		"WARN eventbus: close cut short; undelivered events were dead-lettered",
	}
	got := slices.Compact(slices.Clone(rec.got))
	if !slices.Equal(got, want) {
		t.Errorf("log records (repeats folded) =\n%q; want\n%q", got, want)
	}
}
