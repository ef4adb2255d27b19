package cloudevents

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/ae30fb47/eventbus"
)

// MetadataExtension is the extension that carries the [eventbus.Metadata] entries which
// cannot travel as extensions of their own: a JSON object whose members are those entries'
// keys and values, all strings, sorted by key, written so that the whole is a valid
// CloudEvents String (control characters and Unicode noncharacters escaped as \uXXXX).
// For example, Metadata{"correlationId": "c-1", "region": "eu"} travels as the extension
// region ("eu") and this one ({"correlationId":"c-1"}).
//
// A consumer that does not know eventbus sees one more string extension; one that does
// ([ToEvent]) merges its members back into Metadata.
const MetadataExtension = "eventbusmetadata"

// travelsAlone reports whether the Metadata entry name=value travels as an extension of
// its own: name is a valid extension name that no attribute or extension of this package
// takes, and value a non-empty CloudEvents String. Every other entry travels in
// MetadataExtension ("subject" and "dataschema" aside: see FromEvent).
func travelsAlone(name, value string) bool {
	return value != "" && name != PartitionKey && name != MetadataExtension &&
		checkExtensionName(name) == nil && checkString(name, value) == nil
}

// encodeMetadata returns rest, the Metadata entries that travel in MetadataExtension, as
// that extension's value. It returns an [*Error] of kind [ErrInvalid] for a key or value
// that is not valid UTF-8, which no CloudEvent can carry.
func encodeMetadata(rest map[string]string) (string, error) {
	b := []byte{'{'}
	for i, name := range slices.Sorted(maps.Keys(rest)) {
		value := rest[name]
		if !utf8.ValidString(name) {
			return "", invalid(MetadataExtension, "a Metadata key is not valid UTF-8: "+printable(name))
		}
		if !utf8.ValidString(value) {
			return "", invalid(name, "the Metadata value is not valid UTF-8")
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = appendStringEscaped(b, name)
		b = append(b, ':')
		b = appendStringEscaped(b, value)
	}
	return string(append(b, '}')), nil
}

// decodeMetadata parses the value of MetadataExtension into md: a JSON object of string
// members, each name given once and not already in md.
func decodeMetadata(value string, md eventbus.Metadata) error {
	if loneSurrogate([]byte(value)) {
		return malformed(MetadataExtension, "an escaped surrogate code point that is not part of a pair")
	}
	err := eachMember([]byte(value), func(name string, raw json.RawMessage) error {
		if len(raw) == 0 || raw[0] != '"' {
			return malformed(MetadataExtension, "member "+printable(name)+" is not a JSON string")
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return malformed(MetadataExtension, err.Error())
		}
		if _, dup := md[name]; dup {
			return malformed(MetadataExtension, "Metadata key "+printable(name)+" given twice")
		}
		md[name] = s
		return nil
	})
	if err != nil {
		if e, ok := err.(*Error); ok && e.Attribute != MetadataExtension {
			if e.Attribute != "" {
				e.Reason = "member " + printable(e.Attribute) + ": " + e.Reason
			}
			e.Attribute = MetadataExtension
		}
		return err
	}
	return nil
}

// printable quotes s, cut to 64 bytes, for an error message.
func printable(s string) string {
	if len(s) > 64 {
		return strconv.Quote(s[:64]) + "..."
	}
	return strconv.Quote(s)
}

// appendStringEscaped appends s as a JSON string in which every character that a
// CloudEvents String may not hold (control characters, noncharacters) is escaped, so the
// result is one: for the members of a structured event (valid Strings already, so written
// as they are but for '"' and '\\') and of eventbusmetadata. Bytes that are not valid
// UTF-8 become U+FFFD.
func appendStringEscaped(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	u := func(b []byte, r rune) []byte {
		return append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
	}
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20 || (r >= 0x7f && r <= 0x9f) || noncharacter(r) && r <= 0xffff:
			b = u(b, r)
		case noncharacter(r): // beyond the BMP: a surrogate pair
			r -= 0x10000
			b = u(u(b, 0xd800+r>>10), 0xdc00+r&0x3ff)
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}
