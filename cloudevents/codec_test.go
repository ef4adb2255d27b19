package cloudevents_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	"github.com/ae30fb47/eventbus/cloudevents"
	"github.com/google/uuid"
)

type order struct {
	ID    string  `json:"id"`
	Total float64 `json:"total"`
}

var (
	orderCreated = eventbus.NewTopic[order]("order.created")
	blobStored   = eventbus.NewTopic[[]byte]("blob.stored")
)

var sampleTime = time.Date(2026, 11, 23, 16, 30, 0, 123456789, time.UTC)

func sampleOrder() eventbus.Event[order] {
	return eventbus.Event[order]{
		ID:       uuid.MustParse("0196b1f4-7c2a-7d3e-9f00-0123456789ab"),
		Type:     "order.created",
		Source:   "/shop/checkout",
		Time:     sampleTime,
		Key:      "o-1001",
		Payload:  order{ID: "o-1001", Total: 42.5},
		Metadata: eventbus.Metadata{"traceparent": "00-abc-01", "tenant": "acme", "subject": "orders/o-1001"},
	}
}

func TestStructuredOutput(t *testing.T) {
	e, err := cloudevents.FromEvent(sampleOrder())
	if err != nil {
		t.Fatalf("FromEvent() = %v", err)
	}
	got, err := json.Marshal(&e)
	if err != nil {
		t.Fatalf("json.Marshal() = %v", err)
	}
	want := `{"specversion":"1.0","id":"0196b1f4-7c2a-7d3e-9f00-0123456789ab","source":"/shop/checkout",` +
		`"type":"order.created","subject":"orders/o-1001","time":"2026-11-23T16:30:00.123456789Z",` +
		`"datacontenttype":"application/json","partitionkey":"o-1001","tenant":"acme","traceparent":"00-abc-01",` +
		`"data":{"id":"o-1001","total":42.5}}`
	if string(got) != want {
		t.Errorf("json.Marshal() =\n%s\nwant\n%s", got, want)
	}
}

// An Event marshals to the JSON event format as a value too, not only through a pointer:
// inside a map, a slice or a struct field, or passed to json.Marshal as it is.
func TestMarshalValue(t *testing.T) {
	e, err := cloudevents.FromEvent(sampleOrder())
	if err != nil {
		t.Fatalf("FromEvent() = %v", err)
	}
	want, err := e.MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON() = %v", err)
	}
	got, err := json.Marshal(e)
	if err != nil || string(got) != string(want) {
		t.Errorf("json.Marshal(value) = %s, %v; want %s", got, err, want)
	}
	got, err = json.Marshal(map[string]cloudevents.Event{"e": e})
	if err != nil || string(got) != `{"e":`+string(want)+`}` {
		t.Errorf("json.Marshal(map of values) = %s, %v; want {\"e\":%s}", got, err, want)
	}
	if _, err := json.Marshal(cloudevents.Event{}); !errors.Is(err, cloudevents.ErrInvalid) {
		t.Errorf("json.Marshal(zero Event) = %v; want ErrInvalid, not a Go struct dump", err)
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	in := sampleOrder()
	in.Time = time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("CET", 3600)) // any zone: the instant survives
	e, err := cloudevents.FromEvent(in)
	if err != nil {
		t.Fatalf("FromEvent() = %v", err)
	}
	t.Run("structured", func(t *testing.T) {
		data, err := e.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON() = %v", err)
		}
		back, err := cloudevents.Decoder{}.Structured(data)
		if err != nil {
			t.Fatalf("Structured(%s) = %v", data, err)
		}
		out, err := cloudevents.ToEvent[order](back)
		if err != nil || !sameEnvelope(in, out) {
			t.Errorf("ToEvent() = %+v, %v; want %+v", out, err, in)
		}
	})
	t.Run("binary", func(t *testing.T) {
		h, body := headerOf(t, &e, cloudevents.NATS)
		back, err := cloudevents.Decoder{}.Message(cloudevents.NATS, maps.All(h), body)
		if err != nil {
			t.Fatalf("Message(%v) = %v", h, err)
		}
		out, err := cloudevents.ToEvent[order](back)
		if err != nil || !sameEnvelope(in, out) {
			t.Errorf("ToEvent() = %+v, %v; want %+v", out, err, in)
		}
	})
}

func TestBytesPayload(t *testing.T) {
	in := eventbus.Event[[]byte]{
		ID: uuid.New(), Type: blobStored.Name(), Source: "store", Time: sampleTime,
		Payload: []byte{0, 1, 2, 0xff, '"', '\n'},
	}
	e, err := cloudevents.FromEvent(in)
	if err != nil {
		t.Fatalf("FromEvent() = %v", err)
	}
	if e.DataContentType != cloudevents.ContentTypeBytes {
		t.Errorf("DataContentType = %q; want %q", e.DataContentType, cloudevents.ContentTypeBytes)
	}
	data, err := e.MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON() = %v", err)
	}
	if !strings.Contains(string(data), `"data_base64":"AAEC/yIK"`) {
		t.Errorf("MarshalJSON() = %s; want data_base64 AAEC/yIK", data)
	}
	back, err := cloudevents.Decoder{}.Structured(data)
	if err != nil {
		t.Fatalf("Structured() = %v", err)
	}
	out, err := cloudevents.ToEvent[[]byte](back)
	if err != nil || !sameEnvelope(in, out) {
		t.Errorf("ToEvent() = %+v, %v; want %+v", out, err, in)
	}
	h, body := headerOf(t, &e, cloudevents.Kafka)
	if string(body) != string(in.Payload) || h["content-type"][0] != cloudevents.ContentTypeBytes || h["ce_id"][0] != in.ID.String() {
		t.Errorf("WriteBinary(Kafka) = %v, %q; want the bytes as body, ce_ headers", h, body)
	}
}

// TestFromEventRejects: what no CloudEvent can carry. (Every other Metadata entry travels:
// see metadata_test.go.)
func TestFromEventRejects(t *testing.T) {
	tests := []struct {
		name string
		md   eventbus.Metadata
		edit func(*eventbus.Event[order])
		attr string
	}{
		{name: "invalid UTF-8 value", md: eventbus.Metadata{"tenant": "\xff"}, attr: "tenant"},
		{name: "invalid UTF-8 value, key not an extension name", md: eventbus.Metadata{"Tenant": "\xff"}, attr: "Tenant"},
		{name: "invalid UTF-8 key", md: eventbus.Metadata{"t\xffx": "v"}, attr: cloudevents.MetadataExtension},
		{name: "empty source", edit: func(ev *eventbus.Event[order]) { ev.Source = "" }, attr: "source"},
		{name: "nil ID", edit: func(ev *eventbus.Event[order]) { ev.ID = uuid.Nil }, attr: "id"},
		{name: "year 10000", edit: func(ev *eventbus.Event[order]) { ev.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, attr: "time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := sampleOrder()
			if tt.md != nil {
				ev.Metadata = tt.md
			}
			if tt.edit != nil {
				tt.edit(&ev)
			}
			_, err := cloudevents.FromEvent(ev)
			ce, ok := asError(err)
			if !ok || !errors.Is(err, cloudevents.ErrInvalid) || ce.Attribute != tt.attr {
				t.Errorf("FromEvent() = %v; want an *Error of kind ErrInvalid for %q", err, tt.attr)
			}
		})
	}
	t.Run("payload that does not marshal", func(t *testing.T) {
		_, err := cloudevents.FromEvent(eventbus.Event[chan int]{ID: uuid.New(), Type: "t", Source: "s"})
		if !errors.Is(err, cloudevents.ErrData) {
			t.Errorf("FromEvent(chan) = %v; want ErrData", err)
		}
	})
}

const validJSON = `{"specversion":"1.0","id":"0196b1f4-7c2a-7d3e-9f00-0123456789ab","source":"s","type":"order.created"`

func TestStructuredRejects(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		kind  error
		attr  string
		limit cloudevents.Decoder
	}{
		{"not JSON", `{"specversion":`, cloudevents.ErrMalformed, "specversion", cloudevents.Decoder{}},
		{"an array", `[1]`, cloudevents.ErrMalformed, "", cloudevents.Decoder{}},
		{"trailing data", validJSON + `}{}`, cloudevents.ErrMalformed, "", cloudevents.Decoder{}},
		{"member twice", validJSON + `,"id":"x"}`, cloudevents.ErrMalformed, "id", cloudevents.Decoder{}},
		{"invalid UTF-8", validJSON + ",\"x\":\"\xff\"}", cloudevents.ErrMalformed, "", cloudevents.Decoder{}},
		{"missing id", `{"specversion":"1.0","source":"s","type":"t"}`, cloudevents.ErrInvalid, "id", cloudevents.Decoder{}},
		{"null id", `{"specversion":"1.0","id":null,"source":"s","type":"t"}`, cloudevents.ErrInvalid, "id", cloudevents.Decoder{}},
		{"empty type", `{"specversion":"1.0","id":"1","source":"s","type":""}`, cloudevents.ErrInvalid, "type", cloudevents.Decoder{}},
		{"numeric id", `{"specversion":"1.0","id":1,"source":"s","type":"t"}`, cloudevents.ErrInvalid, "id", cloudevents.Decoder{}},
		{"wrong specversion", `{"specversion":"0.3","id":"1","source":"s","type":"t"}`, cloudevents.ErrInvalid, "specversion", cloudevents.Decoder{}},
		{"no specversion", `{"id":"1","source":"s","type":"t"}`, cloudevents.ErrInvalid, "specversion", cloudevents.Decoder{}},
		{"bad time", validJSON + `,"time":"yesterday"}`, cloudevents.ErrInvalid, "time", cloudevents.Decoder{}},
		{"bad extension name", validJSON + `,"traceParent":"x"}`, cloudevents.ErrInvalid, "traceParent", cloudevents.Decoder{}},
		{"object extension", validJSON + `,"ext":{}}`, cloudevents.ErrInvalid, "ext", cloudevents.Decoder{}},
		{"fractional extension", validJSON + `,"ext":1.5}`, cloudevents.ErrInvalid, "ext", cloudevents.Decoder{}},
		{"data and data_base64", validJSON + `,"data":1,"data_base64":"AA=="}`, cloudevents.ErrMalformed, "data", cloudevents.Decoder{}},
		{"bad base64", validJSON + `,"data_base64":"!"}`, cloudevents.ErrMalformed, "data_base64", cloudevents.Decoder{}},
		{"oversized", validJSON + `,"data":"` + strings.Repeat("x", 100) + `"}`, cloudevents.ErrTooLarge, "", cloudevents.Decoder{MaxSize: 100}},
		{"too many extensions", validJSON + `,"a":"1","b":"2","c":"3"}`, cloudevents.ErrTooLarge, "c", cloudevents.Decoder{MaxExtensions: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.limit.Structured([]byte(tt.in))
			ce, ok := asError(err)
			if !ok || !errors.Is(err, tt.kind) || ce.Attribute != tt.attr {
				t.Errorf("Structured(%s) = %v; want an *Error of kind %v for %q", tt.in, err, tt.kind, tt.attr)
			}
		})
	}
}

func TestStructuredAccepts(t *testing.T) {
	in := `{"specversion":"1.0","id":"A234-1234-1234","source":"https://example.com/x","type":"com.example.someevent",` +
		`"time":"2018-04-05T17:31:00+02:00","comexampleextension1":"value","count":42,"flag":true,"nothing":null,` +
		`"datacontenttype":"text/plain","data":"hello"}`
	e, err := cloudevents.Decoder{}.Structured([]byte(in))
	if err != nil {
		t.Fatalf("Structured() = %v", err)
	}
	wantExt := map[string]string{"comexampleextension1": "value", "count": "42", "flag": "true"}
	if e.ID != "A234-1234-1234" || !maps.Equal(e.Extensions, wantExt) || string(e.Data) != "hello" ||
		!e.Time.Equal(time.Date(2018, 4, 5, 15, 31, 0, 0, time.UTC)) {
		t.Errorf("Structured() = %+v; want the spec's example with extensions %v and data hello", e, wantExt)
	}
	// Not a UUID: a valid CloudEvent, but not one ToEvent takes.
	if _, err := cloudevents.ToEvent[string](e); !errors.Is(err, cloudevents.ErrInvalid) {
		t.Errorf("ToEvent(id %q) = %v; want ErrInvalid", e.ID, err)
	}
}

func TestMessageRejects(t *testing.T) {
	good := func() map[string][]string {
		return map[string][]string{
			"ce-specversion": {"1.0"}, "ce-id": {"0196b1f4-7c2a-7d3e-9f00-0123456789ab"},
			"ce-source": {"s"}, "ce-type": {"t"}, "content-type": {"application/json"},
		}
	}
	tests := []struct {
		name string
		edit func(map[string][]string)
		body string
		kind error
		attr string
	}{
		{"malformed JSON data", nil, `{"a":`, cloudevents.ErrMalformed, "data"},
		{"missing id", func(h map[string][]string) { delete(h, "ce-id") }, `{}`, cloudevents.ErrInvalid, "id"},
		{"wrong specversion", func(h map[string][]string) { h["ce-specversion"] = []string{"0.3"} }, `{}`, cloudevents.ErrInvalid, "specversion"},
		{"header twice", func(h map[string][]string) { h["ce-type"] = []string{"a", "b"} }, `{}`, cloudevents.ErrMalformed, "type"},
		{"same header in two cases", func(h map[string][]string) { h["Ce-Type"] = []string{"a"} }, `{}`, cloudevents.ErrMalformed, "type"},
		{"bad percent-encoding", func(h map[string][]string) { h["ce-source"] = []string{"a%zz"} }, `{}`, cloudevents.ErrMalformed, "source"},
		{"bad extension name", func(h map[string][]string) { h["ce-trace_id"] = []string{"x"} }, `{}`, cloudevents.ErrInvalid, "trace_id"},
		{"oversized data", nil, `"` + strings.Repeat("x", 2000) + `"`, cloudevents.ErrTooLarge, ""},
		{"JSON data not in UTF-8", nil, "{\"\xdb\":0}", cloudevents.ErrMalformed, "data"},
		{"malformed structured", func(h map[string][]string) { h["content-type"] = []string{cloudevents.ContentTypeStructured} }, `{"id"`, cloudevents.ErrMalformed, "id"},
		{"structured, not JSON", func(h map[string][]string) { h["content-type"] = []string{"application/cloudevents+avro"} }, `{}`, cloudevents.ErrMalformed, "datacontenttype"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := good()
			if tt.edit != nil {
				tt.edit(h)
			}
			_, err := cloudevents.Decoder{MaxSize: 1000}.Message(cloudevents.NATS, maps.All(h), []byte(tt.body))
			ce, ok := asError(err)
			if !ok || !errors.Is(err, tt.kind) || ce.Attribute != tt.attr {
				t.Errorf("Message(%v, %.40q) = %v; want an *Error of kind %v for %q", h, tt.body, err, tt.kind, tt.attr)
			}
		})
	}
}

// Header values are percent-encoded where the binding says so (NATS, after the HTTP
// binding's rule), and carried as UTF-8 as they are where it does not (Kafka, AMQP): a
// Kafka consumer would otherwise read "50%25%20..." as the value.
func TestHeaderValueEncoding(t *testing.T) {
	const note = `50% "off" für alle`
	tests := []struct {
		binding cloudevents.Binding
		header  string
		want    string
	}{
		{cloudevents.NATS, "ce-note", "50%25%20%22off%22%20f%C3%BCr%20alle"},
		{cloudevents.Kafka, "ce_note", note},
		{cloudevents.AMQP, "cloudEvents:note", note},
	}
	for _, tt := range tests {
		t.Run(tt.binding.Prefix, func(t *testing.T) {
			e := cloudevents.Event{ID: "1", Source: "s", Type: "t", Extensions: map[string]string{"note": note}}
			h, body := headerOf(t, &e, tt.binding)
			if got := h[tt.header]; len(got) != 1 || got[0] != tt.want {
				t.Errorf("%s = %q; want %q", tt.header, got, tt.want)
			}
			back, err := cloudevents.Decoder{}.Message(tt.binding, maps.All(h), body)
			if err != nil || !sameEvent(e, back) {
				t.Errorf("Message() = %+v, %v; want %+v", back, err, e)
			}
		})
	}
	t.Run("no percent-decoding without percent-encoding", func(t *testing.T) {
		h := map[string][]string{"ce_specversion": {"1.0"}, "ce_id": {"1"}, "ce_source": {"s"}, "ce_type": {"t"}, "ce_note": {"100%zz"}}
		e, err := cloudevents.Decoder{}.Message(cloudevents.Kafka, maps.All(h), nil)
		if err != nil || e.Extensions["note"] != "100%zz" {
			t.Errorf("Message(Kafka, ce_note 100%%zz) = %+v, %v; want the value as it is", e, err)
		}
	})
}

// The draft NATS binding names the datacontenttype header ce-datacontenttype; sdk-go
// and this package write content-type. Both are read, but not both at once.
func TestNATSDataContentTypeHeaders(t *testing.T) {
	h := map[string][]string{"ce-specversion": {"1.0"}, "ce-id": {"1"}, "ce-source": {"s"}, "ce-type": {"t"},
		"ce-datacontenttype": {"application/json"}}
	e, err := cloudevents.Decoder{}.Message(cloudevents.NATS, maps.All(h), []byte(`{"a":1}`))
	if err != nil || e.DataContentType != "application/json" {
		t.Errorf("Message(ce-datacontenttype) = %+v, %v; want datacontenttype application/json", e, err)
	}
	h["content-type"] = []string{"application/json"}
	if _, err := (cloudevents.Decoder{}).Message(cloudevents.NATS, maps.All(h), []byte(`{"a":1}`)); !errors.Is(err, cloudevents.ErrMalformed) {
		t.Errorf("Message(content-type and ce-datacontenttype) = %v; want ErrMalformed", err)
	}
}

func TestMessageStructuredMode(t *testing.T) {
	e, err := cloudevents.FromEvent(sampleOrder())
	if err != nil {
		t.Fatal(err)
	}
	data, _ := e.MarshalJSON()
	h := map[string][]string{"Content-Type": {cloudevents.ContentTypeStructured + "; charset=utf-8"}, "ce-id": {"ignored"}}
	back, err := cloudevents.Decoder{}.Message(cloudevents.NATS, maps.All(h), data)
	if err != nil || !sameEvent(e, back) {
		t.Errorf("Message(structured) = %+v, %v; want %+v", back, err, e)
	}
}

func TestRegistry(t *testing.T) {
	reg := cloudevents.NewRegistry()
	if err := cloudevents.Register(reg, orderCreated); err != nil {
		t.Fatalf("Register() = %v", err)
	}
	if err := cloudevents.Register(reg, eventbus.NewTopic[string]("order.created")); err == nil {
		t.Errorf("Register(the same name twice) = nil; want an error")
	}
	if err := cloudevents.Register(reg, blobStored); err != nil {
		t.Fatalf("Register() = %v", err)
	}
	if got := reg.Types(); len(got) != 2 || got[0] != "blob.stored" || got[1] != "order.created" {
		t.Errorf("Types() = %v; want [blob.stored order.created]", got)
	}

	bus := eventbus.New(eventbus.WithSource("bus-b"))
	defer bus.Close(t.Context())
	got := make(chan eventbus.Event[order], 1)
	if _, err := eventbus.Subscribe(bus, orderCreated, "h", func(_ context.Context, ev eventbus.Event[order]) error {
		got <- ev
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	in := sampleOrder()
	e, err := cloudevents.FromEvent(in)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := reg.Decode(e)
	if err != nil {
		t.Fatalf("Decode() = %v", err)
	}
	if err := dec.Publish(t.Context(), bus, eventbus.WithWait()); err != nil {
		t.Fatalf("Publish() = %v", err)
	}
	if out := <-got; !sameEnvelope(in, out) {
		t.Errorf("handler got %+v; want %+v (the source too, not the bus's)", out, in)
	}

	unknown := e
	unknown.Type = "order.cancelled"
	if _, err := reg.Decode(unknown); !errors.Is(err, cloudevents.ErrUnknownType) {
		t.Errorf("Decode(unknown type) = %v; want ErrUnknownType", err)
	}
	bad := e
	bad.Data = []byte(`{"id":42}`)
	if _, err := reg.Decode(bad); !errors.Is(err, cloudevents.ErrData) {
		t.Errorf("Decode(data of the wrong shape) = %v; want ErrData", err)
	}
	text := e
	text.DataContentType, text.Data = "text/plain", []byte("hi")
	if _, err := reg.Decode(text); !errors.Is(err, cloudevents.ErrData) {
		t.Errorf("Decode(text/plain for a struct) = %v; want ErrData", err)
	}
	if err := (cloudevents.Decoded{}).Publish(t.Context(), bus); err == nil {
		t.Errorf("zero Decoded.Publish() = nil; want an error")
	}
}
