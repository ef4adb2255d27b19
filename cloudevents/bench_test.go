package cloudevents_test

import (
	"maps"
	"testing"

	"github.com/ae30fb47/eventbus/cloudevents"
)

// BenchmarkStructured encodes an envelope with a key, three metadata entries and a small
// JSON payload in structured mode, and decodes it back into the envelope.
func BenchmarkStructured(b *testing.B) {
	in := sampleOrder()
	b.ReportAllocs()
	for b.Loop() {
		e, err := cloudevents.FromEvent(in)
		if err != nil {
			b.Fatal(err)
		}
		data, err := e.MarshalJSON()
		if err != nil {
			b.Fatal(err)
		}
		back, err := cloudevents.Decoder{}.Structured(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cloudevents.ToEvent[order](back); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBinary does the same in binary mode, with a NATS-style header map.
func BenchmarkBinary(b *testing.B) {
	in := sampleOrder()
	b.ReportAllocs()
	for b.Loop() {
		e, err := cloudevents.FromEvent(in)
		if err != nil {
			b.Fatal(err)
		}
		h := make(map[string][]string, 10)
		body, err := e.WriteBinary(cloudevents.NATS, func(name, value string) { h[name] = []string{value} })
		if err != nil {
			b.Fatal(err)
		}
		back, err := cloudevents.Decoder{}.Message(cloudevents.NATS, maps.All(h), body)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cloudevents.ToEvent[order](back); err != nil {
			b.Fatal(err)
		}
	}
}
