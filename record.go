package eventbus

import (
	"encoding/binary"
	"time"
)

// record is an event as the intake carries it: only what varies per event. The topic and
// source are the subscription's, and the time and the ID's random bits stand for the whole
// Time and ID, so that a record of a small payload fills one cache line and the hand-off
// from a publisher's core to a worker's moves as few lines as it can.
//
// Events whose envelope a record cannot hold (a supplied ID, time or source) or that carry a
// waiter are committed whole, into the subscription's slots; see outgoing.
type record[T any] struct {
	nanos   int64  // the publish time, Unix nanoseconds
	rnd     uint64 // the random bits of the ID
	key     string
	md      Metadata
	payload T
}

// event fills *ev with the envelope that r stands for, on topic with source.
func (r *record[T]) event(ev *Event[T], topic, source string) {
	ev.ID = idFrom(r.nanos, r.rnd)
	ev.Type = topic
	ev.Source = source
	ev.Time = time.Unix(0, r.nanos)
	ev.Key = r.key
	ev.Payload = r.payload
	ev.Metadata = r.md
}

// stampCache remembers the time fields of the last record a worker turned into an event:
// the bus clock ticks every 100µs, so most records share their publish time with the one
// before, and their Time and the time half of their ID need not be computed again.
type stampCache struct {
	nanos int64
	time  time.Time
	hi    uint64 // the first 8 bytes of the ID, big-endian: milliseconds, version, fraction
}

// eventCached fills *ev like r.event, with the time fields from c when r shares its time.
func (r *record[T]) eventCached(ev *Event[T], topic, source string, c *stampCache) {
	if r.nanos != c.nanos || c.time.IsZero() {
		c.nanos, c.time, c.hi = r.nanos, time.Unix(0, r.nanos), idTime(r.nanos)
	}
	binary.BigEndian.PutUint64(ev.ID[0:8], c.hi)
	binary.BigEndian.PutUint64(ev.ID[8:16], idRand(r.rnd))
	ev.Type = topic
	ev.Source = source
	ev.Time = c.time
	ev.Key = r.key
	ev.Payload = r.payload
	ev.Metadata = r.md
}
