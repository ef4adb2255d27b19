// Package window keeps a value per minute of time, for the figures a subscription reports
// "over the last minute or two": the window now being filled, and the one before it.
package window

import "time"

// Length is the length of a window, in nanoseconds.
const Length = int64(time.Minute)

// Pair is a value of type V for the current window and one for the window before it.
// Windows lie on a grid of Length from the first time a value was added, and a gap of two
// windows or more without an addition starts the grid again. The zero Pair is empty. A
// Pair is not safe for concurrent use. Times are Unix nanoseconds.
type Pair[V any] struct {
	start     int64 // of the current window
	cur, prev V
}

// Current returns the value of the window that holds now, for the caller to add to. If
// the current window has ended, it becomes the previous one first, and a previous one
// that ended more than a window before now is dropped.
func (p *Pair[V]) Current(now int64) *V {
	switch age := now - p.start; {
	case age < Length:
	case age < 2*Length:
		p.prev, p.cur = p.cur, *new(V)
		p.start += Length
	default:
		*p = Pair[V]{start: now}
	}
	return &p.cur
}

// Recent returns the values of the window that holds now and of the one before it, as of
// now, without changing p: a window that ended more than a window before now counts as
// empty.
func (p *Pair[V]) Recent(now int64) (cur, prev V) {
	switch age := now - p.start; {
	case age < Length:
		return p.cur, p.prev
	case age < 2*Length:
		return cur, p.cur
	}
	return cur, prev
}
