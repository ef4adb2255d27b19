package natsbridge_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
	"github.com/nats-io/nats.go"
)

// Connect returns when its ctx ends, even while nats.go would still wait for a server
// that accepted the connection but never speaks (its own timeout is a minute here).
func TestConnectHonoursCtx(t *testing.T) {
	mute := startProxy(t, "")
	b := newBus(t, "bus")
	cfg := natsbridge.Config{URL: mute.url(), Options: []nats.Option{nats.Timeout(time.Minute)}, Logger: quietLogger}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	br, err := natsbridge.Connect(ctx, b, cfg, natsbridge.Forward(steps))
	took := time.Since(start)
	if err == nil {
		br.Close(t.Context())
		t.Fatal("Connect() to a server that never speaks = nil error")
	}
	if !errors.Is(err, context.DeadlineExceeded) || took > 20*time.Second {
		t.Errorf("Connect() = %v after %v; want context.DeadlineExceeded soon after the 300ms ctx, not nats' minute", err, took)
	}
}

// Close returns soon after its ctx ends, even when the server stops answering while an
// ack waits for its confirmation and the connection still has to drain: neither the
// PublishTimeout of the ack (30s here) nor nats' 30s DrainTimeout holds it.
func TestCloseHonoursCtx(t *testing.T) {
	s := startServer(t)
	p := startProxy(t, s.hostPort())
	a := newBus(t, "bus-a")
	connect(t, a, testConfig(s), natsbridge.Forward(steps))

	b := eventbus.New(eventbus.WithSource("bus-b"), eventbus.WithLogger(quietLogger))
	defer b.Close(context.Background())
	started, release := make(chan struct{}), make(chan struct{})
	mustSubscribe(t, b, steps, "h", func(context.Context, eventbus.Event[step]) error {
		close(started)
		<-release
		return nil
	})
	cfg := testConfig(s)
	cfg.URL = p.url()
	cfg.PublishTimeout = 30 * time.Second
	br, err := natsbridge.Connect(t.Context(), b, cfg, natsbridge.Receive(steps))
	if err != nil {
		t.Fatal(err)
	}
	if err := eventbus.Publish(t.Context(), a, steps, step{Key: "k"}, eventbus.WithKey("k")); err != nil {
		t.Fatal(err)
	}
	<-started
	p.freeze()
	close(release) // the handler succeeds: the bridge now waits for its ack's confirmation

	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = br.Close(ctx)
	if took := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || took > 15*time.Second {
		t.Errorf("Close() = %v after %v; want context.DeadlineExceeded within a few seconds of its 500ms ctx", err, took)
	}
}

// A nats.ClosedHandler given in Config.Options is called when the bridge closes its
// connection (the bridge chains its own after it), and Close does not hang when the
// options turn callbacks after Close off.
func TestUserClosedHandler(t *testing.T) {
	s := startServer(t)
	b := newBus(t, "bus")
	var called atomic.Bool
	cfg := testConfig(s)
	cfg.Options = append(cfg.Options, nats.ClosedHandler(func(*nats.Conn) { called.Store(true) }))
	br, err := natsbridge.Connect(t.Context(), b, cfg, natsbridge.Forward(steps))
	if err != nil {
		t.Fatal(err)
	}
	if err := br.Close(t.Context()); err != nil || !called.Load() {
		t.Errorf("Close() = %v, user's ClosedHandler called: %v; want nil and true", err, called.Load())
	}

	cfg.Options = append(cfg.Options, nats.NoCallbacksAfterClientClose())
	if br, err = natsbridge.Connect(t.Context(), b, cfg, natsbridge.Forward(steps)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := br.Close(ctx); err != nil {
		t.Errorf("Close() with NoCallbacksAfterClientClose = %v; want nil, without waiting for a callback that never comes", err)
	}
}

// Close keeps to its ctx when a local subscriber of a forwarded topic is slow and full: a
// publisher waiting for that subscriber holds no room in the bridge's forwarding
// subscription, so draining it does not wait for the slow handler.
func TestCloseHonoursCtxBesideASlowSubscriber(t *testing.T) {
	s := startServer(t)
	b := newBus(t, "bus")
	br, err := natsbridge.Connect(t.Context(), b, testConfig(s), natsbridge.Forward(steps))
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	mustSubscribe(t, b, steps, "slow", func(ctx context.Context, _ eventbus.Event[step]) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}, eventbus.WithBuffer(1), eventbus.WithConcurrency(1))
	if err := eventbus.Publish(t.Context(), b, steps, step{Key: "1"}); err != nil {
		t.Fatal(err)
	}
	published := make(chan error, 1)
	go func() { published <- eventbus.Publish(context.Background(), b, steps, step{Key: "2"}) }()
	time.Sleep(50 * time.Millisecond) // the publisher waits for the slow subscriber

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	closed := make(chan struct{})
	go func() {
		br.Close(ctx)
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Errorf("Bridge.Close(100ms) has not returned after 2s; want it within about its ctx")
	}
	close(release)
	<-closed
	if err := <-published; err != nil {
		t.Errorf("Publish() = %v; want nil", err)
	}
}

// Close with a ctx that has already ended still acks the events its subscribers handled:
// none comes back after AckWait. (Before, the ack waited on the ended ctx and was never
// sent.)
func TestCloseWithEndedCtxSendsTheAcks(t *testing.T) {
	s := startServer(t)
	cfg := testConfig(s)
	cfg.AckWait = time.Second
	a := newBus(t, "bus-a")
	connect(t, a, cfg, natsbridge.Forward(steps))
	b := newBus(t, "bus-b")
	mustSubscribe(t, b, steps, "h", func(context.Context, eventbus.Event[step]) error { return nil })
	br, err := natsbridge.Connect(t.Context(), b, cfg, natsbridge.Receive(steps))
	if err != nil {
		t.Fatal(err)
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	closed := make(chan error, 1)
	var once sync.Once
	natsbridge.SetTestHookBeforeAck(func(ctx context.Context) {
		once.Do(func() { go func() { closed <- br.Close(ended) }() })
		<-ctx.Done() // Close has aborted the deliveries
	})
	defer natsbridge.SetTestHookBeforeAck(nil)
	if err := eventbus.Publish(t.Context(), a, steps, step{Key: "k"}, eventbus.WithKey("k")); err != nil {
		t.Fatal(err)
	}
	if err := <-closed; !errors.Is(err, context.Canceled) {
		t.Errorf("Close(ended ctx) = %v; want context.Canceled", err)
	}
	natsbridge.SetTestHookBeforeAck(nil)
	if st := br.Stats(); st.Handled != 1 || st.AckFailures != 0 {
		t.Fatalf("stats %+v; want the event handled and acked", st)
	}
	// A second bridge of the Group gets nothing back, AckWait and more later.
	var again atomic.Int32
	b2 := newBus(t, "bus-b2")
	mustSubscribe(t, b2, steps, "h", func(context.Context, eventbus.Event[step]) error { again.Add(1); return nil })
	br2 := connect(t, b2, cfg, natsbridge.Receive(steps))
	time.Sleep(2 * cfg.AckWait)
	if n := again.Load(); n != 0 || br2.Stats().Received != 0 {
		t.Errorf("the event came back %d times (stats %+v); want its ack to have reached the server", n, br2.Stats())
	}
}
