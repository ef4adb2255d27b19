package cloudevents_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus/cloudevents"
)

// manyExtensions returns a structured event with n extensions e0 ... e<n-1>, then tail.
func manyExtensions(n int, tail string) []byte {
	var sb strings.Builder
	sb.WriteString(validJSON)
	for i := range n {
		fmt.Fprintf(&sb, `,"e%d":1`, i)
	}
	sb.WriteString(tail)
	return []byte(sb.String())
}

// The decoder stops at the first extension over its limit: what follows is not even read,
// so a document full of members costs no more than the limit allows.
func TestStructuredStopsAtExtensionLimit(t *testing.T) {
	doc := manyExtensions(cloudevents.DefaultMaxExtensions+1, `,"broken":`) // malformed after the limit
	_, err := cloudevents.Decoder{}.Structured(doc)
	ce, ok := asError(err)
	if !ok || !errors.Is(err, cloudevents.ErrTooLarge) || ce.Attribute != fmt.Sprint("e", cloudevents.DefaultMaxExtensions) {
		t.Errorf("Structured(%d extensions, then malformed JSON) = %v; want ErrTooLarge at e%d, before the rest is parsed",
			cloudevents.DefaultMaxExtensions+1, err, cloudevents.DefaultMaxExtensions)
	}
}

// Decoding time grows linearly with the number of members, also with a limit high enough
// to accept them all: 16 times the members must not cost anywhere near 16² times the time.
// The review measured 10.5 s for 80,000 members with a quadratic duplicate check.
func TestStructuredLinearInMembers(t *testing.T) {
	const small, factor = 1000, 16
	dec := cloudevents.Decoder{MaxSize: 1 << 22, MaxExtensions: small * factor}
	fastest := func(n int) time.Duration {
		doc := manyExtensions(n, `}`)
		best := time.Duration(1<<63 - 1)
		for range 5 {
			start := time.Now()
			if _, err := dec.Structured(doc); err != nil {
				t.Fatalf("Structured(%d extensions) = %v", n, err)
			}
			best = min(best, time.Since(start))
		}
		return best
	}
	fastest(small) // warm up
	a, b := fastest(small), fastest(small*factor)
	// Linear gives about 16x; quadratic about 256x. 64x leaves room for noise and GC.
	ratio := float64(b) / float64(a)
	t.Logf("%d members: %v; %d members: %v (%.1fx)", small, a, small*factor, b, ratio)
	if ratio > 4*factor {
		t.Errorf("%d members took %v, %d took %v: %.0fx for %dx the members; want about linear", small, a, small*factor, b, ratio, factor)
	}
}
