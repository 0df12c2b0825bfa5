package agentconfig

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

const (
	renew20s = header + "leaseRenewInterval: 20s\n"
	renew30s = header + "leaseRenewInterval: 30s\n"
	renew40s = header + "leaseRenewInterval: 40s\n"
	invalid  = header + "hostEventLog:\n  maxLineBytes: 10\n"
)

// recorder collects what a Watcher reports; its callbacks run on Run's
// goroutine while the test reads.
type recorder struct {
	mu      sync.Mutex
	changes []*v1alpha1.AgentConfig
	invalid []error
}

func (r *recorder) options(t *testing.T, m *Metrics) WatchOptions {
	return WatchOptions{
		OnChange: func(c *v1alpha1.AgentConfig) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.changes = append(r.changes, c)
		},
		OnInvalid: func(err error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.invalid = append(r.invalid, err)
		},
		Metrics: m,
		Log:     testr.New(t),
	}
}

func (r *recorder) counts() (changes, invalid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.changes), len(r.invalid)
}

func (r *recorder) lastChange() *v1alpha1.AgentConfig {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changes[len(r.changes)-1]
}

func (r *recorder) lastInvalid() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.invalid[len(r.invalid)-1]
}

// eventually polls cond until it holds, failing the test at a deadline well
// beyond what any step needs, so that a slow machine does not flake.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

// wantMetrics reads the metrics back by name, as a scrape would.
func wantMetrics(t *testing.T, reg *prometheus.Registry, errors, successful float64) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			got[f.GetName()] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	want := map[string]float64{
		"nodewarden_agent_config_reload_errors_total":    errors,
		"nodewarden_agent_config_last_reload_successful": successful,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}

func renewOf(c *v1alpha1.AgentConfig) time.Duration { return c.LeaseRenewInterval.Duration }

// start runs w until the test ends.
func start(t *testing.T, w *Watcher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// The decisions, one check at a time, without the timing of Run.
func TestWatcherCheck(t *testing.T) {
	path := writeConfig(t, renew20s)
	var r recorder
	m, reg := newMetrics(t)
	w, err := NewWatcher(path, r.options(t, m))
	if err != nil {
		t.Fatal(err)
	}
	if got := renewOf(w.Current()); got != 20*time.Second {
		t.Fatalf("initial leaseRenewInterval = %v, want 20s", got)
	}
	wantMetrics(t, reg, 0, 1)

	step := func(name string, wantChanges, wantInvalid int, wantRenew time.Duration) {
		t.Helper()
		w.check(t.Context())
		if c, i := r.counts(); c != wantChanges || i != wantInvalid {
			t.Fatalf("%s: %d changes and %d invalid reported, want %d and %d", name, c, i, wantChanges, wantInvalid)
		}
		if got := renewOf(w.Current()); got != wantRenew {
			t.Fatalf("%s: current leaseRenewInterval = %v, want %v", name, got, wantRenew)
		}
	}

	write(t, path, renew20s)
	step("same content rewritten", 0, 0, 20*time.Second)

	write(t, path, "# a comment changes the bytes, not the configuration\n"+renew20s+"npdConfigs: []\n")
	step("comment and an empty list added", 0, 0, 20*time.Second)

	write(t, path, renew30s)
	step("valid change", 1, 0, 30*time.Second)
	if got := renewOf(r.lastChange()); got != 30*time.Second {
		t.Errorf("delivered leaseRenewInterval = %v, want 30s", got)
	}
	wantMetrics(t, reg, 0, 1)

	write(t, path, invalid)
	step("invalid change", 1, 1, 30*time.Second)
	if want := "config " + path + ": hostEventLog.maxLineBytes: Invalid value: 10: must be at least 1024"; r.lastInvalid().Error() != want {
		t.Errorf("OnInvalid got %q, want %q", r.lastInvalid(), want)
	}
	wantMetrics(t, reg, 1, 0)

	write(t, path, invalid)
	step("same invalid content again", 1, 1, 30*time.Second)
	wantMetrics(t, reg, 1, 0)

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	step("file removed", 1, 2, 30*time.Second)
	if got := r.lastInvalid().Error(); !strings.Contains(got, "cannot open: no such file or directory") {
		t.Errorf("OnInvalid got %q, want a missing file", got)
	}
	step("still removed", 1, 2, 30*time.Second)
	wantMetrics(t, reg, 2, 0)

	write(t, path, renew30s)
	step("back to the configuration in force", 1, 2, 30*time.Second)
	wantMetrics(t, reg, 2, 1)

	write(t, path, renew40s)
	step("another valid change", 2, 2, 40*time.Second)
}

func TestNewWatcherRejectsInvalidFile(t *testing.T) {
	path := writeConfig(t, invalid)
	_, err := NewWatcher(path, WatchOptions{})
	if want := "config " + path + ": hostEventLog.maxLineBytes: Invalid value: 10: must be at least 1024"; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
	if _, err := NewWatcher("", WatchOptions{}); err == nil {
		t.Error("NewWatcher(\"\") succeeded; there is nothing to watch")
	}
}

// A file edited in place, noticed by fsnotify: the poll interval is too
// long to play a part.
func TestWatcherFollowsWrites(t *testing.T) {
	path := writeConfig(t, renew20s)
	var r recorder
	m, reg := newMetrics(t)
	opts := r.options(t, m)
	opts.PollInterval = time.Hour
	w, err := NewWatcher(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	start(t, w)

	write(t, path, renew30s)
	eventually(t, "the valid change", func() bool { c, _ := r.counts(); return c == 1 })
	if got := renewOf(r.lastChange()); got != 30*time.Second {
		t.Errorf("delivered leaseRenewInterval = %v, want 30s", got)
	}

	write(t, path, invalid)
	eventually(t, "OnInvalid", func() bool { _, i := r.counts(); return i == 1 })
	if c, _ := r.counts(); c != 1 {
		t.Errorf("the invalid file was delivered")
	}
	if got := renewOf(w.Current()); got != 30*time.Second {
		t.Errorf("current leaseRenewInterval = %v, want the last good 30s", got)
	}
	wantMetrics(t, reg, 1, 0)

	write(t, path, renew40s)
	eventually(t, "the next valid change", func() bool { c, _ := r.counts(); return c == 2 })
	if got := renewOf(r.lastChange()); got != 40*time.Second {
		t.Errorf("delivered leaseRenewInterval = %v, want 40s", got)
	}
	wantMetrics(t, reg, 1, 1)
}

// configMapVolume lays out a directory the way the kubelet's atomic writer
// does for a ConfigMap volume: the data lives in a timestamped directory,
// ..data points at it, and each key is a symlink through ..data.
type configMapVolume struct {
	t       *testing.T
	dir     string
	version int
	current string
}

func newConfigMapVolume(t *testing.T, content string) *configMapVolume {
	v := &configMapVolume{t: t, dir: t.TempDir()}
	v.update(content)
	if err := os.Symlink(filepath.Join("..data", "agent.yaml"), v.path()); err != nil {
		t.Fatal(err)
	}
	return v
}

func (v *configMapVolume) path() string { return filepath.Join(v.dir, "agent.yaml") }

// update swaps in new content the way the kubelet does: a new timestamped
// directory, a ..data_tmp symlink to it renamed over ..data, and the old
// directory removed.
func (v *configMapVolume) update(content string) {
	t := v.t
	t.Helper()
	v.version++
	name := fmt.Sprintf("..2024_01_10_02_00_%02d.000000001", v.version)
	if err := os.Mkdir(filepath.Join(v.dir, name), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(v.dir, name, "agent.yaml"), content)
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(name, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if v.current != "" {
		if err := os.RemoveAll(filepath.Join(v.dir, v.current)); err != nil {
			t.Fatal(err)
		}
	}
	v.current = name
}

func TestWatcherFollowsConfigMapSwap(t *testing.T) {
	vol := newConfigMapVolume(t, renew20s)
	var r recorder
	opts := r.options(t, nil)
	opts.PollInterval = time.Hour
	w, err := NewWatcher(vol.path(), opts)
	if err != nil {
		t.Fatal(err)
	}
	start(t, w)

	vol.update(renew30s)
	eventually(t, "the first swap", func() bool { c, _ := r.counts(); return c == 1 })
	// The directory the file resolved to at first is gone now; the watch
	// is on the volume's directory, so the next swap is seen too.
	vol.update(renew40s)
	eventually(t, "the second swap", func() bool { c, _ := r.counts(); return c == 2 })
	if got := renewOf(w.Current()); got != 40*time.Second {
		t.Errorf("current leaseRenewInterval = %v, want 40s", got)
	}
}

// A file written in two steps (as editors and `kubectl cp` do) is judged on
// what it holds once the writing stops: the half-written first step is not
// reported invalid, even when a read lands between the steps.
func TestWatcherWaitsForAWriteToSettle(t *testing.T) {
	path := writeConfig(t, renew20s)
	var r recorder
	w, err := NewWatcher(path, r.options(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	w.settle = time.Second // far longer than the pause between the two steps

	write(t, path, header+"leaseRenew") // the first step: not a valid file
	done := make(chan struct{})
	go func() { defer close(done); w.check(t.Context()) }()
	time.Sleep(100 * time.Millisecond) // the writer pauses between its steps
	write(t, path, renew30s)
	<-done

	if c, i := r.counts(); c != 1 || i != 0 {
		t.Fatalf("%d changes and %d invalid reported, want 1 change and none invalid", c, i)
	}
	if got := renewOf(w.Current()); got != 30*time.Second {
		t.Errorf("current leaseRenewInterval = %v, want 30s", got)
	}
}

func TestWatcherPollingOnly(t *testing.T) {
	path := writeConfig(t, renew20s)
	var r recorder
	opts := r.options(t, nil)
	opts.DisableNotify = true
	opts.PollInterval = 20 * time.Millisecond
	w, err := NewWatcher(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	start(t, w)

	// Replace the file whole, as ConfigMaps do.
	tmp := path + ".tmp"
	write(t, tmp, renew30s)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the change, by polling", func() bool { c, _ := r.counts(); return c == 1 })
	if got := renewOf(r.lastChange()); got != 30*time.Second {
		t.Errorf("delivered leaseRenewInterval = %v, want 30s", got)
	}
}
