// Package logfile follows a log file that other programs write and logrotate
// rotates, and hands every complete line to a callback exactly once per run,
// in file order.
//
// The node agent rebuilds its state from the host event log on every start,
// so a Follower always replays the rotated file (Path+".1") and the current
// file from their beginning, signals that the replay is done, and then
// follows new lines. Deduplicating across restarts is the caller's job.
//
// # Why this is harder than "tail -F"
//
// node-problem-detector's tailer loses lines in two common situations: lines
// appended just before a rename rotation are never read, because it reopens
// the path as soon as it notices the rename; and after copytruncate it resumes
// at its old offset once the file has grown back past it, in the middle of a
// line. The strategy below avoids both.
//
// # Identity, not names
//
// A file is identified by its inode (os.SameFile), never by its name. The
// Follower keeps the descriptor it opened, so it can go on reading a file
// after it has been renamed, and it notices rotation when Path names a
// different inode than the one it holds. Holding the descriptor also keeps
// the inode from being freed and reused by the next file, which would make a
// replaced file look unchanged.
//
// # Rename rotation (mv f f.1; create f)
//
// Before switching to the new file, the old one is read to its end, so every
// line written to it before the new file existed comes first. The old file is
// then kept open and read on every check until it has not grown for
// Options.OldFileIdle: a writer that has not reopened the log yet (it waits
// for logrotate's postrotate signal, or never reopens at all) still appends
// there. Such late lines are delivered, only their order relative to the
// new file's lines is the order in which they were read.
//
// While Path does not exist at all (between the mv and the create, or a writer
// that never recreates it), the old file stays the current one and is followed
// indefinitely; it is only given up once it has been deleted and stayed idle.
//
// # Copytruncate (cp f f.1; truncate f)
//
// The file keeps its inode, so truncation is detected by its size dropping
// below the read offset, or, when it has been rewritten to at least the old
// size between two checks, by its first bytes no longer matching the ones read
// before. Either way the Follower:
//
//  1. reads the copy (Path+".1") from the old offset to its end, if the copy
//     starts with the same bytes: those are lines logrotate copied after the
//     last check and then truncated away, which a plain tailer loses;
//  2. restarts at offset 0 of the truncated file, never at the old offset, so
//     it never resumes mid-line;
//  3. keeps a partial last line it was holding: an appending (O_APPEND)
//     writer finishes that line at the start of the truncated file, so the
//     line is delivered whole, once.
//
// # Lines
//
// A line is delivered only when its '\n' arrives; a trailing "\r" is removed.
// A line longer than Options.MaxLineBytes (not counting its '\n') is
// skipped entirely, up to and including its '\n', counted in Stats and
// logged; the Follower never buffers more than MaxLineBytes of a line.
//
// # Noticing changes
//
// The parent directory is watched with fsnotify (so creation and renames of
// the file are seen, not only writes), and a poll ticker checks everything
// again every Options.PollInterval. The ticker is not only a fallback for
// when inotify is unavailable (out of instances, or a host mount that
// delivers no events): every decision is made from stat results, never from
// the events themselves, so a missed or coalesced event costs at most one
// poll interval of latency, never a line.
//
// # Limits
//
//   - Two rotations between two checks: with rename, the file in the middle
//     (now Path+".1") is never opened; with copytruncate, the first copy has
//     been shifted away. Likewise a file that grows from empty and is
//     truncated back to empty between two checks looks unchanged. With
//     fsnotify working every change triggers a check, so this takes
//     rotations faster than the Follower can stat; with polling alone, two
//     rotations within one PollInterval.
//   - Copytruncate cannot be fully lossless: lines written between
//     logrotate's copy and its truncate exist in neither file. Recovery from
//     the copy also needs it to be named Path+".1" and not compressed yet
//     (use delaycompress).
//   - A same-size rewrite whose first 256 bytes equal the old ones (or a
//     file truncated and regrown past the old offset with the same first
//     bytes) is not detected.
//   - A partial line held when the file is truncated is joined with the first
//     bytes of the truncated file. If the writer had instead finished that
//     line before the truncation (so the end was truncated away and not in
//     the copy), the fragment is glued onto the next line.
//   - A writer that appends to a rotated file after it has been idle for
//     OldFileIdle loses those lines.
package logfile
