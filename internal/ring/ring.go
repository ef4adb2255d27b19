// Package ring is a bounded ring of cells that many producers fill and one consumer at a
// time empties, in order: Dmitry Vyukov's bounded queue, with the cursors left to the
// caller.
//
// A producer claims the cell at the producers' cursor (tail), fills it and publishes it;
// the consumer takes the cell at its own cursor (head) once it is published and releases
// it for the next lap. Each cell carries a sequence number that says which of these it is
// in: claimable at position pos when seq == pos, published when seq == pos+1, and free for
// position pos+Len() once released. So producers and the consumer never take a lock, and a
// cell's value moves from a producer's core to the consumer's with the cell's own cache
// lines only.
//
// The cursors belong to the caller, who places them on cache lines of its own choosing (a
// producer's cursor beside the other words producers write, say) and must keep head to one
// consumer at a time, under a lock of its own. A Ring itself is immutable once made, so any
// number of goroutines may share it.
package ring

import "sync/atomic"

// Ring is a ring of cells holding values of type T; see the package doc.
type Ring[T any] struct {
	cells []Cell[T]
	mask  uint64
}

// Cell is one cell of a Ring: a producer fills Val between Claim and Publish, and the
// consumer reads it between Next and Release.
type Cell[T any] struct {
	seq atomic.Uint64
	Val T
}

// New returns a ring of n cells, rounded up to a power of two (at least 1). Its cursors
// start at 0.
func New[T any](n int) Ring[T] {
	size := 1
	for size < n {
		size *= 2
	}
	cells := make([]Cell[T], size)
	for i := range cells {
		cells[i].seq.Store(uint64(i))
	}
	return Ring[T]{cells: cells, mask: uint64(size - 1)}
}

// Len returns the number of cells.
func (r *Ring[T]) Len() int { return len(r.cells) }

// Claim claims the cell at the producers' cursor *tail and moves the cursor on, for the
// caller to fill and then Publish; the consumer stops at that cell until then. It reports
// false, claiming nothing, if the ring is full: the cell still holds the value of the
// previous lap.
func (r *Ring[T]) Claim(tail *atomic.Uint64) (c *Cell[T], pos uint64, ok bool) {
	for {
		pos = tail.Load()
		c = &r.cells[pos&r.mask]
		seq := c.seq.Load()
		if seq < pos {
			return nil, 0, false
		}
		if seq == pos && tail.CompareAndSwap(pos, pos+1) {
			return c, pos, true
		}
	}
}

// ClaimFree is Claim for a caller who knows that the cell at *tail is free: fewer than
// Len() values claimed before it are yet to be released, say because the caller bounds the
// values in flight to at most Len() and counted its own among them. It claims the cell with
// one atomic add and without reading its sequence number, which would fetch the cell's
// line from the consumer's core only for the write to fetch it again. Claiming a cell that
// is not free corrupts the ring.
func (r *Ring[T]) ClaimFree(tail *atomic.Uint64) (c *Cell[T], pos uint64) {
	pos = tail.Add(1) - 1
	return &r.cells[pos&r.mask], pos
}

// Publish hands cell c, claimed at pos and filled, to the consumer.
func (r *Ring[T]) Publish(c *Cell[T], pos uint64) { c.seq.Store(pos + 1) }

// Next returns the cell at the consumer's position head if it is published, or nil if it is
// not yet (still free, or claimed and being filled).
func (r *Ring[T]) Next(head uint64) *Cell[T] {
	c := &r.cells[head&r.mask]
	if c.seq.Load() != head+1 {
		return nil
	}
	return c
}

// Release frees cell c, which Next returned for position head, for the next lap; the
// consumer then moves its cursor to head+1. The cell keeps its value until a producer
// overwrites it.
func (r *Ring[T]) Release(c *Cell[T], head uint64) { c.seq.Store(head + uint64(len(r.cells))) }
