package benchmarks

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// The checks must catch a library that loses, repeats or reorders an event, or every
// figure of the benchmarks would be unverified. These tests run the scenarios over the
// plain channels with one delivery tampered with, and expect the scenario to fail.

// tampered wraps lib so that tamper sits between the library and the sink.
func tampered(lib library, tamper func(deliver func(int, Msg)) func(int, Msg)) library {
	return library{name: lib.name + "-tampered", start: func(cfg config) (instance, error) {
		cfg.deliver = tamper(cfg.deliver)
		return lib.start(cfg)
	}}
}

// victim is the delivery every tamper picks: the fifth event of the first publisher and
// key, to the last subscriber.
func victim(sub, subs int, m Msg) bool {
	return sub == subs-1 && m.Seq == 5 && m.Pub == 0 && m.Key == 0
}

func drop(subs int) func(func(int, Msg)) func(int, Msg) {
	return func(deliver func(int, Msg)) func(int, Msg) {
		return func(sub int, m Msg) {
			if !victim(sub, subs, m) {
				deliver(sub, m)
			}
		}
	}
}

func duplicate(subs int) func(func(int, Msg)) func(int, Msg) {
	return func(deliver func(int, Msg)) func(int, Msg) {
		return func(sub int, m Msg) {
			deliver(sub, m)
			if victim(sub, subs, m) {
				deliver(sub, m)
			}
		}
	}
}

// swap holds the victim back and delivers it after the next event of its key.
func swap(deliver func(int, Msg)) func(int, Msg) {
	var mu sync.Mutex
	var held *Msg
	return func(sub int, m Msg) {
		mu.Lock()
		defer mu.Unlock()
		if victim(sub, 1, m) {
			held = &m
			return
		}
		deliver(sub, m)
		if held != nil && m.Key == held.Key && m.Pub == held.Pub {
			deliver(sub, *held)
			held = nil
		}
	}
}

func TestScenariosCatchFaults(t *testing.T) {
	tests := []struct {
		name   string
		sc     scenario
		subs   int
		tamper func(func(int, Msg)) func(int, Msg)
		want   string // in the error
	}{
		{"A lost", scenarioA, 1, drop(1), "missing event 5 of publisher 0"},
		{"A duplicated", scenarioA, 1, duplicate(1), "event 5 of publisher 0 twice"},
		{"B lost by one subscriber", scenarioB, 10, drop(10), "subscriber 9 is missing event 5"},
		{"B duplicated by one subscriber", scenarioB, 10, duplicate(10), "subscriber 9 handled event 5 of publisher 0 twice"},
		{"C lost", scenarioC, 1, drop(1), "key 0: event 6 handled before 5"},
		{"C duplicated", scenarioC, 1, duplicate(1), "key 0: event 5 handled again after 5"},
		{"C reordered", scenarioC, 1, swap, "key 0: event 6 handled before 5"},
		{"D lost", scenarioD, 1, drop(1), "event 5 not handled"},
		{"D duplicated", scenarioD, 1, duplicate(1), "event 5 of publisher 0 twice"},
		{"F lost", scenarioF, 1, drop(1), "missing event 5 of publisher 0"},
		{"F duplicated", scenarioF, 1, duplicate(1), "event 5 of publisher 0 twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestRun(1000)
			r.stallAfter = 300 * time.Millisecond
			err := tt.sc.run(r, tampered(channelLib, tt.tamper))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("%s = %v; want an error containing %q", tt.sc.name, err, tt.want)
			}
		})
	}
}

// TestScenariosCatchExtraEvents checks that verify, after close, counts deliveries the
// wait did not: an event delivered although never published.
func TestScenariosCatchExtraEvents(t *testing.T) {
	extra := func(deliver func(int, Msg)) func(int, Msg) {
		return func(sub int, m Msg) {
			deliver(sub, m)
			if m.Seq == 5 {
				deliver(sub, Msg{Seq: 1 << 20})
			}
		}
	}
	err := scenarioA.run(newTestRun(200), tampered(channelLib, extra))
	if err == nil || !strings.Contains(err.Error(), "handled 201 events of publisher 0, want 200") {
		t.Fatalf("A_OneSubscriber = %v; want an error for the extra event", err)
	}
}

func TestBitmapCountBelow(t *testing.T) {
	var m bitmap
	marks := []uint64{0, 1, 63, 64, 65, pageBits - 1, pageBits, pageBits + 70, 3*pageBits + 1}
	for _, seq := range marks {
		if fresh, ok := m.mark(seq); !fresh || !ok {
			t.Fatalf("mark(%d) = %v, %v; want true, true", seq, fresh, ok)
		}
	}
	if fresh, ok := m.mark(64); fresh || !ok {
		t.Fatalf("mark(64) again = %v, %v; want false, true", fresh, ok)
	}
	if _, ok := m.mark(maxPages * pageBits); ok {
		t.Fatalf("mark(%d) in range; want out of range", maxPages*pageBits)
	}
	for _, tt := range []struct{ n, want uint64 }{
		{0, 0}, {1, 1}, {2, 2}, {63, 2}, {64, 3}, {66, 5}, {pageBits, 6},
		{pageBits + 71, 8}, {2 * pageBits, 8}, {3*pageBits + 1, 8}, {3*pageBits + 2, 9},
	} {
		var full uint64
		if got := m.countBelow(tt.n, &full); got != tt.want {
			t.Errorf("countBelow(%d) = %d; want %d", tt.n, got, tt.want)
		}
	}
	if got := m.count(); got != uint64(len(marks)) {
		t.Errorf("count() = %d; want %d", got, len(marks))
	}
}

func TestBitmapCountBelowMovesPastFullWords(t *testing.T) {
	var m bitmap
	for seq := range uint64(200) {
		m.mark(seq)
	}
	var full uint64
	if got := m.countBelow(200, &full); got != 200 || full != 3 {
		t.Fatalf("countBelow(200) = %d with %d full words; want 200 with 3", got, full)
	}
	m.mark(250)
	if got := m.countBelow(300, &full); got != 201 {
		t.Fatalf("countBelow(300) = %d; want 201", got)
	}
}

func TestLatencyQuantiles(t *testing.T) {
	var h latencies
	if got := h.quantile(0.5); got != 0 {
		t.Fatalf("quantile of no samples = %v; want 0", got)
	}
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, 1000 * time.Microsecond}} {
		got := h.quantile(tt.q)
		if diff := float64(got-tt.want) / float64(tt.want); diff < -0.035 || diff > 0.035 {
			t.Errorf("quantile(%v) = %v; want %v within 3.5%%", tt.q, got, tt.want)
		}
	}
	var small latencies
	small.record(7)
	small.record(-1)
	if got := small.quantile(1); got != 7 {
		t.Errorf("quantile(1) of {0, 7} = %v; want 7ns", got)
	}
}

// BenchmarkCheckCost measures what the checks add to every delivery of every library: a
// call of the handler through config.deliver and the sink's record of it, from one
// goroutine with nothing in the way.
func BenchmarkCheckCost(b *testing.B) {
	b.Run("unordered", func(b *testing.B) {
		s := newUnorderedSink(1, 1)
		deliver := config{deliver: s.deliver}.deliver
		b.ReportAllocs()
		var n uint64
		for b.Loop() {
			deliver(0, Msg{Seq: n})
			n++
		}
		if err := s.verify([]uint64{n}); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("ordered", func(b *testing.B) {
		s := newOrderedSink(1)
		deliver := config{deliver: s.deliver}.deliver
		b.ReportAllocs()
		var n uint64
		for b.Loop() {
			deliver(0, Msg{Key: uint32(n % keyCount), Seq: n / keyCount})
			n++
		}
		if err := s.verify(perKey(n)); err != nil {
			b.Fatal(err)
		}
	})
}

func TestSkipReasonSkips(t *testing.T) {
	cannot := library{name: "unordered-only", start: func(cfg config) (instance, error) {
		if cfg.ordered {
			return nil, skipReason("no way to keep per-key order")
		}
		return channelLib.start(cfg)
	}}
	if reason, ok := isSkip(scenarioC.run(newTestRun(10), cannot)); !ok || reason != "no way to keep per-key order" {
		t.Fatalf("C_KeysOrdered on a library that cannot: isSkip = %q, %v; want the reason, true", reason, ok)
	}
	if err := scenarioA.run(newTestRun(10), cannot); err != nil {
		t.Fatalf("A_OneSubscriber on a library that can = %v", err)
	}
}
