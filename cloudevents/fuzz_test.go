package cloudevents_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ae30fb47/eventbus"
	"github.com/ae30fb47/eventbus/cloudevents"
	"github.com/google/uuid"
)

// checkDecodeError fails t unless err is an *Error of one of the package's kinds.
func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	ce, ok := asError(err)
	if !ok {
		t.Fatalf("error %v (%T) is not a *cloudevents.Error", err, err)
	}
	switch ce.Kind {
	case cloudevents.ErrMalformed, cloudevents.ErrInvalid, cloudevents.ErrTooLarge:
	default:
		t.Fatalf("error %v has kind %v; want ErrMalformed, ErrInvalid or ErrTooLarge", err, ce.Kind)
	}
}

// checkRoundTrips fails t unless e, a decoded event, survives both modes unchanged.
func checkRoundTrips(t *testing.T, e cloudevents.Event) {
	t.Helper()
	data, err := e.MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON(%+v) = %v; want no error for a decoded event", e, err)
	}
	back, err := cloudevents.Decoder{}.Structured(data)
	if err != nil || !sameEvent(e, back) {
		t.Fatalf("Structured(MarshalJSON(%+v)) = %+v, %v; want the same event\nJSON: %s", e, back, err, data)
	}
	h := make(map[string][]string)
	body, err := e.WriteBinary(cloudevents.NATS, func(name, value string) { h[name] = append(h[name], value) })
	if err != nil {
		t.Fatalf("WriteBinary(%+v) = %v", e, err)
	}
	back, err = cloudevents.Decoder{}.Message(cloudevents.NATS, maps.All(h), body)
	if err != nil || !sameEvent(e, back) {
		t.Fatalf("Message(WriteBinary(%+v)) = %+v, %v; want the same event\nheaders: %v", e, back, err, h)
	}
}

// FuzzStructured: decoding arbitrary bytes never panics and fails only with an *Error; an
// event it accepts survives structured and binary mode unchanged.
func FuzzStructured(f *testing.F) {
	f.Add([]byte(validJSON + `}`))
	f.Add([]byte(validJSON + `,"time":"2026-11-23T16:30:00.5+01:00","partitionkey":"k","n":-7,"b":false,"datacontenttype":"application/json","data":{"a":[1,2]}}`))
	f.Add([]byte(validJSON + `,"datacontenttype":"text/plain","data":"hi \u00e9"}`))
	f.Add([]byte(validJSON + `,"data_base64":"AAEC/w==","subject":"x","dataschema":"https://e.com/s"}`))
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"%zz","type":"t"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := cloudevents.Decoder{MaxSize: 4096, MaxExtensions: 8}.Structured(data)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		checkRoundTrips(t, e)
	})
}

// FuzzMessage: decoding arbitrary headers and body in binary mode never panics and fails
// only with an *Error; an event it accepts survives both modes unchanged.
func FuzzMessage(f *testing.F) {
	f.Add("1.0", "0196b1f4-7c2a-7d3e-9f00-0123456789ab", "/src", "order.created", "2026-11-23T16:30:00Z", "application/json", "partitionkey", "k%20y", []byte(`{"a":1}`))
	f.Add("1.0", "1", "s", "t", "", "", "x", "", []byte(" 1 "))
	f.Add("1.0", "1", "s", "t", "", "application/json", "x", "", []byte("null"))
	f.Add("1.0", "1", "s", "t", "", "application/octet-stream", "data", "1", []byte{0, 0xff})
	f.Add("0.3", "", "", "", "bad", "application/cloudevents+json", "BAD", "%", []byte(`{`))
	f.Fuzz(func(t *testing.T, spec, id, source, typ, tm, ct, ext, extValue string, body []byte) {
		h := map[string][]string{"ce-specversion": {spec}, "ce-id": {id}, "ce-source": {source}, "ce-type": {typ}}
		if tm != "" {
			h["ce-time"] = []string{tm}
		}
		if ct != "" {
			h["content-type"] = []string{ct}
		}
		if ext != "" {
			h["ce-"+ext] = append(h["ce-"+ext], extValue)
		}
		e, err := cloudevents.Decoder{MaxSize: 4096, MaxExtensions: 8}.Message(cloudevents.NATS, maps.All(h), body)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		checkRoundTrips(t, e)
	})
}

// FuzzEnvelope: every envelope either is rejected by FromEvent with an *Error, or comes
// back equal from ToEvent through both modes.
func FuzzEnvelope(f *testing.F) {
	f.Add([]byte("0123456789abcdef"), "/shop", int64(1_700_000_000_123_456_789), "o-1", "tenant", "acme", "o-1", 42.5, []byte{1, 2})
	f.Add([]byte{}, "", int64(0), "", "", "", "", 0.0, []byte(nil))
	f.Add([]byte("0123456789abcdef"), "s", int64(-62135596800_000_000_0), "k\x00", "Bad_Name", "\xff", "", -1.0, []byte{})
	f.Add([]byte("0123456789abcdef"), "s", int64(0), "", "subject", "", "", 0.0, []byte(nil))
	f.Fuzz(func(t *testing.T, id []byte, source string, unixNano int64, key, mdName, mdValue, orderID string, total float64, blob []byte) {
		var ev eventbus.Event[order]
		copy(ev.ID[:], id)
		ev.Type, ev.Source, ev.Key = orderCreated.Name(), source, key
		if unixNano != 0 {
			ev.Time = time.Unix(0, unixNano)
		}
		if mdName != "" {
			ev.Metadata = eventbus.Metadata{mdName: mdValue}
		}
		ev.Payload = order{ID: orderID, Total: total}
		e, err := cloudevents.FromEvent(ev)
		if err != nil {
			ce, ok := asError(err)
			if !ok || (ce.Kind != cloudevents.ErrInvalid && ce.Kind != cloudevents.ErrData) {
				t.Fatalf("FromEvent(%+v) = %v; want an *Error of kind ErrInvalid or ErrData", ev, err)
			}
			return
		}
		checkRoundTrips(t, e)
		back, err := cloudevents.ToEvent[order](e)
		if err != nil {
			t.Fatalf("ToEvent(FromEvent(%+v)) = %v", ev, err)
		}
		want := ev
		if !utf8.ValidString(orderID) { // encoding/json replaces invalid bytes with U+FFFD
			b, _ := json.Marshal(orderID)
			json.Unmarshal(b, &want.Payload.ID)
		}
		if !sameEnvelope(want, back) {
			t.Fatalf("ToEvent(FromEvent(%+v)) = %+v; want it back", ev, back)
		}
		raw := eventbus.Event[[]byte]{ID: uuid.UUID(ev.ID), Type: blobStored.Name(), Source: "s", Payload: blob}
		if ev.ID == uuid.Nil {
			return
		}
		e, err = cloudevents.FromEvent(raw)
		if err != nil {
			t.Fatalf("FromEvent([]byte payload) = %v", err)
		}
		checkRoundTrips(t, e)
		gotBlob, err := cloudevents.ToEvent[[]byte](e)
		if err != nil || !bytes.Equal(gotBlob.Payload, blob) {
			t.Fatalf("ToEvent([]byte payload) = %v, %v; want %v", gotBlob.Payload, err, blob)
		}
	})
}
