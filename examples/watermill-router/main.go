// Command watermill-router is a Watermill Router program moved from Watermill's gochannel
// to the event bus. Orders flow from "orders.placed" through a "reserve" handler, whose
// stock service fails once, to "orders.reserved" and a "notify" handler; an order that
// keeps failing ends in a poison topic after three attempts.
//
// On gochannel, the original (run it with -gochannel), the Router's Retry and PoisonQueue
// middleware retry and poison, the Retry middleware sleeping in the handler:
//
//	pubSub := gochannel.NewGoChannel(gochannel.Config{}, logger)
//	poisonQueue, err := middleware.PoisonQueue(pubSub, "orders.poisoned")
//	router.AddMiddleware(poisonQueue, middleware.Retry{MaxRetries: 2, InitialInterval: 10 * time.Millisecond}.Middleware)
//
// On the bus, the PubSub's retry policy and poison topic do it instead, and those two
// middleware go:
//
//	pubSub := watermillbus.New(bus, watermillbus.Config{
//		Retry:       &eventbus.RetryPolicy{MaxAttempts: 3, InitialBackoff: 10 * time.Millisecond},
//		PoisonTopic: "orders.poisoned",
//	})
//
// (Keep those two middleware and use watermillbus.Config{}, and the move is the one line
// that makes the Pub/Sub.) The handlers, the other middleware and the publishing code stay
// as they were. With the bus, each customer's
// orders are handled in the order they were placed (the key is the message's
// "partitionkey" metadata), and a failed message is redelivered, after its backoff, before
// the customer's later orders, while other customers' orders go on: the wait is off the
// handler.
//
//	go run ./examples/watermill-router [-gochannel]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/ae30fb47/eventbus"
	watermillbus "github.com/ae30fb47/eventbus/bridge/watermill"
)

// The orders the program places, per customer, in this order.
var orders = []struct{ customer, item string }{
	{"ada", "keyboard"},
	{"grace", "compiler"},
	{"ada", "mouse"},
	{"grace", "debugger"},
	{"ada", "monitor"},
	{"linus", "out-of-stock"}, // fails every time: poisoned after 3 attempts
}

var printMu sync.Mutex

func say(format string, args ...any) {
	printMu.Lock()
	defer printMu.Unlock()
	fmt.Printf(format+"\n", args...)
}

func main() {
	onGoChannel := flag.Bool("gochannel", false, "run the original program, on Watermill's gochannel")
	flag.Parse()
	if err := run(*onGoChannel); err != nil {
		fmt.Fprintln(os.Stderr, "watermill-router:", err)
		os.Exit(1)
	}
}

// pubSub is what a Pub/Sub is to this program.
type pubSub interface {
	message.Publisher
	message.Subscriber
}

func run(onGoChannel bool) error {
	logger := watermill.NopLogger{}
	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		return err
	}
	router.AddMiddleware(middleware.CorrelationID, middleware.Recoverer)

	var pubSub pubSub
	if onGoChannel {
		// The original: retries and the poison queue are Router middleware.
		goChannel := gochannel.NewGoChannel(gochannel.Config{}, logger)
		poisonQueue, err := middleware.PoisonQueue(goChannel, "orders.poisoned")
		if err != nil {
			return err
		}
		router.AddMiddleware(poisonQueue, middleware.Retry{MaxRetries: 2, InitialInterval: 10 * time.Millisecond}.Middleware)
		pubSub = goChannel
	} else {
		// On the bus: the PubSub retries and poisons, and those two middleware go.
		bus := eventbus.New()
		defer bus.Close(context.Background()) // second: the bus
		busPubSub := watermillbus.New(bus, watermillbus.Config{
			Retry:       &eventbus.RetryPolicy{MaxAttempts: 3, InitialBackoff: 10 * time.Millisecond},
			PoisonTopic: "orders.poisoned",
		})
		defer busPubSub.Close() // first: the PubSub
		pubSub = busPubSub
	}

	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		failedFor = map[string]bool{}
		notified  = map[string][]string{}
	)
	wg.Add(len(orders)) // each order ends notified or poisoned

	router.AddHandler("reserve", "orders.placed", pubSub, "orders.reserved", pubSub,
		func(msg *message.Message) ([]*message.Message, error) {
			item := string(msg.Payload)
			customer := msg.Metadata.Get(watermillbus.KeyMetadata)
			if item == "out-of-stock" {
				say("reserve  %-6s %-12s failed: no stock", customer, item)
				return nil, errors.New("no stock")
			}
			mu.Lock()
			first := !failedFor[item] && item == "mouse"
			failedFor[item] = true
			mu.Unlock()
			if first {
				say("reserve  %-6s %-12s failed: stock service timed out (retried)", customer, item)
				return nil, errors.New("stock service timed out")
			}
			say("reserve  %-6s %-12s ok", customer, item)
			reserved := message.NewMessage(watermill.NewUUID(), msg.Payload)
			reserved.Metadata.Set(watermillbus.KeyMetadata, customer)
			return message.Messages{reserved}, nil
		})

	router.AddConsumerHandler("notify", "orders.reserved", pubSub, func(msg *message.Message) error {
		customer := msg.Metadata.Get(watermillbus.KeyMetadata)
		mu.Lock()
		notified[customer] = append(notified[customer], string(msg.Payload))
		mu.Unlock()
		say("notify   %-6s %-12s (correlation id %s)", customer, msg.Payload, middleware.MessageCorrelationID(msg)[:8])
		wg.Done()
		return nil
	})

	router.AddConsumerHandler("poisoned", "orders.poisoned", pubSub, func(msg *message.Message) error {
		say("poisoned %-6s %-12s after 3 attempts: %s", msg.Metadata.Get(watermillbus.KeyMetadata), msg.Payload,
			msg.Metadata.Get(watermillbus.ReasonForPoisonedKey))
		wg.Done()
		return nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	routerDone := make(chan error, 1)
	go func() { routerDone <- router.Run(ctx) }()
	<-router.Running()

	for _, o := range orders {
		msg := message.NewMessage(watermill.NewUUID(), []byte(o.item))
		msg.Metadata.Set(watermillbus.KeyMetadata, o.customer) // the ordering key
		middleware.SetCorrelationID(watermill.NewUUID(), msg)
		if err := pubSub.Publish("orders.placed", msg); err != nil {
			return err
		}
	}

	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		return errors.New("orders not all handled within 10s")
	}
	if err := router.Close(); err != nil {
		return err
	}
	if err := <-routerDone; err != nil {
		return err
	}

	mu.Lock()
	defer mu.Unlock()
	for _, customer := range []string{"ada", "grace"} {
		say("%s's orders were notified in this order: %s", customer, strings.Join(notified[customer], ", "))
	}
	return nil
}
