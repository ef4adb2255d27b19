package benchmarks

import (
	"math/bits"
	"time"
)

// latencies is a histogram of durations with buckets about 3% wide (32 per power of two),
// so that recording costs no allocation and a run of any length keeps every sample.
type latencies struct {
	counts [64 + 58*32]uint64
	n      uint64
}

// record adds one sample.
func (h *latencies) record(d time.Duration) {
	h.counts[bucketOf(uint64(max(d, 0)))]++
	h.n++
}

// bucketOf maps v to its bucket: values below 64 have one each; above, a power of two
// is split into 32 buckets by the 5 bits after the leading one.
func bucketOf(v uint64) int {
	if v < 64 {
		return int(v)
	}
	shift := bits.Len64(v) - 6 // v>>shift is in [32, 64)
	return 64 + (shift-1)*32 + int(v>>shift) - 32
}

// bucketMid returns the middle of bucket b's range, the value reported for its samples.
func bucketMid(b int) uint64 {
	if b < 64 {
		return uint64(b)
	}
	shift := (b-64)/32 + 1
	low := uint64((b-64)%32+32) << shift
	return low + uint64(1)<<shift/2
}

// quantile returns the q-quantile (0 < q <= 1) of the samples, within a bucket's width,
// or 0 if there are none.
func (h *latencies) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n)) // samples at or below the answer, at least
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(bucketMid(b))
		}
	}
	return time.Duration(bucketMid(len(h.counts) - 1))
}
