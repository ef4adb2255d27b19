package eventbus

import (
	"fmt"
	"time"

	"github.com/ae30fb47/eventbus/internal/idset"
)

// WithDeduplication makes the subscription skip an event whose ID it has already seen
// within window: the at-least-once bridges redeliver events, and a handler that is not
// idempotent must see each only once.
//
// The first delivery of an ID is handled as usual, with its retries. A repeat whose turn
// comes within window after the first began, or while the first waits for or runs a
// retry, is not passed to the handler: it ends at once as handled, and a [WithWait]
// publisher sees nil from this subscriber. (A first attempt that runs longer than window
// without failing does not protect its ID beyond window: choose a window longer than an
// attempt may take.) If the first delivery is dead-lettered instead, its ID is
// forgotten: the event was never handled, so a repeat whose turn comes later (a broker
// redelivering it) is handled again.
// At most maxIDs IDs are remembered, so memory stays bounded whatever the rate (about 40
// bytes per ID): when more arrive within window, the oldest are forgotten early, but never
// any of the last maxIDs/2. A window over 50 years counts as 50 years (math.MaxInt64 for
// "for ever" is fine). [Subscribe] returns an error if window <= 0, or if maxIDs is below 1
// or above 1<<24.
func WithDeduplication(window time.Duration, maxIDs int) SubscribeOption {
	return subscribeOption(func(c *subscribeConfig) {
		switch {
		case window <= 0:
			c.fail(fmt.Errorf("eventbus: WithDeduplication: window must be > 0, got %v", window))
		case maxIDs < 1 || maxIDs > idset.MaxIDs:
			c.fail(fmt.Errorf("eventbus: WithDeduplication: maxIDs must be within [1, %d], got %d", idset.MaxIDs, maxIDs))
		}
		c.dedupWindow, c.dedupMax = window, maxIDs
	})
}
