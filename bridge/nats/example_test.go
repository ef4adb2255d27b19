package natsbridge_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ae30fb47/eventbus"
	natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
	"github.com/nats-io/nats-server/v2/server"
)

// Two buses connected through JetStream: the shop forwards order.created, the warehouse
// receives it, typed, with its key and metadata.
func Example() {
	// A NATS server with JetStream, embedded for the example; use your own URL instead.
	dir, _ := os.MkdirTemp("", "natsbridge-example-")
	defer os.RemoveAll(dir)
	srv, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	srv.Start()
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	srv.ReadyForConnections(10 * time.Second)

	ctx := context.Background()
	shop := eventbus.New(eventbus.WithSource("/shop"))
	warehouse := eventbus.New(eventbus.WithSource("/warehouse"))
	defer warehouse.Close(ctx)
	defer shop.Close(ctx)

	got := make(chan string)
	eventbus.Subscribe(warehouse, orderCreated, "picking", func(_ context.Context, ev eventbus.Event[order]) error {
		got <- fmt.Sprintf("%s from %s: %+v, key %s, tenant %s", ev.Type, ev.Source, ev.Payload, ev.Key, ev.Metadata["tenant"])
		return nil
	}, eventbus.WithDeduplication(time.Minute, 10_000))

	cfg := natsbridge.Config{URL: srv.ClientURL()}
	out, err := natsbridge.Connect(ctx, shop, cfg, natsbridge.Forward(orderCreated))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer out.Close(ctx)
	in, err := natsbridge.Connect(ctx, warehouse, cfg, natsbridge.Receive(orderCreated))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer in.Close(ctx)

	eventbus.Publish(ctx, shop, orderCreated, order{ID: "o-1", Total: 9.5},
		eventbus.WithKey("o-1"), eventbus.WithMetadata(eventbus.Metadata{"tenant": "acme"}))
	fmt.Println(<-got)
	// Output:
	// order.created from /shop: {ID:o-1 Total:9.5}, key o-1, tenant acme
}

// Graceful shutdown of a service with a bus and bridges, on SIGTERM (what Kubernetes and
// systemd send) or Ctrl-C, within a deadline: the bridges first, then the bus. A
// forwarding bridge's Close forwards what the bus accepted; a receiving bridge's stops
// fetching and settles what its subscribers are handling, so the bus must still run while
// they close. Here the program sends itself the SIGTERM an orchestrator would.
func Example_gracefulShutdown() {
	dir, _ := os.MkdirTemp("", "natsbridge-example-")
	defer os.RemoveAll(dir)
	srv, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	srv.Start()
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	srv.ReadyForConnections(10 * time.Second)

	// In main:
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bus := eventbus.New()
	if _, err := eventbus.Subscribe(bus, orderCreated, "picking", func(context.Context, eventbus.Event[order]) error { return nil }); err != nil {
		fmt.Println(err)
		return
	}
	cfg := natsbridge.Config{URL: srv.ClientURL()}
	bridge, err := natsbridge.Connect(ctx, bus, cfg, natsbridge.Receive(orderCreated))
	if err != nil {
		fmt.Println(err)
		return
	}

	me, _ := os.FindProcess(os.Getpid())
	me.Signal(syscall.SIGTERM) // the orchestrator stops the pod
	<-ctx.Done()               // the service runs until then

	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second) // the grace period, less a margin
	defer cancel()
	fmt.Println("bridge closed:", bridge.Close(shutdown)) // first the bridges,
	fmt.Println("bus closed:", bus.Close(shutdown))       // then the bus
	// Output:
	// bridge closed: <nil>
	// bus closed: <nil>
}
