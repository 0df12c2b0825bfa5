package npd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/nodewarden/nodewarden/internal/agent/nodeevent"
	"github.com/nodewarden/nodewarden/internal/journal/journaltest"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// jent is a journal entry to write.
type jent struct {
	ident, msg string
	at         time.Time
}

// writeJournal appends entries to the journal file out with journal-remote:
// PRIORITY 6, one boot, the monotonic clock the realtime one mod 10^12 µs.
func writeJournal(t *testing.T, out string, entries ...jent) {
	t.Helper()
	es := make([]journaltest.Entry, 0, len(entries))
	for _, e := range entries {
		es = append(es, journaltest.Entry{
			Realtime:  e.at,
			Monotonic: time.Duration(e.at.UnixMicro()%1e12) * time.Microsecond,
			BootID:    [16]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef},
			Fields:    map[string]string{"PRIORITY": "6", "SYSLOG_IDENTIFIER": e.ident, "MESSAGE": e.msg},
		})
	}
	journaltest.Write(t, out, nil, nil, es...)
}

// rotate renames the journal file live as journald archives it.
func rotate(t *testing.T, live string, n int) string {
	t.Helper()
	archived := filepath.Join(filepath.Dir(live), fmt.Sprintf("system@0123456789abcdef0123456789abcdef-%016x-%016x.journal", n, time.Now().UnixMicro()))
	if err := os.Rename(live, archived); err != nil {
		t.Fatal(err)
	}
	return archived
}

// got is what a journald watcher handed out.
type got struct {
	Msg    string
	Replay bool
}

type watchRecorder struct {
	mu       sync.Mutex
	entries  []got
	replayed bool
}

func (r *watchRecorder) onEntry(e logEntry, replay bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, got{e.Message, replay})
}

func (r *watchRecorder) onReplayDone() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.replayed = true
}

func (r *watchRecorder) wait(t *testing.T, want []got) {
	t.Helper()
	cluster.Eventually(t, 10*time.Second, func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if !r.replayed {
			return fmt.Errorf("replay not done")
		}
		if diff := cmp.Diff(want, r.entries); diff != "" {
			return fmt.Errorf("entries (-want +got):\n%s", diff)
		}
		return nil
	})
}

func startWatcher(t *testing.T, c *Config) *watchRecorder {
	opts := testOptions(t)
	opts.defaults()
	r := &watchRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		journaldWatcher(c, opts, testr.New(t))(ctx, r.onEntry, r.onReplayDone)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// The watcher hands out the entries of its SYSLOG_IDENTIFIER, trimmed, with
// their time; replays, then follows; loses and repeats nothing across a
// rotation and a vacuumed file; waits for a directory that does not exist.
func TestJournaldWatcher(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "journal")
	sub := filepath.Join(dir, "0123456789abcdef0123456789abcdef")
	live := filepath.Join(sub, "system.journal")
	at := time.Now().Add(-time.Hour)
	n := 0
	ent := func(ident string) jent {
		n++
		at = at.Add(time.Second)
		return jent{ident, fmt.Sprintf(" message %d ", n), at}
	}
	msgs := func(replay bool, ns ...int) []got {
		var out []got
		for _, i := range ns {
			out = append(out, got{fmt.Sprintf("message %d", i), replay})
		}
		return out
	}
	c := &Config{File: "journald.json", Plugin: PluginJournald, LogPath: dir, JournalSource: "systemd"}

	// The directory does not exist yet: nothing to replay; wait for it.
	r := startWatcher(t, c)
	r.wait(t, nil)
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	writeJournal(t, live, ent("systemd"), ent("kubelet"), ent("systemd")) // 1-3
	want := msgs(false, 1, 3)
	r.wait(t, want)

	// A watcher started now replays them.
	r2 := startWatcher(t, c)
	want2 := msgs(true, 1, 3)
	r2.wait(t, want2)

	// Appended entries.
	writeJournal(t, live, ent("systemd"), ent("systemd-logind"), ent("systemd")) // 4-6
	want, want2 = append(want, msgs(false, 4, 6)...), append(want2, msgs(false, 4, 6)...)
	r.wait(t, want)
	r2.wait(t, want2)

	// Rotation, with entries written just before it that no poll saw: the
	// archived file is renamed, a new live file started.
	writeJournal(t, live, ent("systemd")) // 7
	archived := rotate(t, live, 1)
	writeJournal(t, live, ent("dockerd"), ent("systemd")) // 8-9
	want, want2 = append(want, msgs(false, 7, 9)...), append(want2, msgs(false, 7, 9)...)
	r.wait(t, want)
	r2.wait(t, want2)

	// The archived file is vacuumed: nothing read is lost or read again.
	if err := os.Remove(archived); err != nil {
		t.Fatal(err)
	}
	writeJournal(t, live, ent("systemd")) // 10
	want, want2 = append(want, msgs(false, 10)...), append(want2, msgs(false, 10)...)
	r.wait(t, want)
	r2.wait(t, want2)
	time.Sleep(200 * time.Millisecond) // a few more polls
	r.wait(t, want)
	r2.wait(t, want2)
}

// A journald monitor with the default logPath reads /run/log/journal too.
func TestJournaldDefaultDirs(t *testing.T) {
	c, err := Load(fixture(t, "systemd-monitor.json", map[string]any{"logPath": ""}), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.LogPath != DefaultJournalPath || c.JournalSource != "systemd" {
		t.Fatalf("logPath %q, source %q", c.LogPath, c.JournalSource)
	}
	if diff := cmp.Diff([]string{"/var/log/journal", "/run/log/journal"}, journalDirs(c)); diff != "" {
		t.Errorf("dirs (-want +got):\n%s", diff)
	}
	c.LogPath = "/var/log/journal/"
	if diff := cmp.Diff([]string{"/var/log/journal/", "/run/log/journal"}, journalDirs(c)); diff != "" {
		t.Errorf("dirs (-want +got):\n%s", diff)
	}
	c.LogPath = "/host/journal"
	if diff := cmp.Diff([]string{"/host/journal"}, journalDirs(c)); diff != "" {
		t.Errorf("dirs (-want +got):\n%s", diff)
	}
}

// NPD's systemd-monitor.json and docker-monitor.json, unchanged but for
// their logPath, on a journal written by journal-remote: their rules make on
// a real API server the conditions and Events NPD makes; entries of other
// SYSLOG_IDENTIFIERs and entries older than `lookback` count for nothing; a
// rotation and a vacuumed file lose and repeat nothing; a restart records
// nothing twice.
func TestJournaldMonitorsOnAPIServer(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "0123456789abcdef0123456789abcdef")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(sub, "system.journal")
	now := time.Now()
	const (
		kubeletStarted = "Started Kubernetes kubelet."
		dockerStarting = "Starting Docker Application Container Engine..."
		containerdUp   = "Starting containerd container runtime..."
		overlay        = "Handler for GET /containers/abc/json returned error: readlink /var/lib/docker/overlay2/l/ABC: invalid argument"
		startupFailure = "OCI runtime start failed: container process is already dead: unknown"
	)
	writeJournal(t, live,
		jent{"systemd", dockerStarting, now.Add(-10 * time.Minute)}, // before lookback (5m)
		jent{"systemd", kubeletStarted, now.Add(-time.Minute)},
		jent{"kubelet", kubeletStarted, now.Add(-time.Minute + time.Second)}, // another identifier
		jent{"containerd", overlay, now.Add(-time.Minute + 2*time.Second)},   // another identifier
		jent{"dockerd", overlay, now.Add(-time.Minute + 3*time.Second)},
	)

	c := cluster.Start(t)
	ctx := t.Context()
	const node = "npd-journald-node"
	if _, err := c.Clientset.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	opts := testOptions(t)
	paths := []string{
		fixture(t, "systemd-monitor.json", map[string]any{"logPath": dir}),
		fixture(t, "docker-monitor.json", map[string]any{"logPath": dir}),
	}
	start := func() func() { return runOnAPIServer(t, c, node, paths, opts) }
	stop := start()

	wantConds := map[string]cond{"CorruptDockerOverlay2": {"True", "CorruptDockerOverlay2", overlay}}
	wantEvents := []ev{
		{warning, "KubeletStart", kubeletStarted},
		changeEvent("CorruptDockerOverlay2", "True", "CorruptDockerOverlay2", overlay),
	}
	check := func() error {
		n, err := c.Clientset.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		gotConds := map[string]cond{}
		for _, nc := range n.Status.Conditions {
			gotConds[string(nc.Type)] = cond{string(nc.Status), nc.Reason, nc.Message}
		}
		if diff := cmp.Diff(wantConds, gotConds); diff != "" {
			return fmt.Errorf("node conditions (-want +got):\n%s", diff)
		}
		list, err := c.Clientset.CoreV1().Events(nodeevent.Namespace).List(context.Background(), metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("involvedObject.name", node).String(),
		})
		if err != nil {
			return err
		}
		var gotEvents []ev
		for _, e := range list.Items {
			if e.Count > 1 {
				return fmt.Errorf("event %s %q recorded %d times", e.Reason, e.Message, e.Count)
			}
			gotEvents = append(gotEvents, ev{e.Type, e.Reason, e.Message})
		}
		if diff := cmp.Diff(sortedEvents(wantEvents), sortedEvents(gotEvents)); diff != "" {
			return fmt.Errorf("node events (-want +got):\n%s", diff)
		}
		return nil
	}
	cluster.Eventually(t, 20*time.Second, check)

	// New entries, then a rotation: nothing lost.
	writeJournal(t, live, jent{"systemd", containerdUp, time.Now()})
	archived := rotate(t, live, 1)
	writeJournal(t, live,
		jent{"dockerd", startupFailure, time.Now().Add(time.Millisecond)},
		jent{"containerd", startupFailure, time.Now().Add(2 * time.Millisecond)},
	)
	wantEvents = append(wantEvents, ev{warning, "ContainerdStart", containerdUp}, ev{warning, "DockerContainerStartupFailure", startupFailure})
	cluster.Eventually(t, 20*time.Second, check)

	// The archived file is vacuumed; a restart replays what is left
	// within lookback and records nothing twice. The overlay2 evidence
	// was in the vacuumed file: as in NPD, a restarted monitor that no
	// longer finds it starts the condition at its default again.
	if err := os.Remove(archived); err != nil {
		t.Fatal(err)
	}
	stop()
	stop = start()
	const kubeletAgain = "Started kubelet.service - kubelet: The Kubernetes Node Agent."
	writeJournal(t, live, jent{"systemd", kubeletAgain, time.Now()})
	wantConds["CorruptDockerOverlay2"] = cond{"False", "NoCorruptDockerOverlay2", "docker overlay2 is functioning properly"}
	wantEvents = append(wantEvents, ev{warning, "KubeletStart", kubeletAgain})
	// The restart may add the condition's own change Event back to False;
	// every other Event is as before, none recorded twice.
	back := changeEvent("CorruptDockerOverlay2", "False", "NoCorruptDockerOverlay2", "docker overlay2 is functioning properly")
	cluster.Eventually(t, 20*time.Second, func() error {
		err := check()
		if err == nil {
			return nil
		}
		wantEvents = append(wantEvents, back)
		defer func() { wantEvents = wantEvents[:len(wantEvents)-1] }()
		if err2 := check(); err2 == nil {
			return nil
		}
		return err
	})
	stop()
}
