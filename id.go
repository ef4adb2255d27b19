package eventbus

import (
	"encoding/binary"
	"math/rand/v2"

	"github.com/google/uuid"
)

// stamp returns the time and random bits of a new event's envelope.
func (b *Bus) stamp() (nanos int64, rnd uint64) {
	return b.clock.nowNanos(), rand.Uint64()
}

// idFrom returns the UUIDv7 of an event published at nanos (Unix nanoseconds) with random
// bits rnd, per RFC 9562: 48 bits of Unix milliseconds, then 12 bits of sub-millisecond
// fraction (the "increased clock precision" method, so IDs made about 250 ns apart sort in
// time order), then 62 of the random bits. rnd comes from the runtime's per-thread
// generator, so making an ID takes no lock and no system call.
func idFrom(nanos int64, rnd uint64) uuid.UUID {
	var id uuid.UUID
	binary.BigEndian.PutUint64(id[0:8], idTime(nanos))
	binary.BigEndian.PutUint64(id[8:16], idRand(rnd))
	return id
}

// idTime is the first half of the UUIDv7 of an event published at nanos.
func idTime(nanos int64) uint64 {
	ms := uint64(nanos / 1e6)
	frac := uint64(nanos%1e6) * 4096 / 1e6 // 0..4095
	return ms<<16 | 0x7000 | frac
}

// idRand is the second half of a UUIDv7 with random bits rnd: the variant, then 62 bits.
func idRand(rnd uint64) uint64 { return rnd&(1<<62-1) | 1<<63 }
