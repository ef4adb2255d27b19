package benchmarks

import (
	"math/bits"
	"sync/atomic"
)

const (
	pageBits = 1 << 16 // sequence numbers per page: 8 KiB
	maxPages = 1 << 14 // so at most 2^30 events per publisher and subscriber
)

type bitPage [pageBits / 64]atomic.Uint64

// bitmap records which sequence numbers a subscriber has handled, one bit each, set
// atomically so that any number of handler goroutines may mark it at once. Pages are
// allocated on first use (an allocation per 65,536 events), so memory follows the events.
// Consecutive numbers share a word, as a batch handled by one goroutine would want.
type bitmap struct {
	pages [maxPages]atomic.Pointer[bitPage]
}

// mark sets bit seq. It reports whether the bit was clear (false: a duplicate), and
// whether seq is within the bitmap at all.
func (m *bitmap) mark(seq uint64) (fresh, inRange bool) {
	p := seq / pageBits
	if p >= maxPages {
		return false, false
	}
	page := m.pages[p].Load()
	if page == nil {
		page = m.page(p)
	}
	bit := uint64(1) << (seq % 64)
	return page[seq%pageBits/64].Or(bit)&bit == 0, true
}

// page returns page p, allocating it if no goroutine has yet.
func (m *bitmap) page(p uint64) *bitPage {
	fresh := new(bitPage)
	if m.pages[p].CompareAndSwap(nil, fresh) {
		return fresh
	}
	return m.pages[p].Load()
}

// countBelow returns how many of the bits [0, n) are set. Words below *full are known to
// be all ones; countBelow moves *full past the words it finds full, so that polling while
// a backlog drains costs only the words still changing.
func (m *bitmap) countBelow(n uint64, full *uint64) uint64 {
	words := n / 64
	for *full < words {
		page := m.pages[*full*64/pageBits].Load()
		if page == nil || page[*full%(pageBits/64)].Load() != ^uint64(0) {
			break
		}
		*full++
	}
	count := *full * 64
	for w := *full; w*64 < n; w++ {
		page := m.pages[w*64/pageBits].Load()
		if page == nil {
			w = (w*64/pageBits+1)*(pageBits/64) - 1 // skip the missing page
			continue
		}
		word := page[w%(pageBits/64)].Load()
		if end := n - w*64; end < 64 {
			word &= uint64(1)<<end - 1
		}
		count += uint64(bits.OnesCount64(word))
	}
	return count
}

// count returns how many bits are set in all.
func (m *bitmap) count() uint64 {
	var count uint64
	for p := range m.pages {
		page := m.pages[p].Load()
		if page == nil {
			continue
		}
		for w := range page {
			count += uint64(bits.OnesCount64(page[w].Load()))
		}
	}
	return count
}

// has reports whether bit seq is set.
func (m *bitmap) has(seq uint64) bool {
	p := seq / pageBits
	if p >= maxPages {
		return false
	}
	page := m.pages[p].Load()
	return page != nil && page[seq%pageBits/64].Load()&(uint64(1)<<(seq%64)) != 0
}
