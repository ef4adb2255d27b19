package cloudevents

import (
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
)

// Binding says how a broker's message headers carry a CloudEvent in binary mode: the
// prefix of every attribute's header, the header that holds datacontenttype (and, for a
// structured message, its media type), and whether header values are percent-encoded.
type Binding struct {
	Prefix      string // prefix of attribute headers: "ce-" makes the id header "ce-id"
	ContentType string // header of the content type, as in "content-type"
	// PercentEncoded says that header values are percent-encoded, as the HTTP binding
	// requires for headers that must be printable ASCII: space, '"', '%' and every byte
	// outside printable ASCII become %XX. Without it, values travel as UTF-8, as they are.
	PercentEncoded bool
}

// The bindings of the brokers this package knows. They are variables because Go has no
// struct constants, as base64.StdEncoding and binary.LittleEndian are: treat them as
// constants, and make a Binding of your own for another broker.
//
// NATS follows the NATS protocol binding's binary mode, which its published version
// (1.0.2) does not define yet (it knows only structured mode; NATS 2.2 added headers), as
// the version in the works (1.0.3) and cloudevents/sdk-go do: "ce-" headers with values
// percent-encoded as in HTTP, and the datacontenttype in "content-type", as sdk-go writes
// it (the draft names it "ce-datacontenttype", which Message also reads). Kafka and AMQP
// follow their bindings 1.0.2: "ce_" headers and "cloudEvents:" application properties,
// values as UTF-8 strings, without percent-encoding.
//
// Interoperability: sdk-go (v2.16, checked with its HTTP binding) does not undo
// percent-encoding when it reads binary mode, so an attribute value with a space, '"', '%'
// or a non-ASCII character reaches it encoded; use structured mode (content type
// application/cloudevents+json) with sdk-go consumers when values may hold those.
var (
	NATS  = Binding{Prefix: "ce-", ContentType: "content-type", PercentEncoded: true}
	Kafka = Binding{Prefix: "ce_", ContentType: "content-type"}
	AMQP  = Binding{Prefix: "cloudEvents:", ContentType: "content-type"}
)

// WriteBinary writes e in binary mode: it calls set once per header, each context
// attribute and extension under the binding's prefix (datacontenttype under its content
// type header instead), with values percent-encoded if the binding says so, and returns
// the body: e.Data, not copied. It returns an [*Error] if e is not valid (see
// [Event.Validate]), before calling set.
func (e Event) WriteBinary(b Binding, set func(name, value string)) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	encode := func(s string) string { return s }
	if b.PercentEncoded {
		encode = encodeHeader
	}
	set(b.Prefix+attrSpecVersion, SpecVersion)
	set(b.Prefix+attrID, encode(e.ID))
	set(b.Prefix+attrSource, encode(e.Source))
	set(b.Prefix+attrType, encode(e.Type))
	if e.Subject != "" {
		set(b.Prefix+attrSubject, encode(e.Subject))
	}
	if e.HasTime() {
		set(b.Prefix+attrTime, formatTime(e.Time))
	}
	if e.DataContentType != "" {
		set(b.ContentType, encode(e.DataContentType))
	}
	if e.DataSchema != "" {
		set(b.Prefix+attrDataSchema, encode(e.DataSchema))
	}
	for _, name := range slices.Sorted(maps.Keys(e.Extensions)) {
		set(b.Prefix+name, encode(e.Extensions[name]))
	}
	return e.Data, nil
}

// Message decodes one event from a broker message: in structured mode if the content
// type header is a CloudEvents media type (application/cloudevents+json), in binary mode
// otherwise. header yields each header's name and values, as maps.All does for a NATS or
// HTTP header map; names are matched without regard to case, and other headers are
// ignored; values are percent-decoded if the binding says they are encoded. In binary
// mode, a header given twice, or an extension under an invalid name,
// is an error; data of a JSON media type must be valid JSON in UTF-8. The errors and limits are
// those of [Decoder.Structured]. It never panics.
func (d Decoder) Message(b Binding, header iter.Seq2[string, []string], body []byte) (Event, error) {
	if b.Prefix == "" || b.ContentType == "" {
		return Event{}, malformed("", "the Binding has no prefix or content type header")
	}
	for name, values := range header {
		if strings.EqualFold(name, b.ContentType) && len(values) == 1 && isStructured(values[0]) {
			if !strings.Contains(strings.ToLower(values[0]), "json") {
				return Event{}, malformed(attrDataContentType, "structured mode in a format other than JSON: "+values[0])
			}
			return d.Structured(body)
		}
	}
	size := len(body)
	var ev Event
	var specVersion string
	seen := make(map[string]bool)
	for name, values := range header {
		lower := strings.ToLower(name)
		var attr string
		switch {
		case lower == strings.ToLower(b.ContentType):
			attr = attrDataContentType
		case len(lower) >= len(b.Prefix) && strings.EqualFold(lower[:len(b.Prefix)], b.Prefix):
			// (The prefix alone names an extension without a name: refused below.)
			attr = lower[len(b.Prefix):]
		default:
			continue
		}
		for _, v := range values {
			size += len(name) + len(v)
		}
		if size > d.maxSize() {
			return Event{}, &Error{ErrTooLarge, "", fmt.Sprintf("over the limit of %d bytes", d.maxSize())}
		}
		if len(values) != 1 || seen[attr] {
			return Event{}, malformed(attr, "header given more than once")
		}
		seen[attr] = true
		value := values[0]
		if b.PercentEncoded {
			var ok bool
			if value, ok = decodeHeader(value); !ok {
				return Event{}, malformed(attr, "bad percent-encoding")
			}
		}
		isAttr, err := ev.setAttribute(attr, value, &specVersion)
		if err == nil && !isAttr {
			if err = checkExtensionName(attr); err == nil {
				err = ev.addExtension(attr, value, d.maxExtensions())
			}
		}
		if err != nil {
			return Event{}, err
		}
	}
	if size > d.maxSize() {
		return Event{}, &Error{ErrTooLarge, "", fmt.Sprintf("%d bytes, over the limit of %d", size, d.maxSize())}
	}
	if err := checkSpecVersion(specVersion); err != nil {
		return Event{}, err
	}
	if len(body) > 0 {
		ev.Data = body
		if ev.DataContentType != "" && isJSON(ev.DataContentType) && !validJSON(body) {
			return Event{}, malformed(memberData, "not valid JSON, though datacontenttype is "+ev.DataContentType)
		}
	}
	if err := ev.Validate(); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// encodeHeader percent-encodes s for a header value, as the HTTP binding requires: space,
// '"', '%' and every byte outside printable ASCII.
func encodeHeader(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if escapeHeaderByte(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		if c := s[i]; escapeHeaderByte(c) {
			b = append(b, '%', hex[c>>4], hex[c&0xf])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

func escapeHeaderByte(c byte) bool { return c <= ' ' || c >= 0x7f || c == '"' || c == '%' }

// decodeHeader undoes encodeHeader: it decodes every %XX; a '%' not followed by two hex
// digits is an error.
func decodeHeader(s string) (string, bool) {
	if !strings.Contains(s, "%") {
		return s, true
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		b = append(b, hi<<4|lo)
		i += 2
	}
	return string(b), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
