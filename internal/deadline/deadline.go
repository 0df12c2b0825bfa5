// Package deadline holds the one format of a disruption's deadline that the
// agent writes into a Node condition's message and the controller reads back:
// "..., not before 2024-01-10T02:00:00Z", at the end of the message.
//
// The deadline stays text in the message, rather than a field of its own,
// because Node conditions have no field for it and because the message is
// what `kubectl describe node` shows the humans deciding about the node: they
// see the same time the controller acts on. Humans and other tools write such
// conditions too, so Parse also accepts their variations of the form (case,
// a full stop, a zone offset) but nothing that might be read as another time.
package deadline

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// marker introduces the time; Parse matches it case-insensitively.
const marker = "not before"

// Suffix is how a condition message ends to announce deadline t:
// "not before " and t in RFC 3339 UTC, with as many fractional seconds as t
// has. Parse reads it back as the same instant for every t in years 0000 to
// 9999, which is all RFC 3339 can write.
func Suffix(t time.Time) string {
	return marker + " " + t.UTC().Format(time.RFC3339Nano)
}

// Parse returns the deadline at the end of a condition message, in UTC, and
// whether there is one. The message must end with "not before" (any case,
// any whitespace between and after the words) and an RFC 3339 time with a
// zone and optional fractional seconds, optionally followed by a full stop
// and whitespace. A time that does not end the message is not a deadline:
// "not before 2024-01-10T02:00:00Z, maybe" has none.
func Parse(message string) (time.Time, bool) {
	s := strings.TrimRightFunc(message, unicode.IsSpace)
	s = strings.TrimSuffix(s, ".")
	i := strings.LastIndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return time.Time{}, false
	}
	_, size := utf8.DecodeRuneInString(s[i:])
	value := s[i+size:]
	rest := strings.TrimRightFunc(s[:i], unicode.IsSpace)
	rest, ok := cutSuffixFold(rest, "before")
	if !ok {
		return time.Time{}, false
	}
	trimmed := strings.TrimRightFunc(rest, unicode.IsSpace)
	if len(trimmed) == len(rest) {
		return time.Time{}, false // "notbefore"
	}
	if _, ok := cutSuffixFold(trimmed, "not"); !ok {
		return time.Time{}, false
	}
	// RFC 3339 allows a lower-case t and z.
	value = strings.Map(func(r rune) rune {
		switch r {
		case 't':
			return 'T'
		case 'z':
			return 'Z'
		}
		return r
	}, value)
	// time.Parse alone is laxer than RFC 3339 (a one-digit hour, a comma
	// before the fraction, a +24:00 zone): a deadline misread is worse than
	// none, so the shape is checked first and time.Parse checks the ranges.
	if !rfc3339(value) {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, value)
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// rfc3339 reports whether s has the shape of an RFC 3339 date-time
// (upper-case T and Z), with an offset of less than 24 hours.
func rfc3339(s string) bool {
	const shape = "dddd-dd-ddTdd:dd:dd"
	if len(s) <= len(shape) {
		return false
	}
	for i := range len(shape) {
		if shape[i] == 'd' && !isDigit(s[i]) || shape[i] != 'd' && s[i] != shape[i] {
			return false
		}
	}
	s = s[len(shape):]
	if s[0] == '.' {
		n := 1
		for n < len(s) && isDigit(s[n]) {
			n++
		}
		if n == 1 {
			return false
		}
		s = s[n:]
	}
	if s == "Z" {
		return true
	}
	if len(s) != len("+07:00") || s[0] != '+' && s[0] != '-' || s[3] != ':' ||
		!isDigit(s[1]) || !isDigit(s[2]) || !isDigit(s[4]) || !isDigit(s[5]) {
		return false
	}
	return s[1:3] < "24" && s[4] < '6'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// cutSuffixFold is strings.CutSuffix ignoring case.
func cutSuffixFold(s, suffix string) (string, bool) {
	n := len(s) - len(suffix)
	if n < 0 || !strings.EqualFold(s[n:], suffix) {
		return s, false
	}
	return s[:n], true
}
