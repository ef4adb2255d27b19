package cloudevents

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// SpecVersion is the CloudEvents version this package reads and writes.
const SpecVersion = "1.0"

// Event is one CloudEvent as it travels: its context attributes and its data as bytes.
// The zero value is not valid: ID, Source and Type are required (see [Event.Validate]).
type Event struct {
	ID     string // id, required
	Source string // source, a URI reference, required
	Type   string // type, required: the topic name for events of a bus

	Subject         string    // subject; "" when absent
	Time            time.Time // time; the zero Time when absent
	DataContentType string    // datacontenttype, a media type; "" when absent
	DataSchema      string    // dataschema, an absolute URI; "" when absent

	// Extensions holds the extension attributes by name, partitionkey included. Names
	// are 1 to 20 characters of a-z and 0-9 and must not be those of the attributes
	// above, specversion or data.
	Extensions map[string]string

	// Data is the event's data: JSON text when DataContentType is a JSON media type (or
	// absent and Data is valid JSON), the bytes as they are otherwise; nil when absent.
	Data []byte

	// timeSet says that the time attribute is present though Time is the zero Time
	// (0001-01-01T00:00:00Z, a valid timestamp): set by the decoders and FromEvent, so
	// that such a time survives a decode and re-encode.
	timeSet bool
}

// HasTime reports whether e has the time attribute: Time is not the zero Time, or e was
// decoded from an event whose time was 0001-01-01T00:00:00Z (or made by [FromEvent]).
func (e Event) HasTime() bool { return e.timeSet || !e.Time.IsZero() }

// PartitionKey is the extension that carries an event's ordering key (eventbus.Event.Key),
// from CloudEvents' Partitioning extension.
const PartitionKey = "partitionkey"

// Names of the context attributes, and the members of the JSON format for the data.
const (
	attrSpecVersion     = "specversion"
	attrID              = "id"
	attrSource          = "source"
	attrType            = "type"
	attrSubject         = "subject"
	attrTime            = "time"
	attrDataContentType = "datacontenttype"
	attrDataSchema      = "dataschema"
	memberData          = "data"
	memberDataBase64    = "data_base64"
)

// reserved reports whether name is a context attribute or data member, so it cannot be an
// extension.
func reserved(name string) bool {
	switch name {
	case attrSpecVersion, attrID, attrSource, attrType, attrSubject, attrTime,
		attrDataContentType, attrDataSchema, memberData, memberDataBase64:
		return true
	}
	return false
}

// MaxExtensionName is the longest extension name accepted, in characters.
const MaxExtensionName = 20

// checkExtensionName returns nil if name may be an extension's name: 1 to 20 characters of
// a-z and 0-9, and not a context attribute's.
func checkExtensionName(name string) error {
	if name == "" || len(name) > MaxExtensionName {
		return invalid(name, fmt.Sprintf("extension names must be 1 to %d characters of a-z and 0-9", MaxExtensionName))
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return invalid(name, "extension names must be characters of a-z and 0-9 only")
		}
	}
	if reserved(name) {
		return invalid(name, "is a context attribute, not an extension")
	}
	return nil
}

// checkString returns nil if s may be the value of a CloudEvents String (CloudEvents 1.0,
// "Type System"): valid UTF-8 (so no surrogate code points), without the control
// characters U+0000-U+001F and U+007F-U+009F, and without Unicode noncharacters.
func checkString(attr, s string) error {
	if !utf8.ValidString(s) {
		return invalid(attr, "not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return invalid(attr, fmt.Sprintf("control character %U not allowed", r))
		}
		if noncharacter(r) {
			return invalid(attr, fmt.Sprintf("noncharacter %U not allowed", r))
		}
	}
	return nil
}

// noncharacter reports whether r is one of Unicode's 66 noncharacters: U+FDD0-U+FDEF and
// the last two code points of each plane (U+FFFE, U+FFFF, U+1FFFE, ... U+10FFFF).
func noncharacter(r rune) bool {
	return (r >= 0xfdd0 && r <= 0xfdef) || (r&0xfffe == 0xfffe && r <= 0x10ffff)
}

// Validate reports the first fault of e as an [*Error] of kind [ErrInvalid], or nil if e
// is a valid CloudEvent that every mode can carry: ID, Source and Type present, every
// string valid UTF-8 without control characters, Source a URI reference, DataSchema an
// absolute URI, Time within years 0 to 9999, DataContentType a media type, extension
// names valid, and Data valid JSON (in UTF-8) when DataContentType is a JSON media type.
func (e Event) Validate() error {
	for _, a := range [...]struct{ name, value string }{
		{attrID, e.ID}, {attrSource, e.Source}, {attrType, e.Type},
	} {
		if a.value == "" {
			return invalid(a.name, "missing")
		}
		if err := checkString(a.name, a.value); err != nil {
			return err
		}
	}
	if _, err := url.Parse(e.Source); err != nil || !uriChars(e.Source) {
		return invalid(attrSource, "not a URI reference (RFC 3986: no spaces, no characters outside ASCII, other characters percent-encoded)")
	}
	if err := checkString(attrSubject, e.Subject); err != nil {
		return err
	}
	if !e.Time.IsZero() {
		if y := e.Time.UTC().Year(); y < 0 || y > 9999 {
			return invalid(attrTime, fmt.Sprintf("year %d outside 0 to 9999", y))
		}
	}
	if e.DataContentType != "" {
		if err := checkString(attrDataContentType, e.DataContentType); err != nil {
			return err
		}
		// RFC 2046 section 5.1: type "/" subtype, then parameters; mime.ParseMediaType
		// alone accepts a type without a subtype.
		if mt, _, err := mime.ParseMediaType(e.DataContentType); err != nil || !strings.Contains(mt, "/") {
			return invalid(attrDataContentType, "not a media type (type/subtype, as RFC 2046 defines it)")
		}
	}
	if e.DataSchema != "" {
		if err := checkDataSchema(e.DataSchema); err != nil {
			return err
		}
	}
	for name, value := range e.Extensions {
		if err := checkExtensionName(name); err != nil {
			return err
		}
		if err := checkString(name, value); err != nil {
			return err
		}
	}
	if e.Data != nil && isJSON(e.DataContentType) && e.DataContentType != "" && !validJSON(e.Data) {
		return invalid(memberData, "not valid JSON, though datacontenttype is "+e.DataContentType)
	}
	return nil
}

// checkDataSchema returns nil if s may be the dataschema attribute: a non-empty String
// that is an absolute URI.
func checkDataSchema(s string) error {
	if s == "" {
		return invalid(attrDataSchema, "empty")
	}
	if err := checkString(attrDataSchema, s); err != nil {
		return err
	}
	if u, err := url.Parse(s); err != nil || !u.IsAbs() || !uriChars(s) {
		return invalid(attrDataSchema, "not an absolute URI (RFC 3986)")
	}
	return nil
}

// uriChars reports whether s is made of the characters RFC 3986 allows in a URI
// (section 2): unreserved, reserved, and '%' followed by two hex digits. url.Parse alone
// accepts spaces, non-ASCII letters and characters such as '<', '"' and '|'.
func uriChars(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~:/?#[]@!$&'()*+,;=", c) >= 0:
		case c == '%':
			if i+2 >= len(s) {
				return false
			}
			if _, ok := unhex(s[i+1]); !ok {
				return false
			}
			if _, ok := unhex(s[i+2]); !ok {
				return false
			}
			i += 2
		default:
			return false
		}
	}
	return true
}

// validJSON reports whether b is JSON text as RFC 8259 requires it on the wire: valid
// JSON in UTF-8. encoding/json's Valid alone accepts invalid UTF-8 inside strings, which
// a structured event, a UTF-8 document, cannot carry as is.
func validJSON(b []byte) bool { return utf8.Valid(b) && json.Valid(b) }

// isJSON reports whether the media type ct is JSON: application/json, text/json or a
// +json suffix, with any parameters; "" counts as JSON, the default of the JSON format.
func isJSON(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// isStructured reports whether the media type ct is that of a structured CloudEvent.
func isStructured(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(mt)), "application/cloudevents")
}
