package bridgetest

import (
	"context"

	"github.com/ae30fb47/eventbus"
)

// The kit's topics: a Harness's forwarding bridge forwards all three, its receiving
// bridge receives all three.
var (
	Steps = eventbus.NewTopic[Step]("bridgetest.step")   // a struct payload, published with keys
	Blobs = eventbus.NewTopic[[]byte]("bridgetest.blob") // bytes, carried as they are
	Notes = eventbus.NewTopic[string]("bridgetest.note") // a JSON string
)

// Step is the payload of Steps: the Seq-th event of Key.
type Step struct {
	Key string `json:"key"`
	Seq int    `json:"seq"`
}

// Bridge is a connected bridge, as the kit uses it.
type Bridge interface {
	// Close stops the bridge within ctx, as every bridge's Close does.
	Close(ctx context.Context) error
}

// Harness tells the kit how to use a bridge and its broker for one subtest. Forward and
// Receive are required; a subtest that needs a missing optional part skips.
type Harness struct {
	// Forward connects a bridge that forwards Steps, Blobs and Notes from b to the broker.
	Forward func(ctx context.Context, b *eventbus.Bus) (Bridge, error)
	// Receive connects a bridge that receives Steps, Blobs and Notes from the broker and
	// publishes them on b. Bridges of one group share the events: each goes to one of them.
	Receive func(ctx context.Context, b *eventbus.Bus, group string) (Bridge, error)

	// RestartBroker stops the broker and starts it again with what it stored, while the
	// bridges stay connected (they reconnect on their own).
	RestartBroker func() error
	// Crash ends br, a bridge that Receive returned, as a crash of its process would: its
	// connection cut, nothing it holds settled or handed back. The kit never uses br
	// again; the harness cleans it up.
	Crash func(br Bridge)
	// PublishRaw stores a message on the broker as a producer other than the bridge would,
	// with body and headers as given, where the receiving bridges of every group read the
	// events of topic with key.
	PublishRaw func(ctx context.Context, topic, key string, headers map[string]string, body []byte) error
	// DeadLetters returns the dead letters the bridges have published on the broker so
	// far, oldest first.
	DeadLetters func(ctx context.Context) ([]DeadLetter, error)
}

// DeadLetter is a dead letter a bridge published on the broker, as the harness reads it.
type DeadLetter struct {
	// Reason is one of ReasonInvalid, ReasonFailed or ReasonPermanent, mapped from the
	// bridge's own name for it.
	Reason string
	// ID is the event's ID if the dead letter carries it (a decodable event), else "".
	ID string
}

// Reasons of a DeadLetter.
const (
	ReasonInvalid   = "invalid"   // not an event of a received topic; no handler saw it
	ReasonFailed    = "failed"    // a handler failed on every attempt
	ReasonPermanent = "permanent" // a handler returned an eventbus.Permanent error
)
