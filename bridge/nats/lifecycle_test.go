package natsbridge_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Close whose ctx ends while a handler still works returns ctx.Err() and hands the event
// back at once: another bridge receives it without waiting for AckWait.
func TestCloseDeadlineHandsBack(t *testing.T) {
	s := startServer(t)
	cfg := testConfig(s)
	cfg.AckWait = time.Minute
	a := newBus(t, "bus-a")
	connect(t, a, cfg, natsbridge.Forward(steps))

	b1 := eventbus.New(eventbus.WithSource("bus-b1"), eventbus.WithLogger(quietLogger))
	started, release := make(chan struct{}), make(chan struct{})
	mustSubscribe(t, b1, steps, "slow", func(context.Context, eventbus.Event[step]) error {
		close(started)
		<-release
		return nil
	})
	br1, err := natsbridge.Connect(t.Context(), b1, cfg, natsbridge.Receive(steps))
	if err != nil {
		t.Fatal(err)
	}
	if err := eventbus.Publish(t.Context(), a, steps, step{Key: "k"}, eventbus.WithKey("k")); err != nil {
		t.Fatal(err)
	}
	<-started
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := br1.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close() = %v; want context.DeadlineExceeded", err)
	}
	close(release)
	if err := b1.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	var got atomic.Int32
	b2 := newBus(t, "bus-b2")
	mustSubscribe(t, b2, steps, "h", func(context.Context, eventbus.Event[step]) error { got.Add(1); return nil })
	br2 := connect(t, b2, cfg, natsbridge.Receive(steps))
	eventually(t, 10*time.Second, func() bool { return got.Load() == 1 }, func() string {
		return fmt.Sprintf("the handed-back event did not reach bus B2 (AckWait is a minute); stats %+v", br2.Stats())
	})
	if st := br2.Stats(); st.Redelivered != 1 {
		t.Errorf("bus B2's bridge stats = %+v; want the event as a redelivery", st)
	}
	if st := br1.Stats(); st.HandedBack != 1 || st.Retried != 0 || st.Handled != 0 {
		t.Errorf("closed bridge's stats = %+v; want 1 handed back, none retried or handled", st)
	}
}

// A handler slower than AckWait does not make the server redeliver its event: the bridge
// reports progress meanwhile.
func TestSlowHandlerKeepsItsDelivery(t *testing.T) {
	s := startServer(t)
	cfg := testConfig(s)
	cfg.AckWait = time.Second
	a, b := newBus(t, "bus-a"), newBus(t, "bus-b")
	connect(t, a, cfg, natsbridge.Forward(steps))
	br := connect(t, b, cfg, natsbridge.Receive(steps))
	var calls atomic.Int32
	mustSubscribe(t, b, steps, "slow", func(context.Context, eventbus.Event[step]) error {
		calls.Add(1)
		time.Sleep(2500 * time.Millisecond) // the work itself, 2.5 x AckWait
		return nil
	})
	if err := eventbus.Publish(t.Context(), a, steps, step{Key: "k"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { return br.Stats().Handled == 1 }, func() string {
		return fmt.Sprintf("not handled; stats %+v", br.Stats())
	})
	if st := br.Stats(); calls.Load() != 1 || st.Received != 1 || st.Redelivered != 0 {
		t.Errorf("handler calls %d, stats %+v; want 1 call, 1 delivery, no redelivery", calls.Load(), st)
	}
}

// Config.Options reach nats.Connect: credentials here.
func TestOptionsPassedThrough(t *testing.T) {
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true, Username: "shop", Password: "s3cret",
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	b := newBus(t, "bus")
	cfg := natsbridge.Config{URL: srv.ClientURL(), Logger: quietLogger}
	if br, err := natsbridge.Connect(t.Context(), b, cfg, natsbridge.Forward(steps)); err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		if err == nil {
			br.Close(t.Context())
		}
		t.Errorf("Connect() without credentials = %v; want an authorization error", err)
	}
	cfg.Options = []nats.Option{nats.UserInfo("shop", "s3cret")}
	br, err := natsbridge.Connect(t.Context(), b, cfg, natsbridge.Forward(steps))
	if err != nil {
		t.Fatalf("Connect() with credentials = %v", err)
	}
	if err := br.Close(t.Context()); err != nil {
		t.Errorf("Close() = %v", err)
	}
}
