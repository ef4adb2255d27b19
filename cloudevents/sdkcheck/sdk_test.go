package sdkcheck

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	nethttp "net/http"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	"github.com/ae30fb47/eventbus/cloudevents"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/google/uuid"
)

type order struct {
	ID    string  `json:"id"`
	Total float64 `json:"total"`
}

// ourEvents are events of package cloudevents as FromEvent makes them: a JSON payload with
// a key, extensions, subject and dataschema; a []byte payload; and a bare one.
func ourEvents(t *testing.T) map[string]cloudevents.Event {
	t.Helper()
	at := time.Date(2026, 11, 23, 16, 30, 0, 123456789, time.UTC)
	events := map[string]cloudevents.Event{}
	add := func(name string, e cloudevents.Event, err error) {
		if err != nil {
			t.Fatalf("FromEvent(%s) = %v", name, err)
		}
		events[name] = e
	}
	e, err := cloudevents.FromEvent(eventbus.Event[order]{
		ID: uuid.New(), Type: "order.created", Source: "/shop/checkout", Time: at, Key: "o-1001",
		Payload: order{ID: "o-1001", Total: 42.5},
		Metadata: eventbus.Metadata{
			"tenant": "acme", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			"subject": "orders/o-1001", "dataschema": "https://example.com/schemas/order.json",
		},
	})
	add("json payload", e, err)
	e, err = cloudevents.FromEvent(eventbus.Event[[]byte]{
		ID: uuid.New(), Type: "blob.stored", Source: "urn:store:1", Time: at, Payload: []byte{0, 1, 2, 0xfe, 0xff},
	})
	add("bytes payload", e, err)
	e, err = cloudevents.FromEvent(eventbus.Event[string]{ID: uuid.New(), Type: "ping", Source: "pinger", Time: at.Add(time.Hour), Payload: "ping"})
	add("string payload", e, err)
	return events
}

// checkSame fails t unless the SDK's event carries what ours does.
func checkSame(t *testing.T, ours cloudevents.Event, sdk *event.Event) {
	t.Helper()
	if err := sdk.Validate(); err != nil {
		t.Fatalf("sdk Validate() = %v", err)
	}
	if sdk.SpecVersion() != "1.0" || sdk.ID() != ours.ID || sdk.Source() != ours.Source || sdk.Type() != ours.Type ||
		sdk.Subject() != ours.Subject || !sdk.Time().Equal(ours.Time) || sdk.DataContentType() != ours.DataContentType ||
		sdk.DataSchema() != ours.DataSchema {
		t.Errorf("sdk event =\n%v\nwant the attributes of %+v", sdk, ours)
	}
	got := map[string]string{}
	for name, v := range sdk.Extensions() {
		s, err := toString(v)
		if err != nil {
			t.Errorf("sdk extension %s = %v: %v", name, v, err)
		}
		got[name] = s
	}
	if !maps.Equal(got, ours.Extensions) && !(len(got) == 0 && len(ours.Extensions) == 0) {
		t.Errorf("sdk extensions = %v; want %v", got, ours.Extensions)
	}
	if !bytes.Equal(sdk.Data(), ours.Data) {
		t.Errorf("sdk data = %q; want %q", sdk.Data(), ours.Data)
	}
}

func toString(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	}
	b, err := json.Marshal(v)
	return string(b), err
}

func TestSDKParsesOurJSON(t *testing.T) {
	for name, ours := range ourEvents(t) {
		t.Run(name, func(t *testing.T) {
			data, err := ours.MarshalJSON()
			if err != nil {
				t.Fatalf("MarshalJSON() = %v", err)
			}
			var sdk event.Event
			if err := json.Unmarshal(data, &sdk); err != nil {
				t.Fatalf("sdk json.Unmarshal(%s) = %v", data, err)
			}
			checkSame(t, ours, &sdk)
		})
	}
}

// The HTTP binding of the SDK reads binary mode from "ce-" headers, as the NATS binding
// does; it does not undo percent-encoding, so these events have no value that needs it.
func TestSDKParsesOurBinaryHeaders(t *testing.T) {
	for name, ours := range ourEvents(t) {
		t.Run(name, func(t *testing.T) {
			req, err := nethttp.NewRequest(nethttp.MethodPost, "http://127.0.0.1/", nil)
			if err != nil {
				t.Fatal(err)
			}
			body, err := ours.WriteBinary(cloudevents.NATS, req.Header.Set)
			if err != nil {
				t.Fatalf("WriteBinary() = %v", err)
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
			sdk, err := cehttp.NewEventFromHTTPRequest(req)
			if err != nil {
				t.Fatalf("sdk NewEventFromHTTPRequest(%v) = %v", req.Header, err)
			}
			checkSame(t, ours, sdk)
		})
	}
}

// And the other way: what the SDK writes, we read, into the same envelope.
func TestWeParseSDKJSON(t *testing.T) {
	sdk := event.New()
	id := uuid.New()
	sdk.SetID(id.String())
	sdk.SetSource("https://example.com/shop")
	sdk.SetType("order.created")
	sdk.SetTime(time.Date(2026, 11, 23, 16, 30, 0, 5, time.UTC))
	sdk.SetSubject("orders/o-7")
	sdk.SetExtension("partitionkey", "o-7")
	sdk.SetExtension("tenant", "acme")
	sdk.SetExtension("retries", 3)
	if err := sdk.SetData(event.ApplicationJSON, order{ID: "o-7", Total: 9.99}); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(sdk)
	if err != nil {
		t.Fatal(err)
	}
	e, err := cloudevents.Decoder{}.Structured(data)
	if err != nil {
		t.Fatalf("Structured(%s) = %v", data, err)
	}
	ev, err := cloudevents.ToEvent[order](e)
	if err != nil {
		t.Fatalf("ToEvent() = %v", err)
	}
	want := eventbus.Metadata{"tenant": "acme", "retries": "3", "subject": "orders/o-7"}
	if ev.ID != id || ev.Key != "o-7" || ev.Source != sdk.Source() || !ev.Time.Equal(sdk.Time()) ||
		!maps.Equal(ev.Metadata, want) || ev.Payload != (order{ID: "o-7", Total: 9.99}) {
		t.Errorf("ToEvent(sdk's JSON) = %+v; want id %v, key o-7, metadata %v, the payload", ev, id, want)
	}

	blob := event.New()
	blob.SetID(uuid.NewString())
	blob.SetSource("s")
	blob.SetType("blob")
	if err := blob.SetData("application/octet-stream", []byte{0, 0xff}); err != nil {
		t.Fatal(err)
	}
	data, _ = json.Marshal(blob)
	e, err = cloudevents.Decoder{}.Structured(data)
	if err != nil {
		t.Fatalf("Structured(%s) = %v", data, err)
	}
	raw, err := cloudevents.ToEvent[[]byte](e)
	if err != nil || !bytes.Equal(raw.Payload, []byte{0, 0xff}) {
		t.Errorf("ToEvent[[]byte](%s) = %v, %v; want [0 255]", data, raw.Payload, err)
	}
}

// Metadata that cannot be extensions of their own (the event-design guides' correlationId,
// a key named source) travel in one string extension that the SDK keeps as it is: through
// the SDK and back, every entry is there.
func TestMetadataSurvivesTheSDK(t *testing.T) {
	md := eventbus.Metadata{
		"source": "checkout", "version": "2", "correlationId": "c-42", "x-request-id": "r 1",
		"empty": "", "line": "a\nb", "greeting": "Grüße",
	}
	ours, err := cloudevents.FromEvent(eventbus.Event[order]{
		ID: uuid.New(), Type: "order.created", Source: "/shop", Time: time.Now(), Metadata: md,
		Payload: order{ID: "o-1", Total: 1},
	})
	if err != nil {
		t.Fatalf("FromEvent() = %v", err)
	}
	data, err := ours.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var sdk event.Event
	if err := json.Unmarshal(data, &sdk); err != nil {
		t.Fatalf("sdk json.Unmarshal(%s) = %v", data, err)
	}
	checkSame(t, ours, &sdk)
	if v := sdk.Extensions()["version"]; v != "2" {
		t.Errorf("sdk extension version = %v; want 2, an extension of its own", v)
	}
	again, err := json.Marshal(&sdk)
	if err != nil {
		t.Fatal(err)
	}
	e, err := cloudevents.Decoder{}.Structured(again)
	if err != nil {
		t.Fatalf("Structured(%s) = %v", again, err)
	}
	back, err := cloudevents.ToEvent[order](e)
	if err != nil {
		t.Fatalf("ToEvent() = %v", err)
	}
	if !maps.Equal(back.Metadata, md) {
		t.Errorf("Metadata through the SDK = %q; want %q", back.Metadata, md)
	}
}
