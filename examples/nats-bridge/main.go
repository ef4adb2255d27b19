// Command nats-bridge runs two buses in one program, a shop and a warehouse, connected
// through NATS JetStream by the eventbus NATS bridge: orders placed on the shop's bus
// arrive, typed and with their envelope, on the warehouse's bus. A flaky handler is
// retried by the broker, and an order the billing service rejects for good ends on the
// dead-letter subject.
//
// Without flags it starts a NATS server inside the program (JetStream on, storage in a
// temporary directory, 127.0.0.1, a random port). Given -url it uses that server instead,
// with a stream of its own that it deletes at the end.
//
//	go run ./examples/nats-bridge
//	go run ./examples/nats-bridge -url nats://127.0.0.1:4222
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ae30fb47/eventbus"
	natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// OrderPlaced is the payload of the order.placed topic.
type OrderPlaced struct {
	OrderID  string  `json:"order_id"`
	Customer string  `json:"customer"`
	Total    float64 `json:"total"`
}

var orderPlaced = eventbus.NewTopic[OrderPlaced]("order.placed")

var printMu sync.Mutex

func say(format string, args ...any) {
	printMu.Lock()
	defer printMu.Unlock()
	fmt.Printf(format+"\n", args...)
}

func main() {
	url := flag.String("url", "", "NATS server URL; empty starts an embedded server")
	flag.Parse()
	if err := run(*url); err != nil {
		fmt.Fprintln(os.Stderr, "nats-bridge:", err)
		os.Exit(1)
	}
}

func run(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	cfg := natsbridge.Config{
		Retry:  eventbus.RetryPolicy{MaxAttempts: 3, InitialBackoff: 200 * time.Millisecond},
		Logger: slog.New(slog.DiscardHandler), // the dead-letter watcher below reports instead
	}
	external := url != ""
	if !external {
		srv, dir, err := startServer()
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
		url = srv.ClientURL()
		say("started an embedded NATS server at %s", url)
	} else {
		// A stream and subjects of this run's own, so earlier runs do not interfere.
		run := strconv.FormatInt(time.Now().UnixNano(), 36)
		cfg.Stream, cfg.SubjectPrefix, cfg.Storage = "EXAMPLE_"+run, "example"+run, jetstream.MemoryStorage
		say("using the NATS server at %s, stream %s", url, cfg.Stream)
	}
	cfg.URL = url

	shop := eventbus.New(eventbus.WithSource("/shop"))
	warehouse := eventbus.New(eventbus.WithSource("/warehouse"))
	defer warehouse.Close(context.Background())
	defer shop.Close(context.Background())

	// The warehouse subscribes before its bridge connects, so that no event the bridge
	// receives finds its topic without a subscriber (it would be redelivered later).
	// Picking fails once on o-3 (the broker redelivers it); billing rejects
	// o-5 for good (it goes to the dead-letter subject). De-duplication keeps each handler
	// from seeing an event twice when the broker redelivers it for the other's sake.
	var picked atomic.Int32
	var failedOnce atomic.Bool
	dedup := eventbus.WithDeduplication(time.Minute, 10_000)
	quiet := eventbus.WithDeadLetter(eventbus.DiscardDeadLetters) // the broker's dead letters are the final word
	must(eventbus.Subscribe(warehouse, orderPlaced, "picking", func(ctx context.Context, ev eventbus.Event[OrderPlaced]) error {
		if ev.Payload.OrderID == "o-3" && failedOnce.CompareAndSwap(false, true) {
			say("[warehouse/picking] %s: shelf scanner offline, will be retried", ev.Payload.OrderID)
			return errors.New("shelf scanner offline")
		}
		picked.Add(1)
		say("[warehouse/picking] %s for %s, key %s, from %s, sent at %s", ev.Payload.OrderID, ev.Payload.Customer, ev.Key, ev.Source, ev.Time.Format(time.StampMilli))
		return nil
	}, dedup, quiet, eventbus.WithRetry(eventbus.RetryPolicy{MaxAttempts: 1})))
	must(eventbus.Subscribe(warehouse, orderPlaced, "billing", func(ctx context.Context, ev eventbus.Event[OrderPlaced]) error {
		if ev.Payload.OrderID == "o-5" {
			return eventbus.Permanent(errors.New("card declined"))
		}
		return nil
	}, dedup, quiet))

	shopBridge, err := natsbridge.Connect(ctx, shop, cfg, natsbridge.Forward(orderPlaced))
	if err != nil {
		return err
	}
	defer shopBridge.Close(context.Background())
	warehouseBridge, err := natsbridge.Connect(ctx, warehouse, cfg, natsbridge.Receive(orderPlaced))
	if err != nil {
		return err
	}
	defer warehouseBridge.Close(context.Background())

	deadLetters, stopWatching, err := watchDeadLetters(ctx, url, cfg)
	if err != nil {
		return err
	}
	defer stopWatching()

	// The shop places six orders, keyed by customer so each customer's orders stay in order.
	customers := []string{"ada", "grace", "alan"}
	for i := 1; i <= 6; i++ {
		o := OrderPlaced{OrderID: fmt.Sprintf("o-%d", i), Customer: customers[i%3], Total: float64(10 * i)}
		if err := eventbus.Publish(ctx, shop, orderPlaced, o, eventbus.WithKey(o.Customer),
			eventbus.WithMetadata(eventbus.Metadata{"channel": "web"})); err != nil {
			return err
		}
		say("[shop] placed %s for %s", o.OrderID, o.Customer)
	}

	for picked.Load() < 6 || deadLetters.Load() < 1 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("picked %d of 6 orders and saw %d dead letters before the deadline", picked.Load(), deadLetters.Load())
		case <-time.After(20 * time.Millisecond):
		}
	}
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelClose()
	if err := errors.Join(shopBridge.Close(closeCtx), warehouseBridge.Close(closeCtx)); err != nil {
		return err
	}
	s, w := shopBridge.Stats(), warehouseBridge.Stats()
	say("shop bridge: forwarded %d", s.Forwarded)
	say("warehouse bridge: received %d deliveries (%d redelivered), handled %d, sent back for retry %d, dead-lettered %d",
		w.Received, w.Redelivered, w.Handled, w.Retried, w.DeadLettered)
	if external {
		return deleteStream(url, cfg.Stream)
	}
	return nil
}

// startServer starts a NATS server with JetStream inside the program.
func startServer() (*server.Server, string, error) {
	dir, err := os.MkdirTemp("", "nats-bridge-example-")
	if err != nil {
		return nil, "", err
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		os.RemoveAll(dir)
		return nil, "", errors.New("the embedded NATS server did not start")
	}
	return srv, dir, nil
}

// watchDeadLetters prints every dead letter of the stream, as any JetStream client can
// read them, and counts them.
func watchDeadLetters(ctx context.Context, url string, cfg natsbridge.Config) (*atomic.Int32, func(), error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return nil, nil, err
	}
	js, _ := jetstream.New(nc)
	stream, prefix := cfg.Stream, cfg.SubjectPrefix
	if stream == "" {
		stream, prefix = "EVENTBUS", "eventbus"
	}
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{prefix + ".deadletter.>"}})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	var n atomic.Int32
	cc, err := c.Consume(func(m jetstream.Msg) {
		h := m.Headers()
		say("[dead letter] %s on %s: %s after %s attempt(s): %s", h.Get("ce-id")[:8], m.Subject(),
			h.Get(natsbridge.HeaderReason), h.Get(natsbridge.HeaderAttempts), h.Get(natsbridge.HeaderError))
		n.Add(1)
	})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return &n, func() { cc.Stop(); <-cc.Closed(); nc.Close() }, nil
}

// deleteStream removes the stream this run made on an external server.
func deleteStream(url, stream string) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return js.DeleteStream(ctx, stream)
}

func must(_ *eventbus.Subscription, err error) {
	if err != nil {
		panic(err)
	}
}
