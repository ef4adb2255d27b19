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
	"github.com/nats-io/nats.go/jetstream"
)

// testServer is a NATS server with JetStream embedded in the test, on 127.0.0.1, storing
// in a temporary directory. It keeps its port and directory across restart.
type testServer struct {
	t    testing.TB
	dir  string
	port int
	srv  *server.Server
}

// startServer starts an embedded server on a random port; the test's cleanup stops it.
func startServer(t testing.TB) *testServer {
	t.Helper()
	s := &testServer{t: t, dir: t.TempDir(), port: -1}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *testServer) start() {
	s.t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: s.port, JetStream: true, StoreDir: s.dir,
		NoLog: true, NoSigs: true, MaxPayload: 1 << 20,
	})
	if err != nil {
		s.t.Fatalf("server.NewServer() = %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		s.t.Fatalf("embedded NATS server not ready within 10s")
	}
	s.srv = srv
	s.port = srv.Addr().(*net.TCPAddr).Port
}

// stop shuts the server down and waits until it has, so its goroutines are gone.
func (s *testServer) stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

// restart stops the server and starts a new one on the same port and store directory.
func (s *testServer) restart() {
	s.t.Helper()
	s.stop()
	s.start()
}

func (s *testServer) url() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

// testConfig is a Config for tests: quick reconnects, retries and redeliveries.
func testConfig(s *testServer) natsbridge.Config {
	return natsbridge.Config{
		URL:            s.url(),
		Options:        []nats.Option{nats.ReconnectWait(50 * time.Millisecond), nats.Name("test")},
		Partitions:     4,
		AckWait:        2 * time.Second,
		Retry:          eventbus.RetryPolicy{MaxAttempts: 3, InitialBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond},
		PublishRetry:   eventbus.RetryPolicy{MaxAttempts: 100, InitialBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond},
		PublishTimeout: time.Second,
		Logger:         quietLogger,
	}
}

var quietLogger = slog.New(slog.DiscardHandler)

// connect connects a bridge for bus b; the test's cleanup closes it, then the bus.
func connect(t testing.TB, b *eventbus.Bus, cfg natsbridge.Config, routes ...natsbridge.Route) *natsbridge.Bridge {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	br, err := natsbridge.Connect(ctx, b, cfg, routes...)
	if err != nil {
		t.Fatalf("Connect() = %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := br.Close(ctx); err != nil {
			t.Errorf("Bridge.Close() = %v", err)
		}
	})
	return br
}

// newBus makes a bus whose cleanup closes it (after the bridges, which were connected
// later and so are cleaned up first).
func newBus(t testing.TB, source string, opts ...eventbus.Option) *eventbus.Bus {
	t.Helper()
	b := eventbus.New(append([]eventbus.Option{eventbus.WithSource(source), eventbus.WithLogger(quietLogger)}, opts...)...)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("Bus.Close() = %v", err)
		}
	})
	return b
}

// eventually polls cond every 10ms until it holds or d has passed, then fails t with msg.
func eventually(t testing.TB, d time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, msg())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// deadLetters reads the dead letters of the stream, as a plain JetStream consumer would.
type deadLetters struct {
	mu   sync.Mutex
	msgs []jetstream.Msg
}

// watchDeadLetters collects every message on the dead-letter subjects of the test stream.
func watchDeadLetters(t testing.TB, s *testServer) *deadLetters {
	t.Helper()
	nc, err := nats.Connect(s.url())
	if err != nil {
		t.Fatalf("nats.Connect() = %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := js.CreateOrUpdateConsumer(ctx, "EVENTBUS", jetstream.ConsumerConfig{
		FilterSubject: "eventbus.deadletter.>", AckPolicy: jetstream.AckNonePolicy,
	})
	if err != nil {
		t.Fatalf("dead-letter consumer: %v", err)
	}
	dl := &deadLetters{}
	cc, err := c.Consume(func(m jetstream.Msg) {
		dl.mu.Lock()
		dl.msgs = append(dl.msgs, m)
		dl.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.Stop()
		<-cc.Closed()
		nc.Close()
	})
	return dl
}

func (d *deadLetters) all() []jetstream.Msg {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]jetstream.Msg(nil), d.msgs...)
}
