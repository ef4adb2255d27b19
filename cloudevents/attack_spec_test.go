package cloudevents_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	"github.com/ae30fb47/eventbus/cloudevents"
	"github.com/google/uuid"
)

const atkID = "0190a8a6-58b2-7c1e-8d6e-0123456789ab"

func atkDoc(extra string) []byte {
	s := `{"specversion":"1.0","id":"` + atkID + `","source":"/s","type":"attack.topic"`
	if extra != "" {
		s += "," + extra
	}
	return []byte(s + "}")
}

func atkTimeDoc(ts string) []byte { return atkDoc(`"time":"` + ts + `"`) }

func atkTimeHeaders(b cloudevents.Binding, ts string) map[string][]string {
	return map[string][]string{b.Prefix + "specversion": {"1.0"}, b.Prefix + "id": {atkID}, b.Prefix + "source": {"/s"}, b.Prefix + "type": {"attack.topic"}, b.Prefix + "time": {ts}}
}

// RFC 3339 section 5.6, to the letter.
func TestAttackTimeValid(t *testing.T) {
	valid := map[string]time.Time{
		"1985-04-12T23:20:50.52Z":         time.Date(1985, 4, 12, 23, 20, 50, 520000000, time.UTC),
		"1996-12-19T16:39:57-08:00":       time.Date(1996, 12, 20, 0, 39, 57, 0, time.UTC),
		"1937-01-01T12:00:27.87+00:20":    time.Date(1937, 1, 1, 11, 40, 27, 870000000, time.UTC),
		"2024-01-01t00:00:00z":            time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		"2024-01-01t00:00:00Z":            time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		"2024-01-01T00:00:00z":            time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		"2024-02-29T00:00:00Z":            time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC),
		"2000-02-29T00:00:00Z":            time.Date(2000, 2, 29, 0, 0, 0, 0, time.UTC),
		"2024-01-01T00:00:00.1Z":          time.Date(2024, 1, 1, 0, 0, 0, 100000000, time.UTC),
		"2024-01-01T00:00:00.123456789Z":  time.Date(2024, 1, 1, 0, 0, 0, 123456789, time.UTC),
		"2024-01-01T00:00:00.000000000Z":  time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		"2024-01-01T00:00:00-00:00":       time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		"2024-01-01T00:00:00+23:59":       time.Date(2023, 12, 31, 0, 1, 0, 0, time.UTC),
		"2024-01-01T00:00:00-23:59":       time.Date(2024, 1, 1, 23, 59, 0, 0, time.UTC),
		"0001-01-01T00:00:00Z":            {},
		"9999-12-31T23:59:59.999999999Z":  time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		"0000-01-01T00:00:00Z":            time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		"0000-02-29T00:00:00Z":            time.Date(0, 2, 29, 0, 0, 0, 0, time.UTC), // year 0 is a leap year (proleptic Gregorian)
		"2024-01-01T00:00:00.1234567891Z": time.Date(2024, 1, 1, 0, 0, 0, 123456789, time.UTC),
	}
	leap := []string{"1990-12-31T23:59:60Z", "1990-12-31T15:59:60-08:00", "2016-12-31T23:59:60.5Z", "1990-12-31t23:59:60z"}
	for ts, want := range valid {
		for _, m := range []struct {
			name string
			dec  func() (cloudevents.Event, error)
		}{
			{"structured", func() (cloudevents.Event, error) { return cloudevents.Decoder{}.Structured(atkTimeDoc(ts)) }},
			{"NATS", func() (cloudevents.Event, error) {
				return cloudevents.Decoder{}.Message(cloudevents.NATS, maps.All(atkTimeHeaders(cloudevents.NATS, ts)), nil)
			}},
			{"Kafka", func() (cloudevents.Event, error) {
				return cloudevents.Decoder{}.Message(cloudevents.Kafka, maps.All(atkTimeHeaders(cloudevents.Kafka, ts)), nil)
			}},
		} {
			e, err := m.dec()
			if err != nil {
				t.Errorf("%s time %q: %v, want accepted (RFC 3339)", m.name, ts, err)
				continue
			}
			if !e.Time.Equal(want) {
				t.Errorf("%s time %q: got %v, want %v", m.name, ts, e.Time, want)
			}
			if !e.HasTime() {
				t.Errorf("%s time %q: HasTime() = false", m.name, ts)
			}
			if b, err := e.MarshalJSON(); err != nil {
				t.Errorf("%s time %q: decoded event does not re-encode: %v", m.name, ts, err)
			} else if e2, err := (cloudevents.Decoder{}).Structured(b); err != nil || !e2.Time.Equal(want) || !e2.HasTime() {
				t.Errorf("%s time %q: re-encoded %s decodes to %v hasTime=%v err=%v", m.name, ts, b, e2.Time, e2.HasTime(), err)
			}
		}
	}
	for _, ts := range leap {
		e, err := cloudevents.Decoder{}.Structured(atkTimeDoc(ts))
		if err != nil {
			t.Errorf("leap second %q: %v, want accepted", ts, err)
			continue
		}
		if _, err := e.MarshalJSON(); err != nil {
			t.Errorf("leap second %q: re-encode: %v", ts, err)
		}
		t.Logf("leap second %q -> %v", ts, e.Time)
	}
}

func TestAttackTimeInvalid(t *testing.T) {
	invalid := []string{
		"2024-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2024-04-31T00:00:00Z", "2024-13-01T00:00:00Z",
		"2024-00-01T00:00:00Z", "2024-01-00T00:00:00Z", "2024-01-32T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T23:60:00Z",
		"2024-01-01T23:59:61Z", "2024-01-01T00:00:00", "2024-01-01T00:00Z", "2024-01-01", "2024-1-01T00:00:00Z",
		"24-01-01T00:00:00Z", "+2024-01-01T00:00:00Z", "-2024-01-01T00:00:00Z", "12024-01-01T00:00:00Z",
		"2024-01-01T00:00:00.Z", "2024-01-01T00:00:00,5Z", "2024-01-01T00:00:00+24:00", "2024-01-01T00:00:00+05:60",
		"2024-01-01T00:00:00+0500", "2024-01-01T00:00:00+05", "2024-01-01T00:00:00 Z", "2024-01-01T00:00:00Zjunk",
		" 2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z ", "2024-01-01X00:00:00Z", "2024-01-01T0:00:00Z",
		"2024-01-01T00:00:00.1234Y", "2024-01-01T00:00:00UTC", "2024-01-01T00:00:00GMT", "", "now", "1704067200",
		"２０２４-01-01T00:00:00Z", "2024-01-01T00:00:00.١Z", "2024-01-01T00:00:00+5:00", "2024-01-01T00:00:00.-1Z",
	}
	for _, ts := range invalid {
		_, err := cloudevents.Decoder{}.Structured(atkTimeDoc(ts))
		if err == nil {
			t.Errorf("structured time %q accepted, want ErrInvalid", ts)
		} else {
			atkCheckErr(t, fmt.Sprintf("structured time %q", ts), err, cloudevents.ErrInvalid)
		}
		_, err = cloudevents.Decoder{}.Message(cloudevents.Kafka, maps.All(atkTimeHeaders(cloudevents.Kafka, ts)), nil)
		if err == nil {
			t.Errorf("Kafka time %q accepted, want ErrInvalid", ts)
		} else {
			atkCheckErr(t, fmt.Sprintf("Kafka time %q", ts), err, cloudevents.ErrInvalid)
		}
	}
	// A non-string time in structured mode.
	for _, v := range []string{`1704067200`, `true`, `{}`, `[]`} {
		_, err := cloudevents.Decoder{}.Structured(atkDoc(`"time":` + v))
		atkCheckErr(t, "time "+v, err, nil)
	}
}

// Offsets that move the instant out of years 0..9999 when turned to UTC.
func TestAttackTimeYearEdgesWithOffset(t *testing.T) {
	for _, ts := range []string{"0000-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"} {
		e, err := cloudevents.Decoder{}.Structured(atkTimeDoc(ts))
		if err != nil {
			atkCheckErr(t, "time "+ts, err, cloudevents.ErrInvalid)
			t.Logf("time %q refused: %v", ts, err)
			continue
		}
		if _, err := e.MarshalJSON(); err != nil {
			t.Errorf("time %q accepted by Structured (as %v) but the decoded event does not re-encode: %v", ts, e.Time, err)
		}
		if err := e.Validate(); err != nil {
			t.Errorf("time %q accepted by Structured but decoded event fails Validate: %v", ts, err)
		}
	}
}

// 0001-01-01T00:00:00Z survives decode + re-encode, whichever way it is written.
func TestAttackZeroTimeSurvives(t *testing.T) {
	for _, ts := range []string{"0001-01-01T00:00:00Z", "0001-01-01t00:00:00z", "0001-01-01T00:00:00.000Z", "0001-01-01T00:00:00+00:00", "0001-01-01T00:00:00-00:00", "0001-01-01T01:00:00+01:00"} {
		for _, m := range []struct {
			name string
			dec  func() (cloudevents.Event, error)
		}{
			{"structured", func() (cloudevents.Event, error) { return cloudevents.Decoder{}.Structured(atkTimeDoc(ts)) }},
			{"NATS", func() (cloudevents.Event, error) {
				return cloudevents.Decoder{}.Message(cloudevents.NATS, maps.All(atkTimeHeaders(cloudevents.NATS, ts)), nil)
			}},
			{"AMQP", func() (cloudevents.Event, error) {
				return cloudevents.Decoder{}.Message(cloudevents.AMQP, maps.All(atkTimeHeaders(cloudevents.AMQP, ts)), nil)
			}},
		} {
			e, err := m.dec()
			if err != nil {
				t.Errorf("%s %q: %v", m.name, ts, err)
				continue
			}
			if !e.Time.IsZero() || !e.HasTime() {
				t.Errorf("%s %q: Time=%v HasTime=%v, want zero Time and HasTime true", m.name, ts, e.Time, e.HasTime())
				continue
			}
			b, err := e.MarshalJSON()
			if err != nil {
				t.Errorf("%s %q: MarshalJSON: %v", m.name, ts, err)
				continue
			}
			var got map[string]any
			_ = json.Unmarshal(b, &got)
			if got["time"] != "0001-01-01T00:00:00Z" {
				t.Errorf("%s %q: re-encoded time = %v, want 0001-01-01T00:00:00Z (%s)", m.name, ts, got["time"], b)
			}
			h := map[string][]string{}
			if _, err := e.WriteBinary(cloudevents.Kafka, func(n, v string) { h[n] = append(h[n], v) }); err != nil {
				t.Errorf("%s %q: WriteBinary: %v", m.name, ts, err)
			} else if h["ce_time"] == nil || h["ce_time"][0] != "0001-01-01T00:00:00Z" {
				t.Errorf("%s %q: binary ce_time = %v", m.name, ts, h["ce_time"])
			}
			// A copy of the event keeps it (value semantics).
			cp := e
			if !cp.HasTime() {
				t.Errorf("%s %q: a copy lost HasTime", m.name, ts)
			}
		}
	}
	// Absent time: HasTime false, no time written.
	e, err := cloudevents.Decoder{}.Structured(atkDoc(""))
	if err != nil {
		t.Fatal(err)
	}
	if e.HasTime() {
		t.Errorf("absent time: HasTime() = true")
	}
	b, _ := e.MarshalJSON()
	if strings.Contains(string(b), `"time"`) {
		t.Errorf("absent time re-encoded with a time: %s", b)
	}
	// null time counts as absent.
	e, err = cloudevents.Decoder{}.Structured(atkDoc(`"time":null`))
	if err != nil || e.HasTime() {
		t.Errorf("time null: err=%v HasTime=%v, want absent", err, e.HasTime())
	}
	// FromEvent of a zero Time writes it.
	ev := atkEnvelope("", nil)
	ev.Time = time.Time{}
	ce, err := cloudevents.FromEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	if !ce.HasTime() {
		t.Errorf("FromEvent(zero Time).HasTime() = false")
	}
	b, _ = ce.MarshalJSON()
	if !strings.Contains(string(b), `"time":"0001-01-01T00:00:00Z"`) {
		t.Errorf("FromEvent(zero Time) marshals without the zero time: %s", b)
	}
}

// The Registry publishes a zero time as is; an absent time as the time of publishing.
func TestAttackRegistryZeroTime(t *testing.T) {
	reg := cloudevents.NewRegistry()
	if err := cloudevents.Register(reg, atkTopic); err != nil {
		t.Fatal(err)
	}
	if err := cloudevents.Register(reg, atkTopic); err == nil {
		t.Errorf("Register twice: nil error")
	}
	bus := eventbus.New(eventbus.WithSource("/local"))
	defer bus.Close(context.Background())
	got := make(chan eventbus.Event[atkPayload], 10)
	if _, err := eventbus.Subscribe(bus, atkTopic, "h", func(_ context.Context, ev eventbus.Event[atkPayload]) error {
		got <- ev
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		doc      string
		wantZero bool
	}{
		{`"time":"0001-01-01T00:00:00Z","data":{"n":1}`, true},
		{`"time":"0001-01-01t00:00:00z"`, true},
		{`"time":"0001-01-01T01:00:00+01:00"`, true},
		{`"data":{"n":2}`, false},
	} {
		e, err := cloudevents.Decoder{}.Structured(atkDoc(tc.doc))
		if err != nil {
			t.Errorf("%s: %v", tc.doc, err)
			continue
		}
		d, err := reg.Decode(e)
		if err != nil {
			t.Errorf("%s: Decode: %v", tc.doc, err)
			continue
		}
		before := time.Now()
		if err := d.Publish(context.Background(), bus, eventbus.WithWait()); err != nil {
			t.Errorf("%s: Publish: %v", tc.doc, err)
			continue
		}
		ev := <-got
		if tc.wantZero && !ev.Time.IsZero() {
			t.Errorf("%s: handler saw Time %v, want 0001-01-01T00:00:00Z", tc.doc, ev.Time)
		}
		if !tc.wantZero && (ev.Time.IsZero() || ev.Time.Before(before.Add(-time.Second))) {
			t.Errorf("%s: handler saw Time %v, want the time of publishing", tc.doc, ev.Time)
		}
		if ev.ID.String() != atkID || ev.Source != "/s" {
			t.Errorf("%s: envelope not intact: id %v source %q", tc.doc, ev.ID, ev.Source)
		}
		// And it goes out again with the zero time.
		ce, err := cloudevents.FromEvent(ev)
		if err != nil {
			t.Errorf("%s: FromEvent: %v", tc.doc, err)
			continue
		}
		if tc.wantZero && (!ce.HasTime() || !ce.Time.IsZero()) {
			t.Errorf("%s: re-forwarded time %v HasTime %v", tc.doc, ce.Time, ce.HasTime())
		}
	}
	// A zero Decoded.
	if err := (cloudevents.Decoded{}).Publish(context.Background(), bus); err == nil {
		t.Errorf("zero Decoded.Publish = nil")
	}
	// Unknown type.
	e, _ := cloudevents.Decoder{}.Structured([]byte(`{"specversion":"1.0","id":"` + atkID + `","source":"/s","type":"other"}`))
	_, err := reg.Decode(e)
	atkCheckErr(t, "Decode(unknown type)", err, cloudevents.ErrUnknownType)
}

// The id must be a UUID in canonical form; non-canonical forms that uuid.Parse accepts
// must be refused, and the nil UUID must not be replaced by a new ID on Publish.
func TestAttackRegistryID(t *testing.T) {
	reg := cloudevents.NewRegistry()
	_ = cloudevents.Register(reg, atkTopic)
	u := uuid.MustParse(atkID)
	for _, id := range []string{"urn:uuid:" + atkID, "{" + atkID + "}", strings.ReplaceAll(atkID, "-", ""), " " + atkID, atkID + " ", "0190a8a6-58b2-7c1e-8d6e-0123456789abx"} {
		e, err := cloudevents.Decoder{}.Structured([]byte(`{"specversion":"1.0","id":"` + id + `","source":"/s","type":"attack.topic"}`))
		if err != nil {
			continue
		}
		_, err = cloudevents.ToEvent[atkPayload](e)
		if err == nil {
			t.Errorf("ToEvent(id %q) = nil error, want ErrInvalid (not canonical)", id)
		} else {
			atkCheckErr(t, "ToEvent id "+id, err, cloudevents.ErrInvalid)
		}
	}
	_ = u
	// Upper case: report what happens.
	e, _ := cloudevents.Decoder{}.Structured([]byte(`{"specversion":"1.0","id":"` + strings.ToUpper(atkID) + `","source":"/s","type":"attack.topic"}`))
	if _, err := cloudevents.ToEvent[atkPayload](e); err == nil {
		t.Logf("note: ToEvent accepts an upper-case UUID id")
	}
	// The nil UUID.
	e, err := cloudevents.Decoder{}.Structured([]byte(`{"specversion":"1.0","id":"00000000-0000-0000-0000-000000000000","source":"/s","type":"attack.topic"}`))
	if err != nil {
		t.Logf("nil UUID refused by Structured: %v", err)
		return
	}
	d, err := reg.Decode(e)
	if err != nil {
		atkCheckErr(t, "Decode(nil UUID)", err, cloudevents.ErrInvalid)
		return
	}
	bus := eventbus.New()
	defer bus.Close(context.Background())
	got := make(chan uuid.UUID, 1)
	eventbus.Subscribe(bus, atkTopic, "h", func(_ context.Context, ev eventbus.Event[atkPayload]) error { got <- ev.ID; return nil })
	if err := d.Publish(context.Background(), bus, eventbus.WithWait()); err != nil {
		t.Fatal(err)
	}
	if id := <-got; id != uuid.Nil {
		t.Errorf("event with id 00000000-0000-0000-0000-000000000000 decoded by the Registry was published with ID %v: ID not intact", id)
	}
}

// datacontenttype per RFC 2046 (type "/" subtype, parameters).
func TestAttackDataContentType(t *testing.T) {
	valid := []string{"application/json", "application/json; charset=utf-8", "application/json;charset=utf-8", "text/plain",
		"application/cloudevents+json", "APPLICATION/JSON", "application/vnd.api+json", `application/json; charset="utf-8"`,
		"application/octet-stream", "text/plain; charset=us-ascii; format=flowed", "x-custom/x-thing", "image/svg+xml"}
	invalid := []string{"application", "application/", "/json", "app lication/json", "application/js on", "application//json",
		"application/json/x", "appl@cation/json", "application/js(on", "applicatiön/json", "application/json; charset",
		"application/json; =utf-8", "application/json; charset=", "application/json\x00", "application/json\n",
		"(comment)/json", "application/json; charset=utf 8", "\"application/json\"",
		"application/json;;", "application/json; a=b c",
	}
	for _, ct := range valid {
		_, err := cloudevents.Decoder{}.Structured(atkDoc(`"datacontenttype":` + strings.TrimSpace(atkJSONString(ct))))
		if err != nil {
			t.Errorf("datacontenttype %q refused: %v", ct, err)
		}
		e := atkBase(t)
		e.DataContentType = ct
		e.Data = nil
		if err := e.Validate(); err != nil {
			t.Errorf("Validate(datacontenttype %q) = %v", ct, err)
		}
	}
	for _, ct := range invalid {
		_, err := cloudevents.Decoder{}.Structured(atkDoc(`"datacontenttype":` + atkJSONString(ct)))
		if err == nil {
			t.Errorf("structured datacontenttype %q accepted, want ErrInvalid", ct)
		} else {
			atkCheckErr(t, "datacontenttype "+ct, err, nil)
		}
		e := atkBase(t)
		e.DataContentType = ct
		e.Data = nil
		if ct == "" {
			continue // absent
		}
		if err := e.Validate(); err == nil {
			t.Errorf("Validate(datacontenttype %q) = nil, want ErrInvalid (RFC 2046)", ct)
		}
		h := map[string][]string{"ce_specversion": {"1.0"}, "ce_id": {atkID}, "ce_source": {"/s"}, "ce_type": {"t"}, "content-type": {ct}}
		if _, err := (cloudevents.Decoder{}).Message(cloudevents.Kafka, maps.All(h), nil); err == nil {
			t.Errorf("Kafka content-type %q accepted, want an error", ct)
		}
	}
	// JSON media types in upper case or with +json: data embedded as JSON.
	for _, ct := range []string{"APPLICATION/JSON", "Application/Json; charset=UTF-8", "application/vnd.x+json", "application/VND.X+JSON"} {
		e := atkBase(t)
		e.DataContentType = ct
		e.Data = []byte(`{"n":1}`)
		b, err := e.MarshalJSON()
		if err != nil {
			t.Errorf("%q: %v", ct, err)
			continue
		}
		if !strings.Contains(string(b), `"data":{"n":1}`) {
			t.Logf("note: datacontenttype %q (a JSON media type) marshals data as %s", ct, b)
		}
		// Invalid JSON under a JSON media type must fail Validate.
		e.Data = []byte(`{not json`)
		if err := e.Validate(); err == nil {
			t.Errorf("Validate(%q, invalid JSON data) = nil", ct)
		}
	}
}

func atkJSONString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func atkBase(t testing.TB) cloudevents.Event {
	ce, err := cloudevents.FromEvent(atkEnvelope("", nil))
	if err != nil {
		t.Fatal(err)
	}
	return ce
}

// source is a URI-reference and dataschema an absolute URI, per RFC 3986: no spaces,
// no characters outside its set (non-ASCII, '<', '>', '\\').
func TestAttackURIRules(t *testing.T) {
	for _, src := range []string{"/a b", "/é", "http://x/<>", "\\", "/a\"b", "/a{b}", "/a|b", "/a^b", "/a`b"} {
		e := atkBase(t)
		e.Source = src
		if err := e.Validate(); err == nil {
			t.Errorf("Validate(Source %q) = nil; not an RFC 3986 URI-reference", src)
		}
		ev := atkEnvelope("", nil)
		ev.Source = src
		if _, err := cloudevents.FromEvent(ev); err == nil {
			t.Errorf("FromEvent(Source %q) = nil error; the event's source is not a URI-reference", src)
		}
		if _, err := (cloudevents.Decoder{}).Structured(atkDocSource(src)); err == nil {
			t.Errorf("Structured(source %q) accepted", src)
		}
	}
	for _, ds := range []string{"http://x/é", "http://x/<>", "http://x/a b", "http://x/\\"} {
		e := atkBase(t)
		e.DataSchema = ds
		if err := e.Validate(); err == nil {
			t.Errorf("Validate(DataSchema %q) = nil; not an RFC 3986 absolute URI", ds)
		}
	}
}

func atkDocSource(src string) []byte {
	return []byte(`{"specversion":"1.0","id":"` + atkID + `","source":` + atkJSONString(src) + `,"type":"attack.topic"}`)
}

// Spec: subject "If present, MUST be a non-empty string"; dataschema "If present, MUST be a
// non-empty URI"; datacontenttype "If present, MUST adhere to RFC 2046". The package's
// ErrInvalid: "an attribute is missing, empty or of the wrong form".
func TestAttackEmptyOptionalAttributes(t *testing.T) {
	for _, a := range []string{"subject", "dataschema", "datacontenttype"} {
		_, err := cloudevents.Decoder{}.Structured(atkDoc(`"` + a + `":""`))
		if err == nil {
			t.Errorf(`Structured with "%s":"" accepted (read as absent), want ErrInvalid`, a)
		} else {
			atkCheckErr(t, a, err, cloudevents.ErrInvalid)
		}
		h := atkTimeHeaders(cloudevents.Kafka, "2024-01-01T00:00:00Z")
		if a == "datacontenttype" {
			h["content-type"] = []string{""}
		} else {
			h["ce_"+a] = []string{""}
		}
		_, err = cloudevents.Decoder{}.Message(cloudevents.Kafka, maps.All(h), nil)
		if err == nil {
			t.Errorf(`Kafka header %s: "" accepted (read as absent), want ErrInvalid`, a)
		}
	}
}

// "The id must be a UUID in its 8-4-4-4-12 form (hex digits of either case, as RFC 9562
// reads them ...), else ToEvent returns an [*Error] of kind [ErrInvalid]".
func TestAttackToEventUUIDForms(t *testing.T) {
	for id, ok := range map[string]bool{
		atkID:                              true,
		strings.ToUpper(atkID):             true,
		"{" + atkID + "}":                  false,
		"urn:uuid:" + atkID:                false,
		strings.ReplaceAll(atkID, "-", ""): false,
	} {
		e, err := cloudevents.Decoder{}.Structured([]byte(`{"specversion":"1.0","id":"` + id + `","source":"/s","type":"attack.topic"}`))
		if err != nil {
			t.Fatal(err)
		}
		ev, err := cloudevents.ToEvent[atkPayload](e)
		if ok && (err != nil || !strings.EqualFold(ev.ID.String(), atkID)) {
			t.Errorf("ToEvent(id %q) = %v, %v; want the UUID %s", id, ev.ID, err, atkID)
		}
		if !ok && !errors.Is(err, cloudevents.ErrInvalid) {
			t.Errorf("ToEvent(id %q) = %v; want ErrInvalid", id, err)
		}
	}
}
