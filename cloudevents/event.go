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
}

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

// checkString returns nil if s may be the value of a CloudEvents String: valid UTF-8
// without control characters (the specification allows neither).
func checkString(attr, s string) error {
	if !utf8.ValidString(s) {
		return invalid(attr, "not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return invalid(attr, fmt.Sprintf("control character %U not allowed", r))
		}
	}
	return nil
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
	if _, err := url.Parse(e.Source); err != nil {
		return invalid(attrSource, "not a URI reference")
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
		if _, _, err := mime.ParseMediaType(e.DataContentType); err != nil {
			return invalid(attrDataContentType, "not a media type")
		}
	}
	if e.DataSchema != "" {
		if err := checkString(attrDataSchema, e.DataSchema); err != nil {
			return err
		}
		if u, err := url.Parse(e.DataSchema); err != nil || !u.IsAbs() {
			return invalid(attrDataSchema, "not an absolute URI")
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
