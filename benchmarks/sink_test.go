package benchmarks

import (
	"fmt"
	"sync/atomic"
	"time"
)

// A sink checks every delivery of a run, the same way for every library: it is the
// handler all the adapters call (through config.deliver), and it costs one atomic
// operation on memory no other subscriber touches.
//
// Unordered (scenarios A, B, D, E, F), each subscriber marks the sequence numbers it
// handled in a bitmap per publisher: a bit already set is a duplicate, and a bit never set
// once the run is over is a missing event. Ordered (C), each subscriber keeps the next
// sequence number it expects per key: any other number is a duplicate, a gap or a
// reordering.
type sink struct {
	ordered bool
	subs    []subscriberLog
	faults  atomic.Int64
	first   atomic.Pointer[string] // the first fault, described
}

type subscriberLog struct {
	seen []*bitmap       // per publisher (unordered)
	next []paddedCounter // per key (ordered): the Seq expected next
}

// paddedCounter keeps each key's counter on its own cache line, so that goroutines
// handling different keys do not slow each other down.
type paddedCounter struct {
	atomic.Uint64
	_ [56]byte
}

// newUnorderedSink returns a sink for subscribers subscribers and publishers publishers.
func newUnorderedSink(subscribers, publishers int) *sink {
	s := &sink{subs: make([]subscriberLog, subscribers)}
	for i := range s.subs {
		s.subs[i].seen = make([]*bitmap, publishers)
		for p := range s.subs[i].seen {
			s.subs[i].seen[p] = new(bitmap)
		}
	}
	return s
}

// newOrderedSink returns a sink for subscribers subscribers of keyCount keys.
func newOrderedSink(subscribers int) *sink {
	s := &sink{ordered: true, subs: make([]subscriberLog, subscribers)}
	for i := range s.subs {
		s.subs[i].next = make([]paddedCounter, keyCount)
	}
	return s
}

// deliver records that subscriber sub handled m. It is safe for concurrent use.
func (s *sink) deliver(sub int, m Msg) {
	if sub < 0 || sub >= len(s.subs) {
		s.fault(fmt.Sprintf("unknown subscriber %d handled %+v", sub, m))
		return
	}
	if s.ordered {
		s.deliverOrdered(sub, m)
		return
	}
	seen := s.subs[sub].seen
	if int(m.Pub) >= len(seen) {
		s.fault(fmt.Sprintf("subscriber %d handled %+v from an unknown publisher", sub, m))
		return
	}
	if fresh, inRange := seen[m.Pub].mark(m.Seq); !fresh {
		if !inRange {
			s.fault(fmt.Sprintf("subscriber %d handled %+v, out of range", sub, m))
		} else {
			s.fault(fmt.Sprintf("subscriber %d handled event %d of publisher %d twice", sub, m.Seq, m.Pub))
		}
	}
}

func (s *sink) deliverOrdered(sub int, m Msg) {
	next := s.subs[sub].next
	if int(m.Key) >= len(next) {
		s.fault(fmt.Sprintf("subscriber %d handled %+v with an unknown key", sub, m))
		return
	}
	// One event per key at a time: the library orders the handlers of a key, so this
	// load and store do not race with another handler of the key.
	c := &next[m.Key]
	switch want := c.Load(); {
	case m.Seq == want:
		c.Store(want + 1)
	case m.Seq < want:
		s.fault(fmt.Sprintf("subscriber %d, key %d: event %d handled again after %d (duplicate or reordered)",
			sub, m.Key, m.Seq, want-1))
	default:
		s.fault(fmt.Sprintf("subscriber %d, key %d: event %d handled before %d (missing or reordered)",
			sub, m.Key, m.Seq, want))
		c.Store(m.Seq + 1)
	}
}

func (s *sink) fault(what string) {
	if s.faults.Add(1) == 1 {
		s.first.Store(&what)
	}
}

// faultErr returns the faults seen so far as an error, or nil.
func (s *sink) faultErr() error {
	n := s.faults.Load()
	if n == 0 {
		return nil
	}
	first := "?"
	if p := s.first.Load(); p != nil {
		first = *p
	}
	return fmt.Errorf("%d faulty deliveries; the first: %s", n, first)
}

// progress is where a sink is in handling what was published, to poll while a backlog
// drains.
type progress struct {
	want  []uint64   // events per publisher (unordered) or per key (ordered)
	full  [][]uint64 // per subscriber and publisher: bitmap words known to be full
	total uint64     // deliveries expected in all
}

func (s *sink) progressOf(want []uint64) *progress {
	pr := &progress{want: want, full: make([][]uint64, len(s.subs))}
	for i := range s.subs {
		pr.full[i] = make([]uint64, len(want))
	}
	for _, n := range want {
		pr.total += n * uint64(len(s.subs))
	}
	return pr
}

// handled returns how many of the expected deliveries have happened.
func (s *sink) handled(pr *progress) uint64 {
	var done uint64
	for i := range s.subs {
		for j, n := range pr.want {
			if s.ordered {
				done += min(s.subs[i].next[j].Load(), n)
			} else {
				done += s.subs[i].seen[j].countBelow(n, &pr.full[i][j])
			}
		}
	}
	return done
}

// pollInterval is how often wait looks at the subscribers' progress. Polling, rather than
// a counter every handler would update, keeps the check off the hot path.
const pollInterval = 20 * time.Microsecond

// wait returns once every subscriber has handled want[i] events of publisher i (of key i
// when ordered). It returns an error as soon as a fault is seen, or once no delivery has
// happened for stall, naming what is missing.
func (s *sink) wait(want []uint64, stall time.Duration) error {
	pr := s.progressOf(want)
	last, lastChange := uint64(0), time.Now()
	for {
		if err := s.faultErr(); err != nil {
			return err
		}
		done := s.handled(pr)
		if done == pr.total {
			return nil
		}
		if done != last {
			last, lastChange = done, time.Now()
		} else if time.Since(lastChange) > stall {
			return fmt.Errorf("%d of %d deliveries missing after %v without progress: %s",
				pr.total-done, pr.total, stall, s.firstMissing(want))
		}
		time.Sleep(pollInterval)
	}
}

// verify checks, once the library is closed, that every subscriber handled exactly the
// events expected: nothing missing, nothing twice, nothing out of order, nothing extra.
func (s *sink) verify(want []uint64) error {
	if err := s.faultErr(); err != nil {
		return err
	}
	for i := range s.subs {
		for j, n := range want {
			var got uint64
			if s.ordered {
				got = s.subs[i].next[j].Load()
			} else {
				got = s.subs[i].seen[j].count()
			}
			if got != n {
				return fmt.Errorf("subscriber %d handled %d events of %s %d, want %d: %s",
					i, got, s.unit(), j, n, s.firstMissing(want))
			}
		}
	}
	return nil
}

func (s *sink) unit() string {
	if s.ordered {
		return "key"
	}
	return "publisher"
}

// firstMissing names the first expected delivery that has not happened.
func (s *sink) firstMissing(want []uint64) string {
	for i := range s.subs {
		for j, n := range want {
			if s.ordered {
				if got := s.subs[i].next[j].Load(); got < n {
					return fmt.Sprintf("subscriber %d is missing event %d of key %d", i, got, j)
				}
				continue
			}
			for seq := range n {
				if !s.subs[i].seen[j].has(seq) {
					return fmt.Sprintf("subscriber %d is missing event %d of publisher %d", i, seq, j)
				}
			}
		}
	}
	return "none missing"
}
