package cloudevents_test

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/ae30fb47/eventbus"
	"github.com/ae30fb47/eventbus/cloudevents"
)

// metadataShapes are Metadata that are valid in process and must cross a broker equal:
// the shapes of the event-design guides (correlationId, source, version), keys that are
// not extension names, keys named like attributes or like the codec's own extensions,
// values that are empty, unicode, or hold characters no CloudEvents String may hold.
var metadataShapes = map[string]eventbus.Metadata{
	"guide's shape":         {"source": "checkout", "version": "2", "correlationId": "c-42"},
	"upper case":            {"traceParent": "00-abc-01", "X": "1"},
	"dashes and dots":       {"x-request-id": "r-1", "app.kubernetes.io/name": "shop"},
	"attribute names":       {"id": "1", "type": "t", "time": "now", "specversion": "0.3", "data": "d", "data_base64": "b", "datacontenttype": "text/plain"},
	"codec's extensions":    {"partitionkey": "not the key", cloudevents.MetadataExtension: `{"a":"b"}`},
	"empty values":          {"tenant": "", "Tenant": "", "subject": "", "dataschema": ""},
	"empty key":             {"": "nameless"},
	"unicode":               {"greeting": "こんにちは, Grüße 👋", "emoji🔑": "✓"},
	"forbidden characters":  {"line": "a\nb\tc", "c1": "\u0085", "nonchar": "\ufffe\ufdd0\U0010ffff", "nul": "\x00", "quote": `"\`},
	"long name":             {"abcdefghijklmnopqrstu": "21 characters", "abcdefghijklmnopqrst": "20 characters"},
	"attributes that fit":   {"subject": "orders/o-1", "dataschema": "https://example.com/order.json"},
	"attributes that don't": {"dataschema": "schemas/order", "subject": "a\nb"},
	"percent and space":     {"q": "100% sure", "Q": "100% sure"},
}

func TestMetadataCrossesEveryMode(t *testing.T) {
	for name, md := range metadataShapes {
		t.Run(name, func(t *testing.T) {
			ev := sampleOrder()
			ev.Metadata = maps.Clone(md)
			e, err := cloudevents.FromEvent(ev)
			if err != nil {
				t.Fatalf("FromEvent() = %v", err)
			}
			if err := e.Validate(); err != nil {
				t.Fatalf("FromEvent() made an invalid CloudEvent: %v", err)
			}
			// Keys that may be extensions are extensions: CloudEvents consumers see them.
			for k, v := range md {
				if k == "subject" || k == "dataschema" || k == "partitionkey" || k == cloudevents.MetadataExtension || v == "" {
					continue
				}
				if validExtensionName(k) && validString(v) && e.Extensions[k] != v {
					t.Errorf("Metadata %q = %q is not the extension of that name (got %q)", k, v, e.Extensions[k])
				}
			}
			check := func(mode string, got cloudevents.Event, err error) {
				t.Helper()
				if err != nil {
					t.Fatalf("%s: decoding = %v", mode, err)
				}
				back, err := cloudevents.ToEvent[order](got)
				if err != nil {
					t.Fatalf("%s: ToEvent() = %v", mode, err)
				}
				if !maps.Equal(back.Metadata, md) {
					t.Errorf("%s: Metadata came back as %q; want %q", mode, back.Metadata, md)
				}
				if back.Key != ev.Key {
					t.Errorf("%s: Key came back as %q; want %q", mode, back.Key, ev.Key)
				}
			}
			doc, err := e.MarshalJSON()
			if err != nil {
				t.Fatalf("MarshalJSON() = %v", err)
			}
			got, err := cloudevents.Decoder{}.Structured(doc)
			check("structured", got, err)
			for _, b := range []cloudevents.Binding{cloudevents.NATS, cloudevents.Kafka, cloudevents.AMQP} {
				h, body := headerOf(t, &e, b)
				got, err := cloudevents.Decoder{}.Message(b, maps.All(h), body)
				check("binary "+b.Prefix, got, err)
			}
		})
	}
}

func validExtensionName(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	switch s {
	case "id", "source", "type", "subject", "time", "specversion", "datacontenttype", "dataschema", "data", "data_base64":
		return false
	}
	return true
}

func validString(s string) bool {
	for _, r := range s {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || (r >= 0xfdd0 && r <= 0xfdef) || r&0xfffe == 0xfffe {
			return false
		}
	}
	return true
}

// A peer's eventbusmetadata that is not what FromEvent writes is refused, never half read.
func TestMetadataExtensionRejects(t *testing.T) {
	for name, value := range map[string]string{
		"not JSON":            "correlationId=c-1",
		"not an object":       `["a","b"]`,
		"number member":       `{"a":1}`,
		"nested object":       `{"a":{"b":"c"}}`,
		"duplicate key":       `{"a":"1","a":"2"}`,
		"key of an extension": `{"tenant":"other"}`,
		"key of subject":      `{"subject":"other"}`,
		"trailing data":       `{"a":"1"} {}`,
	} {
		t.Run(name, func(t *testing.T) {
			e, err := cloudevents.FromEvent(sampleOrder())
			if err != nil {
				t.Fatal(err)
			}
			e.Extensions[cloudevents.MetadataExtension] = value
			_, err = cloudevents.ToEvent[order](e)
			ce, ok := asError(err)
			if !ok || !errors.Is(err, cloudevents.ErrMalformed) || ce.Attribute != cloudevents.MetadataExtension {
				t.Errorf("ToEvent(eventbusmetadata %s) = %v; want an *Error of kind ErrMalformed for %q", value, err, cloudevents.MetadataExtension)
			}
			if strings.Contains(value, "tenant") && !strings.Contains(err.Error(), "tenant") {
				t.Errorf("error %q does not name the key", err)
			}
		})
	}
}

// The bus's correlation and causation keys are extension names: a chain of events is
// visible to every CloudEvents consumer, not only inside eventbusmetadata.
func TestCorrelationKeysAreExtensions(t *testing.T) {
	ev := sampleOrder()
	ev.Metadata = eventbus.Metadata{eventbus.CorrelationIDKey: "c-1", eventbus.CausationIDKey: "c-2"}
	e, err := cloudevents.FromEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	if e.Extensions[eventbus.CorrelationIDKey] != "c-1" || e.Extensions[eventbus.CausationIDKey] != "c-2" {
		t.Errorf("extensions %v; want correlationid and causationid as extensions of their own", e.Extensions)
	}
}
