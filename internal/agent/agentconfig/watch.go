package agentconfig

import (
	"context"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// DefaultWatchPollInterval is how often the Watcher reads the file even
// without a file system notification.
const DefaultWatchPollInterval = 10 * time.Second

// settleDelay is how long new content must stay the same before the Watcher
// acts on it. Editors and `kubectl cp` write a file in several steps
// (truncate, write, write); acting on the first step would reject a
// half-written file, with a Warning Event the operator did not deserve. This
// holds for every read: after a notification, at start and on a poll.
const settleDelay = 100 * time.Millisecond

// maxSettleReads bounds the wait for a file that never stops changing: after
// that many reads the Watcher acts on the latest.
const maxSettleReads = 10

// WatchOptions configure a Watcher. All fields are optional.
type WatchOptions struct {
	// OnChange receives every new valid configuration that differs from the
	// one in force. It must treat the configuration as read-only.
	OnChange func(*v1alpha1.AgentConfig)
	// OnInvalid receives the error when the file changed to something that
	// does not load, once per distinct content; the previous configuration
	// stays in force. The agent emits a Warning Event on its Node from it.
	OnInvalid func(error)
	// PollInterval is how often the file is read even without a
	// notification. Default DefaultWatchPollInterval.
	PollInterval time.Duration
	// DisableNotify turns fsnotify off and relies on polling alone.
	DisableNotify bool
	// Metrics, if not nil, record reload failures.
	Metrics *Metrics
	Log     logr.Logger
}

// Watcher re-reads the configuration file when it changes.
//
// Mounted ConfigMaps do not change the file in place: the kubelet writes a
// new timestamped directory and atomically renames the ..data symlink over
// the old one, and the file is a symlink through ..data. So the Watcher
// watches the file's directory, not the file (a watch on the file would stay
// on the old inode), and reacts to any change in it. It also reads the file
// every PollInterval, because some mounts deliver no inotify events and
// because a path that is a symlink into another directory changes without
// an event in the watched one. Content that hashes the same as the last read
// is not looked at again, so polling costs a read and a hash.
type Watcher struct {
	path string
	opts WatchOptions

	current atomic.Pointer[v1alpha1.AgentConfig]
	running atomic.Bool
	// last is what the previous check saw, valid or not, so that neither a
	// valid nor an invalid file is reported twice.
	last snapshot
	// settle is settleDelay; tests lengthen it.
	settle time.Duration
}

// snapshot identifies what one read of the file returned.
type snapshot struct {
	hash    [sha256.Size]byte
	readErr string
}

// NewWatcher loads the file at path: the returned Watcher's Current is that
// configuration. It fails, like Load, if the file does not load, so that an
// agent never starts on a configuration nobody wrote.
func NewWatcher(path string, opts WatchOptions) (*Watcher, error) {
	if path == "" {
		return nil, errors.New("agentconfig: no configuration file to watch")
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultWatchPollInterval
	}
	data, c, err := loadFile(path)
	if err != nil {
		return nil, err
	}
	w := &Watcher{path: path, opts: opts, last: snapshot{hash: sha256.Sum256(data)}, settle: settleDelay}
	w.current.Store(c)
	opts.Metrics.recordSuccess()
	return w, nil
}

// Current is the configuration in force: the last valid one read. It is safe
// to call from any goroutine; the result must be treated as read-only.
func (w *Watcher) Current() *v1alpha1.AgentConfig {
	return w.current.Load()
}

// Run watches the file until ctx is done, then returns nil. OnChange and
// OnInvalid are called on Run's goroutine, one at a time. Run may be called
// only once.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("agentconfig: Watcher.Run called more than once")
	}
	var events <-chan fsnotify.Event
	var watchErrs <-chan error
	if notify := w.newNotify(); notify != nil {
		defer notify.Close()
		events, watchErrs = notify.Events, notify.Errors
	}
	ticker := time.NewTicker(w.opts.PollInterval)
	defer ticker.Stop()

	// A change made between NewWatcher and the watch being set up left no
	// event behind.
	w.check(ctx)

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-events:
			// The events of one write that arrive while check settles are
			// read afterwards and find the content already seen: one read
			// and hash each.
			w.check(ctx)
		case err := <-watchErrs:
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.check(ctx) // events were dropped: look now rather than at the next tick
				continue
			}
			w.opts.Log.Error(err, "configuration file watch error; polling continues", "path", w.path)
		case <-ticker.C:
			w.check(ctx)
		}
	}
}

func (w *Watcher) newNotify() *fsnotify.Watcher {
	if w.opts.DisableNotify {
		return nil
	}
	notify, err := fsnotify.NewWatcher()
	if err != nil {
		// Typically fs.inotify.max_user_instances is exhausted on the node.
		w.opts.Log.Error(err, "cannot use fsnotify; watching the configuration file by polling only",
			"path", w.path, "pollInterval", w.opts.PollInterval)
		return nil
	}
	if err := notify.Add(filepath.Dir(w.path)); err != nil {
		w.opts.Log.Error(err, "cannot watch the configuration file's directory; watching by polling only",
			"path", w.path, "pollInterval", w.opts.PollInterval)
		_ = notify.Close()
		return nil
	}
	return notify
}

// check reads the file and acts on what changed since the previous check,
// once the new content has settled.
func (w *Watcher) check(ctx context.Context) {
	seen, data, err := w.read()
	for range maxSettleReads {
		if seen == w.last {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.settle):
		}
		again, againData, againErr := w.read()
		if again == seen {
			break
		}
		seen, data, err = again, againData, againErr
	}
	if seen == w.last {
		return
	}
	w.last = seen
	if err != nil {
		w.reject(fileError(w.path, err))
		return
	}
	c, err := parse(data)
	if err != nil {
		w.reject(fileError(w.path, err))
		return
	}
	w.accept(c)
}

// read reads the file once; the snapshot says what it found.
func (w *Watcher) read() (snapshot, []byte, error) {
	data, err := readFile(w.path)
	if err != nil {
		return snapshot{readErr: err.Error()}, nil, err
	}
	return snapshot{hash: sha256.Sum256(data)}, data, nil
}

func (w *Watcher) accept(c *v1alpha1.AgentConfig) {
	w.opts.Metrics.recordSuccess()
	// A rewrite that changes only comments or layout, or a return to the
	// configuration in force after a rejected edit, changes nothing.
	// Semantic equality also takes `npdConfigs: []` to equal no npdConfigs.
	if equality.Semantic.DeepEqual(c, w.current.Load()) {
		w.opts.Log.Info("configuration file changed, configuration unchanged", "path", w.path)
		return
	}
	w.current.Store(c)
	w.opts.Log.Info("configuration reloaded", "path", w.path)
	if w.opts.OnChange != nil {
		w.opts.OnChange(c)
	}
}

func (w *Watcher) reject(err error) {
	w.opts.Metrics.recordFailure()
	w.opts.Log.Error(err, "configuration file rejected; keeping the previous configuration", "path", w.path)
	if w.opts.OnInvalid != nil {
		w.opts.OnInvalid(err)
	}
}
