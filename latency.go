package eventbus

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"time"

	"github.com/ae30fb47/eventbus/internal/window"
)

// latencySampleEvery is how often a worker times a handler attempt: one in this many, so
// that reading the clock twice costs each attempt a small fraction of a nanosecond.
const latencySampleEvery = 64

// Buckets of the latency histogram: durations below 2^minLatencyExp ns share bucket 0; above,
// each power of two is split into latencySubBuckets buckets, so a bucket's width is at most
// 1/latencySubBuckets of its lower bound (12.5%), up to 2^maxLatencyExp ns (about 4.9
// hours), beyond which every duration falls in the last bucket.
const (
	latencySubBits    = 3
	latencySubBuckets = 1 << latencySubBits
	minLatencyExp     = 6 // 64ns
	maxLatencyExp     = 44
	latencyBuckets    = 1 + (maxLatencyExp-minLatencyExp)*latencySubBuckets
)

// histogram counts durations in log-linear buckets.
type histogram struct {
	counts [latencyBuckets]uint32
	n      uint64
}

func latencyBucket(d time.Duration) int {
	ns := uint64(max(d, 0))
	if ns < 1<<minLatencyExp {
		return 0
	}
	e := bits.Len64(ns) - 1 // 2^e <= ns < 2^(e+1)
	if e >= maxLatencyExp {
		return latencyBuckets - 1
	}
	sub := int(ns>>(e-latencySubBits)) & (latencySubBuckets - 1)
	return 1 + (e-minLatencyExp)*latencySubBuckets + sub
}

// latencyUpperBound is the largest duration bucket i holds.
func latencyUpperBound(i int) time.Duration {
	if i == 0 {
		return 1<<minLatencyExp - 1
	}
	e := minLatencyExp + (i-1)/latencySubBuckets
	sub := uint64((i-1)%latencySubBuckets) + 1
	return time.Duration(1<<e + sub<<(e-latencySubBits) - 1)
}

func (h *histogram) record(d time.Duration) {
	h.counts[latencyBucket(d)]++
	h.n++
}

// latencies is the histogram of a subscription's sampled handler attempts over the last
// one to two minutes.
type latencies struct{ window.Pair[histogram] }

// record adds a sampled attempt of duration d that ended at end (Unix nanoseconds).
func (l *latencies) record(end int64, d time.Duration) { l.Current(end).record(d) }

// Latency summarizes the durations of a subscription's handler attempts: a sample of one in
// 64 attempts, over the last one to two minutes. Each quantile is the upper bound of the
// histogram bucket it falls in: at most 12.5% above the true value, 63ns for anything
// shorter, and about 4.9 hours for anything longer.
//
// In JSON the quantiles are strings that time.ParseDuration reads: {"samples": 12,
// "p50": "1.5ms", "p95": "3.75ms", "p99": "3.75ms"}.
type Latency struct {
	Samples       uint64 // attempts the figures are drawn from; the first of each worker is one
	P50, P95, P99 time.Duration
}

// latencyJSON is Latency as JSON shows it.
type latencyJSON struct {
	Samples uint64 `json:"samples"`
	P50     string `json:"p50"`
	P95     string `json:"p95"`
	P99     string `json:"p99"`
}

// MarshalJSON writes l with its quantiles as duration strings.
func (l Latency) MarshalJSON() ([]byte, error) {
	return json.Marshal(latencyJSON{l.Samples, l.P50.String(), l.P95.String(), l.P99.String()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (l *Latency) UnmarshalJSON(b []byte) error {
	var j latencyJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	got := Latency{Samples: j.Samples}
	for _, q := range []struct {
		s string
		d *time.Duration
	}{{j.P50, &got.P50}, {j.P95, &got.P95}, {j.P99, &got.P99}} {
		d, err := time.ParseDuration(q.s)
		if err != nil {
			return fmt.Errorf("eventbus: Latency: %w", err)
		}
		*q.d = d
	}
	*l = got
	return nil
}

// summary returns the quantiles of the two windows together, as of now.
func (l *latencies) summary(now int64) Latency {
	merged, prev := l.Recent(now)
	for i, c := range prev.counts {
		merged.counts[i] += c
	}
	merged.n += prev.n
	return Latency{
		Samples: merged.n,
		P50:     merged.quantile(0.50),
		P95:     merged.quantile(0.95),
		P99:     merged.quantile(0.99),
	}
}

// quantile returns the upper bound of the bucket holding the q-quantile, or 0 if h is empty.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n-1)) + 1 // 1-based rank of the quantile
	var seen uint64
	for i, c := range h.counts {
		if seen += uint64(c); seen >= rank {
			return latencyUpperBound(i)
		}
	}
	return latencyUpperBound(latencyBuckets - 1)
}
