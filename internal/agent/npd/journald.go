package npd

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/nodewarden/nodewarden/internal/journal"
)

// journaldWatcher reads the journal files under logPath (and under
// journal.RuntimeDir if logPath is DefaultJournalPath) with package journal,
// and hands out the entries whose SYSLOG_IDENTIFIER is pluginConfig.source,
// as NPD's journald watcher matches them: the entry's realtime stamp is its
// time, its MESSAGE, trimmed, its message.
//
// It replays what the journal holds at the start (`lookback` decides what of
// it counts), then polls every PollInterval; a poll reads only if a journal
// file appeared, went or changed size or mtime (journald touches a file on
// every write), and reads from the cursor of the last entry read, so
// rotation (a new file, the old one renamed) and vacuuming (an old file
// deleted) lose and repeat nothing. A file being written may end in a partly
// written entry: what is whole is read and the rest at the next poll. A
// directory that does not exist yet is waited for.
func journaldWatcher(c *Config, opts Options, log logr.Logger) watchFunc {
	dirs := journalDirs(c)
	return func(ctx context.Context, onEntry func(logEntry, bool), onReplayDone func()) {
		src := metricsSourceOf(c)
		w := journalPoller{dirs: dirs, log: log.WithValues("dirs", dirs), logged: map[string]bool{}}
		var cursor journal.Cursor
		read := func(replay bool) {
			cursor = w.read(ctx, cursor, func(e journal.Entry) {
				if e.Fields["SYSLOG_IDENTIFIER"] != c.JournalSource {
					return
				}
				opts.AgentMetrics.LineRead(src)
				onEntry(logEntry{Time: e.Realtime, Message: strings.TrimSpace(e.Fields["MESSAGE"])}, replay)
			})
		}
		read(true)
		onReplayDone()
		t := time.NewTicker(opts.PollInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			read(false)
		}
	}
}

// journalDirs are the directories a journald monitor reads.
func journalDirs(c *Config) []string { return journal.DirsFor(c.LogPath) }

// journalPoller reads journal directories when their files change.
type journalPoller struct {
	dirs []string
	log  logr.Logger
	// sig is what the files looked like at the last read that had no error
	// to retry.
	sig map[string]fileSig
	// retried: the last read failed and was already retried unchanged.
	retried bool
	// logged are the problems already logged, so that a persistent one is
	// logged once.
	logged map[string]bool
	// missing is the number of dirs found missing at the last poll.
	missing int
}

type fileSig struct {
	size  int64
	mtime time.Time
}

// read calls fn with the entries after cursor if the files changed, and
// returns the new cursor.
func (w *journalPoller) read(ctx context.Context, cursor journal.Cursor, fn func(journal.Entry)) journal.Cursor {
	var dirs []string
	for _, d := range w.dirs {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			dirs = append(dirs, d)
		}
	}
	if n := len(w.dirs) - len(dirs); n != w.missing {
		w.missing = n
		switch {
		case len(dirs) == 0:
			w.log.Info("no journal directory exists (yet); waiting for one")
		case n > 0:
			w.log.V(1).Info("some journal directories do not exist", "reading", dirs)
		}
	}
	if len(dirs) == 0 {
		return cursor
	}
	sig := journalFiles(dirs)
	if w.sig != nil && sameSig(sig, w.sig) {
		return cursor
	}
	c, err := journal.ReadDirs(dirs, cursor, func(e journal.Entry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		fn(e)
		return nil
	})
	if ctx.Err() != nil {
		return c
	}
	// A failed read is retried at the next poll even if nothing changed
	// (once: a file that stays broken is read again when it changes).
	if err == nil || w.retried {
		w.sig = sig
		w.retried = false
	} else {
		w.sig = nil
		w.retried = true
	}
	w.report(err)
	return c
}

// report logs each problem of a read once, until it goes away.
func (w *journalPoller) report(err error) {
	now := map[string]bool{}
	for _, e := range splitErrors(err) {
		msg := e.Error()
		now[msg] = true
		if w.logged[msg] {
			continue
		}
		switch {
		case errors.Is(e, journal.ErrCorrupt):
			// Normal at the tail of a file being written; the whole
			// entries were read.
			w.log.V(1).Info("journal file ends in an incomplete entry; the rest is read when it is whole", "reason", msg)
		case errors.Is(e, journal.ErrUnsupportedCompression):
			w.log.Error(e, "journal file cannot be read past this entry; its remaining entries are skipped")
		case errors.Is(e, fs.ErrPermission):
			w.log.Error(e, "reading the journal: the agent cannot read the journal files; they are usually mode 0640, group systemd-journal: "+
				"give the agent's container that group's GID in supplementalGroups (docs/migrate-npd.md)")
		default:
			w.log.Error(e, "reading the journal")
		}
	}
	w.logged = now
}

func splitErrors(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, splitErrors(e)...)
		}
		return out
	}
	return []error{err}
}

// journalFiles returns the size and mtime of the system *.journal files
// under dirs (those journal.ReadDirs reads).
func journalFiles(dirs []string) map[string]fileSig {
	out := map[string]fileSig{}
	for _, dir := range dirs {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() || !strings.HasSuffix(d.Name(), ".journal") || strings.HasPrefix(d.Name(), "user-") {
				return nil
			}
			if info, err := d.Info(); err == nil {
				out[p] = fileSig{info.Size(), info.ModTime()}
			}
			return nil
		})
	}
	return out
}

func sameSig(a, b map[string]fileSig) bool {
	if len(a) != len(b) {
		return false
	}
	for p, s := range a {
		if t, ok := b[p]; !ok || t.size != s.size || !t.mtime.Equal(s.mtime) {
			return false
		}
	}
	return true
}
