package watermillbus_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ae30fb47/eventbus"
	watermillbus "github.com/ae30fb47/eventbus/bridge/watermill"
)

// A nacked message comes back before the messages published after it.
func Example() {
	bus := eventbus.New()
	defer bus.Close(context.Background())
	pubSub := watermillbus.New(bus, watermillbus.Config{})
	defer pubSub.Close()

	messages, err := pubSub.Subscribe(context.Background(), "greetings")
	if err != nil {
		panic(err)
	}
	err = pubSub.Publish("greetings",
		message.NewMessage(watermill.NewUUID(), []byte("hello")),
		message.NewMessage(watermill.NewUUID(), []byte("world")))
	if err != nil {
		panic(err)
	}

	msg := <-messages
	fmt.Println(string(msg.Payload), "(nacked)")
	msg.Nack()
	for range 2 {
		msg := <-messages
		fmt.Println(string(msg.Payload))
		msg.Ack()
	}
	// Output:
	// hello (nacked)
	// hello
	// world
}

// Consumer groups: the consumers of one group share its messages, and each group receives
// every message. Retain keeps what is published before anyone subscribes.
func ExamplePubSub_NewSubscriber() {
	bus := eventbus.New()
	defer bus.Close(context.Background())
	pubSub := watermillbus.New(bus, watermillbus.Config{Retain: true})
	defer pubSub.Close()

	// Published before any subscription: retained for the first one, billing.
	if err := pubSub.Publish("orders", message.NewMessage(watermill.NewUUID(), []byte("order 1"))); err != nil {
		panic(err)
	}
	billing, err := pubSub.NewSubscriber("billing").Subscribe(context.Background(), "orders")
	if err != nil {
		panic(err)
	}
	shipping, err := pubSub.NewSubscriber("shipping").Subscribe(context.Background(), "orders")
	if err != nil {
		panic(err)
	}
	if err := pubSub.Publish("orders", message.NewMessage(watermill.NewUUID(), []byte("order 2"))); err != nil {
		panic(err)
	}

	for range 2 {
		msg := <-billing
		fmt.Println("billing:", string(msg.Payload))
		msg.Ack()
	}
	msg := <-shipping
	fmt.Println("shipping:", string(msg.Payload))
	msg.Ack()
	// Output:
	// billing: order 1
	// billing: order 2
	// shipping: order 2
}

// A retry policy of one's own and a poison topic take the place of Watermill's Retry and
// PoisonQueue middleware: the bus redelivers with backoff, and gives up after the attempts.
func ExampleConfig_poisonTopic() {
	bus := eventbus.New()
	defer bus.Close(context.Background())
	pubSub := watermillbus.New(bus, watermillbus.Config{
		Retry:       &eventbus.RetryPolicy{MaxAttempts: 3, InitialBackoff: 1, Jitter: -1},
		PoisonTopic: "poison",
	})
	defer pubSub.Close()

	poison, err := pubSub.Subscribe(context.Background(), "poison")
	if err != nil {
		panic(err)
	}
	work, err := pubSub.Subscribe(context.Background(), "work")
	if err != nil {
		panic(err)
	}
	if err := pubSub.Publish("work", message.NewMessage(watermill.NewUUID(), []byte("bad job"))); err != nil {
		panic(err)
	}
	for attempt := 1; attempt <= 3; attempt++ {
		msg := <-work
		fmt.Printf("attempt %d at %s: nack\n", attempt, msg.Payload)
		msg.Nack()
	}
	msg := <-poison
	fmt.Printf("poisoned %s from %s: %s\n", msg.Payload,
		msg.Metadata.Get(watermillbus.PoisonedTopicKey), msg.Metadata.Get(watermillbus.ReasonForPoisonedKey))
	msg.Ack()
	// Output:
	// attempt 1 at bad job: nack
	// attempt 2 at bad job: nack
	// attempt 3 at bad job: nack
	// poisoned bad job from work: watermillbus: message nacked
}

// A Router handler that publishes to its own topic, two messages for each it handles,
// through a subscription with room for one: with PropagateContext the bus sees the
// handler's messages as its handler's and lets them in, rather than have the handler wait
// for room that only it could make.
func ExamplePropagateContext() {
	bus := eventbus.New()
	defer bus.Close(context.Background())
	pubSub := watermillbus.New(bus, watermillbus.Config{Buffer: 1})
	defer pubSub.Close()

	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		panic(err)
	}
	router.AddMiddleware(watermillbus.PropagateContext)
	var handled sync.WaitGroup
	handled.Add(1 + 2 + 4 + 8)
	router.AddHandler("split", "work", pubSub, "work", pubSub, func(msg *message.Message) ([]*message.Message, error) {
		defer handled.Done()
		n, _ := strconv.Atoi(string(msg.Payload))
		if n == 0 {
			return nil, nil
		}
		half := []byte(strconv.Itoa(n - 1))
		return message.Messages{
			message.NewMessage(watermill.NewUUID(), half),
			message.NewMessage(watermill.NewUUID(), half),
		}, nil
	})
	go router.Run(context.Background())
	<-router.Running()

	if err := pubSub.Publish("work", message.NewMessage(watermill.NewUUID(), []byte("3"))); err != nil {
		panic(err)
	}
	handled.Wait()
	fmt.Println("handled 15 messages")
	if err := router.Close(); err != nil {
		panic(err)
	}
	// Output:
	// handled 15 messages
}
