package natsbridge_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
	"github.com/ae30fb47/eventbus/cloudevents"
	"github.com/google/uuid"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The suite runs against a NATS server embedded in the test (nats-server/v2, the version in
// go.mod) by default. With NATSBRIDGE_TEST_SERVER set to a URL, such as
// nats://127.0.0.1:4222, it runs against that server instead (.ci/run does both, the second
// against the machine's nats-server 2.9.10): each test then uses a stream and subject
// prefix of its own, deleted at its end, and the tests that must stop the server or start
// one of their own configuration skip, saying so. If that server cannot be reached, the
// tests skip, or fail under CI=true.
// (Read when a test starts, not at package initialization, so that go test's cache knows
// the results depend on it.)
func externalServer() string { return os.Getenv("NATSBRIDGE_TEST_SERVER") }

// testServer is a NATS server with JetStream embedded in the test, on 127.0.0.1, storing
// in a temporary directory; it keeps its port and directory across restart. Or, with
// NATSBRIDGE_TEST_SERVER, a server outside the test.
type testServer struct {
	t     testing.TB
	dir   string
	port  int
	edit  func(*server.Options) // changes to the test options, or nil
	login string                // "user:password" of the first user, if the server has users
	srv   *server.Server

	external string // the URL of the server outside the test, or ""
	stream   string // the stream of the test's bridges: "EVENTBUS", or one of the test's own
	prefix   string // their subject prefix: "eventbus", or one of the test's own
}

// startServer starts an embedded server on a random port; the test's cleanup stops it.
func startServer(t testing.TB) *testServer {
	return startServerWith(t, nil)
}

// startServerWith starts an embedded server with options changed by edit. If edit gives
// it users, url logs in as the first one. Against an outside server, a test with edit
// skips.
func startServerWith(t testing.TB, edit func(*server.Options)) *testServer {
	t.Helper()
	if externalServer() != "" {
		if edit != nil {
			t.Skip("needs an embedded server of its own configuration; NATSBRIDGE_TEST_SERVER is set")
		}
		return useExternalServer(t)
	}
	s := &testServer{t: t, dir: t.TempDir(), port: -1, edit: edit, stream: "EVENTBUS", prefix: "eventbus"}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// useExternalServer returns the server of NATSBRIDGE_TEST_SERVER with a stream name and
// subject prefix of the test's own; the test's cleanup deletes that stream.
func useExternalServer(t testing.TB) *testServer {
	t.Helper()
	url := externalServer()
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("NATSBRIDGE_TEST_SERVER=%s cannot be reached under CI: %v", url, err)
		}
		t.Skipf("NATSBRIDGE_TEST_SERVER=%s cannot be reached: %v", url, err)
	}
	id := strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	s := &testServer{t: t, external: url, stream: "TEST" + strings.ToUpper(id), prefix: "test" + id}
	t.Cleanup(func() {
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Errorf("jetstream.New() = %v", err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := js.DeleteStream(ctx, s.stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Errorf("delete the test's stream %s: %v", s.stream, err)
		}
	})
	return s
}

func (s *testServer) start() {
	s.t.Helper()
	opts := &server.Options{
		Host: "127.0.0.1", Port: s.port, JetStream: true, StoreDir: s.dir,
		NoLog: true, NoSigs: true, MaxPayload: 1 << 20,
	}
	if s.edit != nil {
		s.edit(opts)
	}
	if len(opts.Users) > 0 {
		s.login = opts.Users[0].Username + ":" + opts.Users[0].Password
	}
	srv, err := server.NewServer(opts)
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

// stop shuts the server down and waits until it has, so its goroutines are gone. Against
// an outside server, the test skips from here on.
func (s *testServer) stop() {
	if s.external != "" {
		s.t.Skip("stops the server, which it cannot do to NATSBRIDGE_TEST_SERVER; skipped from here on")
	}
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

// requireEmbedded skips the test against an outside server: it stops or restarts the
// server, which it can do only to one of its own.
func (s *testServer) requireEmbedded() {
	if s.external != "" {
		s.t.Skip("stops or restarts the server, which it cannot do to NATSBRIDGE_TEST_SERVER")
	}
}

// restart stops the server and starts a new one on the same port and store directory.
func (s *testServer) restart() {
	s.t.Helper()
	s.stop()
	s.start()
}

// url is the server's URL, with the first user's credentials if it has users.
func (s *testServer) url() string {
	if s.external != "" {
		return s.external
	}
	if s.login != "" {
		return "nats://" + s.login + "@127.0.0.1:" + strconv.Itoa(s.port)
	}
	return "nats://127.0.0.1:" + strconv.Itoa(s.port)
}

// subject returns the subject of topic's events in partition p, as the test's bridges
// name it.
func (s *testServer) subject(p int, topic string) string {
	return s.prefix + "." + strconv.Itoa(p) + "." + topic
}

// hostPort is the server's address, for a proxy in front of it.
func (s *testServer) hostPort() string {
	if s.external != "" {
		u, err := url.Parse(s.external)
		if err != nil {
			s.t.Fatal(err)
		}
		return u.Host
	}
	return "127.0.0.1:" + strconv.Itoa(s.port)
}

// startServerDenying starts a server whose test clients log in as an admin, and returns
// it with a test Config in which the bridge logs in as a user that may not publish to
// subject; the permission errors that nats.go reports are silenced.
func startServerDenying(t testing.TB, subject string) (*testServer, natsbridge.Config) {
	t.Helper()
	s := startServerWith(t, func(o *server.Options) {
		o.Users = []*server.User{
			{Username: "admin", Password: "a"},
			{Username: "bridge", Password: "b", Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: []string{subject}},
			}},
		}
	})
	cfg := testConfig(s)
	cfg.URL = strings.Replace(s.url(), "admin:a@", "bridge:b@", 1)
	cfg.Options = append(cfg.Options, nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
	return s, cfg
}

// testConfig is a Config for tests: quick reconnects, retries and redeliveries.
func testConfig(s *testServer) natsbridge.Config {
	return natsbridge.Config{
		URL:            s.url(),
		Stream:         s.stream,
		SubjectPrefix:  s.prefix,
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
	js := jsClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := js.CreateOrUpdateConsumer(ctx, s.stream, jetstream.ConsumerConfig{
		FilterSubject: s.prefix + ".deadletter.>", AckPolicy: jetstream.AckNonePolicy,
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
	})
	return dl
}

func (d *deadLetters) all() []jetstream.Msg {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]jetstream.Msg(nil), d.msgs...)
}

// keyInPartition returns a key of partition p among n.
func keyInPartition(p, n int) string {
	for i := 0; ; i++ {
		if k := fmt.Sprint("k", i); natsbridge.Partition(k, n) == p {
			return k
		}
	}
}

// jsClient connects a JetStream client of its own to s, as a program other than the
// bridge would; the test's cleanup closes it.
func jsClient(t testing.TB, s *testServer) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(s.url())
	if err != nil {
		t.Fatalf("nats.Connect() = %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// rawPublish stores msgs in the test stream as a producer other than the bridge would.
func rawPublish(t testing.TB, s *testServer, msgs ...*nats.Msg) {
	t.Helper()
	js := jsClient(t, s)
	for _, m := range msgs {
		if _, err := js.PublishMsg(t.Context(), m); err != nil {
			t.Fatalf("publish to %s: %v", m.Subject, err)
		}
	}
}

// cloudEventMsg returns ev as the bridge would send it to subject: binary mode, with the
// event ID as Nats-Msg-Id.
func cloudEventMsg[T any](t testing.TB, ev eventbus.Event[T], subject string) *nats.Msg {
	t.Helper()
	e, err := cloudevents.FromEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(subject)
	if msg.Data, err = e.WriteBinary(cloudevents.NATS, msg.Header.Set); err != nil {
		t.Fatal(err)
	}
	msg.Header.Set(nats.MsgIdHdr, ev.ID.String())
	return msg
}

// logRecorder is a slog.Handler that keeps every record, as its message and attributes.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}

// at returns the records logged at level, each as "message key=value ...".
func (r *logRecorder) at(level slog.Level) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var lines []string
	for _, rec := range r.records {
		if rec.Level != level {
			continue
		}
		var sb strings.Builder
		sb.WriteString(rec.Message)
		rec.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value); return true })
		lines = append(lines, sb.String())
	}
	return lines
}

// checkSettled fails t unless every delivery that st counts as received ended in exactly
// one outcome, as Stats documents. Call it once the bridge is idle.
func checkSettled(t testing.TB, st natsbridge.Stats) {
	t.Helper()
	if ended := st.Handled + st.AckFailures + st.Retried + st.HandedBack + st.DeadLettered + st.Dropped; ended != st.Received {
		t.Errorf("stats %+v: %d deliveries ended in an outcome; want all %d received", st, ended, st.Received)
	}
}

// busDeadLetters is a dead-letter hook of the local bus that keeps what it receives.
type busDeadLetters struct {
	mu      sync.Mutex
	letters []eventbus.DeadLetter
}

func (d *busDeadLetters) HandleDeadLetter(_ context.Context, dl eventbus.DeadLetter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.letters = append(d.letters, dl)
	return nil
}

func (d *busDeadLetters) all() []eventbus.DeadLetter {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]eventbus.DeadLetter(nil), d.letters...)
}
