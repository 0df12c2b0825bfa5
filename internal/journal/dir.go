package journal

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Option changes what ReadDir reads.
type Option func(*options)

type options struct{ user bool }

// WithUserJournals makes ReadDir read user-*.journal files too.
func WithUserJournals() Option { return func(o *options) { o.user = true } }

const stateOnline = 1

// openFile is one file ReadDir reads.
type openFile struct {
	*file
	fd      *os.File
	online  bool
	pending *Entry
}

// ReadDir calls fn with each entry after the cursor in the *.journal files
// of the directory tree dir (system.journal, its rotated system@….journal
// files; user-*.journal only WithUserJournals), and returns the cursor of the
// last entry fn accepted.
//
// Files that share a seqnum ID are merged in seqnum order, each seqnum handed
// out once, so entries split across rotated files are read in order exactly
// once; files of different seqnum IDs are read one ID after the other,
// oldest first. A file that disappears (vacuumed) is simply not read. The
// error of a corrupt file (after its whole entries) is returned, joined with
// any other, after the other files have been read; an error of fn stops at
// once.
func ReadDir(dir string, after Cursor, fn func(Entry) error, opts ...Option) (Cursor, error) {
	return ReadDirs([]string{dir}, after, fn, opts...)
}

// ReadDirs is ReadDir over several directory trees read as one journal (as
// journald's /run/log/journal and /var/log/journal): their files are merged
// as ReadDir merges the files of one tree, so an entry present in both
// (flushed from one to the other) is handed out once. A directory that does
// not exist is an error, as for ReadDir.
func ReadDirs(dirs []string, after Cursor, fn func(Entry) error, opts ...Option) (Cursor, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	var paths []string
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && p != dir {
					return nil
				}
				return err
			}
			name := d.Name()
			if d.Type().IsRegular() && strings.HasSuffix(name, ".journal") && (o.user || !strings.HasPrefix(name, "user-")) {
				paths = append(paths, p)
			}
			return nil
		})
		if err != nil {
			return after, err
		}
	}

	var errs []error
	var files []*openFile
	defer func() {
		for _, f := range files {
			f.close()
			f.fd.Close()
		}
	}()
	for _, p := range paths {
		f, err := openJournal(p)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		// A complete file whose last entry the cursor has passed.
		if !f.online && f.h.seqnumID == after.SeqnumID && f.h.tailSeqnum <= after.Seqnum && !after.IsZero() {
			f.fd.Close()
			continue
		}
		files = append(files, f)
	}

	// Group by seqnum ID; groups oldest first.
	groups := map[[16]byte][]*openFile{}
	var ids [][16]byte
	for _, f := range files {
		id := f.h.seqnumID
		if groups[id] == nil {
			ids = append(ids, id)
		}
		groups[id] = append(groups[id], f)
	}
	oldest := func(id [16]byte) uint64 {
		m := ^uint64(0)
		for _, f := range groups[id] {
			if f.h.nEntries > 0 && f.h.headRealtime < m {
				m = f.h.headRealtime
			}
		}
		return m
	}
	slices.SortStableFunc(ids, func(a, b [16]byte) int {
		oa, ob := oldest(a), oldest(b)
		switch {
		case oa < ob:
			return -1
		case oa > ob:
			return 1
		}
		return 0
	})

	c := after
	for _, id := range ids {
		var ferr error
		c, ferr = mergeGroup(groups[id], c, fn, &errs)
		if ferr != nil {
			return c, ferr
		}
	}
	return c, errors.Join(errs...)
}

func openJournal(p string) (*openFile, error) {
	fd, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	st, err := fd.Stat()
	if err != nil {
		fd.Close()
		return nil, err
	}
	f, err := newFile(p, fd, st.Size())
	if err != nil {
		fd.Close()
		return nil, err
	}
	var state [1]byte
	_, _ = fd.ReadAt(state[:], 16)
	return &openFile{file: f, fd: fd, online: state[0] == stateOnline}, nil
}

// mergeGroup hands out the entries of files that share one seqnum ID in
// seqnum order. Errors of files go to errs; an error of fn is returned.
func mergeGroup(files []*openFile, c Cursor, fn func(Entry) error, errs *[]error) (Cursor, error) {
	advance := func(f *openFile) {
		f.pending = nil
		e, ok, err := f.next(c)
		if err != nil {
			*errs = append(*errs, err)
		} else if ok {
			f.pending = &e
		}
	}
	for _, f := range files {
		f.seek(c)
		advance(f)
	}
	for {
		var best *openFile
		for _, f := range files {
			if f.pending != nil && (best == nil || f.pending.Seqnum < best.pending.Seqnum) {
				best = f
			}
		}
		if best == nil {
			return c, nil
		}
		e := *best.pending
		if c.Before(&e) { // the same seqnum in two files is handed out once
			if err := fn(e); err != nil {
				return c, err
			}
			c = e.Cursor()
		}
		advance(best)
	}
}

// Where journald keeps the system journal: PersistentDir when the journal
// is persistent, RuntimeDir when it is volatile or not yet flushed.
const (
	PersistentDir = "/var/log/journal"
	RuntimeDir    = "/run/log/journal"
)

// DirsFor is the directories a reader of the journal at path reads:
// path, and for PersistentDir the volatile RuntimeDir too, as sd-journal
// does by default.
func DirsFor(path string) []string {
	if filepath.Clean(path) == PersistentDir {
		return []string{path, RuntimeDir}
	}
	return []string{path}
}
