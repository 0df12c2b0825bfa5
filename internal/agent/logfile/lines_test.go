package logfile

import (
	"bytes"
	"slices"
	"testing"
)

func TestLineSplitterMemoryBounded(t *testing.T) {
	const limit = 64 << 10
	s := lineSplitter{max: limit}
	var got []string
	emit := func(b []byte) { got = append(got, string(b)) }

	// A 1 MiB line fed in 4 KiB pieces, then a normal line.
	piece := bytes.Repeat([]byte("x"), 4<<10)
	skipped := 0
	for range 256 {
		skipped += s.feed(piece, emit)
		if cap(s.pending) > limit {
			t.Fatalf("holding %d bytes for a line, limit %d", cap(s.pending), limit)
		}
	}
	skipped += s.feed([]byte("\nnext\n"), emit)

	if skipped != 1 {
		t.Errorf("skipped = %d, want 1", skipped)
	}
	if !slices.Equal(got, []string{"next"}) {
		t.Errorf("lines = %q, want [next]", got)
	}
}

func TestLineSplitterSplitsAnywhere(t *testing.T) {
	// The same stream cut at every possible place gives the same lines.
	const stream = "one\ntwo\r\n\nlonger than eight\nfour\nfive"
	want := []string{"one", "two\r", "", "four"}
	for cut := range len(stream) + 1 {
		s := lineSplitter{max: 8}
		var got []string
		emit := func(b []byte) { got = append(got, string(b)) }
		skipped := s.feed([]byte(stream[:cut]), emit) + s.feed([]byte(stream[cut:]), emit)
		if !slices.Equal(got, want) || skipped != 1 {
			t.Errorf("cut at %d: lines %q, skipped %d; want %q, 1", cut, got, skipped, want)
		}
		if string(s.pending) != "five" {
			t.Errorf("cut at %d: holding %q, want %q", cut, s.pending, "five")
		}
		s.flush(emit)
		if got[len(got)-1] != "five" {
			t.Errorf("cut at %d: flush gave %q", cut, got[len(got)-1])
		}
	}
}

func TestLineSplitterExactLimit(t *testing.T) {
	s := lineSplitter{max: 4}
	var got []string
	emit := func(b []byte) { got = append(got, string(b)) }
	// Held in two pieces, then completed: still exactly at the limit.
	s.feed([]byte("ab"), emit)
	s.feed([]byte("cd"), emit)
	s.feed([]byte("\nabcde\nok\n"), emit)
	if want := []string{"abcd", "ok"}; !slices.Equal(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}
}

func TestTrimCR(t *testing.T) {
	for in, want := range map[string]string{"": "", "\r": "", "a\r": "a", "a\rb": "a\rb", "a\r\r": "a\r"} {
		if got := string(trimCR([]byte(in))); got != want {
			t.Errorf("trimCR(%q) = %q, want %q", in, got, want)
		}
	}
}
