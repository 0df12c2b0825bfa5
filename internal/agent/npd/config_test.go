package npd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Every NPD config shipped with NPD (and Alibaba's host_event.json) loads,
// unchanged and without a warning: every field they use is supported.
func TestLoadFixtures(t *testing.T) {
	type summary struct {
		Kind       MonitorKind
		Plugin     string
		Source     string
		LogPath    string
		Lookback   time.Duration
		BufferSize int
		Conditions []string
		Rules      int
	}
	want := map[string]summary{
		"custom-plugin-monitor.json":    {CustomPluginMonitor, "custom", "ntp-custom-plugin-monitor", "", 0, 0, []string{"NTPProblem"}, 2},
		"disk-log-message-filelog.json": {SystemLogMonitor, "filelog", "disk-monitor", "/var/log/messages", 10 * time.Hour, 1, []string{"DiskBadBlock"}, 1},
		"docker-monitor-filelog.json":   {SystemLogMonitor, "filelog", "docker-monitor", "/var/log/docker.log", 5 * time.Minute, 10, []string{}, 1},
		"docker-monitor.json":           {SystemLogMonitor, "journald", "docker-monitor", "/var/log/journal", 5 * time.Minute, 10, []string{"CorruptDockerOverlay2"}, 3},
		"host_event.json":               {SystemLogMonitor, "filelog", "host-event", "/var/log/host_event.log", 5 * time.Minute, 10, []string{"HostEventRebootAfter48"}, 2},
		"kernel-monitor-filelog.json":   {SystemLogMonitor, "filelog", "kernel-monitor", "/var/log/kern.log", 5 * time.Minute, 10, []string{"KernelDeadlock"}, 6},
		"kernel-monitor.json":           {SystemLogMonitor, "kmsg", "kernel-monitor", "/dev/kmsg", 5 * time.Minute, 10, []string{"KernelDeadlock", "XfsShutdown", "CperHardwareErrorFatal"}, 14},
		"readonly-monitor.json":         {SystemLogMonitor, "kmsg", "readonly-monitor", "/dev/kmsg", 5 * time.Minute, 10, []string{"ReadonlyFilesystem"}, 1},
		"systemd-monitor.json":          {SystemLogMonitor, "journald", "systemd-monitor", "/var/log/journal", 5 * time.Minute, 10, []string{}, 3},
	}
	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(want) {
		t.Fatalf("testdata has %d configs, the test knows %d", len(files), len(want))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			// The custom plugin config names ./config/plugin/check_ntp.sh,
			// which exists on NPD's image only.
			c, err := Load(f, LoadOptions{SkipPluginPathCheck: true})
			if err != nil {
				t.Fatal(err)
			}
			got := summary{c.Kind, c.Plugin, c.Source, c.LogPath, c.Lookback, c.BufferSize, c.ConditionTypes(), len(c.Rules)}
			if c.Kind == CustomPluginMonitor {
				got.Lookback, got.BufferSize = 0, 0
			}
			if diff := cmp.Diff(want[filepath.Base(f)], got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if len(c.Warnings) != 0 {
				t.Errorf("warnings: %q", c.Warnings)
			}
		})
	}
}

func TestLoadCustomPluginDefaultsAndValues(t *testing.T) {
	p := fixture(t, "custom-plugin-monitor.json", map[string]any{
		"rules": []any{
			map[string]any{"type": "temporary", "reason": "A", "path": "/bin/true", "timeout": "3s"},
			map[string]any{"type": "permanent", "condition": "NTPProblem", "reason": "B", "path": "/bin/true", "args": []string{"-x"}, "invoke_interval": "1m"},
		},
	})
	c, err := Load(p, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.InvokeInterval != 30*time.Second || c.Timeout != 5*time.Second || c.MaxOutputLength != 80 || c.Concurrency != 3 ||
		c.MessageChangeBasedConditionUpdate || c.SkipInitialStatus || !c.MetricsReporting {
		t.Errorf("global plugin config = %+v", c)
	}
	if r := c.Rules[0]; r.Timeout != 3*time.Second || r.InvokeInterval != 30*time.Second {
		t.Errorf("rule 0: timeout %v interval %v", r.Timeout, r.InvokeInterval)
	}
	if r := c.Rules[1]; r.Timeout != 5*time.Second || r.InvokeInterval != time.Minute || !cmp.Equal(r.Args, []string{"-x"}) {
		t.Errorf("rule 1: timeout %v interval %v args %q", r.Timeout, r.InvokeInterval, r.Args)
	}
}

// A broken config is an error that names the file, where, and what is wrong.
func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const kmsgHead = `{"plugin": "kmsg", "source": "k", "conditions": [{"type": "KernelDeadlock", "reason": "KernelHasNoDeadlock", "message": "ok"}], `
	tests := []struct {
		name string
		text string
		want []string // substrings of the error
	}{
		{"invalid-json.json", "{\"plugin\": \"kmsg\",\n  \"rules\": [\n}", []string{"invalid JSON at line 3, column 1"}},
		{"not-object.json", `["kmsg"]`, []string{"must be an object"}},
		{"unknown-plugin.json", `{"plugin": "syslog", "rules": []}`, []string{`unknown plugin "syslog"`, "filelog", "custom"}},
		{"no-plugin.json", `{"rules": []}`, []string{"plugin: missing"}},
		{"bad-regex.json", kmsgHead + `"rules": [{"type": "temporary", "reason": "OOMKilling", "pattern": "Killed process (\\d+"}]}`,
			[]string{`rules[0] (reason "OOMKilling"): pattern: invalid regular expression "Killed process (\\d+"`, "missing closing )"}},
		{"permanent-no-condition.json", kmsgHead + `"rules": [{"type": "permanent", "reason": "DockerHung", "pattern": "x"}]}`,
			[]string{`rules[0] (reason "DockerHung"): condition: missing`}},
		{"permanent-undeclared.json", kmsgHead + `"rules": [{"type": "permanent", "condition": "XfsShutdown", "reason": "XfsHasShutdown", "pattern": "x"}]}`,
			[]string{`rules[0] (reason "XfsHasShutdown"): condition: "XfsShutdown" is not declared in conditions`, `"KernelDeadlock"`}},
		{"bad-type.json", kmsgHead + `"rules": [{"type": "sometimes", "reason": "R", "pattern": "x"}]}`,
			[]string{`rules[0] (reason "R"): type: "sometimes" must be "temporary" or "permanent"`}},
		{"no-reason.json", kmsgHead + `"rules": [{"type": "temporary", "pattern": "x"}]}`, []string{"rules[0]: reason: missing"}},
		{"no-pattern.json", kmsgHead + `"rules": [{"type": "temporary", "reason": "R"}]}`, []string{`rules[0] (reason "R"): pattern: missing`}},
		{"bad-lookback.json", `{"plugin": "kmsg", "lookback": "5 minutes"}`, []string{`lookback: "5 minutes" is not a duration`}},
		{"wrong-type.json", `{"plugin": "kmsg", "bufferSize": "10"}`, []string{"bufferSize: must be an integer, not a JSON string"}},
		{"kubelet-condition.json", `{"plugin": "kmsg", "conditions": [{"type": "Ready", "reason": "R"}]}`, []string{`conditions[0].type: "Ready" is a condition type the kubelet owns`}},
		{"twice.json", `{"plugin": "kmsg", "conditions": [{"type": "A"}, {"type": "A"}]}`, []string{`conditions[1].type: condition type "A" is declared twice`}},
		{"filelog-no-timestamp.json", `{"plugin": "filelog", "logPath": "/var/log/x", "pluginConfig": {"message": ".*", "timestampFormat": "x"}}`,
			[]string{"pluginConfig.timestamp: missing"}},
		{"filelog-bad-message.json", `{"plugin": "filelog", "logPath": "/var/log/x", "pluginConfig": {"timestamp": "^.{15}", "message": "(", "timestampFormat": "x"}}`,
			[]string{`pluginConfig.message: invalid regular expression "("`}},
		{"journald-no-source.json", `{"plugin": "journald"}`, []string{"pluginConfig.source: missing"}},
		{"plugin-missing.json", `{"plugin": "custom", "rules": [{"type": "temporary", "reason": "NTPIsDown", "path": "/nonexistent/check_ntp.sh"}]}`,
			[]string{`rules[0] (reason "NTPIsDown"): path: plugin "/nonexistent/check_ntp.sh" cannot be run`, "no such file"}},
		{"plugin-timeout.json", `{"plugin": "custom", "pluginConfig": {"timeout": "5s"}, "rules": [{"type": "temporary", "reason": "R", "path": "/bin/true", "timeout": "10s"}]}`,
			[]string{`rules[0] (reason "R"): timeout: 10s is longer than the global pluginConfig.timeout 5s`}},
		{"plugin-concurrency.json", `{"plugin": "custom", "pluginConfig": {"concurrency": 0}}`, []string{"pluginConfig.concurrency: 0 must be at least 1"}},
		{"plugin-interval.json", `{"plugin": "custom", "pluginConfig": {"invoke_interval": "0s"}}`, []string{`pluginConfig.invoke_interval: "0s" must be a positive duration`}},
		{"resolve-bad.json", `{"plugin": "kmsg", "conditions": [{"type": "A", "nodewarden": {"resolvePattern": "("}}]}`,
			[]string{`conditions[0].nodewarden.resolvePattern: invalid regular expression`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := write(tt.name, tt.text)
			_, err := Load(p, LoadOptions{})
			if err == nil {
				t.Fatal("loaded; want an error")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "npd config "+p+": ") {
				t.Errorf("error does not start with the file: %s", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
		})
	}
	if _, err := Load(filepath.Join(dir, "missing.json"), LoadOptions{}); err == nil || !strings.Contains(err.Error(), "missing.json: cannot open") {
		t.Errorf("missing file: %v", err)
	}
}

// Fields nodewarden does not know are warnings naming the file and the field.
func TestLoadWarnings(t *testing.T) {
	p := fixture(t, "kernel-monitor.json", map[string]any{
		"pluginConfig.foo": "bar",
		"exporter":         "stackdriver",
		"conditions": []any{map[string]any{
			"type": "KernelDeadlock", "reason": "KernelHasNoDeadlock", "message": "m", "taint": "x",
		}},
		"rules": []any{map[string]any{
			"type": "permanent", "condition": "KernelDeadlock", "reason": "DockerHung", "pattern": "x",
			"patternGeneratedMessageSuffix": "!",
		}},
	})
	c, err := Load(p, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"npd config " + p + ": field conditions[0].taint is not supported by nodewarden and is ignored",
		"npd config " + p + ": field exporter is not supported by nodewarden and is ignored",
		"npd config " + p + ": field pluginConfig.foo is not supported by nodewarden and is ignored",
		"npd config " + p + ": field rules[0].patternGeneratedMessageSuffix is not supported by nodewarden and is ignored",
	}
	if diff := cmp.Diff(want, c.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}

	// A log monitor field in a custom plugin config is not silently ignored.
	p = fixture(t, "custom-plugin-monitor.json", map[string]any{"lookback": "5m"})
	c, err = Load(p, LoadOptions{SkipPluginPathCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"npd config " + p + ": field lookback is not supported by nodewarden and is ignored"}, c.Warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

func TestLoadKeysMatchCaseInsensitivelyAsInNPD(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k.json")
	if err := os.WriteFile(p, []byte(`{"Plugin": "kmsg", "LogPath": "/dev/kmsg", "Conditions": [{"Type": "A", "Reason": "B"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Plugin != "kmsg" || c.Conditions[0].Type != "A" || len(c.Warnings) != 0 {
		t.Errorf("got %+v", c)
	}
}
