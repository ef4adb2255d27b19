package watermillbus

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// deliveryValues is the parent of a delivered message's context: it has the values of the
// bus handler's context, then those of the Subscribe context, and no cancellation of its
// own (the consumer cancels the message's context; see consumer.deliver). The handler's
// values come first so that the bus tells a Publish made with the message's context, or
// one derived from it, from one made outside its handlers: see [PropagateContext].
type deliveryValues struct {
	handler context.Context // the bus handler's context
	sub     context.Context // the consumer's context
}

func (v deliveryValues) Deadline() (time.Time, bool) { return v.sub.Deadline() }
func (deliveryValues) Done() <-chan struct{}         { return nil }
func (deliveryValues) Err() error                    { return nil }

func (v deliveryValues) Value(key any) any {
	if x := v.handler.Value(key); x != nil {
		return x
	}
	return v.sub.Value(key)
}

// PropagateContext is a Watermill Router middleware (message.HandlerMiddleware) that gives
// each message a handler produces the context of the message it handles, unless the
// handler set one of its own. Add it to a Router whose handlers publish, through the
// Router, to topics of a [PubSub]:
//
//	router.AddMiddleware(watermillbus.PropagateContext)
//
// The Router publishes a handler's messages with the contexts they carry, which by default
// are new ones: then the bus cannot tell that they come from the handler of a message it
// delivered, and a cycle of handlers (X publishing to Y, Y to X) blocks for good once both
// subscriptions are full, each waiting for the other to make room. With the context of the
// message handled, the bus sees them as published from its handler and lets them in over a
// subscription's Buffer when waiting could close such a cycle (see eventbus.Publish). The
// produced messages' Publish also stops waiting when the handled message's context ends (it
// is acked, nacked, or its consumer left), as it would with any context the handler set.
// CQRS handlers need no middleware if they publish with the context they are given.
func PropagateContext(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		produced, err := h(msg)
		for _, p := range produced {
			if p.Context() == context.Background() { // none set: NewMessage leaves it nil
				p.SetContext(msg.Context())
			}
		}
		return produced, err
	}
}
