package eventbus

import (
	"encoding/binary"
	"maps"
	"math/rand/v2"
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

// newID returns a UUIDv7 for the instant now, per RFC 9562: 48 bits of Unix milliseconds,
// then 12 bits of sub-millisecond fraction (the "increased clock precision" method, so IDs
// made about 250 ns apart sort in time order), then 62 random bits from the runtime's
// per-thread generator. It takes no lock and makes no system call.
func newID(now time.Time) uuid.UUID {
	ns := now.UnixNano()
	ms := uint64(ns / 1e6)
	frac := uint64(ns%1e6) * 4096 / 1e6 // 0..4095
	var id uuid.UUID
	binary.BigEndian.PutUint64(id[0:8], ms<<16|0x7000|frac)
	binary.BigEndian.PutUint64(id[8:16], rand.Uint64()&(1<<62-1)|1<<63)
	return id
}
