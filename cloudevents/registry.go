package cloudevents

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/ae30fb47/eventbus"
)

// Registry maps CloudEvents types (topic names) to typed topics, so that an incoming
// event is decoded into its topic's payload type and published on a bus. Make one with
// [NewRegistry] and add topics with [Register]. A Registry is safe for concurrent use.
type Registry struct {
	mu     sync.RWMutex
	topics map[string]decoder
}

// decoder decodes the data of an event for one topic and returns the publish of it.
type decoder func(e Event) (func(ctx context.Context, b *eventbus.Bus, opts []eventbus.PublishOption) error, error)

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{topics: make(map[string]decoder)}
}

// Register adds topic t to r: events whose type is t's name are decoded into a T (see
// [ToEvent]) and published to t. It returns an error if r already has a topic of that
// name.
func Register[T any](r *Registry, t eventbus.Topic[T]) error {
	if t.Name() == "" {
		return fmt.Errorf("cloudevents: Register: zero Topic: make topics with eventbus.NewTopic")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.topics[t.Name()]; dup {
		return fmt.Errorf("cloudevents: Register: topic %q is already registered", t.Name())
	}
	r.topics[t.Name()] = func(e Event) (func(context.Context, *eventbus.Bus, []eventbus.PublishOption) error, error) {
		ev, err := ToEvent[T](e)
		if err != nil {
			return nil, err
		}
		hasTime := e.HasTime()
		return func(ctx context.Context, b *eventbus.Bus, opts []eventbus.PublishOption) error {
			all := make([]eventbus.PublishOption, 0, 5+len(opts))
			all = append(all,
				eventbus.WithID(ev.ID), eventbus.WithKey(ev.Key),
				eventbus.WithMetadata(ev.Metadata), eventbus.WithEventSource(ev.Source))
			if hasTime {
				all = append(all, eventbus.WithTime(ev.Time))
			}
			return eventbus.Publish(ctx, b, t, ev.Payload, append(all, opts...)...)
		}, nil
	}
	return nil
}

// Types returns the registered types, sorted.
func (r *Registry) Types() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	types := make([]string, 0, len(r.topics))
	for name := range r.topics {
		types = append(types, name)
	}
	slices.Sort(types)
	return types
}

// Decode decodes e for the topic registered for its type. It returns an [*Error] of kind
// [ErrUnknownType] if there is none, and the errors of [ToEvent] if e does not fit it.
func (r *Registry) Decode(e Event) (Decoded, error) {
	r.mu.RLock()
	dec := r.topics[e.Type]
	r.mu.RUnlock()
	if dec == nil {
		return Decoded{}, &Error{ErrUnknownType, attrType, fmt.Sprintf("no topic registered for %q", e.Type)}
	}
	publish, err := dec(e)
	if err != nil {
		return Decoded{}, err
	}
	return Decoded{publish: publish}, nil
}

// Decoded is an event decoded for its typed topic by [Registry.Decode], ready to publish.
type Decoded struct {
	publish func(ctx context.Context, b *eventbus.Bus, opts []eventbus.PublishOption) error
}

// Publish publishes the event to its topic on bus b with its envelope intact: its ID, Time
// (the time of publishing if it had no time attribute; 0001-01-01T00:00:00Z stays), Key, Metadata and Source, as [eventbus.WithID],
// [eventbus.WithTime], [eventbus.WithKey], [eventbus.WithMetadata] and
// [eventbus.WithEventSource] set them; opts come after those (add [eventbus.WithWait] to
// wait for the subscribers). It returns what [eventbus.Publish] returns; on a zero Decoded
// it returns an error.
func (d Decoded) Publish(ctx context.Context, b *eventbus.Bus, opts ...eventbus.PublishOption) error {
	if d.publish == nil {
		return fmt.Errorf("cloudevents: Publish of a zero Decoded")
	}
	return d.publish(ctx, b, opts)
}
