package nodehealth

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/agent/condition"
	"github.com/nodewarden/nodewarden/internal/agent/healthcheck"
	"github.com/nodewarden/nodewarden/internal/agent/nodeevent"
	"github.com/nodewarden/nodewarden/internal/agent/unitrestarts"
	"github.com/nodewarden/nodewarden/internal/journal/journaltest"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// sink records what the source publishes.
type sink struct {
	mu     sync.Mutex
	conds  map[string]condition.Want
	events []nodeevent.Event
}

func (s *sink) SetConditions(wants ...condition.Want) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range wants {
		s.conds[string(w.Type)] = w
	}
}

func (s *sink) Record(e nodeevent.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
}

func (s *sink) cond(typ string) condition.Want {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conds[typ]
}

func (s *sink) eventReasons() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.events {
		out = append(out, e.Type+"/"+e.Reason)
	}
	return out
}

// host writes a healthy host tree (proc and sys) under a temp dir.
func host(t *testing.T) (proc, sys string) {
	t.Helper()
	root := t.TempDir()
	mounts := "/dev/nvme0n1p1 / xfs rw,noatime 0 0\n/dev/nvme1n1 /var/lib/kubelet ext4 rw 0 0\n"
	mountinfo := "22 1 259:1 / / rw,noatime shared:1 - xfs /dev/nvme0n1p1 rw,attr2\n" +
		"30 22 259:2 / /var/lib/kubelet rw shared:2 - ext4 /dev/nvme1n1 rw\n"
	for name, data := range map[string]string{
		"proc/sys/kernel/pid_max":      "4194304\n",
		"proc/sys/kernel/threads-max":  "126599\n",
		"proc/loadavg":                 "0.52 0.48 0.40 2/812 91234\n",
		"proc/mounts":                  mounts,
		"proc/self/mountinfo":          mountinfo,
		"sys/class/net/lo/flags":       "0x9\n",
		"sys/class/net/lo/operstate":   "unknown\n",
		"sys/class/net/eth0/flags":     "0x1003\n",
		"sys/class/net/eth0/operstate": "up\n",
		"sys/class/net/eth0/carrier":   "1\n",
	} {
		write(t, filepath.Join(root, name), data)
	}
	return filepath.Join(root, "proc"), filepath.Join(root, "sys")
}

func write(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func config(proc, sys string, edit func(*v1alpha1.HealthChecksConfig)) v1alpha1.HealthChecksConfig {
	// No kernel log unless a test gives one: "auto" would read this machine's.
	c := v1alpha1.HealthChecksConfig{ProcPath: proc, SysPath: sys, KernelLog: v1alpha1.KernelLogConfig{Path: ptr.To("")}}
	if edit != nil {
		edit(&c)
	}
	c.Default()
	// Faster than a valid configuration allows: the tests wait on runs.
	c.Interval.Duration = 20 * time.Millisecond
	return c
}

func run(t *testing.T, opts Options) *sink {
	t.Helper()
	if opts.Log.GetSink() == nil {
		opts.Log = testr.New(t)
	}
	s := New(opts)
	if s == nil {
		t.Fatal("New returned nil")
	}
	out := &sink{conds: map[string]condition.Want{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx, out) }()
	t.Cleanup(func() { cancel(); <-done })
	return out
}

func waitCond(t *testing.T, out *sink, typ string, status corev1.ConditionStatus, reason string, msg ...string) {
	t.Helper()
	cluster.Eventually(t, 5*time.Second, func() error {
		c := out.cond(typ)
		if c.Status != status || c.Reason != reason {
			return fmt.Errorf("%s is %s/%s (%q), want %s/%s", typ, c.Status, c.Reason, c.Message, status, reason)
		}
		for _, m := range msg {
			if !strings.Contains(c.Message, m) {
				return fmt.Errorf("%s message %q lacks %q", typ, c.Message, m)
			}
		}
		return nil
	})
}

func TestDefaultsPublishTheEKSConditions(t *testing.T) {
	proc, sys := host(t)
	s := New(Options{Config: config(proc, sys, nil)})
	want := []string{"KernelReady", "NetworkingReady", "StorageReady"}
	if got := s.ConditionTypes(); !slices.Equal(got, want) {
		t.Fatalf("ConditionTypes %v, want %v", got, want)
	}
	out := run(t, Options{Config: config(proc, sys, nil)})
	waitCond(t, out, "KernelReady", corev1.ConditionTrue, "KernelIsReady")
	waitCond(t, out, "NetworkingReady", corev1.ConditionTrue, "NetworkingIsReady")
	waitCond(t, out, "StorageReady", corev1.ConditionTrue, "StorageIsReady", "/var/lib/kubelet")
	if ev := out.eventReasons(); len(ev) != 0 {
		t.Errorf("events at start: %v", ev)
	}
}

func TestEveryCheckOffIsNoSource(t *testing.T) {
	c := v1alpha1.HealthChecksConfig{}
	c.Default()
	c.Off()
	if s := New(Options{Config: c}); s != nil {
		t.Fatalf("New = %v with every check off", s)
	}
}

// An interface that goes down turns NetworkingReady False after the
// confirmations, with a Warning Event; back up, True with a Normal one.
func TestInterfaceDownAndUp(t *testing.T) {
	proc, sys := host(t)
	out := run(t, Options{Config: config(proc, sys, nil)})
	waitCond(t, out, "NetworkingReady", corev1.ConditionTrue, "NetworkingIsReady")
	write(t, filepath.Join(sys, "class/net/eth0/operstate"), "down\n")
	write(t, filepath.Join(sys, "class/net/eth0/carrier"), "0\n")
	waitCond(t, out, "NetworkingReady", corev1.ConditionFalse, "InterfaceNotUp", "eth0")
	write(t, filepath.Join(sys, "class/net/eth0/operstate"), "up\n")
	write(t, filepath.Join(sys, "class/net/eth0/carrier"), "1\n")
	waitCond(t, out, "NetworkingReady", corev1.ConditionTrue, "NetworkingIsReady")
	cluster.Eventually(t, 5*time.Second, func() error {
		if got, want := out.eventReasons(), []string{"Warning/InterfaceNotUp", "Normal/NetworkingIsReady"}; !slices.Equal(got, want) {
			return fmt.Errorf("events %v, want %v", got, want)
		}
		return nil
	})
}

// The AKS profile alone: NPD's condition types with NPD's polarity, fed
// by kernel log records; KernelReady itself is not published.
func TestAKSProfileFromKernelLog(t *testing.T) {
	proc, sys := host(t)
	kmsgFile := filepath.Join(t.TempDir(), "kmsg")
	write(t, kmsgFile, "")
	cfg := config(proc, sys, func(c *v1alpha1.HealthChecksConfig) {
		c.Profiles = []v1alpha1.HealthCheckProfile{v1alpha1.ProfileAKS}
		c.KernelLog.Path = ptr.To(kmsgFile)
	})
	s := New(Options{Config: cfg})
	want := []string{"KernelDeadlock", "ReadonlyFilesystem", "FilesystemCorruptionProblem"}
	if got := s.ConditionTypes(); !slices.Equal(got, want) {
		t.Fatalf("ConditionTypes %v, want %v", got, want)
	}
	out := run(t, Options{Config: cfg})
	waitCond(t, out, "KernelDeadlock", corev1.ConditionFalse, "KernelHasNoDeadlock")
	waitCond(t, out, "ReadonlyFilesystem", corev1.ConditionFalse, "FilesystemIsNotReadOnly")
	f, err := os.OpenFile(kmsgFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "0,100,%d,-;watchdog: BUG: soft lockup - CPU#3 stuck for 23s! [kworker/3:1:123]\n", time.Hour.Microseconds())
	fmt.Fprintf(f, "3,101,%d,-;blk_update_request: I/O error, dev nvme1n1, sector 2048 op 0x1:(WRITE)\n", time.Hour.Microseconds())
	f.Close()
	waitCond(t, out, "KernelDeadlock", corev1.ConditionTrue, "SoftLockup", "CPU#3")
	waitCond(t, out, "FilesystemCorruptionProblem", corev1.ConditionTrue, "IOError", "nvme1n1")
	waitCond(t, out, "ReadonlyFilesystem", corev1.ConditionFalse, "FilesystemIsNotReadOnly")
	if out.cond("KernelReady").Type != "" {
		t.Errorf("KernelReady published under the AKS profile alone")
	}
}

// Kernel log lines count for the window only.
func TestKernelLogWindow(t *testing.T) {
	proc, sys := host(t)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := New(Options{Config: config(proc, sys, nil), Now: clock})
	s.keepKernelLine(clock(), "INFO: task containerd:4321 blocked for more than 120 seconds.")
	s.keepKernelLine(clock(), "IPv6: ADDRCONF(NETDEV_CHANGE): eth0: link becomes ready")
	if got := s.kernelLines(); len(got) != 1 {
		t.Fatalf("kept %q, want the hung task only", got)
	}
	mu.Lock()
	now = now.Add(time.Hour + time.Second)
	mu.Unlock()
	if got := s.kernelLines(); len(got) != 0 {
		t.Fatalf("kept %q past the window", got)
	}
	for i := range maxKernelLines + 10 {
		s.keepKernelLine(clock(), fmt.Sprintf("BUG: line %d", i))
	}
	if got := s.kernelLines(); len(got) != maxKernelLines || got[0] != "BUG: line 10" {
		t.Fatalf("kept %d lines from %q, want the newest %d", len(got), got[0], maxKernelLines)
	}
}

// A runtime that does not answer: ContainerRuntimeReady False naming the
// socket, and ContainerRuntimeProblem True under AKS.
func TestRuntimeUnreachable(t *testing.T) {
	proc, sys := host(t)
	sock := filepath.Join(t.TempDir(), "containerd.sock")
	cfg := config(proc, sys, func(c *v1alpha1.HealthChecksConfig) {
		c.Profiles = []v1alpha1.HealthCheckProfile{v1alpha1.ProfileEKS, v1alpha1.ProfileAKS}
		c.ContainerRuntime.Enabled = ptr.To(true)
		c.ContainerRuntime.Endpoint = "unix://" + sock
		c.ContainerRuntime.Timeout.Duration = 200 * time.Millisecond
	})
	out := run(t, Options{Config: cfg})
	waitCond(t, out, "ContainerRuntimeReady", corev1.ConditionFalse, "ContainerRuntimeUnreachable", sock)
	waitCond(t, out, "ContainerRuntimeProblem", corev1.ConditionTrue, "ContainerRuntimeUnreachable", sock)
	waitCond(t, out, "FrequentContainerdRestart", corev1.ConditionFalse, "NoFrequentContainerdRestart")
}

func TestHostFS(t *testing.T) {
	proc, sys := host(t)
	h := hostFS{proc: os.DirFS(proc), sys: os.DirFS(sys)}
	if b, err := fsReadFile(h, "proc/sys/kernel/pid_max"); err != nil || string(b) != "4194304\n" {
		t.Fatalf("proc: %q %v", b, err)
	}
	if _, err := fsReadFile(h, "etc/passwd"); err == nil {
		t.Fatal("read outside proc and sys")
	}
	if _, err := fsReadFile(h, "proc/../etc"); err == nil {
		t.Fatal("read an invalid path")
	}
}

func fsReadFile(h hostFS, name string) ([]byte, error) { return fs.ReadFile(h, name) }

func TestKernelLogPath(t *testing.T) {
	log := testr.New(t)
	if got := kernelLogPath(ptr.To(""), log); got != "" {
		t.Errorf(`"" resolves to %q`, got)
	}
	if got := kernelLogPath(ptr.To("/var/run/kmsg.fifo"), log); got != "/var/run/kmsg.fifo" {
		t.Errorf("a path resolves to %q", got)
	}
	// auto: /dev/kmsg exactly when this process can open it.
	want := ""
	if f, err := os.Open("/dev/kmsg"); err == nil {
		f.Close()
		want = "/dev/kmsg"
	}
	if got := kernelLogPath(ptr.To("auto"), log); got != want {
		t.Errorf("auto resolves to %q, want %q", got, want)
	}
}

// The journal, written by systemd's own tools: the kubelet's fork failure
// turns KernelReady False, five containerd starts in the window make
// FrequentContainerdRestart True — both from one pass over the journal.
func TestJournal(t *testing.T) {
	proc, sys := host(t)
	dir := t.TempDir()
	now := time.Now()
	boot := [16]byte{1, 2, 3}
	var entries []journaltest.Entry
	for i := range 5 {
		entries = append(entries, journaltest.Entry{Realtime: now.Add(time.Duration(i-6) * time.Minute), Monotonic: time.Duration(i+1) * time.Minute, BootID: boot,
			Fields: map[string]string{"MESSAGE_ID": unitrestarts.MessageUnitStarted, "UNIT": "containerd.service", "_PID": "1",
				"JOB_ID": strconv.Itoa(100 + i), "SYSLOG_IDENTIFIER": "systemd", "MESSAGE": "Started containerd container runtime."}})
	}
	entries = append(entries, journaltest.Entry{Realtime: now.Add(-time.Minute), Monotonic: 10 * time.Minute, BootID: boot,
		Fields: map[string]string{"SYSLOG_IDENTIFIER": "kubelet", "_SYSTEMD_UNIT": "kubelet.service",
			"MESSAGE": `E1205 pod_workers.go:1301] "Error syncing pod" err="failed to start: fork/exec /usr/bin/runc: resource temporarily unavailable"`}})
	journaltest.Write(t, filepath.Join(dir, "system.journal"), nil, nil, entries...)

	cfg := config(proc, sys, func(c *v1alpha1.HealthChecksConfig) {
		c.Profiles = []v1alpha1.HealthCheckProfile{v1alpha1.ProfileEKS, v1alpha1.ProfileAKS}
		c.ContainerRuntime.Enabled = ptr.To(true)
		c.ContainerRuntime.Endpoint = "unix://" + filepath.Join(t.TempDir(), "none.sock")
		c.ContainerRuntime.Timeout.Duration = 100 * time.Millisecond
		c.ContainerRuntime.JournalPath = dir
	})
	out := run(t, Options{Config: cfg})
	waitCond(t, out, "KernelReady", corev1.ConditionFalse, "ForkFailedOutOfPIDs", "fork/exec /usr/bin/runc")
	waitCond(t, out, "FrequentContainerdRestart", corev1.ConditionTrue, "FrequentContainerdRestart", "containerd.service started 5 times in the last 20m0s")
	waitCond(t, out, "FrequentKubeletRestart", corev1.ConditionFalse, "NoFrequentKubeletRestart")
	waitCond(t, out, "ContainerRuntimeReady", corev1.ConditionFalse, "ContainerRuntimeUnreachable", "containerd.service started 5 times")
}

// Over the real /proc: a sysctl file has stat size 0 and ends at a read
// at a non-zero offset, so a reader that reads one byte first sees "4" of
// 4194304. hostFS reads it whole.
func TestHostFSReadsSysctls(t *testing.T) {
	h := hostFS{proc: os.DirFS("/proc"), sys: os.DirFS("/sys")}
	for _, name := range []string{"sys/kernel/pid_max", "sys/kernel/threads-max"} {
		want, err := os.ReadFile("/proc/" + name)
		if err != nil {
			t.Skipf("no /proc here: %v", err)
		}
		got, err := fs.ReadFile(h, "proc/"+name)
		if err != nil || string(got) != string(want) {
			t.Errorf("proc/%s: %q (%v), want %q", name, got, err, want)
		}
	}
	if b, err := fs.ReadFile(h, "proc/loadavg"); err != nil || len(strings.Fields(string(b))) != 5 {
		t.Errorf("proc/loadavg: %q (%v), want 5 fields", b, err)
	}
	if _, err := fs.ReadDir(h, "sys/class/net"); err != nil {
		t.Errorf("sys/class/net: %v", err)
	}
}

// This machine's own /sys: an interface whose operstate is "up" is never
// reported (sysfs flags lack IFF_RUNNING on every working link).
func TestThisHostsWorkingInterfaces(t *testing.T) {
	h := hostFS{proc: os.DirFS("/proc"), sys: os.DirFS("/sys")}
	r := healthcheck.NetworkingReady(h)
	entries, err := os.ReadDir("/sys/class/net")
	if err != nil {
		t.Skipf("no /sys/class/net: %v", err)
	}
	for _, e := range entries {
		oper, err := os.ReadFile(filepath.Join("/sys/class/net", e.Name(), "operstate"))
		if err == nil && strings.TrimSpace(string(oper)) == "up" && strings.Contains(r.Message, `"`+e.Name()+`"`) {
			t.Errorf("%s is up, yet NetworkingReady says %s: %s", e.Name(), r.Reason, r.Message)
		}
	}
}
