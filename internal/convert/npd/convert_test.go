package npd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/agent/agentconfig"
	"github.com/nodewarden/nodewarden/internal/agent/condition"
	"github.com/nodewarden/nodewarden/internal/agent/hostevent"
	"github.com/nodewarden/nodewarden/internal/agent/nodeevent"
	agentnpd "github.com/nodewarden/nodewarden/internal/agent/npd"
	"github.com/nodewarden/nodewarden/internal/agent/source"
)

const fixtures = "../../agent/npd/testdata"

func fixture(name string) string { return filepath.Join(fixtures, name) }

// copyFixture writes testdata/name to dir with top-level fields replaced.
func copyFixture(t *testing.T, dir, name string, set map[string]any) string {
	t.Helper()
	data, err := os.ReadFile(fixture(name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		m[k] = v
	}
	out, _ := json.Marshal(m)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// roundTrip renders cfg, and reads it back as the agent reads its --config.
func roundTrip(t *testing.T, cfg *v1alpha1.AgentConfig, from []string) *v1alpha1.AgentConfig {
	t.Helper()
	out, err := Render(cfg, from)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	back, err := agentconfig.Load(p)
	if err != nil {
		t.Fatalf("the converted config does not load: %v\n%s", err, out)
	}
	return back
}

func TestConvertRunsTheFilesAsTheyAre(t *testing.T) {
	paths := []string{fixture("kernel-monitor.json"), fixture("host_event.json"), fixture("docker-monitor.json")}
	cfg, warnings, err := Convert(paths, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var abs []string
	for _, p := range paths {
		a, _ := filepath.Abs(p)
		abs = append(abs, a)
	}
	back := roundTrip(t, cfg, paths)
	if diff := cmp.Diff(abs, back.NPDConfigs); diff != "" {
		t.Errorf("npdConfigs (-want +got):\n%s", diff)
	}
	if *back.HostEventLog.Path != "" {
		t.Errorf("hostEventLog.path = %q; the built-in source must be off, as NPD had none", *back.HostEventLog.Path)
	}
	all := strings.Join(warnings, "\n")
	for _, w := range []string{
		fixture("kernel-monitor.json") + ": relative path written as " + abs[0],
		fixture("host_event.json") + ": a host event monitor; it runs as in NPD",
		fixture("docker-monitor.json") + ": a journald monitor (SYSLOG_IDENTIFIER \"dockerd\"); it runs as in NPD, reading the journal files under /var/log/journal and /run/log/journal",
	} {
		if !strings.Contains(all, w) {
			t.Errorf("warnings do not say %q:\n%s", w, all)
		}
	}

	out, err := Render(cfg, paths)
	if err != nil {
		t.Fatal(err)
	}
	want := "# AgentConfig converted by `nodewarden convert npd` from:\n" +
		"#   " + paths[0] + "\n#   " + paths[1] + "\n#   " + paths[2] + "\n" +
		"# The NPD files run unchanged (npdConfigs); keep them mounted where listed.\n" +
		"apiVersion: nodewarden.io/v1alpha1\n" +
		"hostEventLog:\n  path: \"\"\n" +
		"kind: AgentConfig\n" +
		"npdConfigs:\n- " + abs[0] + "\n- " + abs[1] + "\n- " + abs[2] + "\n"
	if diff := cmp.Diff(want, string(out)); diff != "" {
		t.Errorf("rendered (-want +got):\n%s", diff)
	}
}

func TestConvertErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"plugin": "kmsg", "rules": [{"type": "temporary", "reason": "R", "pattern": "("}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		paths []string
		want  string
	}{
		{nil, "no NPD config files given"},
		{[]string{bad}, "npd config " + bad + `: rules[0] (reason "R"): pattern: invalid regular expression`},
		{[]string{fixture("kernel-monitor.json"), fixture("kernel-monitor-filelog.json")},
			"condition type KernelDeadlock is declared by both " + fixture("kernel-monitor.json") + " and " + fixture("kernel-monitor-filelog.json")},
	} {
		_, _, err := Convert(tt.paths, Options{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Convert(%q) = %v, want an error saying %q", tt.paths, err, tt.want)
		}
	}
	// A plugin that is not on this machine is not an error: it is where
	// the agent runs that matters.
	if _, _, err := Convert([]string{fixture("custom-plugin-monitor.json")}, Options{}); err != nil {
		t.Errorf("custom plugin config: %v", err)
	}
}

// With --builtin-host-events, host_event.json becomes the built-in source,
// mapped from its permanent rules; the other files stay NPD configs.
func TestConvertBuiltinHostEvents(t *testing.T) {
	paths := []string{fixture("host_event.json"), fixture("readonly-monitor.json")}
	cfg, warnings, err := Convert(paths, Options{BuiltinHostEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	back := roundTrip(t, cfg, paths)
	abs, _ := filepath.Abs(paths[1])
	if diff := cmp.Diff([]string{abs}, back.NPDConfigs); diff != "" {
		t.Errorf("npdConfigs (-want +got):\n%s", diff)
	}
	want := v1alpha1.HostEventLogConfig{
		Path: new("/var/log/host_event.log"), IncludeRotated: new(true), MaxLineBytes: v1alpha1.DefaultMaxLineBytes,
		PollInterval: back.HostEventLog.PollInterval,
		Conditions:   []v1alpha1.HostEventCondition{{Type: "HostEventRebootAfter48", EventTypes: []string{"SystemMaintenance.Reboot"}}},
	}
	if diff := cmp.Diff(want, back.HostEventLog); diff != "" {
		t.Errorf("hostEventLog (-want +got):\n%s", diff)
	}
	if all := strings.Join(warnings, "\n"); !strings.Contains(all, "replaced by the built-in host event source") || !strings.Contains(all, "reasons differ") {
		t.Errorf("warnings do not explain the difference:\n%s", all)
	}

	// The same line sets the same condition True (with the built-in
	// source's reason), and the Executed line clears it, unlike NPD.
	m, err := hostevent.MappingFor(back.HostEventLog.Conditions)
	if err != nil {
		t.Fatal(err)
	}
	tr := hostevent.NewTracker(m)
	for _, l := range []string{
		"2024-01-09 06:12:44 - WARNING - Ecs event type is: SystemMaintenance.Reboot,event status is: Scheduled,action ISO 8601 time is 2099-01-11T02:00:00Z",
	} {
		e, err := hostevent.Parse([]byte(l))
		if err != nil {
			t.Fatal(err)
		}
		tr.Observe(e)
	}
	if c := tr.Conditions(time.Time{}); len(c) != 1 || c[0].Type != "HostEventRebootAfter48" || c[0].Status != "True" {
		t.Errorf("built-in conditions %+v", c)
	}
}

// sink is the agent's sink without an API server.
type sink struct {
	mu     sync.Mutex
	conds  map[string]condition.Want
	events map[string]nodeevent.Event
}

func (s *sink) SetConditions(ws ...condition.Want) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range ws {
		s.conds[string(w.Type)] = w
	}
}

func (s *sink) Record(e nodeevent.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events[e.Key] = e
}

func (s *sink) state() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lines []string
	for _, w := range s.conds {
		lines = append(lines, fmt.Sprintf("condition %s=%s %s %q", w.Type, w.Status, w.Reason, w.Message))
	}
	for _, e := range s.events {
		lines = append(lines, fmt.Sprintf("event %s %s %q", e.Type, e.Reason, e.Message))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// run runs the sources of paths on whatever their logs hold, and returns
// what they published once it stopped changing.
func run(t *testing.T, paths []string) string {
	t.Helper()
	srcs, err := agentnpd.NewSources(paths, agentnpd.Options{
		BootTime: time.Now().Add(-time.Hour).Truncate(time.Second), Log: testr.New(t), Location: time.UTC, PollInterval: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	out := &sink{conds: map[string]condition.Want{}, events: map[string]nodeevent.Event{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, s := range srcs {
		wg.Go(func() { s.Run(ctx, source.Sink(out)) })
	}
	prev, stable := "", 0
	for stable < 5 {
		time.Sleep(50 * time.Millisecond)
		if cur := out.state(); cur == prev && cur != "" {
			stable++
		} else {
			prev, stable = cur, 0
		}
	}
	cancel()
	wg.Wait()
	return out.state()
}

// Round trip: the converted configuration makes the same conditions and
// Events on the same input as the NPD files.
func TestConvertRoundTrip(t *testing.T) {
	dir := t.TempDir()
	kmsg := filepath.Join(dir, "kmsg")
	hostLog := filepath.Join(dir, "host_event.log")
	up := time.Hour - 30*time.Second
	var recs strings.Builder
	for i, l := range []string{
		"INFO: task docker:20744 blocked for more than 120 seconds.",
		"Killed process 1012 (heapster) total-vm:327128kB, anon-rss:306328kB, file-rss:11132kB, shmem-rss:12345kB",
		"EXT4-fs (sda1): Remounting filesystem read-only",
	} {
		fmt.Fprintf(&recs, "6,%d,%d,-;%s\n", i+1, (up + time.Duration(i)*time.Second).Microseconds(), l)
	}
	if err := os.WriteFile(kmsg, []byte(recs.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	line := time.Now().UTC().Add(-time.Minute).Format("2006-01-02 15:04:05") +
		" - WARNING - Ecs event type is: SystemMaintenance.Reboot,event status is: Scheduled,action ISO 8601 time is 2099-01-11T02:00:00Z\n"
	if err := os.WriteFile(hostLog, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	paths := []string{
		copyFixture(t, dir, "kernel-monitor.json", map[string]any{"logPath": kmsg}),
		copyFixture(t, dir, "readonly-monitor.json", map[string]any{"logPath": kmsg}),
		copyFixture(t, dir, "host_event.json", map[string]any{"logPath": hostLog}),
	}
	cfg, _, err := Convert(paths, Options{})
	if err != nil {
		t.Fatal(err)
	}
	back := roundTrip(t, cfg, paths)
	direct := run(t, paths)
	converted := run(t, back.NPDConfigs)
	if diff := cmp.Diff(direct, converted); diff != "" {
		t.Errorf("converted config differs from the NPD files (-npd +converted):\n%s", diff)
	}
	for _, want := range []string{
		`condition KernelDeadlock=True DockerHung "INFO: task docker:20744 blocked for more than 120 seconds."`,
		`condition ReadonlyFilesystem=True FilesystemIsReadOnly`,
		`condition HostEventRebootAfter48=True HostEventRebootAfter48Permanent`,
		`event Warning OOMKilling`,
	} {
		if !strings.Contains(direct, want) {
			t.Errorf("state does not show %q:\n%s", want, direct)
		}
	}
}
