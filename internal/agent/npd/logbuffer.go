package npd

import (
	"regexp"
	"strings"
	"time"
)

// logEntry is one log line (filelog), kernel record (kmsg) or journal entry
// as a monitor sees it.
type logEntry struct {
	Time    time.Time
	Message string
}

// logBuffer holds a monitor's last lines, as NPD's does: a rule's pattern is
// matched against the last bufferSize messages joined by "\n" and must match
// up to the end, so a pattern matches the newest line, or (if it contains
// "\n") the newest lines together. The lines it matched are the Event's or
// the condition's message, joined by "\n".
type logBuffer struct {
	ring []*logEntry
	next int // total pushed
	// joined is the buffer as one string, rebuilt once per push for all rules.
	joined string
}

func newLogBuffer(size int) *logBuffer {
	return &logBuffer{ring: make([]*logEntry, size)}
}

func (b *logBuffer) push(e logEntry) {
	n := len(b.ring)
	b.ring[b.next%n] = &e
	b.next++
	// Oldest first. Slots never filled count as empty lines, as in NPD.
	var sb strings.Builder
	for i := range n {
		if i > 0 {
			sb.WriteByte('\n')
		}
		if e := b.ring[(b.next+i)%n]; e != nil {
			sb.WriteString(e.Message)
		}
	}
	b.joined = sb.String()
}

// match returns the buffered entries that re's leftmost match (which ends at
// the end of the buffer) spans, oldest first, or nil.
func (b *logBuffer) match(re *regexp.Regexp) []logEntry {
	loc := re.FindStringIndex(b.joined)
	if loc == nil {
		return nil
	}
	// From the newest line back, take lines until the match's start is covered.
	need := len(b.joined) - loc[0]
	n := len(b.ring)
	var out []logEntry
	total := 0
	for i := b.next - 1; i >= b.next-n && i >= 0; i-- {
		e := b.ring[i%n]
		out = append(out, *e)
		total += len(e.Message) + 1
		if total >= need {
			break
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// joinMessages is NPD's message for matched entries.
func joinMessages(es []logEntry) string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Message
	}
	return strings.Join(msgs, "\n")
}
