package cloudevents_test

import (
	"bytes"
	"errors"
	"maps"
	"reflect"
	"testing"

	"github.com/ae30fb47/eventbus"
	"github.com/ae30fb47/eventbus/cloudevents"
)

// sameEvent reports whether a and b carry the same CloudEvent: equal attributes, the same
// instant, equal extensions and equal data (nil and empty alike).
func sameEvent(a, b cloudevents.Event) bool {
	return a.ID == b.ID && a.Source == b.Source && a.Type == b.Type && a.Subject == b.Subject &&
		a.Time.Equal(b.Time) && a.DataContentType == b.DataContentType && a.DataSchema == b.DataSchema &&
		maps.Equal(a.Extensions, b.Extensions) && bytes.Equal(a.Data, b.Data)
}

// sameEnvelope reports whether a and b are equal envelopes, times compared as instants.
func sameEnvelope[T any](a, b eventbus.Event[T]) bool {
	return a.ID == b.ID && a.Type == b.Type && a.Source == b.Source && a.Time.Equal(b.Time) &&
		a.Key == b.Key && maps.Equal(a.Metadata, b.Metadata) && reflect.DeepEqual(a.Payload, b.Payload)
}

// headerOf collects the headers that WriteBinary sets into a map, as a NATS header.
func headerOf(t testing.TB, e *cloudevents.Event, b cloudevents.Binding) (map[string][]string, []byte) {
	t.Helper()
	h := make(map[string][]string)
	body, err := e.WriteBinary(b, func(name, value string) { h[name] = append(h[name], value) })
	if err != nil {
		t.Fatalf("WriteBinary(%+v) = %v", e, err)
	}
	return h, body
}

// asError returns err as a *cloudevents.Error, if it is one.
func asError(err error) (*cloudevents.Error, bool) {
	var ce *cloudevents.Error
	ok := errors.As(err, &ce)
	return ce, ok
}
