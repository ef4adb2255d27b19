package eventbus

import (
	"errors"
	"fmt"
)

// ErrClosed is returned by [Publish] and [Subscribe] once [Bus.Close] has begun, and by
// [Publish] for a subscription that closed while the publisher waited for room. It is also
// wrapped into the error of every event that is dead-lettered because the bus or the
// subscription stopped before the event could be handled: test for it with errors.Is.
var ErrClosed = errors.New("eventbus: closed")

// ErrNoSubscribers is returned by [Publish], given [WithSubscriberRequired], for an event
// that no subscriber accepted: the topic had none, or every one was removed meanwhile.
var ErrNoSubscribers = errors.New("eventbus: no subscribers")

// errZeroTopic is returned by Publish and Subscribe for a Topic that was not made by NewTopic.
var errZeroTopic = errors.New("eventbus: zero Topic: make topics with NewTopic")

// errNilBus is the error of a function given a nil *Bus.
var errNilBus = errors.New("eventbus: nil Bus: make one with New")

// DeliveryError is the final error of one event for one subscriber: the error of its last
// attempt, or the reason it was dead-lettered without one. [Publish] with [WithWait] returns
// one per subscriber that did not handle the event, joined with errors.Join.
type DeliveryError struct {
	Topic      string // the event's topic
	Subscriber string // the subscriber's name
	Attempts   int    // handler attempts made, the first included; 0 if none ran
	Err        error  // the final error
	// Stopped reports that the subscription stopped (its Close, or the bus's) before the
	// event had an outcome: Err then wraps ErrClosed, and the last handler error, if any.
	// A handler's own error that wraps ErrClosed (a relay to a closed bus) leaves it false:
	// an adapter that hands events back to a broker when the subscriber stops tells the
	// two apart by it.
	Stopped bool
}

// Error names the topic, the subscriber and the attempts, then gives the final error.
func (e *DeliveryError) Error() string {
	return fmt.Sprintf("eventbus: %s/%s after %d attempt(s): %v", e.Topic, e.Subscriber, e.Attempts, e.Err)
}

// Unwrap returns the final error.
func (e *DeliveryError) Unwrap() error { return e.Err }

// PanicError is the error of a handler attempt that panicked. The bus recovers the panic, so
// the worker goroutine survives; the attempt counts as failed and may be retried.
type PanicError struct {
	Value any    // the value passed to panic
	Stack []byte // the stack of the panicking goroutine, as runtime/debug.Stack formats it
}

// Error gives the panic value; the stack is in Stack.
func (e *PanicError) Error() string { return fmt.Sprintf("eventbus: handler panicked: %v", e.Value) }

// Unwrap returns the panic value if it is an error, so errors.Is sees through a panic(err).
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// errGone is returned by a subscription removed while a publisher was reaching it; the
// publisher skips that subscriber.
var errGone = errors.New("eventbus: subscription removed")

// errNilMiddleware is returned by Subscribe for a nil Middleware.
var errNilMiddleware = errors.New("eventbus: WithMiddleware: middleware must not be nil")
