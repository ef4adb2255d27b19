package eventbus

import "math/bits"

// Keys are how a subscription keeps its ordering promise: at most one event per key is
// running, ready or waiting to retry at any time, and the others of that key wait behind it
// in publish order.
//
// An event whose key is free runs straight from the intake, like an unkeyed one: the worker
// that takes it registers its key in its inflight set, which costs a hash and a scan of a
// few entries, and no map update. Only when a key is busy does the subscription use the
// slots and the keys map: the later event gets a slot, chained behind the busy one (an
// inflight entry or the last slot of the key's chain), and keys maps the key to its chain's
// last slot. So the map holds just the keys that have a retry or a queue of their own, and
// keyCounts, a count of its keys by 6 bits of their hash, spares most free keys the lookup.

// inflight is the keyed events one worker took straight from the intake and has not
// finished, by their position in its batch. It is guarded by the subscription's lock, and
// the subscription keeps one per worker in flights, where every worker looks for a key.
type inflight struct {
	n     int    // positions 0..n-1 may be live
	count int    // live positions
	mask  uint64 // bit h%64 of the hash h of every live key (and maybe some former ones)
	live  [maxBatch]bool
	hash  [maxBatch]uint64
	key   [maxBatch]string
	next  [maxBatch]int32 // the first slot chained behind the event, or -1
}

// keyHash hashes key for the inflight sets: its length and first and last eight bytes,
// mixed with the subscription's random seed. Keys that agree on those collide, which costs
// their lookups a string comparison each, not correctness.
func (s *subCore) keyHash(key string) uint64 {
	n := len(key)
	var a, b uint64
	if n >= 8 {
		a = le64(key)
		b = le64(key[n-8:])
	} else {
		for i := range n {
			a |= uint64(key[i]) << (8 * i)
		}
	}
	hi, lo := bits.Mul64(a^s.keySeed, b^uint64(n)^0x9e3779b97f4a7c15)
	return hi ^ lo
}

// le64 reads the first eight bytes of s as a little-endian number.
func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// findInflightLocked returns the inflight set and position of the running event with key
// (whose hash is h), or nil.
func (s *subCore) findInflightLocked(key string, h uint64) (*inflight, int) {
	bit := uint64(1) << (h % 64)
	for w := range s.flights {
		f := &s.flights[w]
		if f.mask&bit == 0 {
			continue
		}
		for j := range f.n {
			if f.live[j] && f.hash[j] == h && f.key[j] == key {
				return f, j
			}
		}
	}
	return nil, -1
}

// claimKeyLocked registers key in f at batch position j, for an event about to run
// straight from the intake, and reports true; or reports false, registering nothing, if
// the key is busy: then the event must be chained with commitLocked.
func (s *subCore) claimKeyLocked(key string, f *inflight, j int) bool {
	h := s.keyHash(key)
	if s.mayHaveKeyLocked(h) {
		if _, busy := s.keys[key]; busy {
			return false
		}
	}
	if s.inflightKeys > 0 {
		if g, _ := s.findInflightLocked(key, h); g != nil {
			return false
		}
	}
	f.live[j], f.hash[j], f.key[j], f.next[j] = true, h, key, -1
	f.n = max(f.n, j+1)
	f.mask |= 1 << (h % 64)
	f.count++
	s.inflightKeys++
	return true
}

// releaseKeyLocked ends the registration of f's event at position j and returns the first
// slot chained behind it, or -1.
func (s *subCore) releaseKeyLocked(f *inflight, j int) int32 {
	next := f.next[j]
	f.live[j], f.key[j] = false, ""
	f.count--
	s.inflightKeys--
	if f.count == 0 {
		f.n, f.mask = 0, 0
	}
	return next
}

// setKeyLocked maps key to slot i in keys, counting it in keyCounts if it is new.
func (s *subCore) setKeyLocked(key string, i int32) {
	if _, ok := s.keys[key]; !ok {
		s.keyCounts[s.keyHash(key)%64]++
	}
	s.keys[key] = i
}

// deleteKeyLocked removes key from keys and from keyCounts.
func (s *subCore) deleteKeyLocked(key string) {
	if _, ok := s.keys[key]; ok {
		delete(s.keys, key)
		s.keyCounts[s.keyHash(key)%64]--
	}
}

// mayHaveKeyLocked reports whether keys may hold a key with hash h: false when it surely
// does not, so that the common case of a free key costs a counter read, not a map lookup.
func (s *subCore) mayHaveKeyLocked(h uint64) bool {
	return s.keyCounts[h%64] > 0
}

// chainLocked places slot i, holding an event with a non-empty key, behind the busy event
// of that key and reports true, or reports false if the key is free. keys then maps the key
// to i, the last of its chain, either way.
func (s *subscription[T]) chainLocked(i int32, key string) bool {
	if last, busy := s.keys[key]; busy {
		s.slots[last].nextKey = i
		s.keys[key] = i
		return true
	}
	s.setKeyLocked(key, i)
	if s.inflightKeys > 0 {
		if f, j := s.findInflightLocked(key, s.keyHash(key)); f != nil {
			// The key is running straight from the intake with no chain yet (else keys
			// would have had it).
			f.next[j] = i
			return true
		}
	}
	return false
}
