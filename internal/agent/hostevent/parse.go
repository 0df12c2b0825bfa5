package hostevent

import "time"

// MaxLineLength is the longest line Parse accepts. Real lines are about 150
// bytes; the agent's reader uses the same cap to skip runaway lines instead
// of buffering them.
const MaxLineLength = 64 << 10

// ParseError is why a line is not an event. There are few values, all
// declared below, so Reason can label a metric without growing its
// cardinality; Parse returns them unwrapped and without allocating.
type ParseError struct {
	reason string
	msg    string
}

func (e *ParseError) Error() string { return e.msg }

// Reason is a short snake_case name for the error, for metric labels.
func (e *ParseError) Reason() string { return e.reason }

var (
	// ErrNotEvent: the line is not an event line at all (other output in the
	// same file, blank lines). Expected; not a sign of trouble.
	ErrNotEvent = &ParseError{"not_event", "hostevent: not a host event line"}
	// ErrMalformed: the line announces an event ("Ecs event type is") but a
	// field or separator is missing.
	ErrMalformed = &ParseError{"malformed", "hostevent: malformed event line"}
	// ErrBadType: the event type is not of the form Word.Word.
	ErrBadType = &ParseError{"bad_type", "hostevent: event type is not Word.Word"}
	// ErrUnknownStatus: the status is not one this package knows. Guessing
	// whether it is active could set or clear a condition wrongly.
	ErrUnknownStatus = &ParseError{"unknown_status", "hostevent: unknown event status"}
	// ErrBadTime: a timestamp is missing, out of range, or (for the action
	// time) has no zone.
	ErrBadTime = &ParseError{"bad_time", "hostevent: bad timestamp"}
	// ErrTooLong: the line is longer than MaxLineLength.
	ErrTooLong = &ParseError{"too_long", "hostevent: line too long"}
)

// Parse reads one line of the host event log. The line may end in "\n" or
// "\r\n". It returns the event, or a *ParseError (one of the Err values).
//
// The grammar, with blanks allowed around every '-', ',' and ':' and
// keywords matched without regard to case:
//
//	YYYY-MM-DD HH:MM:SS[.frac] - LEVEL - Ecs event type is: Word.Word,
//	event status is: Status, action ISO 8601 time is[:] RFC3339 [anything]
//
// Parse is written for the agent's replay of a whole log on start: it scans
// by hand and does not allocate except for the Type of an event type it does
// not already know.
func Parse(line []byte) (Event, error) {
	line = trimEOL(line)
	if len(line) > MaxLineLength {
		return Event{}, ErrTooLong
	}
	s := scanner{b: line}

	// Until the "event type is" phrase, a mismatch means the line is simply
	// something else, so it is ErrNotEvent rather than a broken event.
	s.skipBlanks()
	logged, ok := s.clock(false)
	if !ok || !s.punct('-') || !s.level() || !s.punct('-') || !s.phrase("ecs event type is") {
		return Event{}, ErrNotEvent
	}
	loggedAt, ok := logged.time()
	if !ok {
		return Event{}, ErrBadTime
	}

	if !s.punct(':') {
		return Event{}, ErrMalformed
	}
	typ, ok := s.eventType()
	if !ok {
		return Event{}, ErrBadType
	}

	if !s.punct(',') || !s.phrase("event status is") || !s.punct(':') {
		return Event{}, ErrMalformed
	}
	word := s.word()
	if len(word) == 0 {
		return Event{}, ErrMalformed
	}
	status, ok := lookupStatus(word)
	if !ok {
		return Event{}, ErrUnknownStatus
	}

	if !s.punct(',') || !s.phrase("action iso 8601 time is") {
		return Event{}, ErrMalformed
	}
	s.punct(':') // the plugin writes none here, but one is harmless
	action, ok := s.clock(true)
	if !ok {
		return Event{}, ErrBadTime
	}
	actionTime, ok := action.time()
	if !ok {
		return Event{}, ErrBadTime
	}
	// Anything after the action time is ignored (the spec asks for tolerance
	// of trailing junk), so a plugin version that appends a field still works.

	return Event{Type: internType(typ), Status: status, ActionTime: actionTime, LoggedAt: loggedAt}, nil
}

// knownTypes lets Parse return a shared string for common event types, so
// replaying a long log does not allocate per line. It holds every type the
// spec names plus a few more Alibaba Cloud ECS types; a type missing here
// still parses, at the cost of one allocation.
var knownTypes = func() map[string]string {
	m := map[string]string{}
	for _, t := range []string{
		"SystemMaintenance.Reboot",
		"SystemMaintenance.Redeploy",
		"SystemMaintenance.Stop",
		"SystemMaintenance.RebootAndIsolateErrorDisk",
		"SystemMaintenance.RebootAndReInitErrorDisk",
		"SystemMaintenance.IsolateErrorDisk",
		"SystemMaintenance.ReInitErrorDisk",
		"SystemFailure.Reboot",
		"SystemFailure.Redeploy",
		"SystemFailure.Stop",
		"SystemFailure.Delete",
		"InstanceFailure.Reboot",
		"InstanceExpiration.Stop",
		"InstanceExpiration.Delete",
		"AccountUnbalanced.Stop",
		"AccountUnbalanced.Delete",
	} {
		m[t] = t
	}
	return m
}()

func internType(b []byte) string {
	if s, ok := knownTypes[string(b)]; ok { // the compiler does not allocate for this lookup
		return s
	}
	return string(b)
}

// lookupStatus matches a status word regardless of case and returns the
// canonical constant.
func lookupStatus(word []byte) (Status, bool) {
	for _, s := range statuses {
		if equalFold(word, string(s)) {
			return s, true
		}
	}
	return "", false
}

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// scanner walks a line left to right. Each method either consumes what it
// looks for and reports true, or reports false; Parse gives up at the first
// false, so a failed method may leave the position anywhere.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) skipBlanks() {
	for s.i < len(s.b) && isBlank(s.b[s.i]) {
		s.i++
	}
}

// punct consumes c with any blanks around it.
func (s *scanner) punct(c byte) bool {
	s.skipBlanks()
	if s.peek() != c {
		return false
	}
	s.i++
	s.skipBlanks()
	return true
}

// phrase consumes p, which is lower case, matching letters regardless of
// case and each space in p against one or more blanks.
func (s *scanner) phrase(p string) bool {
	i := s.i
	for j := 0; j < len(p); j++ {
		if p[j] == ' ' {
			if i >= len(s.b) || !isBlank(s.b[i]) {
				return false
			}
			for i < len(s.b) && isBlank(s.b[i]) {
				i++
			}
			continue
		}
		if i >= len(s.b) || lower(s.b[i]) != p[j] {
			return false
		}
		i++
	}
	s.i = i
	return true
}

// level consumes the log level: anything up to the next '-' with something
// other than blanks in it. Looser than a single word because Python's
// logging, for one, names custom levels like "Level 5".
func (s *scanner) level() bool {
	seen := false
	for s.i < len(s.b) && s.b[s.i] != '-' {
		seen = seen || !isBlank(s.b[s.i])
		s.i++
	}
	return seen
}

// word consumes a run of ASCII letters, digits and underscores.
func (s *scanner) word() []byte {
	start := s.i
	for s.i < len(s.b) && (isAlnum(s.b[s.i]) || s.b[s.i] == '_') {
		s.i++
	}
	return s.b[start:s.i]
}

// eventType consumes Word.Word and checks that nothing but a blank, a comma
// or the end of the line follows, so "A.B.C" or "A.B!" are rejected rather
// than cut short.
func (s *scanner) eventType() ([]byte, bool) {
	start := s.i
	if !s.typeWord() || s.peek() != '.' {
		return nil, false
	}
	s.i++
	if !s.typeWord() {
		return nil, false
	}
	if c := s.peek(); s.i < len(s.b) && c != ',' && !isBlank(c) {
		return nil, false
	}
	return s.b[start:s.i], true
}

// typeWord consumes a letter followed by letters and digits. Starting with a
// letter keeps the derived CamelCase reasons valid Kubernetes reasons.
func (s *scanner) typeWord() bool {
	if !isLetter(s.peek()) {
		return false
	}
	for s.i < len(s.b) && isAlnum(s.b[s.i]) {
		s.i++
	}
	return true
}

// civil is a timestamp as written, before range checks.
type civil struct {
	year, month, day, hour, min, sec, nsec int
	offset                                 int // seconds east of UTC
}

// clock consumes a timestamp. With rfc3339 false it reads the log's own
// "YYYY-MM-DD HH:MM:SS" with an optional ".frac" or ",frac" (the Python
// logging default) and no zone; with rfc3339 true it reads
// "YYYY-MM-DDTHH:MM:SS[.frac]" followed by a mandatory zone, because an
// action time without one would be a guess.
func (s *scanner) clock(rfc3339 bool) (civil, bool) {
	var c civil
	var ok bool
	if c.year, ok = s.digits(4); !ok || !s.lit('-') {
		return c, false
	}
	if c.month, ok = s.digits(2); !ok || !s.lit('-') {
		return c, false
	}
	if c.day, ok = s.digits(2); !ok {
		return c, false
	}
	if rfc3339 {
		if !s.lit('T') && !s.lit('t') {
			return c, false
		}
	} else {
		if !isBlank(s.peek()) {
			return c, false
		}
		s.skipBlanks()
	}
	if c.hour, ok = s.digits(2); !ok || !s.lit(':') {
		return c, false
	}
	if c.min, ok = s.digits(2); !ok || !s.lit(':') {
		return c, false
	}
	if c.sec, ok = s.digits(2); !ok {
		return c, false
	}

	if p := s.peek(); (p == '.' || (p == ',' && !rfc3339)) && s.i+1 < len(s.b) && isDigit(s.b[s.i+1]) {
		s.i++
		n := 0
		for ; s.i < len(s.b) && isDigit(s.b[s.i]); s.i++ {
			if n == 9 {
				return c, false // finer than a nanosecond: not a real clock
			}
			c.nsec = c.nsec*10 + int(s.b[s.i]-'0')
			n++
		}
		for ; n < 9; n++ {
			c.nsec *= 10
		}
	}

	if !rfc3339 {
		return c, true
	}
	switch s.peek() {
	case 'Z', 'z':
		s.i++
		return c, true
	case '+', '-':
		sign := 1
		if s.peek() == '-' {
			sign = -1
		}
		s.i++
		hh, ok := s.digits(2)
		if !ok || hh > 23 || !s.lit(':') {
			return c, false
		}
		mm, ok := s.digits(2)
		if !ok || mm > 59 {
			return c, false
		}
		c.offset = sign * (hh*3600 + mm*60)
		return c, true
	}
	return c, false
}

// time checks the fields' ranges, which time.Date would silently normalise
// (Feb 30 becoming Mar 2), and returns the instant in UTC.
func (c civil) time() (time.Time, bool) {
	if c.month < 1 || c.month > 12 || c.day < 1 || c.day > daysIn(c.month, c.year) ||
		c.hour > 23 || c.min > 59 || c.sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(c.year, time.Month(c.month), c.day, c.hour, c.min, c.sec, c.nsec, time.UTC)
	if c.offset != 0 {
		t = t.Add(-time.Duration(c.offset) * time.Second)
		// An offset can push a year-0000 or year-9999 time out of the
		// four-digit range that RFC 3339 (and Event.String) can express.
		if y := t.Year(); y < 0 || y > 9999 {
			return time.Time{}, false
		}
	}
	return t, true
}

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

// digits consumes exactly n decimal digits.
func (s *scanner) digits(n int) (int, bool) {
	if len(s.b)-s.i < n {
		return 0, false
	}
	v := 0
	for _, c := range s.b[s.i : s.i+n] {
		if !isDigit(c) {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	s.i += n
	return v, true
}

// lit consumes c exactly, with no blanks around it.
func (s *scanner) lit(c byte) bool {
	if s.peek() != c {
		return false
	}
	s.i++
	return true
}

func isBlank(c byte) bool  { return c == ' ' || c == '\t' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetter(c byte) bool { return asciiClass[c]&letter != 0 }
func isAlnum(c byte) bool  { return asciiClass[c]&(letter|digit) != 0 }
func lower(c byte) byte    { return asciiLower[c] }

// Lookup tables: character tests are most of Parse's work, and a table
// load is cheaper than the comparisons.
const (
	letter = 1 << iota
	digit
)

var asciiClass, asciiLower = func() (class, low [256]byte) {
	for c := range 256 {
		low[c] = byte(c)
		switch {
		case 'a' <= c && c <= 'z':
			class[c] = letter
		case 'A' <= c && c <= 'Z':
			class[c] = letter
			low[c] = byte(c) + 'a' - 'A'
		case '0' <= c && c <= '9':
			class[c] = digit
		}
	}
	return class, low
}()

// equalFold compares ASCII b and s regardless of case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}
