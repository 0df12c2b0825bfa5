package logfile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
)

// The tests drive real files in t.TempDir() the way a writer and logrotate
// do, and wait for outcomes with waitFor rather than sleeping.

func TestFileAppearsLater(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host_event.log")
	_, rec := start(t, Options{Path: path, IncludeRotated: true})
	waitFor(t, "replay done", rec.replayDone)

	appendTo(t, path, "a\nb\n")
	rec.waitLines(t, "a", "b")
	for _, l := range rec.all() {
		if l.Replay {
			t.Errorf("line %q from a file created after start is marked Replay", l.Text)
		}
	}
}

func TestReplayRotatedThenCurrent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "host_event.log")
	appendTo(t, path+".1", "r1\nr2\n")
	appendTo(t, path, "c1\nc2\n")

	t.Run("with rotated", func(t *testing.T) {
		_, rec := start(t, Options{Path: path, IncludeRotated: true})
		waitFor(t, "replay done", rec.replayDone)
		if got, want := rec.texts(), []string{"r1", "r2", "c1", "c2"}; !slices.Equal(got, want) {
			t.Fatalf("replay = %q, want %q", got, want)
		}
		if rec.linesAtReplayDone != 4 {
			t.Errorf("onReplayDone came after %d lines, want 4", rec.linesAtReplayDone)
		}
		appendTo(t, path, "n1\n")
		rec.waitLines(t, "r1", "r2", "c1", "c2", "n1")
		for i, l := range rec.all() {
			if wantReplay := i < 4; l.Replay != wantReplay {
				t.Errorf("line %q: Replay = %v, want %v", l.Text, l.Replay, wantReplay)
			}
		}
	})
	t.Run("without rotated", func(t *testing.T) {
		_, rec := start(t, Options{Path: path})
		waitFor(t, "replay done", rec.replayDone)
		if got, want := rec.texts(), []string{"c1", "c2", "n1"}; !slices.Equal(got, want) {
			t.Fatalf("replay = %q, want %q", got, want)
		}
	})
}

func TestPartialLineAndCRLF(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host_event.log")
	appendTo(t, path, "first\nhel")
	_, rec := start(t, Options{Path: path})
	waitFor(t, "replay done", rec.replayDone)
	if got := rec.texts(); !slices.Equal(got, []string{"first"}) {
		t.Fatalf("after replay got %q, want only the complete line", got)
	}

	// Each piece is a separate write, so the follower sees the line grow.
	appendTo(t, path, "lo")
	appendTo(t, path, " world\r")
	appendTo(t, path, "\nx\ry\r\n\r\n")
	rec.waitLines(t, "first", "hello world", "x\ry", "")
}

func TestRenameRotationLosesNothing(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts Options
	}{
		{"fsnotify", Options{}},
		{"polling only", Options{DisableNotify: true, PollInterval: 10 * time.Millisecond}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "host_event.log")
			w := openAppend(t, path)
			opts := mode.opts
			opts.Path = path
			f, rec := start(t, opts)
			waitFor(t, "replay done", rec.replayDone)

			var want []string
			for round := range 3 {
				// Five lines right before the rename, then five in the new
				// file, with nothing in between to let the follower catch up.
				for i := range 5 {
					want = append(want, fmt.Sprintf("round %d old %d", round, i))
					write(t, w, want[len(want)-1]+"\n")
				}
				if err := os.Rename(path, path+".1"); err != nil {
					t.Fatal(err)
				}
				w.Close()
				w = openAppend(t, path)
				for i := range 5 {
					want = append(want, fmt.Sprintf("round %d new %d", round, i))
					write(t, w, want[len(want)-1]+"\n")
				}
				// Two rotations between two checks are a documented limit;
				// real rotations are far apart.
				rec.waitLines(t, want...)
			}
			w.Close()
			if got := f.Stats().Rotations; got != 3 {
				t.Errorf("Stats().Rotations = %d, want 3", got)
			}
		})
	}
}

func TestRenameRotationWriterKeepsOldFD(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host_event.log")
	old := openAppend(t, path)
	_, rec := start(t, Options{Path: path})
	waitFor(t, "replay done", rec.replayDone)

	write(t, old, "old 1\nold 2\nold 3\n")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	// The writer has not reopened yet and logrotate has not created the new
	// file: the lines still go to the renamed file.
	write(t, old, "old 4\nold 5\n")
	cur := openAppend(t, path)
	write(t, cur, "new 1\nnew 2\nnew 3\n")
	// A straggler after the new file exists, e.g. before postrotate's signal.
	write(t, old, "old 6\n")
	write(t, cur, "new 4\n")

	waitFor(t, "10 lines", func() bool { return len(rec.texts()) >= 10 })
	got := rec.texts()
	// Everything written to the old file before the new one existed comes
	// first; the straggler only has to come after its own predecessors.
	if !slices.Equal(got[:5], []string{"old 1", "old 2", "old 3", "old 4", "old 5"}) {
		t.Fatalf("got %q, want the 5 lines written before the new file first", got)
	}
	rest := slices.DeleteFunc(slices.Clone(got[5:]), func(s string) bool { return s == "old 6" })
	if !slices.Equal(rest, []string{"new 1", "new 2", "new 3", "new 4"}) || len(got) != 10 {
		t.Fatalf("got %q, want the new file's 4 lines in order plus \"old 6\", each once", got)
	}
}

func TestRotatedFileReleasedWhenIdle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host_event.log")
	appendTo(t, path, "a\nno newline")
	f, rec := start(t, Options{Path: path, OldFileIdle: 50 * time.Millisecond, PollInterval: 10 * time.Millisecond})
	waitFor(t, "replay done", rec.replayDone)

	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, "b\n")
	// The old file's unterminated last line is delivered once it is given
	// up, rather than lost.
	rec.waitLines(t, "a", "b", "no newline")
	waitFor(t, "old file closed", func() bool { return f.openFiles.Load() == 1 })
}

func TestRotatedFileRewrittenInPlaceDropped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host_event.log")
	appendTo(t, path, "a\n")
	f, rec := start(t, Options{Path: path, PollInterval: 10 * time.Millisecond})
	waitFor(t, "replay done", rec.replayDone)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, "b\n")
	rec.waitLines(t, "a", "b")

	// A naive "cp f f.1" reuses the renamed file's inode, which is still
	// being read: its new content must not be read from the old offset.
	if err := os.WriteFile(path+".1", []byte("zzzzzzzz\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rewritten file dropped", func() bool { return f.openFiles.Load() == 1 })
	appendTo(t, path, "c\n")
	rec.waitLines(t, "a", "b", "c")
}

func TestDeletedFileGivenUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host_event.log")
	appendTo(t, path, "a\n")
	f, rec := start(t, Options{Path: path, OldFileIdle: 20 * time.Millisecond, PollInterval: 10 * time.Millisecond})
	rec.waitLines(t, "a")

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	// Holding a deleted file open would keep its disk space in use.
	waitFor(t, "deleted file closed", func() bool { return f.openFiles.Load() == 0 })
	appendTo(t, path, "b\n")
	rec.waitLines(t, "a", "b")
	if got := f.Stats().Rotations; got != 1 {
		t.Errorf("Stats().Rotations = %d, want 1", got)
	}
}

// TestRotationsWhileWriting rotates, alternately by rename and by
// copytruncate, right after bursts of writes, and expects every line once
// and in order.
func TestRotationsWhileWriting(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts Options
	}{
		{"fsnotify", Options{}},
		{"polling only", Options{DisableNotify: true, PollInterval: 5 * time.Millisecond}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "host_event.log")
			opts := mode.opts
			opts.Path = path
			f, rec := start(t, opts)
			waitFor(t, "replay done", rec.replayDone)

			const total, every = 2000, 250
			w := openAppend(t, path)
			var want []string
			for i := range total {
				want = append(want, fmt.Sprintf("%04d %s", i, strings.Repeat("x", i%97)))
				write(t, w, want[i]+"\n")
				if i%every == 0 {
					// A file that grows from empty and is truncated back to
					// empty between two checks is a documented limit; real
					// rotations are hours apart.
					waitFor(t, "first line of the file", func() bool { return len(rec.texts()) == i+1 })
				}
				if i%every != every-1 {
					continue
				}
				if n := uint64(i / every); n%2 == 0 {
					// A writer that reopens its log as soon as it is renamed.
					if err := os.Rename(path, path+".1"); err != nil {
						t.Fatal(err)
					}
					w.Close()
					w = openAppend(t, path)
					waitFor(t, "rotation noticed", func() bool { return f.Stats().Rotations == n/2+1 })
				} else {
					copyTruncate(t, path)
					waitFor(t, "truncation noticed", func() bool { return f.Stats().Truncations == n/2+1 })
				}
			}
			rec.waitLines(t, want...)
		})
	}
}

func TestCopyTruncate(t *testing.T) {
	t.Run("line written across the truncation", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "host_event.log")
		w := openAppend(t, path)
		f, rec := start(t, Options{Path: path})
		waitFor(t, "replay done", rec.replayDone)

		write(t, w, "l1\npart-")
		rec.waitLines(t, "l1") // read in the same write as "part-"
		copyTruncate(t, path)
		write(t, w, "rest\nl2\n")
		rec.waitLines(t, "l1", "part-rest", "l2")
		if got := f.Stats().Truncations; got != 1 {
			t.Errorf("Stats().Truncations = %d, want 1", got)
		}
	})

	// The next cases check only when kicked, so they know exactly what the
	// follower saw before the truncation.
	manual := Options{DisableNotify: true, PollInterval: time.Hour}

	t.Run("lines truncated away before being read come from the copy", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "host_event.log")
		appendTo(t, path, "l1\nl2\n")
		opts := manual
		opts.Path = path
		f, rec := start(t, opts)
		waitFor(t, "replay done", rec.replayDone)

		w := openAppend(t, path)
		write(t, w, "l3\nl4\n") // not read yet...
		copyTruncate(t, path)   // ...and gone from the file
		write(t, w, "l5\n")
		f.kick <- struct{}{}
		rec.waitLines(t, "l1", "l2", "l3", "l4", "l5")
		if got := f.Stats().Truncations; got != 1 {
			t.Errorf("Stats().Truncations = %d, want 1", got)
		}
	})

	t.Run("rewritten without shrinking, stale .1 ignored", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "host_event.log")
		appendTo(t, path, "aaaa\nbbbb\n")
		// From an older rotation: longer than the offset, but not a copy of
		// the file being read, so reading it from the offset would be wrong.
		appendTo(t, path+".1", "an older rotation, much longer\n")
		opts := manual
		opts.Path = path
		f, rec := start(t, opts)
		waitFor(t, "replay done", rec.replayDone)

		// Truncated and refilled past the old offset (10) between two
		// checks: only the changed first bytes tell. Resuming at the old
		// offset would deliver "d", from the middle of a line.
		if err := os.WriteFile(path, []byte("cccccc\ndddd\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		f.kick <- struct{}{}
		rec.waitLines(t, "aaaa", "bbbb", "cccccc", "dddd")
		if got := f.Stats().Truncations; got != 1 {
			t.Errorf("Stats().Truncations = %d, want 1", got)
		}
	})
}

func TestOverlongLinesSkipped(t *testing.T) {
	const limit = 64 << 10
	path := filepath.Join(t.TempDir(), "host_event.log")
	appendTo(t, path, "before\n")
	f, rec := start(t, Options{Path: path, MaxLineBytes: limit})
	waitFor(t, "replay done", rec.replayDone)

	// 1 MiB without a newline, written in pieces so that it is held and
	// given up while it grows.
	chunk := strings.Repeat("x", 64<<10)
	for range 16 {
		appendTo(t, path, chunk)
	}
	exact := strings.Repeat("e", limit)
	appendTo(t, path, "\nafter\n"+exact+"\n"+exact+"!\nlast\n")

	rec.waitLines(t, "before", "after", exact, "last")
	if got := f.Stats().LinesSkipped; got != 2 {
		t.Errorf("Stats().LinesSkipped = %d, want 2", got)
	}
}

func TestPollingOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host_event.log")
	f, rec := start(t, Options{Path: path, DisableNotify: true, PollInterval: 10 * time.Millisecond})
	waitFor(t, "replay done", rec.replayDone)

	appendTo(t, path, "created\npar")
	rec.waitLines(t, "created")
	appendTo(t, path, "tial\n")
	rec.waitLines(t, "created", "partial")

	appendTo(t, path, "before rename\n")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, path, "after rename\n")
	rec.waitLines(t, "created", "partial", "before rename", "after rename")

	copyTruncate(t, path)
	appendTo(t, path, "after truncate\n")
	rec.waitLines(t, "created", "partial", "before rename", "after rename", "after truncate")

	if s := f.Stats(); s.Rotations != 1 || s.Truncations != 1 || s.LinesRead != 5 {
		t.Errorf("Stats() = %+v, want 1 rotation, 1 truncation, 5 lines", s)
	}
}

func TestCancel(t *testing.T) {
	t.Run("while following, directory missing", func(t *testing.T) {
		// The watch on the missing directory fails and is retried.
		path := filepath.Join(t.TempDir(), "not-yet", "host_event.log")
		f := New(Options{Path: path, PollInterval: 10 * time.Millisecond}, testr.New(t))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		replayed := make(chan struct{})
		go func() { done <- f.Run(ctx, func(Line) {}, func() { close(replayed) }) }()
		<-replayed
		cancel()
		expectReturn(t, done)
	})

	t.Run("during a long replay", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "host_event.log")
		const total = 100_000
		appendTo(t, path, strings.Repeat("a fairly ordinary line of text\n", total))
		f := New(Options{Path: path}, testr.New(t))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var lines int
		replayDone := false
		done := make(chan error, 1)
		go func() {
			done <- f.Run(ctx, func(Line) { lines++; cancel() }, func() { replayDone = true })
		}()
		expectReturn(t, done)
		// Only what was already in the read buffer is delivered.
		if lines == 0 || lines >= total {
			t.Errorf("delivered %d lines after cancelling at the first of %d", lines, total)
		}
		if replayDone {
			t.Error("onReplayDone called although the replay was cancelled")
		}
	})
}

func TestRunMisuse(t *testing.T) {
	if err := New(Options{}, testr.New(t)).Run(context.Background(), func(Line) {}, nil); err == nil {
		t.Error("Run without Path: no error")
	}
	f, rec := start(t, Options{Path: filepath.Join(t.TempDir(), "f")})
	waitFor(t, "replay done", rec.replayDone) // the first Run has started
	if err := f.Run(context.Background(), func(Line) {}, nil); err == nil {
		t.Error("second Run: no error")
	}
}

// start runs a Follower until the test ends, and checks that it stops.
func start(t *testing.T, opts Options) (*Follower, *recorder) {
	t.Helper()
	f := New(opts, testr.NewWithOptions(t, testr.Options{Verbosity: 1}))
	rec := &recorder{linesAtReplayDone: -1}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, rec.onLine, rec.onReplayDone) }()
	t.Cleanup(func() {
		cancel()
		expectReturn(t, done)
	})
	return f, rec
}

func expectReturn(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

// recorder keeps copies of what a Follower delivered.
type recorder struct {
	mu                sync.Mutex
	lines             []Line
	replayDoneCalls   int
	linesAtReplayDone int
}

func (r *recorder) onLine(l Line) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l.Text = slices.Clone(l.Text) // only valid during the call
	r.lines = append(r.lines, l)
}

func (r *recorder) onReplayDone() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replayDoneCalls++
	r.linesAtReplayDone = len(r.lines)
}

func (r *recorder) replayDone() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.replayDoneCalls > 0
}

func (r *recorder) all() []Line {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lines)
}

func (r *recorder) texts() []string {
	var s []string
	for _, l := range r.all() {
		s = append(s, string(l.Text))
	}
	return s
}

// waitLines waits until as many lines as want have arrived and checks that
// they are exactly want: each once, in order. It also checks that
// onReplayDone was called exactly once.
func (r *recorder) waitLines(t *testing.T, want ...string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d lines", len(want)), func() bool { return len(r.texts()) >= len(want) })
	if got := r.texts(); !slices.Equal(got, want) {
		t.Fatalf("lines = %q\nwant    %q", abbreviate(got), abbreviate(want))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.replayDoneCalls != 1 {
		t.Fatalf("onReplayDone called %d times, want 1", r.replayDoneCalls)
	}
}

func abbreviate(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		if len(l) > 40 {
			l = fmt.Sprintf("%s...(%d bytes)", l[:20], len(l))
		}
		out[i] = l
	}
	return out
}

// waitFor polls cond until it holds, failing the test after 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func openAppend(t *testing.T, path string) *os.File {
	t.Helper()
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func write(t *testing.T, w *os.File, s string) {
	t.Helper()
	if _, err := w.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// appendTo writes s in one write, as a writer that opens the log per line.
func appendTo(t *testing.T, path, s string) {
	t.Helper()
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	write(t, w, s)
}

// copyTruncate does what logrotate's copytruncate does: shift the previous
// rotation away, copy, truncate.
func copyTruncate(t *testing.T, path string) {
	t.Helper()
	if err := os.Rename(path+".1", path+".2"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".1", b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
}
