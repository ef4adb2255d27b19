package ring

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestNewRoundsUpToAPowerOfTwo(t *testing.T) {
	for _, tt := range []struct{ n, want int }{{0, 1}, {1, 1}, {2, 2}, {3, 4}, {1000, 1024}, {4096, 4096}} {
		r := New[int](tt.n)
		if r.Len() != tt.want {
			t.Errorf("New(%d).Len() = %d; want %d", tt.n, r.Len(), tt.want)
		}
	}
}

// TestClaimReportsFullAndNextWaitsForPublish walks one cell through its states.
func TestClaimReportsFullAndNextWaitsForPublish(t *testing.T) {
	r := New[string](2)
	var tail atomic.Uint64
	var head uint64
	a, posA, ok := r.Claim(&tail)
	if !ok || posA != 0 {
		t.Fatalf("Claim() = %d, %v; want 0, true", posA, ok)
	}
	b, posB, ok := r.Claim(&tail)
	if !ok || posB != 1 {
		t.Fatalf("Claim() = %d, %v; want 1, true", posB, ok)
	}
	if _, _, ok := r.Claim(&tail); ok {
		t.Fatal("Claim() of a full ring = true; want false")
	}
	if r.Next(head) != nil {
		t.Fatal("Next() of a claimed, unpublished cell != nil")
	}
	b.Val = "b"
	r.Publish(b, posB)
	if r.Next(head) != nil {
		t.Fatal("Next() skipped the unpublished cell at the head")
	}
	a.Val = "a"
	r.Publish(a, posA)
	for _, want := range []string{"a", "b"} {
		c := r.Next(head)
		if c == nil || c.Val != want {
			t.Fatalf("Next(%d) = %v; want %q", head, c, want)
		}
		r.Release(c, head)
		head++
	}
	if r.Next(head) != nil {
		t.Fatal("Next() of an empty ring != nil")
	}
	c, pos, ok := r.Claim(&tail)
	if !ok || pos != 2 || c != a {
		t.Fatalf("Claim() after release = %d, %v; want 2, true, the first cell again", pos, ok)
	}
}

// TestProducersAndOneConsumer checks every value arrives once, in each producer's order,
// with producers using Claim (waiting while full) or ClaimFree under a bound of Len()
// values in flight.
func TestProducersAndOneConsumer(t *testing.T) {
	for _, free := range []bool{false, true} {
		name := "Claim"
		if free {
			name = "ClaimFree"
		}
		t.Run(name, func(t *testing.T) {
			const producers, each = 4, 20_000
			r := New[[2]int](8)
			var tail atomic.Uint64
			var inFlight atomic.Int64 // values claimed and not yet released, for ClaimFree
			var wg sync.WaitGroup
			for p := range producers {
				wg.Go(func() {
					for i := range each {
						var c *Cell[[2]int]
						var pos uint64
						if free {
							for {
								n := inFlight.Load()
								if n < int64(r.Len()) && inFlight.CompareAndSwap(n, n+1) {
									break
								}
							}
							c, pos = r.ClaimFree(&tail)
						} else {
							for ok := false; !ok; {
								c, pos, ok = r.Claim(&tail)
							}
						}
						c.Val = [2]int{p, i}
						r.Publish(c, pos)
					}
				})
			}
			next := make([]int, producers)
			var head uint64
			for got := 0; got < producers*each; {
				c := r.Next(head)
				if c == nil {
					continue
				}
				p, i := c.Val[0], c.Val[1]
				r.Release(c, head)
				head++
				inFlight.Add(-1)
				if i != next[p] {
					t.Fatalf("producer %d: got value %d; want %d", p, i, next[p])
				}
				next[p]++
				got++
			}
			wg.Wait()
		})
	}
}
