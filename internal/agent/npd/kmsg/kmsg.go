// Package kmsg reads the kernel's log records from /dev/kmsg, the way
// node-problem-detector's kmsg plugin does, and a little more carefully.
//
// # Records
//
// Each read(2) of /dev/kmsg returns one record (Documentation/ABI/testing/dev-kmsg):
//
//	6,339,5140900,-,caller=T1;NET: Registered protocol family 10
//	 SUBSYSTEM=net
//	 DEVICE=+net:lo
//
// The header is priority (facility*8 + level), sequence number, timestamp in
// microseconds since boot (monotonic), flags and optional further fields,
// then ';' and the message. Lines after the first that start with a space
// are continuation lines: the record's key=value dictionary. They are kept
// in Record.Dict and are not part of Record.Message, which is what monitor
// rules match. (NPD keeps them in the message, so a rule anchored at the end
// of the line never matches a record that has a dictionary.) Non-printable
// bytes in a message are escaped by the kernel as \xNN and are left so.
//
// # Overwritten records
//
// The kernel's ring buffer is finite. When records are overwritten before
// they were read, read(2) fails once with EPIPE and the next read returns
// the oldest record still there. Reader logs the EPIPE, reports the lost
// records through Handler.Gap (the jump in sequence numbers), and goes on.
//
// # Replay
//
// Opening /dev/kmsg starts at the oldest record in the buffer. Reader reads
// (non-blocking) until the buffer is exhausted, calls Handler.ReplayDone,
// and then waits for new records in the runtime's poller, so ctx can stop it.
//
// # Streams, for tests and for hosts without /dev/kmsg
//
// A Path that is not a character device (a regular file, a FIFO) is read as a
// stream of records in the same format, one per line with its continuation
// lines after it. A record ends at the next record's line or at the end of
// the data available; the end of the initial data is the end of the replay.
package kmsg

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Record is one kernel log record.
type Record struct {
	// Priority is the syslog priority: facility*8 + level.
	Priority int
	// Seq is the record's sequence number; consecutive records differ by 1.
	Seq uint64
	// Time is the record's timestamp: time since boot (CLOCK_MONOTONIC).
	Time time.Duration
	// Flags is the fourth header field: "-" for a record, "c" for the
	// start of a continued line (older kernels), "+" for a continuation.
	Flags string
	// Message is the text after ';', without the newline and without
	// continuation lines.
	Message string
	// Dict holds the continuation lines (KEY=VALUE), without their
	// leading space.
	Dict []string
}

// Level is the record's log level (0 emerg .. 7 debug).
func (r Record) Level() int { return r.Priority & 7 }

// Parse parses one record as read(2) on /dev/kmsg returns it.
func Parse(b []byte) (Record, error) {
	first, rest, _ := bytes.Cut(b, []byte("\n"))
	header, msg, ok := bytes.Cut(first, []byte(";"))
	if !ok {
		return Record{}, errors.New("no ';' between header and message")
	}
	fields := bytes.Split(header, []byte(","))
	if len(fields) < 3 {
		return Record{}, fmt.Errorf("header %q has fewer than 3 fields", header)
	}
	var r Record
	prio, err := strconv.Atoi(string(fields[0]))
	if err != nil || prio < 0 {
		return Record{}, fmt.Errorf("bad priority %q", fields[0])
	}
	r.Priority = prio
	if r.Seq, err = strconv.ParseUint(string(fields[1]), 10, 64); err != nil {
		return Record{}, fmt.Errorf("bad sequence number %q", fields[1])
	}
	usec, err := strconv.ParseInt(string(fields[2]), 10, 64)
	if err != nil || usec < 0 {
		return Record{}, fmt.Errorf("bad timestamp %q", fields[2])
	}
	r.Time = time.Duration(usec) * time.Microsecond
	if len(fields) > 3 {
		r.Flags = string(fields[3])
	}
	r.Message = string(bytes.TrimSuffix(msg, []byte("\r")))
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		if kv, ok := bytes.CutPrefix(line, []byte(" ")); ok {
			r.Dict = append(r.Dict, string(kv))
		}
	}
	return r, nil
}

// Handler receives what a Reader reads. Every func is called on the
// Reader's goroutine, one at a time; nil funcs are skipped.
type Handler struct {
	// Record is called for every record, in order. replay is true for the
	// records that were in the buffer when the Reader started.
	Record func(r Record, replay bool)
	// ReplayDone is called once, when the records already in the buffer
	// have been read.
	ReplayDone func()
	// Gap is called when records were lost (overwritten before they were
	// read): lost records between seq after and the next one read.
	Gap func(after uint64, lost uint64)
	// Malformed is called with a record that does not parse.
	Malformed func(raw []byte, err error)
}

// tracker turns raw records into Handler calls and notices sequence gaps.
type tracker struct {
	h       Handler
	last    uint64
	started bool
}

func (t *tracker) raw(b []byte, replay bool) {
	r, err := Parse(b)
	if err != nil {
		if t.h.Malformed != nil {
			t.h.Malformed(b, err)
		}
		return
	}
	t.record(r, replay)
}

func (t *tracker) record(r Record, replay bool) {
	if t.started && r.Seq > t.last+1 && t.h.Gap != nil {
		t.h.Gap(t.last, r.Seq-t.last-1)
	}
	if !t.started || r.Seq > t.last {
		t.last = r.Seq
	}
	t.started = true
	if t.h.Record != nil {
		t.h.Record(r, replay)
	}
}
