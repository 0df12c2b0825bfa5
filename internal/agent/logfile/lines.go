package logfile

import "bytes"

// lineSplitter turns a stream of chunks into complete lines. It is the only
// place that holds bytes between reads, so it is where memory is bounded:
// pending never grows past max.
type lineSplitter struct {
	max int
	// pending is the start of a line whose '\n' has not been read yet.
	pending []byte
	// skipping is set while reading the rest of a line already found too
	// long; everything up to the next '\n' is dropped.
	skipping bool
}

// feed calls emit for every line that chunk completes, without its '\n'.
// The slice passed to emit is only valid during the call. feed returns the
// number of lines it gave up on for being longer than max.
func (s *lineSplitter) feed(chunk []byte, emit func([]byte)) (skipped int) {
	for len(chunk) > 0 {
		i := bytes.IndexByte(chunk, '\n')
		if i < 0 {
			if s.skipping {
				return skipped
			}
			if len(s.pending)+len(chunk) > s.max {
				s.pending = s.pending[:0]
				s.skipping = true
				return skipped + 1
			}
			s.hold(chunk)
			return skipped
		}
		text := chunk[:i]
		chunk = chunk[i+1:]
		switch {
		case s.skipping:
			// This '\n' ends a line already counted as skipped.
			s.skipping = false
		case len(s.pending)+len(text) > s.max:
			s.pending = s.pending[:0]
			skipped++
		case len(s.pending) > 0:
			s.hold(text)
			emit(s.pending)
			s.pending = s.pending[:0]
		default:
			// The common case: the whole line is in this chunk, so no copy.
			emit(text)
		}
	}
	return skipped
}

// hold appends b to pending. The caller has checked that the result fits in
// max; growing the buffer by hand keeps its capacity within max too, where
// append could double it past the bound.
func (s *lineSplitter) hold(b []byte) {
	need := len(s.pending) + len(b)
	if need > cap(s.pending) {
		newCap := min(max(2*cap(s.pending), need, 512), s.max)
		grown := make([]byte, len(s.pending), newCap)
		copy(grown, s.pending)
		s.pending = grown
	}
	s.pending = append(s.pending, b...)
}

// flush delivers a held partial line as if its '\n' had arrived. It is used
// only for files that will never be read again, where holding it longer
// would lose it.
func (s *lineSplitter) flush(emit func([]byte)) {
	if !s.skipping && len(s.pending) > 0 {
		emit(s.pending)
	}
	s.pending = s.pending[:0]
	s.skipping = false
}

// trimCR removes the '\r' of a CRLF line ending.
func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}
