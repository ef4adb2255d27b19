package eventbus

import (
	"maps"
	"time"

	"github.com/google/uuid"
)

// Event is the envelope every handler receives: the payload of one [Publish] with the
// attributes a consumer (or a broker bridge) needs to identify, order and trace it.
//
// The bus fills ID, Type, Source and Time; a publisher may supply ID, Time, Key and Metadata
// with [WithID], [WithTime], [WithKey] and [WithMetadata]. Every subscriber of the topic
// receives an equal copy of the envelope; the Metadata map is shared among them and must be
// treated as read-only by handlers.
type Event[T any] struct {
	ID       uuid.UUID // a time-ordered UUIDv7 unless the publisher supplied one
	Type     string    // the topic name
	Source   string    // the publishing bus's source (see WithSource)
	Time     time.Time // when Publish was called (to 100µs), unless the publisher supplied one
	Key      string    // the ordering key; empty means no ordering promise
	Payload  T
	Metadata Metadata // nil unless the publisher supplied some; read-only for handlers
}

// Metadata carries string attributes of an event: trace context, correlation IDs, the
// extension attributes of a CloudEvent. [WithMetadata] copies it at publish time, so a
// publisher may reuse its map afterwards.
type Metadata map[string]string

// clone returns a copy of md, or nil for an empty md, so an event without metadata costs no
// allocation.
func (md Metadata) clone() Metadata {
	if len(md) == 0 {
		return nil
	}
	return maps.Clone(md)
}
