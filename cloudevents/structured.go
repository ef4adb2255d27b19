package cloudevents

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// ContentTypeStructured is the media type of a structured CloudEvent in JSON.
const ContentTypeStructured = "application/cloudevents+json"

// MarshalJSON writes e in the JSON event format (structured mode): the context
// attributes, then the extensions sorted by name, then the data, embedded as JSON
// ("data") when DataContentType is a JSON media type (or absent) and Data is valid JSON in
// UTF-8 with no white space around it (and not null), and as base64 ("data_base64")
// otherwise. It returns an [*Error] if e is not valid (see [Event.Validate]). Its
// receiver is a value, so encoding/json uses it for an Event held by value too (in a map,
// a slice or a field), not only through a pointer.
func (e Event) MarshalJSON() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 256+len(e.Data)+len(e.Data)/3)
	b = append(b, `{"specversion":"1.0"`...)
	b = appendMember(b, attrID, e.ID)
	b = appendMember(b, attrSource, e.Source)
	b = appendMember(b, attrType, e.Type)
	if e.Subject != "" {
		b = appendMember(b, attrSubject, e.Subject)
	}
	if e.HasTime() {
		b = appendMember(b, attrTime, formatTime(e.Time))
	}
	if e.DataContentType != "" {
		b = appendMember(b, attrDataContentType, e.DataContentType)
	}
	if e.DataSchema != "" {
		b = appendMember(b, attrDataSchema, e.DataSchema)
	}
	for _, name := range slices.Sorted(maps.Keys(e.Extensions)) {
		b = appendMember(b, name, e.Extensions[name])
	}
	if e.Data != nil {
		if embedsJSON(e.DataContentType, e.Data) {
			b = append(b, `,"data":`...)
			b = append(b, e.Data...)
		} else {
			b = append(b, `,"data_base64":"`...)
			b = base64.StdEncoding.AppendEncode(b, e.Data)
			b = append(b, '"')
		}
	}
	return append(b, '}'), nil
}

// embedsJSON reports whether data goes into structured mode as JSON ("data") rather than
// base64: if its media type is JSON (or absent) and it is valid JSON in UTF-8 (the
// document must be UTF-8) without white space around it, which a decoder would not keep,
// and not null, which a decoder reads as no data.
func embedsJSON(ct string, data []byte) bool {
	return isJSON(ct) && len(data) > 0 && len(bytes.TrimSpace(data)) == len(data) &&
		string(data) != "null" && validJSON(data)
}

// UnmarshalJSON reads e from the JSON event format with the limits of the zero [Decoder];
// see [Decoder.Structured].
func (e *Event) UnmarshalJSON(b []byte) error {
	ev, err := Decoder{}.Structured(b)
	if err != nil {
		return err
	}
	*e = ev
	return nil
}

// formatTime formats t as the CloudEvents time attribute: RFC 3339 in UTC, nanoseconds
// without trailing zeros.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// parseTime parses the time attribute, a Timestamp: an RFC 3339 date-time (section 5.6).
// As RFC 3339 allows, "T" and "Z" may be lower case, the seconds may be 60 (a leap second,
// which time.Time cannot hold: it becomes the first second of the next minute), and an
// offset of -00:00 means UTC. The fraction is one digit or more, after a "."; digits past
// the nanosecond are dropped. Anything else that Go's own RFC 3339 layout accepts (a ","
// before the fraction, an offset hour of 24) is refused.
func parseTime(s string) (time.Time, error) {
	t, ok := parseRFC3339(s)
	if !ok {
		return time.Time{}, invalid(attrTime, "not an RFC 3339 timestamp")
	}
	return t, nil
}

// parseRFC3339 parses s by the grammar of RFC 3339 section 5.6:
//
//	date-time = full-date "T" full-time
//	full-date = date-fullyear "-" date-month "-" date-mday   ; 4, 2 and 2 digits
//	full-time = partial-time time-offset
//	partial-time = time-hour ":" time-minute ":" time-second [time-secfrac]
//	time-secfrac = "." 1*DIGIT
//	time-offset = "Z" / time-numoffset
//	time-numoffset = ("+" / "-") time-hour ":" time-minute
//
// with date-mday within the month (leap years counted), time-hour 00-23, time-minute
// 00-59 and time-second 00-60.
func parseRFC3339(s string) (time.Time, bool) {
	digits := func(at, n int) (int, bool) {
		if at+n > len(s) {
			return 0, false
		}
		v := 0
		for i := at; i < at+n; i++ {
			if s[i] < '0' || s[i] > '9' {
				return 0, false
			}
			v = v*10 + int(s[i]-'0')
		}
		return v, true
	}
	sep := func(at int, c byte) bool { return at < len(s) && (s[at] == c || s[at] == c|0x20) }
	year, ok1 := digits(0, 4)
	month, ok2 := digits(5, 2)
	day, ok3 := digits(8, 2)
	hour, ok4 := digits(11, 2)
	minute, ok5 := digits(14, 2)
	second, ok6 := digits(17, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || !sep(4, '-') || !sep(7, '-') || !sep(10, 'T') ||
		!sep(13, ':') || !sep(16, ':') {
		return time.Time{}, false
	}
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || second > 60 {
		return time.Time{}, false
	}
	i, nanos := 19, 0
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			if i-start < 9 {
				nanos = nanos*10 + int(s[i]-'0')
			}
		}
		if i == start {
			return time.Time{}, false
		}
		for n := i - start; n < 9; n++ {
			nanos *= 10
		}
	}
	offset := 0
	switch {
	case i == len(s)-1 && sep(i, 'Z'):
	case i == len(s)-6 && (s[i] == '+' || s[i] == '-') && sep(i+3, ':'):
		oh, ok1 := digits(i+1, 2)
		om, ok2 := digits(i+4, 2)
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		if offset = (oh*60 + om) * 60; s[i] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	// time.Date normalizes second 60 into the next minute; the offset is undone in UTC.
	t := time.Date(year, time.Month(month), day, hour, minute, second, nanos, time.UTC)
	return t.Add(-time.Duration(offset) * time.Second), true
}

// daysIn returns the number of days of month in year, by the Gregorian calendar.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// appendMember appends `,"name":"value"` to b.
func appendMember(b []byte, name, value string) []byte {
	b = append(b, ',')
	b = appendStringEscaped(b, name)
	b = append(b, ':')
	return appendStringEscaped(b, value)
}

// Decoder decodes CloudEvents from untrusted bytes within limits. Its zero value uses the
// default limits. A Decoder is a small value: copy it freely.
type Decoder struct {
	// MaxSize bounds the bytes of one event: the JSON document in structured mode, the body
	// plus the header names and values in binary mode. 0 means DefaultMaxSize.
	MaxSize int
	// MaxExtensions bounds the number of extension attributes. 0 means
	// DefaultMaxExtensions.
	MaxExtensions int
}

// Default limits of a [Decoder].
const (
	DefaultMaxSize       = 1 << 20 // 1 MiB, the default max_payload of a NATS server
	DefaultMaxExtensions = 64
)

func (d Decoder) maxSize() int {
	if d.MaxSize <= 0 {
		return DefaultMaxSize
	}
	return d.MaxSize
}

func (d Decoder) maxExtensions() int {
	if d.MaxExtensions <= 0 {
		return DefaultMaxExtensions
	}
	return d.MaxExtensions
}

// Structured decodes one event in the JSON event format. It returns an [*Error] for input
// that is not one: of kind [ErrTooLarge] over the limits, [ErrMalformed] for bytes that are
// not a JSON object of unique members, or data that does not match its type, and
// [ErrInvalid] for attributes that are missing or wrong (specversion other than 1.0
// included). A member whose value is null counts as absent. It reads the document once
// and stops at the first fault, so its cost is linear in the size of data and a document
// with more than MaxExtensions extensions is refused at the first one over. It never
// panics.
func (d Decoder) Structured(data []byte) (Event, error) {
	if len(data) > d.maxSize() {
		return Event{}, &Error{ErrTooLarge, "", fmt.Sprintf("%d bytes, over the limit of %d", len(data), d.maxSize())}
	}
	if !utf8.Valid(data) {
		return Event{}, malformed("", "not valid UTF-8")
	}
	var ev Event
	var specVersion string
	var dataMember, dataBase64 json.RawMessage
	maxExtensions := d.maxExtensions()
	err := eachMember(data, func(name string, value json.RawMessage) error {
		switch {
		case name == memberData:
			if !isNull(value) {
				dataMember = value
			}
		case name == memberDataBase64:
			if !isNull(value) {
				dataBase64 = value
			}
		case reserved(name):
			s, present, err := stringMember(name, value)
			if err == nil && present {
				_, err = ev.setAttribute(name, s, &specVersion)
			}
			return err
		default:
			if err := checkExtensionName(name); err != nil {
				return err
			}
			v, present, err := extensionValue(name, value)
			if err == nil && present {
				err = ev.addExtension(name, v, maxExtensions)
			}
			return err
		}
		return nil
	})
	if err != nil {
		return Event{}, err
	}
	if err := checkSpecVersion(specVersion); err != nil {
		return Event{}, err
	}
	if ev.Data, err = structuredData(ev.DataContentType, dataMember, dataBase64); err != nil {
		return Event{}, err
	}
	if err := ev.Validate(); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// setAttribute sets the context attribute name (or, for specversion, *specVersion) to
// value; it reports false, and sets nothing, if name is not a context attribute.
func (e *Event) setAttribute(name, value string, specVersion *string) (bool, error) {
	switch name {
	case attrSpecVersion:
		*specVersion = value
	case attrID:
		e.ID = value
	case attrSource:
		e.Source = value
	case attrType:
		e.Type = value
	case attrSubject, attrDataContentType, attrDataSchema:
		if value == "" {
			return true, invalid(name, "empty; CloudEvents requires it to be non-empty when present")
		}
		switch name {
		case attrSubject:
			e.Subject = value
		case attrDataContentType:
			e.DataContentType = value
		default:
			e.DataSchema = value
		}
	case attrTime:
		var err error
		if e.Time, err = parseTime(value); err != nil {
			return true, err
		}
		e.timeSet = true
	default:
		return false, nil
	}
	return true, nil
}

// addExtension adds the extension name, whose name was checked, unless e already has
// limit extensions.
func (e *Event) addExtension(name, value string, limit int) error {
	if e.Extensions == nil {
		e.Extensions = make(map[string]string)
	}
	if len(e.Extensions) == limit {
		return &Error{ErrTooLarge, name, fmt.Sprintf("over the limit of %d extensions", limit)}
	}
	e.Extensions[name] = value
	return nil
}

// checkSpecVersion returns nil for "1.0".
func checkSpecVersion(v string) error {
	switch v {
	case SpecVersion:
		return nil
	case "":
		return invalid(attrSpecVersion, "missing")
	}
	return invalid(attrSpecVersion, "must be "+SpecVersion+", got "+strconv.Quote(v))
}

// structuredData returns the data of a structured event from its data or data_base64
// member (at most one of which is non-nil).
func structuredData(ct string, data, data64 json.RawMessage) ([]byte, error) {
	switch {
	case data != nil && data64 != nil:
		return nil, malformed(memberData, "both data and data_base64 are present")
	case data64 != nil:
		var s string
		if err := json.Unmarshal(data64, &s); err != nil {
			return nil, malformed(memberDataBase64, "not a JSON string")
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, malformed(memberDataBase64, "not base64")
		}
		return b, nil
	case data == nil:
		return nil, nil
	case !isJSON(ct) && data[0] == '"':
		// Data of a non-JSON type given as a JSON string: the string is the data.
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return nil, malformed(memberData, err.Error())
		}
		return []byte(s), nil
	}
	return slices.Clone(data), nil
}

// eachMember calls fn with each member of data, which must be one JSON object with unique
// member names and nothing after it, as it is parsed: it stops at the first error, its
// own or fn's, so that the cost of a document is bounded by what fn accepts of it. A
// member name given twice is found with a set, in constant time per member.
func eachMember(data []byte, fn func(name string, value json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return malformed("", "not a JSON object")
	}
	seen := make(map[string]struct{})
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return malformed("", syntaxReason(err))
		}
		name, _ := tok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return malformed(name, syntaxReason(err))
		}
		if _, dup := seen[name]; dup {
			return malformed(name, "member given twice")
		}
		seen[name] = struct{}{}
		if err := fn(name, value); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return malformed("", syntaxReason(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return malformed("", "data after the JSON object")
	}
	return nil
}

// syntaxReason describes a JSON decoding error.
func syntaxReason(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "unexpected end of JSON"
	}
	return err.Error()
}

func isNull(v json.RawMessage) bool { return string(v) == "null" }

// stringMember returns the value of the context attribute name, which must be a JSON
// string or null (absent).
func stringMember(name string, value json.RawMessage) (s string, present bool, err error) {
	if isNull(value) {
		return "", false, nil
	}
	if value[0] != '"' {
		return "", false, invalid(name, "must be a JSON string")
	}
	if err := json.Unmarshal(value, &s); err != nil {
		return "", false, malformed(name, err.Error())
	}
	if loneSurrogate(value) {
		return "", false, invalid(name, "an escaped surrogate code point that is not part of a pair")
	}
	return s, true, nil
}

// loneSurrogate reports whether the JSON text b holds a \uXXXX escape of a surrogate code
// point that is not half of a pair (a high one followed by a low one): encoding/json
// turns it into U+FFFD without a word, and CloudEvents Strings may not hold surrogates.
func loneSurrogate(b []byte) bool {
	escape := func(i int) (rune, bool) { // the code unit of an escape at b[i:], if it is one
		if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
			return 0, false
		}
		var r rune
		for _, c := range b[i+2 : i+6] {
			d, ok := unhex(c)
			if !ok {
				return 0, false
			}
			r = r<<4 | rune(d)
		}
		return r, true
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if i+1 < len(b) && b[i+1] != 'u' { // another escape: skip its letter (\\ included)
			i++
			continue
		}
		r, ok := escape(i)
		if !ok {
			continue
		}
		switch {
		case r >= 0xd800 && r <= 0xdbff:
			if lo, ok := escape(i + 6); !ok || lo < 0xdc00 || lo > 0xdfff {
				return true
			}
			i += 11
		case r >= 0xdc00 && r <= 0xdfff:
			return true
		default:
			i += 5
		}
	}
	return false
}

// extensionValue returns the value of an extension as a string: a JSON string as is, an
// integer or a boolean as its text; null means absent. Other JSON values are invalid.
func extensionValue(name string, value json.RawMessage) (v string, present bool, err error) {
	switch c := value[0]; {
	case c == 'n':
		return "", false, nil
	case c == '"':
		return stringMember(name, value)
	case c == 't' || c == 'f':
		return string(value), true, nil
	case c == '-' || (c >= '0' && c <= '9'):
		if _, err := strconv.ParseInt(string(value), 10, 32); err != nil {
			return "", false, invalid(name, "a number must be a 32-bit integer, got "+string(value))
		}
		return string(value), true, nil // as it was written: "-0" stays "-0"
	}
	return "", false, invalid(name, "an extension must be a string, an integer or a boolean")
}
