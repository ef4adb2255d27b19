package window

import "testing"

func TestPairKeepsTheLastTwoWindows(t *testing.T) {
	var p Pair[int]
	recent := func(now int64) int {
		cur, prev := p.Recent(now)
		return cur + prev
	}
	start := int64(1000) * Length
	*p.Current(start) += 1
	*p.Current(start + Length/2) += 1
	if got := recent(start + Length/2); got != 2 {
		t.Errorf("within the first window: %d; want 2", got)
	}
	if got := recent(start + Length + 1); got != 2 {
		t.Errorf("in the second window, before any addition: %d; want 2 (the first window is the previous one)", got)
	}
	*p.Current(start + Length + 1) += 4 // rotates
	if cur, prev := p.Recent(start + Length + 2); cur != 4 || prev != 2 {
		t.Errorf("in the second window: %d and %d; want 4 and 2", cur, prev)
	}
	if got := recent(start + 2*Length + 1); got != 4 {
		t.Errorf("in the third window: %d; want 4 (the first window dropped)", got)
	}
	if got := recent(start + 3*Length); got != 0 {
		t.Errorf("two windows after the last addition: %d; want 0", got)
	}
	*p.Current(start + 4*Length) += 8 // both windows are stale
	if cur, prev := p.Recent(start + 4*Length); cur != 8 || prev != 0 {
		t.Errorf("after a gap of two windows: %d and %d; want 8 and 0", cur, prev)
	}
}
