package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/klauspost/compress/zstd"
)

// MaxFieldSize bounds the value of one field: a longer value is truncated to
// this many bytes and the rest is neither read nor decompressed.
const MaxFieldSize = 64 << 10

// maxNameSize bounds a field name (journald allows 64 bytes).
const maxNameSize = 256

// maxEntryItems bounds the number of fields of one entry (journald writes at
// most 1024 client fields plus its own).
const maxEntryItems = 4096

// ErrCorrupt is wrapped by the errors about a file that is truncated or does
// not follow the format.
var ErrCorrupt = errors.New("journal file corrupt or truncated")

// ErrUnsupportedCompression is wrapped by the error about a DATA object
// compressed with an algorithm this package does not decompress (XZ).
var ErrUnsupportedCompression = errors.New("unsupported compression")

// Entry is one journal entry.
type Entry struct {
	Seqnum    uint64
	SeqnumID  [16]byte
	Realtime  time.Time
	Monotonic uint64 // microseconds since boot BootID
	BootID    [16]byte
	// Fields maps each field name to its value (which may be binary). A field
	// that occurs more than once in the entry keeps its first value.
	Fields map[string]string
}

// Cursor returns the cursor that points at e.
func (e *Entry) Cursor() Cursor {
	return Cursor{SeqnumID: e.SeqnumID, Seqnum: e.Seqnum, Realtime: uint64(e.Realtime.UnixMicro())}
}

const (
	headerSignature = "LPKSHHRH"
	headerMinSize   = 208 // through tail_entry_monotonic (systemd 187+)

	incompatXZ        = 1 << 0
	incompatLZ4       = 1 << 1
	incompatKeyedHash = 1 << 2
	incompatZSTD      = 1 << 3
	incompatCompact   = 1 << 4
	incompatKnown     = incompatXZ | incompatLZ4 | incompatKeyedHash | incompatZSTD | incompatCompact

	objData       = 1
	objEntry      = 3
	objEntryArray = 6

	objCompressedXZ   = 1 << 0
	objCompressedLZ4  = 1 << 1
	objCompressedZSTD = 1 << 2
	objCompressedMask = objCompressedXZ | objCompressedLZ4 | objCompressedZSTD

	objHeaderSize = 16
)

// header is the part of a journal file header this package uses.
type header struct {
	incompatible     uint32
	seqnumID         [16]byte
	headerSize       uint64
	entryArrayOffset uint64
	nEntries         uint64
	headSeqnum       uint64
	tailSeqnum       uint64
	headRealtime     uint64
	tailRealtime     uint64
}

func (h *header) compact() bool { return h.incompatible&incompatCompact != 0 }

func parseHeader(b []byte, size int64) (header, error) {
	var h header
	if len(b) < headerMinSize || string(b[:8]) != headerSignature {
		return h, fmt.Errorf("%w: not a journal file (no signature or header too short)", ErrCorrupt)
	}
	le := binary.LittleEndian
	h.incompatible = le.Uint32(b[12:])
	copy(h.seqnumID[:], b[72:88])
	h.headerSize = le.Uint64(b[88:])
	h.entryArrayOffset = le.Uint64(b[176:])
	h.nEntries = le.Uint64(b[152:])
	h.tailSeqnum = le.Uint64(b[160:])
	h.headSeqnum = le.Uint64(b[168:])
	h.headRealtime = le.Uint64(b[184:])
	h.tailRealtime = le.Uint64(b[192:])
	if u := h.incompatible &^ incompatKnown; u != 0 {
		return h, fmt.Errorf("journal file has unknown incompatible flags %#x (written by a newer systemd)", u)
	}
	if h.headerSize < headerMinSize || h.headerSize%8 != 0 || h.headerSize > uint64(size) {
		return h, fmt.Errorf("%w: header size %d", ErrCorrupt, h.headerSize)
	}
	return h, nil
}

// file iterates over the entries of one journal file.
type file struct {
	name string
	r    io.ReaderAt
	size uint64
	h    header

	arr       uint64 // current ENTRY_ARRAY object, 0 when done
	arrItems  uint64 // number of items in it
	idx       uint64 // next item in it
	lastEntry uint64 // offset of the last entry returned
	err       error  // sticky

	buf  []byte
	zbuf []byte
	zstd *zstd.Decoder
}

func newFile(name string, r io.ReaderAt, size int64) (*file, error) {
	n := size
	if n > 512 {
		n = 512
	}
	b := make([]byte, n)
	if _, err := r.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	h, err := parseHeader(b, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	f := &file{name: name, r: r, size: uint64(size), h: h}
	if h.entryArrayOffset != 0 {
		if err := f.openArray(h.entryArrayOffset); err != nil {
			f.err = err
		}
	}
	return f, nil
}

func (f *file) close() {
	if f.zstd != nil {
		f.zstd.Close()
		f.zstd = nil
	}
}

func (f *file) corrupt(format string, a ...any) error {
	return fmt.Errorf("%s: %w: %s", f.name, ErrCorrupt, fmt.Sprintf(format, a...))
}

// read reads n bytes at off, checking that they lie in the file.
func (f *file) read(off, n uint64) ([]byte, error) {
	if off > f.size || n > f.size-off {
		return nil, f.corrupt("%d bytes at offset %d lie past the end of the file (%d bytes)", n, off, f.size)
	}
	if uint64(cap(f.buf)) < n {
		f.buf = make([]byte, n)
	}
	b := f.buf[:n]
	if _, err := f.r.ReadAt(b, int64(off)); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, f.corrupt("short read of %d bytes at offset %d", n, off)
		}
		return nil, fmt.Errorf("%s: %w", f.name, err)
	}
	return b, nil
}

// object checks the object header at off and returns its size.
func (f *file) object(off uint64, typ byte, minSize uint64) (size uint64, flags byte, err error) {
	if off%8 != 0 || off < f.h.headerSize {
		return 0, 0, f.corrupt("object offset %d invalid", off)
	}
	b, err := f.read(off, objHeaderSize)
	if err != nil {
		return 0, 0, err
	}
	if b[0] != typ {
		return 0, 0, f.corrupt("object at %d has type %d, want %d", off, b[0], typ)
	}
	flags = b[1]
	size = binary.LittleEndian.Uint64(b[8:])
	if size < minSize || size > f.size-off {
		return 0, 0, f.corrupt("object at %d has size %d (file %d bytes)", off, size, f.size)
	}
	return size, flags, nil
}

func (f *file) itemSize() uint64 {
	if f.h.compact() {
		return 4
	}
	return 8
}

// entryItemSize is the size of an item of an ENTRY object.
func (f *file) entryItemSize() uint64 {
	if f.h.compact() {
		return 4
	}
	return 16
}

func (f *file) openArray(off uint64) error {
	size, _, err := f.object(off, objEntryArray, objHeaderSize+8)
	if err != nil {
		return err
	}
	f.arr, f.arrItems, f.idx = off, (size-objHeaderSize-8)/f.itemSize(), 0
	return nil
}

// item returns item i of the current ENTRY_ARRAY: an ENTRY offset, or 0 for
// a slot preallocated but not yet used.
func (f *file) item(i uint64) (uint64, error) {
	is := f.itemSize()
	b, err := f.read(f.arr+objHeaderSize+8+i*is, is)
	if err != nil {
		return 0, err
	}
	if is == 4 {
		return uint64(binary.LittleEndian.Uint32(b)), nil
	}
	return binary.LittleEndian.Uint64(b), nil
}

// nextArray moves to the ENTRY_ARRAY after the current one (f.arr is 0 at
// the end of the chain). On error f is unchanged.
func (f *file) nextArray() error {
	b, err := f.read(f.arr+objHeaderSize, 8)
	if err != nil {
		return err
	}
	next := binary.LittleEndian.Uint64(b)
	if next == 0 {
		f.arr = 0
		return nil
	}
	// Arrays are appended, so the chain only goes forward: this also
	// stops a corrupt chain from looping.
	if next <= f.arr {
		return f.corrupt("entry array at %d links back to %d", f.arr, next)
	}
	return f.openArray(next)
}

// nextOffset returns the offset of the next ENTRY, or 0 at the end.
func (f *file) nextOffset() (uint64, error) {
	for f.arr != 0 {
		if f.idx < f.arrItems {
			o, err := f.item(f.idx)
			if err != nil {
				return 0, err
			}
			if o == 0 { // preallocated, not yet used: the end
				f.arr = 0
				return 0, nil
			}
			f.idx++
			return o, nil
		}
		if err := f.nextArray(); err != nil {
			return 0, err
		}
	}
	return 0, nil
}

// entryHead reads the ENTRY object at off up to its items (64 bytes, in
// f.buf) and returns the object's size.
func (f *file) entryHead(off uint64) (uint64, []byte, error) {
	// One read for the object header and the fields when they are whole.
	if off%8 == 0 && off >= f.h.headerSize && off <= f.size && f.size-off >= 64 {
		b, err := f.read(off, 64)
		if err != nil {
			return 0, nil, err
		}
		if size := binary.LittleEndian.Uint64(b[8:]); b[0] == objEntry && size >= 64 && size <= f.size-off {
			return size, b, nil
		}
	}
	size, _, err := f.object(off, objEntry, 64) // says what is wrong
	if err != nil {
		return 0, nil, err
	}
	b, err := f.read(off, 64)
	return size, b, err
}

// seek moves f past the entries the cursor c covers, reading no DATA object:
// a resume then costs a few small reads per ENTRY_ARRAY (and journald makes
// each array larger than the last, so there are few) instead of a decode of
// every entry. Within one file seqnums only grow along the chain, so for a
// file of c's seqnum ID an array whose last entry c covers is passed whole
// and the array where c ends is bisected. Other seqnum IDs order by realtime,
// which may go back: next checks each of their entry headers instead.
//
// Anything seek cannot read stops it there: next then reads on from that
// point and reports the error where a read from the start would.
func (f *file) seek(c Cursor) {
	if f.err != nil || c.IsZero() || f.h.seqnumID != c.SeqnumID {
		return
	}
	// covered reports whether c covers item i of the current array, with
	// the entry's offset and seqnum.
	covered := func(i uint64) (off, seq uint64, ok bool) {
		off, err := f.item(i)
		if err != nil || off == 0 || off <= f.lastEntry {
			return 0, 0, false
		}
		_, b, err := f.entryHead(off)
		if err != nil {
			return 0, 0, false
		}
		seq = binary.LittleEndian.Uint64(b[16:])
		return off, seq, seq <= c.Seqnum
	}
	var base uint64 // seqnum of the entry before item f.idx; 0 if not read
	for f.arr != 0 {
		n := f.arrItems
		lo, hi, prev := f.idx, n, uint64(0)
		// Seqnums grow by at least one per entry, so c covers nothing from
		// this index on; as journald numbers the entries of a file without
		// gaps (unless user journals share its counter), c usually ends
		// right before it and the probe of hi-1 is the only one.
		if base != 0 && c.Seqnum-base < hi-lo {
			hi = lo + c.Seqnum - base
		}
		if hi > lo {
			if off, seq, ok := covered(hi - 1); ok {
				lo, prev = hi, off
				if hi == n {
					f.lastEntry, f.idx, base = off, n, seq
					if f.nextArray() != nil {
						return
					}
					continue
				}
			} else {
				for hi--; lo < hi; {
					mid := lo + (hi-lo)/2
					if off, _, ok := covered(mid); ok {
						lo, prev = mid+1, off
					} else {
						hi = mid
					}
				}
			}
		}
		f.idx = lo
		if prev != 0 {
			f.lastEntry = prev
		}
		return
	}
}

// next returns the next entry that c is before; ok is false at the end or
// on error. Entries c covers are skipped on their header alone.
func (f *file) next(c Cursor) (e Entry, ok bool, err error) {
	if f.err != nil {
		return e, false, f.err
	}
	e, ok, err = f.nextEntry(c)
	if err != nil {
		f.err = err
	}
	return e, ok, err
}

func (f *file) nextEntry(c Cursor) (Entry, bool, error) {
	var e Entry
	var off, size uint64
	le := binary.LittleEndian
	for {
		var err error
		off, err = f.nextOffset()
		if err != nil || off == 0 {
			return e, false, err
		}
		// Entries are appended in order; a chain that goes back is corrupt.
		if off <= f.lastEntry {
			return e, false, f.corrupt("entry at %d listed after entry at %d", off, f.lastEntry)
		}
		f.lastEntry = off
		var b []byte
		size, b, err = f.entryHead(off)
		if err != nil {
			return e, false, err
		}
		e.SeqnumID = f.h.seqnumID
		e.Seqnum = le.Uint64(b[16:])
		e.Realtime = time.UnixMicro(int64(le.Uint64(b[24:])))
		e.Monotonic = le.Uint64(b[32:])
		copy(e.BootID[:], b[40:56])
		if n := (size - 64) / f.entryItemSize(); n > maxEntryItems {
			return e, false, f.corrupt("entry at %d has %d items", off, n)
		}
		if c.Before(&e) {
			break
		}
	}
	is := f.entryItemSize()
	n := (size - 64) / is
	items, err := f.read(off+64, n*is)
	if err != nil {
		return e, false, err
	}
	data := make([]uint64, n)
	for i := range data {
		if is == 4 {
			data[i] = uint64(le.Uint32(items[i*4:]))
		} else {
			data[i] = le.Uint64(items[i*16:])
		}
	}
	e.Fields = make(map[string]string, n)
	seen := make(map[uint64]bool, n)
	for _, d := range data {
		if seen[d] {
			continue
		}
		seen[d] = true
		name, value, err := f.readData(d)
		if err != nil {
			return e, false, err
		}
		if _, dup := e.Fields[name]; !dup && name != "" {
			e.Fields[name] = value
		}
	}
	return e, true, nil
}

// readData returns the field of the DATA object at off.
func (f *file) readData(off uint64) (name, value string, err error) {
	payloadOff := uint64(64)
	if f.h.compact() {
		payloadOff = 72
	}
	size, flags, err := f.object(off, objData, payloadOff)
	if err != nil {
		return "", "", err
	}
	n := size - payloadOff
	const limit = maxNameSize + MaxFieldSize
	var p []byte
	switch flags & objCompressedMask {
	case 0:
		b, err := f.read(off+payloadOff, min(n, limit))
		if err != nil {
			return "", "", err
		}
		p = b
	case objCompressedZSTD:
		if err := f.checkRange(off+payloadOff, n); err != nil {
			return "", "", err
		}
		if p, err = f.unzstd(off+payloadOff, n, limit); err != nil {
			return "", "", f.corrupt("DATA object at %d: zstd: %v", off, err)
		}
	case objCompressedLZ4:
		// An LZ4 block turns 2 bytes into at least 1 unless it ends.
		b, err := f.read(off+payloadOff, min(n, 2*limit+16))
		if err != nil {
			return "", "", err
		}
		if p, err = unlz4(b, limit); err != nil {
			return "", "", f.corrupt("DATA object at %d: lz4: %v", off, err)
		}
	case objCompressedXZ:
		return "", "", fmt.Errorf("%s: DATA object at %d is compressed with XZ: %w", f.name, off, ErrUnsupportedCompression)
	default:
		return "", "", f.corrupt("DATA object at %d has compression flags %#x", off, flags)
	}
	i := bytes.IndexByte(p, '=')
	if i <= 0 || i > maxNameSize {
		return "", "", nil // not a field: ignored
	}
	v := p[i+1:]
	if len(v) > MaxFieldSize {
		v = v[:MaxFieldSize]
	}
	return string(p[:i]), string(v), nil
}

func (f *file) checkRange(off, n uint64) error {
	if off > f.size || n > f.size-off {
		return f.corrupt("%d bytes at offset %d lie past the end of the file (%d bytes)", n, off, f.size)
	}
	return nil
}

// unzstd decompresses at most limit bytes of the zstd frame of n bytes at off.
func (f *file) unzstd(off, n, limit uint64) ([]byte, error) {
	sr := io.NewSectionReader(f.r, int64(off), int64(n))
	if f.zstd == nil {
		d, err := zstd.NewReader(sr, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(8<<20), zstd.WithDecoderMaxMemory(64<<20))
		if err != nil {
			return nil, err
		}
		f.zstd = d
	} else if err := f.zstd.Reset(sr); err != nil {
		return nil, err
	}
	// Reused: readData copies what it keeps.
	if uint64(cap(f.zbuf)) < limit {
		f.zbuf = make([]byte, limit)
	}
	out := f.zbuf[:limit]
	m, err := io.ReadFull(f.zstd, out)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return out[:m], nil
}

// unlz4 decodes an LZ4 block as journald stores it (a little-endian 64-bit
// uncompressed size, then the block), stopping after limit bytes of output.
func unlz4(b []byte, limit uint64) ([]byte, error) {
	if len(b) < 8 {
		return nil, errors.New("short payload")
	}
	want := binary.LittleEndian.Uint64(b)
	want = min(want, limit)
	src := b[8:]
	dst := make([]byte, 0, want)
	full := func() bool { return uint64(len(dst)) >= want }
	length := func(n int, i *int) (int, error) {
		if n != 15 {
			return n, nil
		}
		for {
			if *i >= len(src) {
				return 0, errors.New("truncated length")
			}
			c := src[*i]
			*i++
			n += int(c)
			if n > 1<<30 {
				return 0, errors.New("length overflow")
			}
			if c != 255 {
				return n, nil
			}
		}
	}
	for i := 0; !full(); {
		if i >= len(src) {
			return nil, errors.New("truncated block")
		}
		tok := src[i]
		i++
		lit, err := length(int(tok>>4), &i)
		if err != nil {
			return nil, err
		}
		if lit > len(src)-i {
			lit = len(src) - i // the rest we read; checked below
		}
		room := int(want) - len(dst)
		dst = append(dst, src[i:i+min(lit, room)]...)
		i += lit
		if full() || i >= len(src) {
			break
		}
		if i+2 > len(src) {
			return nil, errors.New("truncated offset")
		}
		moff := int(src[i]) | int(src[i+1])<<8
		i += 2
		ml, err := length(int(tok&15), &i)
		if err != nil {
			return nil, err
		}
		ml += 4
		if moff == 0 || moff > len(dst) {
			return nil, fmt.Errorf("match offset %d out of range", moff)
		}
		for k := 0; k < ml && !full(); k++ {
			dst = append(dst, dst[len(dst)-moff])
		}
	}
	if !full() {
		return nil, errors.New("block shorter than its stated size")
	}
	return dst, nil
}

// ReadFile calls fn with each entry of the journal file at path that comes
// after the cursor, in the order they were written, and returns the cursor of
// the last entry fn accepted (after, if none). It stops at the first error of
// fn, or of the file: entries that are whole before a truncated or corrupt
// part are delivered, then the error is returned.
func ReadFile(path string, after Cursor, fn func(Entry) error) (Cursor, error) {
	fd, err := os.Open(path)
	if err != nil {
		return after, err
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return after, err
	}
	return readFrom(path, fd, st.Size(), after, fn)
}

func readFrom(name string, r io.ReaderAt, size int64, after Cursor, fn func(Entry) error) (Cursor, error) {
	f, err := newFile(name, r, size)
	if err != nil {
		return after, err
	}
	defer f.close()
	f.seek(after)
	c := after
	for {
		e, ok, err := f.next(after)
		if err != nil || !ok {
			return c, err
		}
		if err := fn(e); err != nil {
			return c, err
		}
		c = e.Cursor()
	}
}
