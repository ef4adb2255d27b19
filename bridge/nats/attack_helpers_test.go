package natsbridge_test

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// atkServer is an embedded NATS server with JetStream in a temp dir (the pattern of
// server_test.go).
type atkServer struct {
	t      testing.TB
	dir    string
	port   int
	maxPay int32
	srv    *server.Server
}

func atkStartServer(t testing.TB, maxPayload int32) *atkServer {
	t.Helper()
	s := &atkServer{t: t, dir: t.TempDir(), port: -1, maxPay: maxPayload}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *atkServer) start() {
	s.t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: s.port, JetStream: true, StoreDir: s.dir, NoLog: true, NoSigs: true, MaxPayload: s.maxPay}
	srv, err := server.NewServer(opts)
	if err != nil {
		s.t.Fatalf("server.NewServer: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		s.t.Fatalf("server not ready")
	}
	s.srv = srv
	s.port = srv.Addr().(*net.TCPAddr).Port
}

func (s *atkServer) stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

func (s *atkServer) url() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

var atkQuiet = slog.New(slog.DiscardHandler)

func atkConfig(s *atkServer) natsbridge.Config {
	return natsbridge.Config{
		URL:            s.url(),
		Options:        []nats.Option{nats.ReconnectWait(50 * time.Millisecond)},
		Partitions:     2,
		AckWait:        2 * time.Second,
		Retry:          eventbus.RetryPolicy{MaxAttempts: 3, InitialBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond},
		PublishRetry:   eventbus.RetryPolicy{MaxAttempts: 50, InitialBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond},
		PublishTimeout: time.Second,
		Logger:         atkQuiet,
	}
}

func atkBus(t testing.TB, source string, opts ...eventbus.Option) *eventbus.Bus {
	t.Helper()
	b := eventbus.New(append([]eventbus.Option{eventbus.WithSource(source), eventbus.WithLogger(atkQuiet)}, opts...)...)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b.Close(ctx)
	})
	return b
}

// atkConnect connects; the cleanup closes the bridge (idempotent) before the bus.
func atkConnect(t testing.TB, b *eventbus.Bus, cfg natsbridge.Config, routes ...natsbridge.Route) *natsbridge.Bridge {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	br, err := natsbridge.Connect(ctx, b, cfg, routes...)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		br.Close(ctx)
	})
	return br
}

func atkEventually(t testing.TB, d time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", msg())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type atkDLs struct {
	mu  sync.Mutex
	dls []eventbus.DeadLetter
}

func (d *atkDLs) HandleDeadLetter(_ context.Context, dl eventbus.DeadLetter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dls = append(d.dls, dl)
	return nil
}

func (d *atkDLs) n() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.dls)
}
