package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/nodewarden/nodewarden/internal/journal/journaltest"
)

var (
	binValue = "bin\x00\n\xffz"
	bigValue = strings.Repeat("0123456789abcdef", 128) // 2 KiB: compressed when compression is on
	hugeHead = strings.Repeat("h", MaxFieldSize)       // what is kept of HUGE
	hugeVal  = hugeHead + strings.Repeat("t", 40<<10)  // longer than MaxFieldSize
	bootID   = [16]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	baseTime = int64(1700000000000000)
)

// entries returns entries first..last (1-based) of one boot: entry i at
// baseTime+i ms, monotonic 5000+i µs, with a BIG field (compressed when
// compression is on), a BIN field written in binary form and, in entry 2, a
// HUGE field longer than MaxFieldSize.
func entries(first, last int) []journaltest.Entry {
	var es []journaltest.Entry
	for i := first; i <= last; i++ {
		f := map[string]string{
			"MESSAGE": fmt.Sprintf("message %d", i), "PRIORITY": "6", "SYSLOG_IDENTIFIER": "kubelet",
			"BIG": bigValue, "BIN": binValue,
		}
		if i == 2 {
			f["HUGE"] = hugeVal
		}
		es = append(es, journaltest.Entry{
			Realtime:  time.UnixMicro(baseTime + int64(i)*1000),
			Monotonic: time.Duration(5000+i) * time.Microsecond,
			BootID:    bootID,
			Fields:    f,
		})
	}
	return es
}

func collect(t *testing.T, read func(fn func(Entry) error) (Cursor, error)) ([]Entry, Cursor, error) {
	t.Helper()
	var got []Entry
	c, err := read(func(e Entry) error { got = append(got, e); return nil })
	return got, c, err
}

func checkEntries(t *testing.T, got []Entry, first, last int) {
	t.Helper()
	if len(got) != last-first+1 {
		t.Fatalf("got %d entries, want %d (%d..%d)", len(got), last-first+1, first, last)
	}
	for k, e := range got {
		i := first + k
		if e.Seqnum != uint64(i) {
			t.Errorf("entry %d: seqnum %d", i, e.Seqnum)
		}
		if want := time.UnixMicro(baseTime + int64(i)*1000); !e.Realtime.Equal(want) {
			t.Errorf("entry %d: realtime %v, want %v", i, e.Realtime, want)
		}
		if e.Monotonic != uint64(5000+i) || e.BootID != bootID {
			t.Errorf("entry %d: monotonic %d boot %x", i, e.Monotonic, e.BootID)
		}
		for k, v := range map[string]string{"MESSAGE": fmt.Sprintf("message %d", i), "PRIORITY": "6", "SYSLOG_IDENTIFIER": "kubelet", "BIG": bigValue, "BIN": binValue} {
			if e.Fields[k] != v {
				t.Errorf("entry %d: %s=%q, want %q", i, k, trunc(e.Fields[k]), trunc(v))
			}
		}
		if i == 2 && e.Fields["HUGE"] != hugeHead {
			t.Errorf("entry 2: HUGE has %d bytes, want the first %d", len(e.Fields["HUGE"]), MaxFieldSize)
		}
	}
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// compressedObjects counts the DATA objects of each compression in a file.
func compressedObjects(t *testing.T, path string) map[byte]int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := newFile(path, bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	n := map[byte]int{}
	for off := f.h.headerSize; off+16 <= uint64(len(b)); {
		size := binary.LittleEndian.Uint64(b[off+8:])
		if size == 0 {
			break
		}
		if b[off] == objData {
			n[b[off+1]&objCompressedMask]++
		}
		off += (size + 7) &^ 7
	}
	return n
}

func TestReadFileRealJournals(t *testing.T) {
	const n = 5
	for _, tc := range []struct {
		name        string
		env, args   []string
		compact     bool
		compression byte // expected on the BIG and HUGE DATA objects
	}{
		{"default", nil, nil, true, objCompressedZSTD},
		{"compress=no", nil, []string{"--compress=no"}, true, 0},
		{"regular", []string{"SYSTEMD_JOURNAL_COMPACT=0"}, nil, false, objCompressedZSTD},
		{"regular,compress=no", []string{"SYSTEMD_JOURNAL_COMPACT=0"}, []string{"--compress=no"}, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x.journal")
			journaltest.Write(t, p, tc.args, tc.env, entries(1, n)...)

			objs := compressedObjects(t, p)
			if tc.compression != 0 && objs[tc.compression] < 2 {
				t.Errorf("want compressed DATA objects (flag %d), got %v", tc.compression, objs)
			}
			if tc.compression == 0 && len(objs) != 1 {
				t.Errorf("want no compressed DATA objects, got %v", objs)
			}
			b, _ := os.ReadFile(p)
			h, err := parseHeader(b, int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			if h.compact() != tc.compact || h.incompatible&incompatKeyedHash == 0 {
				t.Errorf("incompatible flags %#x: want compact=%v and keyed hash", h.incompatible, tc.compact)
			}

			got, c, err := collect(t, func(fn func(Entry) error) (Cursor, error) { return ReadFile(p, Cursor{}, fn) })
			if err != nil {
				t.Fatal(err)
			}
			checkEntries(t, got, 1, n)
			if c != got[n-1].Cursor() || c.SeqnumID != h.seqnumID {
				t.Errorf("cursor %v, want %v", c, got[n-1].Cursor())
			}

			// Resume after entry 2, through a cursor that went through text.
			txt, _ := got[1].Cursor().MarshalText()
			var resume Cursor
			if err := resume.UnmarshalText(txt); err != nil {
				t.Fatal(err)
			}
			got, c2, err := collect(t, func(fn func(Entry) error) (Cursor, error) { return ReadFile(p, resume, fn) })
			if err != nil {
				t.Fatal(err)
			}
			checkEntries(t, got, 3, n)
			if c2 != c {
				t.Errorf("cursor %v, want %v", c2, c)
			}
			// Nothing after the last one.
			got, c3, err := collect(t, func(fn func(Entry) error) (Cursor, error) { return ReadFile(p, c, fn) })
			if err != nil || len(got) != 0 || c3 != c {
				t.Errorf("after the end: %d entries, %v, %v", len(got), c3, err)
			}

			// An error of fn stops and keeps the cursor of the last accepted entry.
			stop := errors.New("stop")
			k := 0
			c4, err := ReadFile(p, Cursor{}, func(Entry) error {
				if k++; k == 3 {
					return stop
				}
				return nil
			})
			if !errors.Is(err, stop) || c4.Seqnum != 2 {
				t.Errorf("fn error: %v, cursor %v", err, c4)
			}
		})
	}
}

// A file cut inside its last entry (a crash, a file being copied) yields the
// whole entries and an error.
func TestReadFileTruncated(t *testing.T) {
	const n = 6
	for _, compact := range []string{"1", "0"} {
		t.Run("compact="+compact, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x.journal")
			journaltest.Write(t, p, nil, []string{"SYSTEMD_JOURNAL_COMPACT=" + compact}, entries(1, n)...)
			b, _ := os.ReadFile(p)
			// The last ENTRY object: cut 20 bytes into it.
			h, _ := parseHeader(b, int64(len(b)))
			var last uint64
			for off := h.headerSize; off+16 <= uint64(len(b)); {
				size := binary.LittleEndian.Uint64(b[off+8:])
				if size == 0 {
					break
				}
				if b[off] == objEntry {
					last = off
				}
				off += (size + 7) &^ 7
			}
			cut := filepath.Join(t.TempDir(), "cut.journal")
			if err := os.WriteFile(cut, b[:last+20], 0o600); err != nil {
				t.Fatal(err)
			}
			got, c, err := collect(t, func(fn func(Entry) error) (Cursor, error) { return ReadFile(cut, Cursor{}, fn) })
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("error %v, want ErrCorrupt", err)
			}
			checkEntries(t, got, 1, n-1)
			if c.Seqnum != n-1 {
				t.Errorf("cursor %v", c)
			}
			// Every cut length: no panic, entries in order.
			for l := 0; l < len(b) && l < int(last)+200; l += 8 {
				if l < int(h.headerSize) && l%64 != 0 {
					continue
				}
				var prev uint64
				_, _ = readFrom("cut", bytes.NewReader(b[:l]), int64(l), Cursor{}, func(e Entry) error {
					if e.Seqnum != prev+1 {
						t.Fatalf("cut at %d: seqnum %d after %d", l, e.Seqnum, prev)
					}
					prev = e.Seqnum
					return nil
				})
			}
		})
	}
}

// Rotation: entries split across a rotated file and the live one (the same
// seqnum ID) are read in order exactly once; a vacuumed file loses nothing
// read since; a journal started anew (another seqnum ID) comes after.
func TestReadDirRotation(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "0123456789abcdef0123456789abcdef")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(sub, "system.journal")
	journaltest.Write(t, live, nil, nil, entries(1, 3)...)
	// journald archives a full file and goes on in a new one with the same
	// seqnum ID; journal-remote appends to an existing file. The archived
	// copy holds 1..3, the live file 1..6: every seqnum must come once.
	b, _ := os.ReadFile(live)
	h, _ := parseHeader(b, int64(len(b)))
	rotated := filepath.Join(sub, fmt.Sprintf("system@%x-0000000000000001-%016x.journal", h.seqnumID, h.headRealtime))
	if err := os.WriteFile(rotated, b, 0o600); err != nil {
		t.Fatal(err)
	}
	journaltest.Write(t, live, nil, nil, entries(4, 6)...)
	// A user journal is not read unless asked. (journald gives it the
	// system's seqnum ID; journal-remote a new one, with later entries here.)
	baseTime += 1e6
	journaltest.Write(t, filepath.Join(sub, "user-1000.journal"), nil, nil, entries(1, 2)...)
	baseTime -= 1e6

	read := func(after Cursor, opts ...Option) ([]Entry, Cursor) {
		t.Helper()
		got, c, err := collect(t, func(fn func(Entry) error) (Cursor, error) { return ReadDir(dir, after, fn, opts...) })
		if err != nil {
			t.Fatal(err)
		}
		return got, c
	}
	got, c := read(Cursor{})
	checkEntries(t, got, 1, 6)
	got, _ = read(got[2].Cursor())
	checkEntries(t, got, 4, 6)
	got, c2 := read(c)
	if len(got) != 0 || c2 != c {
		t.Errorf("after the end: %d entries", len(got))
	}

	// The archived file is vacuumed: the cursor goes on in the live file.
	if err := os.Remove(rotated); err != nil {
		t.Fatal(err)
	}
	got, _ = read(Cursor{SeqnumID: h.seqnumID, Seqnum: 4})
	checkEntries(t, got, 5, 6)

	// The user journal (its own seqnum ID here, later entries) comes after.
	got, _ = read(Cursor{}, WithUserJournals())
	if len(got) != 8 || got[0].Fields["MESSAGE"] != "message 1" || got[0].SeqnumID == got[7].SeqnumID {
		t.Errorf("with user journals: %d entries", len(got))
	}

	// A journal started anew: a new seqnum ID, later realtime stamps.
	later := filepath.Join(sub, "system2.journal")
	baseTime += 1e9
	defer func() { baseTime -= 1e9 }()
	journaltest.Write(t, later, nil, nil, entries(1, 2)...)
	got, _ = read(c)
	checkEntries(t, got, 1, 2)
	if got[0].SeqnumID == c.SeqnumID {
		t.Error("want the new seqnum ID")
	}
}

// ReadDirs reads several trees as one journal: an entry in both (flushed
// from /run/log/journal to /var/log/journal) is handed out once; a missing
// directory is an error.
func TestReadDirs(t *testing.T) {
	run, persistent := t.TempDir(), t.TempDir()
	journaltest.Write(t, filepath.Join(run, "system.journal"), nil, nil, entries(1, 3)...)
	b, err := os.ReadFile(filepath.Join(run, "system.journal"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(persistent, "system.journal"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	journaltest.Write(t, filepath.Join(persistent, "system.journal"), nil, nil, entries(4, 5)...)
	got, _, err := collect(t, func(fn func(Entry) error) (Cursor, error) {
		return ReadDirs([]string{run, persistent}, Cursor{}, fn)
	})
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, got, 1, 5)
	if _, err := ReadDirs([]string{run, filepath.Join(run, "missing")}, Cursor{}, func(Entry) error { return nil }); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing dir: %v", err)
	}
}

func TestCursorText(t *testing.T) {
	c := Cursor{SeqnumID: bootID, Seqnum: 0x2a, Realtime: 0x60a24181e4000}
	s := c.String()
	if s != "s=0123456789abcdef0123456789abcdef;i=2a;t=60a24181e4000" {
		t.Errorf("String() = %q", s)
	}
	// journald's own cursors parse too.
	p, err := ParseCursor("s=0123456789abcdef0123456789abcdef;i=2a;b=0123456789abcdef0123456789abcdef;m=1388;t=60a24181e4000;x=1ee452a526535f3f")
	if err != nil || p != c {
		t.Errorf("ParseCursor = %v, %v", p, err)
	}
	for _, bad := range []string{"s=01;i=1", "i=1", "s=0123456789abcdef0123456789abcdef;i=zz", "junk"} {
		if _, err := ParseCursor(bad); err == nil {
			t.Errorf("ParseCursor(%q): no error", bad)
		}
	}
	if p, err := ParseCursor(""); err != nil || !p.IsZero() {
		t.Errorf("ParseCursor(\"\") = %v, %v", p, err)
	}
}

func TestUnlz4(t *testing.T) {
	// "abcabcabcabc": 3 literals, then a match of 9 at offset 3.
	block := []byte{12, 0, 0, 0, 0, 0, 0, 0, 0x35, 'a', 'b', 'c', 3, 0}
	got, err := unlz4(block, 100)
	if err != nil || string(got) != "abcabcabcabc" {
		t.Errorf("unlz4 = %q, %v", got, err)
	}
	if got, err := unlz4(block, 5); err != nil || string(got) != "abcab" {
		t.Errorf("unlz4 limited = %q, %v", got, err)
	}
	for _, bad := range [][]byte{block[:5], block[:11], {12, 0, 0, 0, 0, 0, 0, 0, 0x05, 9, 0}} {
		if _, err := unlz4(bad, 100); err == nil {
			t.Errorf("unlz4(%v): no error", bad)
		}
	}
}

func seed(t testing.TB) []byte {
	z, err := os.ReadFile("testdata/small.journal.zst")
	if err != nil {
		t.Fatal(err)
	}
	d, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	b, err := d.DecodeAll(z, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The committed seed (written by journal-remote 252, compact, zstd, trimmed
// after its last object) reads without the binary.
func TestSeedFile(t *testing.T) {
	b := seed(t)
	got, _, err := collect(t, func(fn func(Entry) error) (Cursor, error) {
		return readFrom("seed", bytes.NewReader(b), int64(len(b)), Cursor{}, fn)
	})
	if err != nil || len(got) != 3 || got[2].Fields["MESSAGE"] != "hello 2" || got[0].Fields["BIN"] != binValue {
		t.Fatalf("seed: %d entries, %v", len(got), err)
	}
}

func FuzzReadFile(f *testing.F) {
	b := seed(f)
	f.Add(b)
	f.Add(b[:4096])
	f.Add([]byte(headerSignature))
	f.Fuzz(func(t *testing.T, data []byte) {
		var prev uint64
		n := 0
		_, _ = readFrom("fuzz", bytes.NewReader(data), int64(len(data)), Cursor{}, func(e Entry) error {
			if n++; n > 1 && e.Seqnum <= prev {
				_ = e // seqnums of a corrupt file may go back: only no panic matters
			}
			prev = e.Seqnum
			for k, v := range e.Fields {
				if len(k) > maxNameSize || len(v) > MaxFieldSize {
					t.Fatalf("field %q has %d bytes", k, len(v))
				}
			}
			return nil
		})
	})
}
