// Command orders shows a chain of events keyed by order ID: "order.created" updates the
// inventory, whose handler emits its own "inventory.reserved" event to a notification
// service. The notifier is flaky and succeeds on a retry; the payment service rejects one
// order for good, which ends in the dead-letter hook. Close then drains everything.
//
//	go run ./examples/orders
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ae30fb47/eventbus"
)

// OrderCreated is the payload of the order.created topic.
type OrderCreated struct {
	OrderID string
	SKU     string
	Qty     int
}

// InventoryReserved is the payload of the inventory.reserved topic.
type InventoryReserved struct {
	OrderID string
	SKU     string
	Left    int
}

var (
	orderCreated      = eventbus.NewTopic[OrderCreated]("order.created")
	inventoryReserved = eventbus.NewTopic[InventoryReserved]("inventory.reserved")
)

var printMu sync.Mutex

func say(format string, args ...any) {
	printMu.Lock()
	defer printMu.Unlock()
	fmt.Printf(format+"\n", args...)
}

func main() {
	var deadLettered atomic.Int32
	bus := eventbus.New(
		eventbus.WithSource("shop"),
		eventbus.WithDeadLetter(eventbus.DeadLetterFunc(func(ctx context.Context, dl eventbus.DeadLetter) error {
			deadLettered.Add(1)
			say("[dead letter]  %s gave up on %s %s after %d attempt(s): %v",
				dl.Subscriber, dl.Event.Type, dl.Event.Key, dl.Attempts, dl.Err)
			return nil
		})),
	)
	retry := eventbus.WithRetry(eventbus.RetryPolicy{MaxAttempts: 3, InitialBackoff: 10 * time.Millisecond})

	// Inventory: reserves stock, then tells whoever listens, keyed by the same order ID and
	// published with the handler's ctx, so the chain works under backpressure and Close.
	var stockMu sync.Mutex
	stock := map[string]int{"book": 10, "mug": 5}
	must(eventbus.Subscribe(bus, orderCreated, "inventory", func(ctx context.Context, ev eventbus.Event[OrderCreated]) error {
		stockMu.Lock()
		stock[ev.Payload.SKU] -= ev.Payload.Qty
		left := stock[ev.Payload.SKU]
		stockMu.Unlock()
		say("[inventory]    %s: reserved %d x %s, %d left", ev.Key, ev.Payload.Qty, ev.Payload.SKU, left)
		return eventbus.Publish(ctx, bus, inventoryReserved,
			InventoryReserved{OrderID: ev.Payload.OrderID, SKU: ev.Payload.SKU, Left: left},
			eventbus.WithKey(ev.Key))
	}, retry))

	// Payment: rejects order o-1003 for good; retrying would not help.
	must(eventbus.Subscribe(bus, orderCreated, "payment", func(ctx context.Context, ev eventbus.Event[OrderCreated]) error {
		if ev.Payload.OrderID == "o-1003" {
			return eventbus.Permanent(errors.New("card declined"))
		}
		say("[payment]      %s: charged", ev.Key)
		return nil
	}, retry))

	// Notifications: the mail gateway times out on every first attempt; the retry works.
	var tries sync.Map
	must(eventbus.Subscribe(bus, inventoryReserved, "notifications", func(ctx context.Context, ev eventbus.Event[InventoryReserved]) error {
		n, _ := tries.LoadOrStore(ev.ID, new(atomic.Int32))
		if n.(*atomic.Int32).Add(1) == 1 {
			say("[notification] %s: mail gateway timed out, will retry", ev.Key)
			return errors.New("mail gateway timeout")
		}
		say("[notification] %s: customer told %s is on its way", ev.Key, ev.Payload.SKU)
		return nil
	}, retry))

	ctx := context.Background()
	orders := []OrderCreated{
		{"o-1001", "book", 2},
		{"o-1002", "mug", 1},
		{"o-1003", "book", 1},
		{"o-1004", "mug", 3},
	}
	for _, o := range orders {
		if err := eventbus.Publish(ctx, bus, orderCreated, o, eventbus.WithKey(o.OrderID)); err != nil {
			fmt.Fprintln(os.Stderr, "publish:", err)
			os.Exit(1)
		}
	}

	// Close waits for the whole chain, retries included, then stops every goroutine.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := bus.Close(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		os.Exit(1)
	}
	stockMu.Lock()
	defer stockMu.Unlock()
	fmt.Printf("\nclosed: %d orders, %d dead letter(s), stock left: book %d, mug %d\n",
		len(orders), deadLettered.Load(), stock["book"], stock["mug"])
}

func must(_ *eventbus.Subscription, err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "subscribe:", err)
		os.Exit(1)
	}
}
