package watermillbus

import (
	"errors"
	"fmt"

	"github.com/ae30fb47/eventbus"
)

// ErrClosed is returned by Publish and Subscribe once their [PubSub], [Publisher] or
// [Subscriber] is closed. It wraps [eventbus.ErrClosed], so that errors.Is(err,
// eventbus.ErrClosed) holds for a closed adapter as for a closed bus.
var ErrClosed = fmt.Errorf("watermillbus: closed: %w", eventbus.ErrClosed)

// The errors a subscription's handler gives the bus for a failed attempt, so that a
// dead-letter hook can tell them apart with errors.Is.
var (
	// ErrNacked: the consumer nacked the message.
	ErrNacked = errors.New("watermillbus: message nacked")
	// ErrNotAcked: the consumer left (its Subscribe context ended or its Subscriber
	// closed) with the message in flight, and did not ack or nack it within
	// [Config.CloseTimeout].
	ErrNotAcked = errors.New("watermillbus: message not acked before its consumer left")
)
