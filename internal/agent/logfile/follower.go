package logfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
)

// Defaults for the zero values of Options.
const (
	DefaultMaxLineBytes = 64 << 10
	DefaultPollInterval = time.Second
	DefaultOldFileIdle  = 30 * time.Second
)

const (
	// readBufSize is how much is read per system call. Lines that fit in one
	// read are handed out without copying.
	readBufSize = 64 << 10
	// headLen is how many leading bytes of a file are remembered to notice
	// that it was rewritten in place without getting shorter.
	headLen = 256
	// maxDrainedEvents bounds how many queued fsnotify events one check
	// absorbs, so a busy writer cannot keep the loop from the ticker or ctx.
	maxDrainedEvents = 128
)

// Options configure a Follower. Only Path is required.
type Options struct {
	// Path is the log file to follow. It need not exist yet.
	Path string
	// MaxLineBytes is the longest line delivered, not counting its '\n'.
	// Longer lines are skipped whole, counted in Stats.LinesSkipped and
	// reported to OnSkip.
	// Default DefaultMaxLineBytes.
	MaxLineBytes int
	// PollInterval is how often every file is checked even without a
	// notification. Default DefaultPollInterval.
	PollInterval time.Duration
	// IncludeRotated replays Path+".1" before Path on start. The agent sets
	// it: right after a rotation the current file alone does not hold the
	// state it must rebuild.
	IncludeRotated bool
	// DisableNotify turns fsnotify off and relies on polling alone, for
	// hosts where inotify is known not to work.
	DisableNotify bool
	// OldFileIdle is how long a file that was rotated away is still read
	// after it last grew, for writers that have not reopened their log yet.
	// Default DefaultOldFileIdle.
	OldFileIdle time.Duration
	// OnSkip, if set, is called with the number of lines just skipped for
	// being too long, so the caller's metric moves when it happens.
	OnSkip func(n int)
}

// Line is one complete line of the file.
type Line struct {
	// Text is the line without its "\n" or "\r\n". It is only valid until
	// the callback returns: copy it to keep it.
	Text []byte
	// Replay is true for lines read by the startup replay, that is, before
	// onReplayDone is called.
	Replay bool
}

// Stats are counters since New. The agent's metrics are counted by the
// callers, from what the callbacks deliver; these let tests see what the
// Follower itself did (rotations and truncations followed, lines skipped).
type Stats struct {
	LinesRead    uint64 // delivered to the callback
	LinesSkipped uint64 // longer than MaxLineBytes
	Rotations    uint64 // the followed file was replaced or deleted
	Truncations  uint64 // the followed file was truncated or rewritten in place
}

// Follower follows one log file. Create it with New and start it with Run.
type Follower struct {
	opts    Options
	path    string // absolute, so it compares equal to fsnotify's event names
	rotated string // path + ".1"
	dir     string
	log     logr.Logger

	linesRead, linesSkipped, rotations, truncations atomic.Uint64
	// openFiles lets tests see that files are let go without racing Run.
	openFiles atomic.Int32

	running atomic.Bool
	// kick makes Run check the files now. Tests use it to decide exactly
	// when a check happens.
	kick chan struct{}

	// The fields below belong to the goroutine in Run.
	onLine    func(Line)
	emitFn    func([]byte) // f.emit, bound once instead of on every read
	replaying bool
	buf       []byte
	scratch   [headLen]byte
	cur       *tailFile   // the file at path, or the last one that was there
	old       []*tailFile // rotated away, still read while their writer may append
	errs      map[string]string
}

// tailFile is one open file and how far it has been read.
type tailFile struct {
	f          *os.File
	info       os.FileInfo // identity (inode) at open time
	offset     int64       // bytes read, including a held partial line
	head       []byte      // the first headLen bytes read
	lines      lineSplitter
	lastGrowth time.Time
}

// New returns a Follower for opts.Path. It does not touch the file system.
func New(opts Options, log logr.Logger) *Follower {
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = DefaultMaxLineBytes
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.OldFileIdle <= 0 {
		opts.OldFileIdle = DefaultOldFileIdle
	}
	path := filepath.Clean(opts.Path)
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return &Follower{
		opts:    opts,
		path:    path,
		rotated: path + ".1",
		dir:     filepath.Dir(path),
		log:     log.WithValues("path", path),
		kick:    make(chan struct{}, 1),
		errs:    map[string]string{},
	}
}

// Stats returns the counters. It is safe to call while Run is running.
func (f *Follower) Stats() Stats {
	return Stats{
		LinesRead:    f.linesRead.Load(),
		LinesSkipped: f.linesSkipped.Load(),
		Rotations:    f.rotations.Load(),
		Truncations:  f.truncations.Load(),
	}
}

// Run replays Path+".1" (with Options.IncludeRotated) and then Path from
// their beginning, calls onReplayDone once, even if no file exists yet, and
// then delivers new lines until ctx is done. It returns nil when ctx is done;
// it returns an error only for misuse, never for file system trouble, which
// it logs and retries.
//
// onLine and onReplayDone are called on Run's goroutine, one at a time; a
// slow onLine slows reading down, nothing is queued. onReplayDone may be nil.
// Run may be called only once.
func (f *Follower) Run(ctx context.Context, onLine func(Line), onReplayDone func()) error {
	if f.opts.Path == "" {
		return errors.New("logfile: Options.Path is empty")
	}
	if onLine == nil {
		return errors.New("logfile: onLine is nil")
	}
	if !f.running.CompareAndSwap(false, true) {
		return errors.New("logfile: Run called more than once")
	}
	f.onLine = onLine
	f.emitFn = f.emit
	f.buf = make([]byte, readBufSize)
	defer f.closeAll()

	// Watch before replaying, so that a change made during the replay
	// leaves an event behind instead of waiting for the ticker.
	var events <-chan fsnotify.Event
	var watchErrs <-chan error
	watcher := f.newWatcher()
	watching := false
	if watcher != nil {
		defer watcher.Close()
		events, watchErrs = watcher.Events, watcher.Errors
		watching = f.watchDir(watcher)
	}
	ticker := time.NewTicker(f.opts.PollInterval)
	defer ticker.Stop()

	f.replay(ctx)
	if ctx.Err() != nil {
		return nil
	}
	if onReplayDone != nil {
		onReplayDone()
	}

	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-events:
			if !f.concerns(ev) {
				continue
			}
			// One check reads everything there is, so the events queued
			// behind this one carry no news.
			drainEvents(events)
			f.poll(ctx)
		case err := <-watchErrs:
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				f.poll(ctx) // events were dropped: look now rather than at the next tick
				continue
			}
			f.log.Error(err, "file watch error; polling continues")
		case <-ticker.C:
			if watcher != nil && !watching {
				// The directory may have been created since.
				watching = f.watchDir(watcher)
			}
			f.poll(ctx)
		case <-f.kick:
			f.poll(ctx)
		}
	}
}

// replay reads the rotated file, then the current one, from their start.
func (f *Follower) replay(ctx context.Context) {
	f.replaying = true
	defer func() { f.replaying = false }()

	// Open the current file before the rotated one: if a rotation happens in
	// between, ".1" is then the file already held and is skipped, whereas in
	// the other order the file that was current would be missed entirely.
	cur := f.open(f.path)
	if f.opts.IncludeRotated {
		if r := f.open(f.rotated); r != nil {
			if cur != nil && os.SameFile(r.info, cur.info) {
				f.close(r)
			} else {
				f.read(ctx, r)
				// Its writer may not have reopened the log since the rotation.
				f.old = append(f.old, r)
			}
		}
	}
	if cur != nil {
		f.cur = cur
		f.read(ctx, cur)
	}
}

// poll brings everything up to date. Rotated-away files go first: what is
// still appended to them was written before the current file's new lines, as
// far as anyone can tell.
func (f *Follower) poll(ctx context.Context) {
	f.pollOld(ctx)
	f.pollCurrent(ctx)
}

func (f *Follower) pollCurrent(ctx context.Context) {
	info, err := os.Stat(f.path)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		f.clearReport("stat", f.path)
	} else {
		f.report("stat", f.path, err)
	}
	switch {
	case err == nil && f.cur != nil && os.SameFile(info, f.cur.info):
		if f.truncated(f.cur) {
			f.restartTruncated(ctx)
		}
		f.read(ctx, f.cur)

	case err == nil:
		// Path names a new file: the first one, or a rotation's replacement.
		if f.cur != nil {
			// Finish the old file first, so that what was written to it
			// before the rotation comes before the new file's lines.
			f.read(ctx, f.cur)
			f.retire("log file replaced (rotated)")
		}
		if f.cur = f.open(f.path); f.cur != nil {
			f.read(ctx, f.cur)
		}

	case f.cur != nil:
		// Path is gone. Its writer may well still append to the file we
		// hold (renamed, not yet replaced), so it stays current; a new file
		// at Path takes over when it appears.
		f.read(ctx, f.cur)
		if deleted(f.cur.f) {
			// No one else can read it; give it up once idle.
			f.retire("log file deleted")
		}
	}
}

// retire moves the current file to the rotated-away ones.
func (f *Follower) retire(why string) {
	f.rotations.Add(1)
	f.log.Info(why, "readOffset", f.cur.offset)
	f.old = append(f.old, f.cur)
	f.cur = nil
}

func (f *Follower) pollOld(ctx context.Context) {
	kept := f.old[:0]
	for i, t := range f.old {
		if ctx.Err() != nil {
			// A read cut short must not be mistaken for an idle file.
			kept = append(kept, f.old[i:]...)
			break
		}
		if f.truncated(t) {
			// Rewritten in place, say by a "cp f f.1" that reused the
			// inode: what it holds now is not the rest of what was read.
			f.log.Info("rotated-away file was rewritten in place; no longer reading it", "file", t.f.Name(), "readOffset", t.offset)
			f.close(t)
			continue
		}
		f.read(ctx, t)
		if time.Since(t.lastGrowth) < f.opts.OldFileIdle {
			kept = append(kept, t)
			continue
		}
		// Nobody has written to it for a while and nobody will read it
		// again: an unterminated last line is delivered now or never.
		t.lines.flush(f.emitFn)
		f.close(t)
		f.log.V(1).Info("stopped reading rotated-away file", "file", t.f.Name(), "readOffset", t.offset)
	}
	clear(f.old[len(kept):])
	f.old = kept
}

// truncated tells whether t was truncated or rewritten in place since it was
// last read.
func (f *Follower) truncated(t *tailFile) bool {
	info, err := t.f.Stat()
	if err != nil {
		f.report("stat", t.f.Name(), err)
		return false
	}
	return info.Size() < t.offset || !f.sameHead(t.f, t.head)
}

// restartTruncated rewinds the current file to its start after copytruncate.
func (f *Follower) restartTruncated(ctx context.Context) {
	t := f.cur
	f.truncations.Add(1)
	f.log.Info("log file truncated in place (copytruncate?); reading it again from its start", "readOffset", t.offset)
	f.readCopy(ctx, t)
	t.offset = 0
	t.head = t.head[:0]
	// t.lines keeps a partial line: an appending writer finishes it at the
	// start of the truncated file.
}

// readCopy reads what copytruncate copied to Path+".1" beyond t's offset,
// that is, lines written after the last read and then truncated away.
func (f *Follower) readCopy(ctx context.Context, t *tailFile) {
	info, err := os.Stat(f.rotated)
	if err != nil || !info.Mode().IsRegular() || os.SameFile(info, t.info) || info.Size() <= t.offset {
		return
	}
	c, err := os.Open(f.rotated)
	if err != nil {
		f.report("open", f.rotated, err)
		return
	}
	defer c.Close()
	// Only a copy of the very file that was being read continues at t's
	// offset; an older rotation's ".1" starts differently.
	if !f.sameHead(c, t.head) {
		return
	}
	cp := &tailFile{f: c, offset: t.offset, lines: t.lines}
	f.read(ctx, cp)
	f.log.V(1).Info("read the truncated-away end of the log from its copy", "copy", f.rotated, "from", t.offset, "to", cp.offset)
	t.lines = cp.lines
}

// sameHead tells whether file still starts with head.
func (f *Follower) sameHead(file *os.File, head []byte) bool {
	if len(head) == 0 {
		return true
	}
	b := f.scratch[:len(head)]
	n, _ := file.ReadAt(b, 0)
	return bytes.Equal(b[:n], head)
}

// read delivers the lines completed in t since the last read, up to the
// file's current end.
func (f *Follower) read(ctx context.Context, t *tailFile) {
	for ctx.Err() == nil {
		n, err := t.f.ReadAt(f.buf, t.offset)
		if n > 0 {
			chunk := f.buf[:n]
			if len(t.head) < headLen && t.offset == int64(len(t.head)) {
				t.head = append(t.head, chunk[:min(n, headLen-len(t.head))]...)
			}
			start := t.offset
			t.offset += int64(n)
			t.lastGrowth = time.Now()
			if skipped := t.lines.feed(chunk, f.emitFn); skipped > 0 {
				f.linesSkipped.Add(uint64(skipped))
				if f.opts.OnSkip != nil {
					f.opts.OnSkip(skipped)
				}
				f.log.Info("skipped lines longer than the limit", "count", skipped,
					"nearOffset", start, "maxLineBytes", f.opts.MaxLineBytes, "file", t.f.Name())
			}
			f.clearReport("read", t.f.Name())
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				f.report("read", t.f.Name(), err)
			}
			return
		}
	}
}

func (f *Follower) emit(text []byte) {
	f.linesRead.Add(1)
	f.onLine(Line{Text: trimCR(text), Replay: f.replaying})
}

// open opens path for reading, or returns nil if it does not exist or
// cannot be opened (which is logged).
func (f *Follower) open(path string) *tailFile {
	// Stat first: opening a FIFO would block until it has a writer.
	info, err := os.Stat(path)
	if err == nil && !info.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", path)
	}
	var file *os.File
	if err == nil {
		file, err = os.Open(path)
	}
	if err == nil {
		info, err = file.Stat()
		if err != nil {
			file.Close()
		}
	}
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			f.report("open", path, err)
		}
		return nil
	}
	f.clearReport("open", path)
	f.openFiles.Add(1)
	f.log.V(1).Info("opened log file", "file", path)
	return &tailFile{
		f:          file,
		info:       info,
		lines:      lineSplitter{max: f.opts.MaxLineBytes},
		lastGrowth: time.Now(),
	}
}

func (f *Follower) close(t *tailFile) {
	t.f.Close()
	f.openFiles.Add(-1)
}

func (f *Follower) closeAll() {
	if f.cur != nil {
		f.close(f.cur)
		f.cur = nil
	}
	for _, t := range f.old {
		f.close(t)
	}
	f.old = nil
}

func (f *Follower) newWatcher() *fsnotify.Watcher {
	if f.opts.DisableNotify {
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		// Typically fs.inotify.max_user_instances is exhausted on the node.
		f.log.Error(err, "cannot use fsnotify; following by polling only", "pollInterval", f.opts.PollInterval)
		return nil
	}
	return w
}

// watchDir watches the parent directory rather than the file: a watch on the
// file would follow its inode through a rename and miss the new file.
func (f *Follower) watchDir(w *fsnotify.Watcher) bool {
	if err := w.Add(f.dir); err != nil {
		f.report("watch", f.dir, err)
		return false
	}
	f.clearReport("watch", f.dir)
	return true
}

// concerns tells whether ev may change what there is to read. Writes to a
// renamed file show under its new name, hence the rotated name too.
func (f *Follower) concerns(ev fsnotify.Event) bool {
	name := filepath.Clean(ev.Name)
	return name == f.path || name == f.rotated
}

func drainEvents(events <-chan fsnotify.Event) {
	for range maxDrainedEvents {
		select {
		case <-events:
		default:
			return
		}
	}
}

// report logs a failing operation once, not on every retry.
func (f *Follower) report(op, path string, err error) {
	key := op + " " + path
	if f.errs[key] == err.Error() {
		return
	}
	f.errs[key] = err.Error()
	f.log.Error(err, "log file "+op+" failed; retrying on the next check", "file", path)
}

func (f *Follower) clearReport(op, path string) {
	if len(f.errs) == 0 {
		return // the usual case, without building a key on every read
	}
	delete(f.errs, op+" "+path)
}
