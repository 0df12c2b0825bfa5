// Package journal reads systemd journal files (*.journal) in pure Go.
//
// The node agent is a static binary (CGO_ENABLED=0) in a distroless image, so
// it cannot link libsystemd's sd-journal; no maintained pure-Go reader of
// journal files is available as a Go module either. This package reads the
// documented on-disk format (systemd's JOURNAL_FILE_FORMAT) as written by
// systemd 252 and earlier:
//
//   - the file header, including the incompatible flags KEYED_HASH,
//     COMPRESSED_ZSTD, COMPRESSED_XZ, COMPRESSED_LZ4 and COMPACT;
//   - the chain of ENTRY_ARRAY objects from the header's entry_array_offset,
//     which lists every ENTRY in the order it was written;
//   - ENTRY objects (seqnum, realtime, monotonic, boot ID) and the DATA
//     objects their items point to, in regular and compact layout;
//   - DATA payloads stored plain or compressed with zstd or LZ4. XZ, used by
//     old systemd versions only, is refused with ErrUnsupportedCompression.
//
// What it does not do: it never uses the data and field hash tables (no
// matching by field, no lookups: every entry after the cursor is read and the
// caller filters), it does not verify Forward Secure Sealing (TAG objects are
// ignored) nor the hashes of DATA objects, and it never writes.
//
// Every offset and size read from a file is checked against the file's real
// size before use, so a truncated or corrupt file (one being written, one left
// by a crash) yields the entries that are whole and an error, never a panic.
// A field value longer than MaxFieldSize is truncated; the rest of it is never
// read or decompressed.
//
// A Cursor (the journal's seqnum ID and seqnum, with the realtime stamp as a
// fallback across seqnum IDs) marks the last entry handed out; it marshals to
// text so that a reader can persist it and resume after a restart. ReadDir
// reads a directory tree of journal files, merging files that share a seqnum
// ID (rotated files, user journals) in seqnum order, so no entry is lost or
// repeated across rotation.
//
// A resume costs little: in a file of the cursor's seqnum ID, whose entries
// are in seqnum order, the entry arrays the cursor covers are passed over on
// the header of their last entry and the array where it ends is bisected (in
// all, a few small reads per entry array, of which journald makes O(log n));
// an archived file the cursor has passed is not read past its header.
// Entries of other seqnum IDs, ordered by realtime which may go back, are
// skipped on their own header. Only entries after the cursor have their DATA
// objects read. A poll that finds nothing new in a live file of 50k entries
// (10 entry arrays) makes a few dozen reads of at most 64 bytes, where a read
// from the start decodes all 50k entries.
package journal
