// Command signup shows fan-out: one "user signed up" event reaches two independent
// subscribers, a welcome mailer and an analytics recorder, with a request ID carried in the
// event's Metadata.
//
//	go run ./examples/signup
package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/ae30fb47/eventbus"
)

// UserSignedUp is the payload of the user.signed_up topic.
type UserSignedUp struct {
	UserID string
	Email  string
	Plan   string
}

var userSignedUp = eventbus.NewTopic[UserSignedUp]("user.signed_up")

func main() {
	bus := eventbus.New(eventbus.WithSource("accounts"))

	// The mailer and the analytics recorder know nothing of each other or of the signup
	// handler that publishes: each just subscribes to the topic.
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(format+"\n", args...)
	}
	must(eventbus.Subscribe(bus, userSignedUp, "welcome-email", func(ctx context.Context, ev eventbus.Event[UserSignedUp]) error {
		say("[mailer]    welcome email to %s (request %s)", ev.Payload.Email, ev.Metadata["request_id"])
		return nil
	}))
	must(eventbus.Subscribe(bus, userSignedUp, "analytics", func(ctx context.Context, ev eventbus.Event[UserSignedUp]) error {
		say("[analytics] %s signed up on the %s plan (event from %s)", ev.Payload.UserID, ev.Payload.Plan, ev.Source)
		return nil
	}))

	ctx := context.Background()
	signups := []UserSignedUp{
		{"u-1", "ada@example.com", "free"},
		{"u-2", "grace@example.com", "team"},
		{"u-3", "linus@example.com", "free"},
	}
	for i, u := range signups {
		// WithWait returns once both subscribers handled the event: the signup request
		// can answer knowing the email went out.
		err := eventbus.Publish(ctx, bus, userSignedUp, u,
			eventbus.WithKey(u.UserID),
			eventbus.WithMetadata(eventbus.Metadata{"request_id": fmt.Sprintf("req-%d", i+1)}),
			eventbus.WithWait())
		if err != nil {
			fmt.Fprintln(os.Stderr, "publish:", err)
			os.Exit(1)
		}
		say("[signup]    %s done", u.UserID)
	}

	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := bus.Close(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		os.Exit(1)
	}
	fmt.Println("bus closed: every event was handled by both subscribers")
}

func must(_ *eventbus.Subscription, err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "subscribe:", err)
		os.Exit(1)
	}
}
