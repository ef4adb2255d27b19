package cloudevents_test

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	"github.com/ae30fb47/eventbus/cloudevents"
)

// The codec against the letter of CloudEvents 1.0 (spec.md) and the RFCs it cites. Each
// table quotes the section it follows.

// spec.md, "Type System", String: "Sequence of allowable Unicode characters. The following
// characters MUST NOT be used: the 'control characters' in the ranges U+0000-U+001F and
// U+007F-U+009F (both ranges inclusive) [...]; code points identified as noncharacters by
// Unicode; code points identifying Surrogates, U+D800-U+DBFF and U+DC00-U+DFFF".
func TestStringsFollowTheTypeSystem(t *testing.T) {
	for _, tt := range []struct {
		value string
		ok    bool
	}{
		{"plain", true},
		{"Grüße, こんにちは, 👋", true},
		{"\u00a0 no-break space, \ufffd replacement character, \U0010fffd", true},
		{"\x00", false}, {"\x1f", false}, {"\x7f", false}, {"\u0085", false}, {"\u009f", false},
		{"\ufdd0", false}, {"\ufdef", false}, {"\ufffe", false}, {"\uffff", false},
		{"\U0001fffe", false}, {"\U0010ffff", false},
		{"\xed\xa0\x80", false}, // U+D800 in UTF-8 (CESU style): a surrogate
		{"\xff", false},
	} {
		doc := validJSON + `,"tenant":` + jsonString(tt.value) + `}`
		_, err := cloudevents.Decoder{}.Structured([]byte(doc))
		if tt.ok && err != nil {
			t.Errorf("Structured(tenant %+q) = %v; want it accepted", tt.value, err)
		}
		if !tt.ok && err == nil {
			t.Errorf("Structured(tenant %+q) accepted it; want an error", tt.value)
		}
		e := cloudevents.Event{ID: "1", Source: "s", Type: "t", Subject: tt.value}
		if err := e.Validate(); (err == nil) != tt.ok {
			t.Errorf("Validate(subject %+q) = %v; want ok=%v", tt.value, err, tt.ok)
		}
	}
}

// jsonString writes s as a JSON string with every non-ASCII character escaped, so that the
// document is valid UTF-8 even where s is not (an invalid byte stays invalid).
func jsonString(s string) string {
	const hex = "0123456789abcdef"
	b := []byte{'"'}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return string(append(b, '"'))
}

// spec.md, "Type System", Timestamp: "Date and time expression using the Gregorian
// Calendar. String encoding: RFC 3339." RFC 3339 section 5.6 gives the grammar; its NOTE
// there: "Per [ABNF] and ISO8601, the 'T' and 'Z' characters in this syntax may
// alternatively be lower case 't' or 'z' respectively"; time-second is "00-58, 00-59, 00-60
// based on leap second rules"; time-hour "00-23"; time-secfrac "." 1*DIGIT.
func TestTimeIsRFC3339(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	for _, tt := range []struct {
		in   string
		want time.Time // the zero Time: refused
	}{
		{"2026-12-02T09:30:00Z", utc(2026, 12, 2, 9, 30, 0, 0)},
		{"2026-12-02t09:30:00z", utc(2026, 12, 2, 9, 30, 0, 0)},
		{"2026-12-02T09:30:00.5Z", utc(2026, 12, 2, 9, 30, 0, 500_000_000)},
		{"2026-12-02T09:30:00.123456789123Z", utc(2026, 12, 2, 9, 30, 0, 123_456_789)},
		{"2026-12-02T09:30:00+01:30", utc(2026, 12, 2, 8, 0, 0, 0)},
		{"2026-12-02T09:30:00-00:00", utc(2026, 12, 2, 9, 30, 0, 0)},
		{"2016-12-31T23:59:60Z", utc(2017, 1, 1, 0, 0, 0, 0)}, // a leap second
		{"2024-02-29T00:00:00Z", utc(2024, 2, 29, 0, 0, 0, 0)},
		{"0000-01-01T00:00:00Z", utc(0, 1, 1, 0, 0, 0, 0)},
		{"2026-12-02T09:30:00,5Z", time.Time{}}, // "," is ISO 8601's, not RFC 3339's
		{"2026-12-02T09:30:00+24:00", time.Time{}},
		{"2026-12-02T24:00:00Z", time.Time{}},
		{"2026-12-02T09:60:00Z", time.Time{}},
		{"2026-12-02T09:30:61Z", time.Time{}},
		{"2025-02-29T00:00:00Z", time.Time{}},
		{"2026-04-31T00:00:00Z", time.Time{}},
		{"2026-12-02T09:30:00.Z", time.Time{}},
		{"2026-12-02T09:30:00", time.Time{}},
		{"2026-12-02 09:30:00Z", time.Time{}},
		{"2026-12-2T09:30:00Z", time.Time{}},
		{"+2026-12-02T09:30:00Z", time.Time{}},
		{"2026-12-02T09:30:00+0100", time.Time{}},
		{"2026-12-02T09:30:00Z ", time.Time{}},
	} {
		doc := validJSON + `,"time":"` + tt.in + `"}`
		e, err := cloudevents.Decoder{}.Structured([]byte(doc))
		if tt.want.IsZero() {
			if err == nil {
				t.Errorf("Structured(time %q) = %v; want it refused", tt.in, e.Time)
			} else if !errors.Is(err, cloudevents.ErrInvalid) {
				t.Errorf("Structured(time %q) = %v; want ErrInvalid", tt.in, err)
			}
			continue
		}
		if err != nil || !e.Time.Equal(tt.want) {
			t.Errorf("Structured(time %q) = %v, %v; want %v", tt.in, e.Time, err, tt.want)
		}
	}
}

// A time of 0001-01-01T00:00:00Z is a valid Timestamp: it survives decoding and
// re-encoding in both modes, and the Registry publishes it as it is rather than the time
// of publishing.
func TestZeroTimeIsATime(t *testing.T) {
	const zero = "0001-01-01T00:00:00Z"
	e, err := cloudevents.Decoder{}.Structured([]byte(validJSON + `,"time":"` + zero + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !e.HasTime() {
		t.Fatal("HasTime() = false after decoding a time of " + zero)
	}
	doc, err := e.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	again, err := cloudevents.Decoder{}.Structured(doc)
	if err != nil || !again.HasTime() || !again.Time.IsZero() {
		t.Errorf("re-encoded in structured mode: %s; decoded HasTime %v, %v", doc, again.HasTime(), err)
	}
	h, body := headerOf(t, &e, cloudevents.NATS)
	if got := h["ce-time"]; len(got) != 1 || got[0] != zero {
		t.Errorf("binary mode ce-time = %q; want %q", got, zero)
	}
	if _, err := (cloudevents.Decoder{}).Message(cloudevents.NATS, maps.All(h), body); err != nil {
		t.Fatal(err)
	}
	if made := (cloudevents.Event{ID: "1", Source: "s", Type: "t"}); made.HasTime() {
		t.Error("HasTime() of an Event made without a Time = true")
	}

	reg := cloudevents.NewRegistry()
	topic := eventbus.NewTopic[[]byte](e.Type)
	if err := cloudevents.Register(reg, topic); err != nil {
		t.Fatal(err)
	}
	bus := eventbus.New()
	defer bus.Close(t.Context())
	got := make(chan time.Time, 1)
	eventbus.Subscribe(bus, topic, "s", func(_ context.Context, ev eventbus.Event[[]byte]) error {
		got <- ev.Time
		return nil
	})
	in, err := reg.Decode(e)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Publish(t.Context(), bus, eventbus.WithWait()); err != nil {
		t.Fatal(err)
	}
	if tm := <-got; !tm.IsZero() {
		t.Errorf("the Registry published the event with Time %v; want %s", tm, zero)
	}
}

// spec.md, datacontenttype: "Content type of data value. This attribute enables data to
// carry any type of content, whereby format and encoding might differ from that of the
// chosen event format." Constraints: "If present, MUST adhere to the format specified in
// RFC 2046", whose section 5.1 is type "/" subtype *(";" parameter).
func TestDataContentTypeIsAMediaType(t *testing.T) {
	for ct, ok := range map[string]bool{
		"application/json":              true,
		"text/plain; charset=utf-8":     true,
		"application/vnd.shop+json;v=2": true,
		"text":                          false,
		"text/":                         false,
		"/json":                         false,
		"application/json; charset":     false,
		"application json":              false,
	} {
		e := cloudevents.Event{ID: "1", Source: "s", Type: "t", DataContentType: ct}
		if err := e.Validate(); (err == nil) != ok {
			t.Errorf("Validate(datacontenttype %q) = %v; want ok=%v", ct, err, ok)
		}
	}
}
