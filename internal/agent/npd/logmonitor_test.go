package npd

import (
	"fmt"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/test/cluster"
)

const (
	warning = corev1.EventTypeWarning
	normal  = corev1.EventTypeNormal
)

// npdCase is what NPD makes of one sample problem: the Events, and the
// conditions that differ from their defaults.
type npdCase struct {
	problem string
	events  []ev
	conds   map[string]cond
}

func changeEvent(typ, status, reason, msg string) ev {
	kind := normal
	if status == "True" {
		kind = warning
	}
	return ev{kind, reason, fmt.Sprintf("Node condition %s is now: %s, reason: %s, message: %q", typ, status, reason, msg)}
}

const (
	dockerHungLine = "INFO: task docker:20744 blocked for more than 120 seconds."
	oomLine        = "Killed process 1012 (heapster) total-vm:327128kB, anon-rss:306328kB, file-rss:11132kB, shmem-rss:12345kB"
	readonlyLine   = "EXT4-fs (sda1): Remounting filesystem read-only"
)

// kernelMonitorCases are kernel-monitor.json (kmsg) on each sample.
var kernelMonitorCases = []npdCase{
	{problem: "oom_kill", events: []ev{{warning, "OOMKilling", oomLine}}},
	{problem: "aufs_umount_hung", events: []ev{{warning, "TaskHung", "INFO: task umount.aufs:21568 blocked for more than 120 seconds."}}},
	{problem: "docker_hung",
		events: []ev{
			{warning, "TaskHung", dockerHungLine},
			changeEvent("KernelDeadlock", "True", "DockerHung", dockerHungLine),
		},
		conds: map[string]cond{"KernelDeadlock": {"True", "DockerHung", dockerHungLine}}},
	{problem: "null_pointer", events: []ev{{warning, "KernelOops", "BUG: unable to handle kernel NULL pointer dereference at 0000000000000078"}}},
	// kmsg messages are trimmed (NPD: strings.TrimSpace), so "SMP " matches.
	{problem: "divide_zero", events: []ev{{warning, "KernelOops", "divide error: 0000 [#1] SMP"}}},
	{problem: "unregister_netdevice", events: []ev{{warning, "UnregisterNetDevice", "unregister_netdevice: waiting for lo to become free. Usage count = 1"}}},
	{problem: "readonly_filesystem"},
	{problem: "au_opts_verify"},
}

var kernelDefaults = map[string]cond{
	"KernelDeadlock":         {"False", "KernelHasNoDeadlock", "kernel has no deadlock"},
	"XfsShutdown":            {"False", "XfsHasNotShutDown", "XFS has not shutdown"},
	"CperHardwareErrorFatal": {"False", "CperHardwareHasNoFatalError", "UEFI CPER has no fatal error"},
}

func withDefaults(defaults, changed map[string]cond) map[string]cond {
	out := map[string]cond{}
	for k, v := range defaults {
		out[k] = v
	}
	for k, v := range changed {
		out[k] = v
	}
	return out
}

// waitState waits until the sink shows exactly conds and events (in any order).
func waitState(t *testing.T, sink *fakeSink, conds map[string]cond, events []ev) {
	t.Helper()
	cluster.Eventually(t, 10*time.Second, func() error {
		if diff := cmp.Diff(conds, sink.condMap()); diff != "" {
			return fmt.Errorf("conditions (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(sortedEvents(events), sortedEvents(sink.eventList())); diff != "" {
			return fmt.Errorf("events (-want +got):\n%s", diff)
		}
		return nil
	})
}

// The kernel monitor on /dev/kmsg records: each sample problem, replayed
// from the buffer, produces the Events and conditions NPD produces.
func TestKernelMonitorKmsgSamples(t *testing.T) {
	for _, tc := range kernelMonitorCases {
		t.Run(tc.problem, func(t *testing.T) {
			opts := testOptions(t)
			dev := filepath.Join(t.TempDir(), "kmsg")
			// Logged 30s ago: within the 5m lookback.
			appendFile(t, dev, kmsgRecords(problemLines(t, tc.problem), 100, time.Since(opts.BootTime)-30*time.Second))
			sink := newFakeSink()
			runSource(t, newTestSource(t, fixture(t, "kernel-monitor.json", map[string]any{"logPath": dev}), opts), sink)
			waitState(t, sink, withDefaults(kernelDefaults, tc.conds), tc.events)
		})
	}
}

func TestReadonlyMonitorKmsg(t *testing.T) {
	opts := testOptions(t)
	dev := filepath.Join(t.TempDir(), "kmsg")
	appendFile(t, dev, "")
	sink := newFakeSink()
	runSource(t, newTestSource(t, fixture(t, "readonly-monitor.json", map[string]any{"logPath": dev}), opts), sink)
	defaults := map[string]cond{"ReadonlyFilesystem": {"False", "FilesystemIsNotReadOnly", "Filesystem is not read-only"}}
	waitState(t, sink, defaults, nil)

	// A new record, with continuation (dictionary) lines: they are not part
	// of the message, so the pattern still matches at the end.
	appendFile(t, dev, fmt.Sprintf("3,7,%d,-;%s\n SUBSYSTEM=block\n DEVICE=b8:1\n", time.Since(opts.BootTime).Microseconds(), readonlyLine))
	waitState(t, sink,
		map[string]cond{"ReadonlyFilesystem": {"True", "FilesystemIsReadOnly", readonlyLine}},
		[]ev{changeEvent("ReadonlyFilesystem", "True", "FilesystemIsReadOnly", readonlyLine)})
}

// lookback: records logged before the start count only within lookback;
// records logged after the start always count.
func TestKmsgLookback(t *testing.T) {
	opts := testOptions(t)
	dev := filepath.Join(t.TempDir(), "kmsg")
	up := time.Since(opts.BootTime)
	appendFile(t, dev, kmsgRecords([]string{"Killed process 1 (old) total-vm:1kB, anon-rss:1kB, file-rss:1kB"}, 1, up-10*time.Minute))
	appendFile(t, dev, kmsgRecords([]string{"Killed process 2 (recent) total-vm:1kB, anon-rss:1kB, file-rss:1kB"}, 2, up-time.Minute))
	sink := newFakeSink()
	runSource(t, newTestSource(t, fixture(t, "kernel-monitor.json", map[string]any{"logPath": dev}), opts), sink)
	recent := ev{warning, "OOMKilling", "Killed process 2 (recent) total-vm:1kB, anon-rss:1kB, file-rss:1kB"}
	waitState(t, sink, kernelDefaults, []ev{recent})

	// Timestamped long ago, but new: it counts.
	appendFile(t, dev, kmsgRecords([]string{"Killed process 3 (new) total-vm:1kB, anon-rss:1kB, file-rss:1kB"}, 3, up-20*time.Minute))
	waitState(t, sink, kernelDefaults, []ev{recent, {warning, "OOMKilling", "Killed process 3 (new) total-vm:1kB, anon-rss:1kB, file-rss:1kB"}})
}

// kernel-monitor-filelog.json on rsyslog's kern.log: the same samples, with
// NPD's filelog translation (message is what follows "kernel: [...] ").
func TestKernelMonitorFilelogSamples(t *testing.T) {
	cases := map[string]npdCase{}
	for _, c := range kernelMonitorCases {
		cases[c.problem] = c
	}
	// In filelog, NPD does not trim the message, and its greedy
	// "kernel: \[.*\] (.*)" takes only what follows the last "] ": of
	// "divide error: 0000 [#1] SMP " it keeps "SMP ". No Event, as in NPD.
	cases["divide_zero"] = npdCase{problem: "divide_zero"}
	for _, tc := range cases {
		t.Run(tc.problem, func(t *testing.T) {
			opts := testOptions(t)
			logPath := filepath.Join(t.TempDir(), "kern.log")
			appendFile(t, logPath, syslogLines(problemLines(t, tc.problem), time.Now().Add(-time.Minute)))
			sink := newFakeSink()
			runSource(t, newTestSource(t, fixture(t, "kernel-monitor-filelog.json", map[string]any{"logPath": logPath}), opts), sink)
			defaults := map[string]cond{"KernelDeadlock": kernelDefaults["KernelDeadlock"]}
			waitState(t, sink, withDefaults(defaults, tc.conds), tc.events)
		})
	}
}

const (
	hostEventScheduled = "Ecs event type is: SystemMaintenance.Reboot,event status is: Scheduled,action ISO 8601 time is 2099-01-11T02:00:00Z"
	hostEventExecuted  = "Ecs event type is: SystemMaintenance.Reboot,event status is: Executed,action ISO 8601 time is 2099-01-11T02:00:00Z"
)

func hostEventLine(t time.Time, msg string) string {
	return t.UTC().Format("2006-01-02 15:04:05") + " - WARNING - " + msg + "\n"
}

// host_event.json from Alibaba's guide: the Scheduled line makes the
// temporary Event and sets HostEventRebootAfter48; as in NPD, nothing ever
// clears it (not even the Executed line), and lines with spaces after the
// commas do not match.
func TestHostEventJSON(t *testing.T) {
	opts := testOptions(t)
	logPath := filepath.Join(t.TempDir(), "host_event.log")
	// Logged long before lookback: ignored on start.
	appendFile(t, logPath, hostEventLine(time.Now().Add(-time.Hour), hostEventScheduled))
	sink := newFakeSink()
	runSource(t, newTestSource(t, fixture(t, "host_event.json", map[string]any{"logPath": logPath}), opts), sink)
	defaults := map[string]cond{"HostEventRebootAfter48": {"False", "HostEventWillRebootAfter48", "The Host Is Running In Good Condition"}}
	waitState(t, sink, defaults, nil)

	appendFile(t, logPath, hostEventLine(time.Now(), "Ecs event type is: SystemMaintenance.Reboot, event status is: Scheduled, action ISO 8601 time is 2099-01-11T02:00:00Z"))
	appendFile(t, logPath, hostEventLine(time.Now(), hostEventScheduled))
	on := map[string]cond{"HostEventRebootAfter48": {"True", "HostEventRebootAfter48Permanent", hostEventScheduled}}
	events := []ev{
		{warning, "HostEventRebootAfter48temporary", hostEventScheduled},
		changeEvent("HostEventRebootAfter48", "True", "HostEventRebootAfter48Permanent", hostEventScheduled),
	}
	waitState(t, sink, on, events)

	appendFile(t, logPath, hostEventLine(time.Now(), hostEventExecuted))
	time.Sleep(300 * time.Millisecond)
	waitState(t, sink, on, events)
}

// nodewarden's extension, off by default: a resolve pattern, or a time to
// live, clears a permanent condition.
func TestResolveExtension(t *testing.T) {
	opts := testOptions(t)
	logPath := filepath.Join(t.TempDir(), "host_event.log")
	p := fixture(t, "host_event.json", map[string]any{
		"logPath": logPath,
		"conditions": []any{map[string]any{
			"type": "HostEventRebootAfter48", "reason": "HostEventWillRebootAfter48", "message": "The Host Is Running In Good Condition",
			"nodewarden": map[string]any{"resolvePattern": "event status is: (Executed|Canceled|Avoided|Failed).*", "resolveAfter": "1h"},
		}},
	})
	sink := newFakeSink()
	runSource(t, newTestSource(t, p, opts), sink)
	def := cond{"False", "HostEventWillRebootAfter48", "The Host Is Running In Good Condition"}
	waitState(t, sink, map[string]cond{"HostEventRebootAfter48": def}, nil)

	appendFile(t, logPath, hostEventLine(time.Now(), hostEventScheduled))
	cluster.Eventually(t, 5*time.Second, func() error {
		if got := sink.condMap()["HostEventRebootAfter48"].Status; got != "True" {
			return fmt.Errorf("status %s", got)
		}
		return nil
	})
	appendFile(t, logPath, hostEventLine(time.Now(), hostEventExecuted))
	cluster.Eventually(t, 5*time.Second, func() error {
		if got := sink.condMap()["HostEventRebootAfter48"]; got != def {
			return fmt.Errorf("condition %+v", got)
		}
		return nil
	})
	evs := sink.eventList()
	if last := evs[len(evs)-1]; last != changeEvent("HostEventRebootAfter48", "False", "HostEventWillRebootAfter48", "The Host Is Running In Good Condition") {
		t.Errorf("last event %+v", last)
	}
}

func TestResolveAfter(t *testing.T) {
	opts := testOptions(t)
	logPath := filepath.Join(t.TempDir(), "host_event.log")
	p := fixture(t, "host_event.json", map[string]any{
		"logPath": logPath,
		"conditions": []any{map[string]any{
			"type": "HostEventRebootAfter48", "reason": "Fine", "message": "fine",
			"nodewarden": map[string]any{"resolveAfter": "1s"},
		}},
	})
	// True from a line 4 minutes old: its time to live is over at the
	// start, so the replay ends False; a new line is True for 1s.
	appendFile(t, logPath, hostEventLine(time.Now().Add(-4*time.Minute), hostEventScheduled))
	sink := newFakeSink()
	runSource(t, newTestSource(t, p, opts), sink)
	def := cond{"False", "Fine", "fine"}
	waitState(t, sink, map[string]cond{"HostEventRebootAfter48": def}, []ev{
		{warning, "HostEventRebootAfter48temporary", hostEventScheduled},
		changeEvent("HostEventRebootAfter48", "True", "HostEventRebootAfter48Permanent", hostEventScheduled),
		changeEvent("HostEventRebootAfter48", "False", "Fine", "fine"),
	})
	sink.mu.Lock()
	sets := sink.sets
	sink.mu.Unlock()
	if sets != 1 {
		t.Errorf("conditions published %d times during the replay, want once", sets)
	}
	// A new line sets it True and, 1s after the line's time, False again.
	// The line's timestamp has whole seconds, so the True state may last
	// only a moment: the Events, not a poll of the condition, show it held.
	appendFile(t, logPath, hostEventLine(time.Now(), hostEventScheduled))
	waitState(t, sink, map[string]cond{"HostEventRebootAfter48": def}, []ev{
		{warning, "HostEventRebootAfter48temporary", hostEventScheduled},
		changeEvent("HostEventRebootAfter48", "True", "HostEventRebootAfter48Permanent", hostEventScheduled),
		changeEvent("HostEventRebootAfter48", "False", "Fine", "fine"),
		{warning, "HostEventRebootAfter48temporary", hostEventScheduled},
		changeEvent("HostEventRebootAfter48", "True", "HostEventRebootAfter48Permanent", hostEventScheduled),
		changeEvent("HostEventRebootAfter48", "False", "Fine", "fine"),
	})
}

// The log buffer: a pattern must match up to the end of the newest line; a
// pattern with "\n" spans lines, and the message is the lines it spans.
func TestLogBufferMatchesLikeNPD(t *testing.T) {
	b := newLogBuffer(3)
	at := time.Unix(100, 0)
	for i, m := range []string{"one", "two", "three", "four"} {
		b.push(logEntry{Time: at.Add(time.Duration(i) * time.Second), Message: m})
	}
	re := func(p string) []string {
		r, err := compilePattern(p)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range b.match(r) {
			out = append(out, e.Message)
		}
		return out
	}
	for p, want := range map[string][]string{
		"four":             {"four"},
		"fou":              nil, // not to the end
		"three":            nil, // not the newest line
		"thr.*":            nil, // "." does not cross lines
		"three\nfour":      {"three", "four"},
		"two\nthree\nfour": {"two", "three", "four"},
		"one\ntwo":         nil, // "one" left the buffer
		"o?u?r":            {"four"},
	} {
		if diff := cmp.Diff(want, re(p)); diff != "" {
			t.Errorf("pattern %q (-want +got):\n%s", p, diff)
		}
	}
	if got := joinMessages(b.match(regexp.MustCompile(`three\nfour\z`))); got != "three\nfour" {
		t.Errorf("message %q", got)
	}
}

// NPD's older kernel-monitor.json matched the OOM kill over two lines; the
// buffer joins them, and the Event's message is both lines.
func TestMultiLinePattern(t *testing.T) {
	opts := testOptions(t)
	dev := filepath.Join(t.TempDir(), "kmsg")
	appendFile(t, dev, kmsgRecords(problemLines(t, "oom_kill"), 1, time.Since(opts.BootTime)-time.Minute))
	p := fixture(t, "kernel-monitor.json", map[string]any{
		"logPath": dev,
		"rules": []any{map[string]any{
			"type": "temporary", "reason": "OOMKilling",
			"pattern": `Kill process \d+ (.+) score \d+ or sacrifice child\nKilled process \d+ (.+) total-vm:\d+kB, anon-rss:\d+kB, file-rss:\d+kB.*`,
		}},
	})
	sink := newFakeSink()
	runSource(t, newTestSource(t, p, opts), sink)
	waitState(t, sink, kernelDefaults, []ev{{warning, "OOMKilling",
		"Memory cgroup out of memory: Kill process 1012 (heapster) score 1035 or sacrifice child\n" + oomLine}})
}
