package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/nodewarden/nodewarden/internal/journal/journaltest"
)

// resumeEntries spans 7 entry arrays (journald makes each array larger).
const resumeEntries = 2000

// entryArrays walks the entry array chain of the journal file b itself and
// returns the seqnum of the first entry of each array and the offsets of all
// entries.
func entryArrays(t testing.TB, b []byte) (firsts, entries []uint64) {
	t.Helper()
	h, err := parseHeader(b, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	is := uint64(8)
	if h.compact() {
		is = 4
	}
	for a := h.entryArrayOffset; a != 0; a = le.Uint64(b[a+16:]) {
		end := a + le.Uint64(b[a+8:])
		for i := a + 24; i+is <= end; i += is {
			off := le.Uint64(b[i:])
			if is == 4 {
				off = uint64(le.Uint32(b[i:]))
			}
			if off == 0 {
				break
			}
			if i == a+24 {
				firsts = append(firsts, le.Uint64(b[off+16:]))
			}
			entries = append(entries, off)
		}
	}
	return firsts, entries
}

func arrayBounds(t testing.TB, p string) []uint64 {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	firsts, _ := entryArrays(t, b)
	return firsts
}

// resumeCursors returns cursors around every array boundary, before the
// start, in the middle, at and past the end, and of another seqnum ID.
func resumeCursors(all []Entry, bounds []uint64) map[string]Cursor {
	last := all[len(all)-1].Cursor()
	cs := map[string]Cursor{
		"zero":            {},
		"before start":    {SeqnumID: last.SeqnumID},
		"first":           all[0].Cursor(),
		"middle":          all[len(all)/2].Cursor(),
		"before last":     all[len(all)-2].Cursor(),
		"last":            last,
		"past the end":    {SeqnumID: last.SeqnumID, Seqnum: last.Seqnum + 100, Realtime: last.Realtime + 100},
		"other id, early": {SeqnumID: [16]byte{1}, Seqnum: 1 << 40, Realtime: all[0].Cursor().Realtime - 1},
		"other id, mid":   {SeqnumID: [16]byte{1}, Seqnum: 1, Realtime: all[len(all)/3].Cursor().Realtime},
		"other id, late":  {SeqnumID: [16]byte{1}, Realtime: last.Realtime},
	}
	for _, s := range bounds {
		for _, d := range []int{-2, -1, 0} {
			if i := int(s) - 1 + d; i >= 0 && i < len(all) {
				cs[fmt.Sprintf("seqnum %d", i+1)] = all[i].Cursor()
			}
		}
	}
	return cs
}

// filtered is what a full read from the zero cursor, filtered with Before,
// gives for the cursor c.
func filtered(all []Entry, c Cursor) ([]Entry, Cursor) {
	var want []Entry
	end := c
	for _, e := range all {
		if c.Before(&e) {
			want = append(want, e)
			end = e.Cursor()
		}
	}
	return want, end
}

func sameEntries(t *testing.T, name string, got, want []Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d entries, want %d", name, len(got), len(want))
		return
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("%s: entry %d is seqnum %d, want seqnum %d (or differs)", name, i, got[i].Seqnum, want[i].Seqnum)
			return
		}
	}
}

// Resuming from any cursor gives what the full read filtered by the cursor
// gives, on files with many entry arrays, whole or cut in their last entry.
func TestResumeMatchesFullRead(t *testing.T) {
	for _, compact := range []string{"1", "0"} {
		t.Run("compact="+compact, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "x.journal")
			journaltest.Write(t, p, nil, []string{"SYSTEMD_JOURNAL_COMPACT=" + compact}, entries(1, resumeEntries)...)
			bounds := arrayBounds(t, p)
			if len(bounds) < 6 {
				t.Fatalf("only %d entry arrays: %v", len(bounds), bounds)
			}
			all, _, err := collect(t, func(fn func(Entry) error) (Cursor, error) { return ReadFile(p, Cursor{}, fn) })
			if err != nil {
				t.Fatal(err)
			}
			checkEntries(t, all, 1, resumeEntries)
			b, _ := os.ReadFile(p)
			for name, c := range resumeCursors(all, bounds) {
				got, end, err := collect(t, func(fn func(Entry) error) (Cursor, error) {
					if name == "middle" || name == "last" {
						return ReadFile(p, c, fn)
					}
					return readFrom(p, bytes.NewReader(b), int64(len(b)), c, fn) // in memory: faster
				})
				want, wantEnd := filtered(all, c)
				if err != nil || end != wantEnd {
					t.Errorf("%s: cursor %v, %v; want %v", name, end, err, wantEnd)
				}
				sameEntries(t, name, got, want)
			}

			// A poll that finds nothing new reads a few bytes per entry array.
			r := &countingReader{r: bytes.NewReader(b)}
			got, _, err := collect(t, func(fn func(Entry) error) (Cursor, error) {
				return readFrom("count", r, int64(len(b)), all[len(all)-1].Cursor(), fn)
			})
			if err != nil || len(got) != 0 || r.n > 4*len(bounds)+8 {
				t.Errorf("resume at the end: %d entries, %v, %d reads for %d entry arrays", len(got), err, r.n, len(bounds))
			}
			t.Logf("resume at the end: %d reads for %d entry arrays", r.n, len(bounds))

			// Cut in the last entry: the same whole entries, then ErrCorrupt.
			_, offs := entryArrays(t, b)
			cut := b[:offs[len(offs)-1]+20]
			whole := all[:len(all)-1]
			for name, c := range resumeCursors(all, bounds) {
				if c.SeqnumID == all[0].SeqnumID && c.Seqnum < resumeEntries/2 {
					continue // as above, and slow
				}
				got, end, err := collect(t, func(fn func(Entry) error) (Cursor, error) {
					return readFrom("cut", bytes.NewReader(cut), int64(len(cut)), c, fn)
				})
				want, wantEnd := filtered(whole, c)
				if !errors.Is(err, ErrCorrupt) || end != wantEnd {
					t.Errorf("cut, %s: cursor %v, %v; want %v, ErrCorrupt", name, end, err, wantEnd)
				}
				sameEntries(t, "cut, "+name, got, want)
			}
		})
	}
}

type countingReader struct {
	r io.ReaderAt
	n int
}

func (c *countingReader) ReadAt(b []byte, off int64) (int, error) {
	c.n++
	return c.r.ReadAt(b, off)
}

// Seqnums with gaps (journald's counter shared with user journals): a resume
// bisects the entry array where the cursor ends.
func TestResumeSeqnumGaps(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.journal")
	journaltest.Write(t, p, nil, nil, entries(1, resumeEntries)...)
	b, _ := os.ReadFile(p)
	bounds, offs := entryArrays(t, b)
	for i, off := range offs { // seqnum i+1 becomes 3(i+1)
		binary.LittleEndian.PutUint64(b[off+16:], 3*uint64(i+1))
	}
	read := func(c Cursor) ([]Entry, Cursor, error) {
		return collect(t, func(fn func(Entry) error) (Cursor, error) {
			return readFrom("gaps", bytes.NewReader(b), int64(len(b)), c, fn)
		})
	}
	all, _, err := read(Cursor{})
	if err != nil || len(all) != resumeEntries || all[1].Seqnum != 6 {
		t.Fatalf("%d entries, %v", len(all), err)
	}
	cs := resumeCursors(all, bounds)
	for i := len(all) / 2; i < len(all); i += 37 {
		c := all[i].Cursor()
		cs[fmt.Sprintf("seqnum %d", c.Seqnum)] = c
		c.Seqnum++
		cs[fmt.Sprintf("seqnum %d (a gap)", c.Seqnum)] = c
	}
	for name, c := range cs {
		got, end, err := read(c)
		want, wantEnd := filtered(all, c)
		if err != nil || end != wantEnd {
			t.Errorf("%s: cursor %v, %v; want %v", name, end, err, wantEnd)
		}
		sameEntries(t, name, got, want)
	}
}

// ReadDirs resumes the same way in a live file (merged with a rotated copy
// of its first part, as journald leaves it).
func TestResumeReadDirs(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "system.journal")
	journaltest.Write(t, live, nil, nil, entries(1, resumeEntries/2)...)
	b, _ := os.ReadFile(live)
	if err := os.WriteFile(filepath.Join(dir, "system@1.journal"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	journaltest.Write(t, live, nil, nil, entries(resumeEntries/2+1, resumeEntries)...)
	setOnline(t, live)
	all, _, err := collect(t, func(fn func(Entry) error) (Cursor, error) { return ReadDir(dir, Cursor{}, fn) })
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, all, 1, resumeEntries)
	for name, c := range resumeCursors(all, arrayBounds(t, live)) {
		got, end, err := collect(t, func(fn func(Entry) error) (Cursor, error) { return ReadDir(dir, c, fn) })
		want, wantEnd := filtered(all, c)
		if err != nil || end != wantEnd {
			t.Errorf("%s: cursor %v, %v; want %v", name, end, err, wantEnd)
		}
		sameEntries(t, name, got, want)
	}
}

// setOnline marks the journal file at p as being written (state ONLINE), as
// journald's live system.journal is.
func setOnline(t testing.TB, p string) {
	t.Helper()
	fd, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	if _, err := fd.WriteAt([]byte{stateOnline}, 16); err != nil {
		t.Fatal(err)
	}
}

// A resume never panics on a corrupt file either.
func FuzzResume(f *testing.F) {
	b := seed(f)
	f.Add(b, uint64(1))
	f.Add(b[:4096], uint64(2))
	f.Fuzz(func(t *testing.T, data []byte, seqnum uint64) {
		var c Cursor
		if len(data) >= 88 {
			copy(c.SeqnumID[:], data[72:88])
		}
		c.Seqnum = seqnum
		_, _ = readFrom("fuzz", bytes.NewReader(data), int64(len(data)), c, func(e Entry) error {
			if !c.Before(&e) {
				t.Fatalf("entry %d handed out after cursor %v", e.Seqnum, c)
			}
			return nil
		})
	})
}

// benchJournal writes a journal file of n entries shaped like a node's
// (a dozen fields, a few of them unique per entry) and returns its path.
func benchJournal(b *testing.B, n int) string {
	b.Helper()
	es := make([]journaltest.Entry, 0, n)
	for i := 1; i <= n; i++ {
		es = append(es, journaltest.Entry{
			Realtime:  time.UnixMicro(baseTime + int64(i)*1000),
			Monotonic: time.Duration(5000+i) * time.Microsecond,
			BootID:    bootID,
			Fields: map[string]string{
				"MESSAGE":           fmt.Sprintf("I1205 19:14:%02d.%06d kubelet.go:%d] SyncLoop (PLEG): event for pod %d", i%60, i, 2000+i%500, i),
				"PRIORITY":          "6",
				"SYSLOG_FACILITY":   "3",
				"SYSLOG_IDENTIFIER": "kubelet",
				"_PID":              fmt.Sprint(900 + i%7),
				"_UID":              "0",
				"_GID":              "0",
				"_COMM":             "kubelet",
				"_EXE":              "/usr/bin/kubelet",
				"_SYSTEMD_UNIT":     "kubelet.service",
				"_TRANSPORT":        "stdout",
				"_HOSTNAME":         "node-1",
				"_STREAM_ID":        fmt.Sprintf("%032x", i/100),
			},
		})
	}
	p := filepath.Join(b.TempDir(), "system.journal")
	journaltest.Write(b, p, nil, nil, es...)
	return p
}

// A poll that finds nothing new: the cursor is at the last entry of a live
// file of 50k entries.
func BenchmarkResumeAtEnd(b *testing.B) {
	const n = 50000
	p := benchJournal(b, n)
	setOnline(b, p)
	var last Cursor
	if _, err := ReadFile(p, Cursor{}, func(e Entry) error { last = e.Cursor(); return nil }); err != nil || last.Seqnum != n {
		b.Fatalf("setup: %v, last %v", err, last)
	}
	st, _ := os.Stat(p)
	b.Logf("%d entries, %d bytes, %d entry arrays", n, st.Size(), len(arrayBounds(b, p)))
	fn := func(Entry) error { return errors.New("nothing is after the cursor") }
	b.Run("ReadFile", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if c, err := ReadFile(p, last, fn); err != nil || c != last {
				b.Fatal(c, err)
			}
		}
	})
	b.Run("ReadDirs", func(b *testing.B) {
		b.ReportAllocs()
		dirs := []string{filepath.Dir(p)}
		for b.Loop() {
			if c, err := ReadDirs(dirs, last, fn); err != nil || c != last {
				b.Fatal(c, err)
			}
		}
	})
}
