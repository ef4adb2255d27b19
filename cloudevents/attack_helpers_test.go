package cloudevents_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ae30fb47/eventbus"
	"github.com/ae30fb47/eventbus/cloudevents"
	"github.com/google/uuid"
)

var atkExtName = regexp.MustCompile(`^[a-z0-9]{1,20}$`)

// atkCheckErr fails unless err is a *cloudevents.Error of one of the documented kinds, and
// of kind want if want is not nil.
func atkCheckErr(t testing.TB, what string, err error, want error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: nil error, want %v", what, want)
		return
	}
	var ce *cloudevents.Error
	if !errors.As(err, &ce) {
		t.Errorf("%s: error %T %v is not a *cloudevents.Error", what, err, err)
		return
	}
	switch ce.Kind {
	case cloudevents.ErrMalformed, cloudevents.ErrInvalid, cloudevents.ErrTooLarge, cloudevents.ErrUnknownType, cloudevents.ErrData:
	default:
		t.Errorf("%s: Kind %v is not a documented kind", what, ce.Kind)
	}
	if !errors.Is(err, ce.Kind) {
		t.Errorf("%s: errors.Is(err, Kind) false", what)
	}
	if want != nil && !errors.Is(err, want) {
		t.Errorf("%s: got %v, want kind %v", what, err, want)
	}
}

// atkStringOK reports whether s is a CloudEvents String: valid UTF-8, no control
// characters, no noncharacters.
func atkStringOK(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r <= 0x1f || (r >= 0x7f && r <= 0x9f) {
			return false
		}
		if (r >= 0xfdd0 && r <= 0xfdef) || r&0xfffe == 0xfffe {
			return false
		}
		if r >= 0xd800 && r <= 0xdfff {
			return false
		}
	}
	return true
}

// atkConformant checks a produced event: Validate passes, extension names fit, every
// String holds allowed characters only, and the structured form has only such members.
func atkConformant(t testing.TB, what string, e cloudevents.Event) {
	t.Helper()
	if err := e.Validate(); err != nil {
		t.Errorf("%s: produced event fails Validate: %v", what, err)
	}
	for name, v := range e.Extensions {
		if !atkExtName.MatchString(name) {
			t.Errorf("%s: extension name %q is not [a-z0-9]{1,20}", what, name)
		}
		if !atkStringOK(v) {
			t.Errorf("%s: extension %q value %q is not a CloudEvents String", what, name, v)
		}
		switch name {
		case "id", "source", "type", "specversion", "subject", "time", "datacontenttype", "dataschema", "data", "data_base64":
			t.Errorf("%s: extension named like an attribute: %q", what, name)
		}
	}
	for _, s := range []string{e.ID, e.Source, e.Type, e.Subject, e.DataContentType, e.DataSchema} {
		if !atkStringOK(s) {
			t.Errorf("%s: attribute %q is not a CloudEvents String", what, s)
		}
	}
	b, err := e.MarshalJSON()
	if err != nil {
		t.Errorf("%s: MarshalJSON: %v", what, err)
		return
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Errorf("%s: structured form not JSON: %v", what, err)
		return
	}
	for name := range m {
		switch name {
		case "id", "source", "type", "specversion", "subject", "time", "datacontenttype", "dataschema", "data", "data_base64":
			continue
		}
		if !atkExtName.MatchString(name) {
			t.Errorf("%s: structured member %q is not [a-z0-9]{1,20}", what, name)
		}
	}
	if bad := atkLoneSurrogateEscape(b); bad != "" {
		t.Errorf("%s: lone surrogate escape %s in structured form", what, bad)
	}
}

// atkLoneSurrogateEscape scans JSON text for a \uD800-\uDFFF escape not properly paired.
func atkLoneSurrogateEscape(b []byte) string {
	hex := func(i int) (int, bool) {
		if i+4 > len(b) {
			return 0, false
		}
		n := 0
		for _, c := range b[i : i+4] {
			n <<= 4
			switch {
			case c >= '0' && c <= '9':
				n |= int(c - '0')
			case c >= 'a' && c <= 'f':
				n |= int(c-'a') + 10
			case c >= 'A' && c <= 'F':
				n |= int(c-'A') + 10
			default:
				return 0, false
			}
		}
		return n, true
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		i++
		if i >= len(b) || b[i] != 'u' {
			continue
		}
		n, ok := hex(i + 1)
		if !ok {
			continue
		}
		i += 4
		if n >= 0xdc00 && n <= 0xdfff {
			return string(b[i-5 : i+1])
		}
		if n >= 0xd800 && n <= 0xdbff {
			if i+6 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
				if m, ok := hex(i + 3); ok && m >= 0xdc00 && m <= 0xdfff {
					i += 6
					continue
				}
			}
			return string(b[i-5 : i+1])
		}
	}
	return ""
}

type atkMode struct {
	name string
	// through sends e across and returns what a receiver decodes.
	through func(t testing.TB, d cloudevents.Decoder, e cloudevents.Event) (cloudevents.Event, error)
}

func atkBinary(b cloudevents.Binding) func(t testing.TB, d cloudevents.Decoder, e cloudevents.Event) (cloudevents.Event, error) {
	return func(t testing.TB, d cloudevents.Decoder, e cloudevents.Event) (cloudevents.Event, error) {
		t.Helper()
		h := make(map[string][]string)
		body, err := e.WriteBinary(b, func(name, value string) { h[name] = append(h[name], value) })
		if err != nil {
			return cloudevents.Event{}, fmt.Errorf("WriteBinary: %w", err)
		}
		if b.PercentEncoded {
			for name, vs := range h {
				for _, v := range vs {
					for i := 0; i < len(v); i++ {
						c := v[i]
						if c <= 0x20 || c >= 0x7f || c == '"' {
							t.Errorf("NATS header %s value %q holds byte %#x, not percent-encoded", name, v, c)
							break
						}
					}
				}
			}
		}
		for name, vs := range h {
			if len(vs) != 1 {
				t.Errorf("header %s set %d times", name, len(vs))
			}
		}
		return d.Message(b, maps.All(h), body)
	}
}

var atkModes = []atkMode{
	{"structured", func(t testing.TB, d cloudevents.Decoder, e cloudevents.Event) (cloudevents.Event, error) {
		b, err := e.MarshalJSON()
		if err != nil {
			return cloudevents.Event{}, fmt.Errorf("MarshalJSON: %w", err)
		}
		return d.Structured(b)
	}},
	{"structured-via-Message", func(t testing.TB, d cloudevents.Decoder, e cloudevents.Event) (cloudevents.Event, error) {
		b, err := e.MarshalJSON()
		if err != nil {
			return cloudevents.Event{}, fmt.Errorf("MarshalJSON: %w", err)
		}
		h := map[string][]string{"content-type": {cloudevents.ContentTypeStructured}}
		return d.Message(cloudevents.NATS, maps.All(h), b)
	}},
	{"NATS", atkBinary(cloudevents.NATS)},
	{"Kafka", atkBinary(cloudevents.Kafka)},
	{"AMQP", atkBinary(cloudevents.AMQP)},
}

type atkPayload struct {
	N int    `json:"n"`
	S string `json:"s"`
}

var atkTopic = eventbus.NewTopic[atkPayload]("attack.topic")

func atkEnvelope(key string, md eventbus.Metadata) eventbus.Event[atkPayload] {
	return eventbus.Event[atkPayload]{
		ID:       uuid.Must(uuid.NewV7()),
		Type:     atkTopic.Name(),
		Source:   "/attack/source",
		Time:     time.Date(2024, 2, 29, 12, 34, 56, 123456789, time.UTC),
		Key:      key,
		Payload:  atkPayload{N: 7, S: "x"},
		Metadata: md,
	}
}

// atkRoundTrip sends ev through every mode with decoder d and checks the envelope comes
// back equal. It returns false if any mode failed.
func atkRoundTrip(t testing.TB, what string, d cloudevents.Decoder, ev eventbus.Event[atkPayload]) bool {
	t.Helper()
	ce, err := cloudevents.FromEvent(ev)
	if err != nil {
		t.Errorf("%s: FromEvent: %v", what, err)
		return false
	}
	atkConformant(t, what, ce)
	ok := true
	for _, m := range atkModes {
		got, err := m.through(t, d, ce)
		if err != nil {
			t.Errorf("%s [%s]: decode: %v", what, m.name, err)
			ok = false
			continue
		}
		back, err := cloudevents.ToEvent[atkPayload](got)
		if err != nil {
			t.Errorf("%s [%s]: ToEvent: %v", what, m.name, err)
			ok = false
			continue
		}
		if !maps.Equal(back.Metadata, ev.Metadata) {
			ok = false
			t.Errorf("%s [%s]: Metadata not equal\n sent %s\n  got %s", what, m.name, atkShow(ev.Metadata), atkShow(back.Metadata))
		}
		if back.Key != ev.Key || back.ID != ev.ID || back.Source != ev.Source || !back.Time.Equal(ev.Time) || back.Type != ev.Type || back.Payload != ev.Payload {
			ok = false
			t.Errorf("%s [%s]: envelope differs: sent key=%q id=%v src=%q time=%v; got key=%q id=%v src=%q time=%v payload=%+v",
				what, m.name, ev.Key, ev.ID, ev.Source, ev.Time, back.Key, back.ID, back.Source, back.Time, back.Payload)
		}
	}
	return ok
}

func atkShow(md eventbus.Metadata) string {
	if len(md) > 8 {
		return fmt.Sprintf("(%d entries)", len(md))
	}
	var sb strings.Builder
	sb.WriteString("{")
	for k, v := range md {
		if len(v) > 60 {
			v = v[:60] + fmt.Sprintf("...(%d bytes)", len(v))
		}
		fmt.Fprintf(&sb, "%q:%q ", k, v)
	}
	sb.WriteString("}")
	return sb.String()
}
