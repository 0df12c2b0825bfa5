package npd

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nodewarden/nodewarden/test/cluster"
)

func script(t *testing.T, body string) string {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	p := filepath.Join(t.TempDir(), "plugin.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// runPlugin: exit code 0 OK, 1 problem, anything else unknown; stdout
// trimmed and cut to max_output_length is the message; a plugin past its
// timeout is killed, with its children, and is unknown.
func TestRunPlugin(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		timeout   time.Duration
		maxOutput int
		want      pluginResult
	}{
		{"ok", `echo "  ntp is up  "; exit 0`, time.Second, 80, pluginResult{status: pluginOK, message: "ntp is up"}},
		{"problem", `echo ntp is down; echo oops >&2; exit 1`, time.Second, 80, pluginResult{status: pluginProblem, message: "ntp is down", stderr: "oops\n"}},
		{"exit 2", `echo cannot tell; exit 2`, time.Second, 80, pluginResult{status: pluginUnknown, message: "cannot tell"}},
		{"exit 3", `exit 3`, time.Second, 80, pluginResult{status: pluginUnknown}},
		{"10 KB", `head -c 10240 /dev/zero | tr '\0' x; exit 1`, time.Second, 80, pluginResult{status: pluginProblem, message: strings.Repeat("x", 80)}},
		{"10 KB, long max", `head -c 10240 /dev/zero | tr '\0' x; exit 1`, time.Second, 1 << 20, pluginResult{status: pluginProblem, message: strings.Repeat("x", maxPluginOutputBytes)}},
		{"zero max", `echo hi; exit 1`, time.Second, 0, pluginResult{status: pluginProblem, message: ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Rule{Path: script(t, tt.body), Timeout: tt.timeout}
			got := runPlugin(context.Background(), r, tt.maxOutput)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(pluginResult{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	t.Run("timeout", func(t *testing.T) {
		// The child (sleep) holds stdout open; the whole group is killed.
		r := &Rule{Path: script(t, `echo started; sleep 30; echo never`), Timeout: 300 * time.Millisecond}
		start := time.Now()
		got := runPlugin(context.Background(), r, 1000)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v; the plugin was not killed at its timeout", d)
		}
		want := fmt.Sprintf("Timeout when running plugin %q: state - signal: killed. output - \"started\"", r.Path)
		if got.status != pluginUnknown || !got.timedOut || got.message != want {
			t.Errorf("got %+v, want unknown with message %q", got, want)
		}
	})
	t.Run("not executable", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "x.sh")
		if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		got := runPlugin(context.Background(), &Rule{Path: p, Timeout: time.Second}, 200)
		if got.status != pluginUnknown || !strings.Contains(got.message, "Error in starting plugin") {
			t.Errorf("got %+v", got)
		}
	})
}

func TestCut(t *testing.T) {
	for s, want := range map[string]string{"abcdef": "abcd", "ab": "ab", "abcé": "abc", "aé": "aé", "日本": "日"} {
		if got := cut(s, 4); got != want {
			t.Errorf("cut(%q, 4) = %q, want %q", s, got, want)
		}
	}
}

// controlled is a plugin whose exit code and output the test sets.
type controlled struct {
	t    *testing.T
	dir  string
	path string
}

func newControlled(t *testing.T) *controlled {
	c := &controlled{t: t, dir: t.TempDir()}
	c.path = script(t, `{ read -r code; cat; } < "$1/state"; exit "$code"`)
	c.set(0, "")
	return c
}

func (c *controlled) set(code int, out string) {
	c.t.Helper()
	// One file, replaced atomically: a run sees the old or the new state.
	tmp := filepath.Join(c.dir, "state.tmp")
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("%d\n%s", code, out)), 0o644); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, "state")); err != nil {
		c.t.Fatal(err)
	}
}

func pluginConfig(t *testing.T, pc map[string]any, rules ...map[string]any) string {
	t.Helper()
	var rs []any
	for _, r := range rules {
		rs = append(rs, r)
	}
	base := map[string]any{"invoke_interval": "50ms", "timeout": "2s", "max_output_length": 80, "concurrency": 3}
	for k, v := range pc {
		base[k] = v
	}
	return fixture(t, "custom-plugin-monitor.json", map[string]any{"pluginConfig": base, "rules": rs})
}

// A permanent rule drives its condition through NPD's transitions: problem
// (exit 1) True with the rule's reason and the output; unknown (exit 2) with
// the default reason and the output; OK back to the default. Each change is
// an Event.
func TestPluginConditionLifecycle(t *testing.T) {
	p := newControlled(t)
	cfg := pluginConfig(t, nil, map[string]any{
		"type": "permanent", "condition": "NTPProblem", "reason": "NTPIsDown", "path": p.path, "args": []string{p.dir},
	})
	sink := newFakeSink()
	reg := prometheus.NewRegistry()
	opts := testOptions(t)
	opts.Registerer = reg
	runSource(t, newTestSource(t, cfg, opts), sink)
	def := cond{"False", "NTPIsUp", "ntp service is up"}
	waitState(t, sink, map[string]cond{"NTPProblem": def}, nil)

	p.set(1, "ntp is down\n")
	down := cond{"True", "NTPIsDown", "ntp is down"}
	events := []ev{changeEvent("NTPProblem", "True", "NTPIsDown", "ntp is down")}
	waitState(t, sink, map[string]cond{"NTPProblem": down}, events)
	if got := metricValue(t, mustMetrics(t, reg).ProblemGauge.WithLabelValues("NTPProblem", "NTPIsDown")); got != 1 {
		t.Errorf("problem_gauge{NTPProblem,NTPIsDown} = %v, want 1", got)
	}

	// Without enable_message_change_based_condition_update, a new message
	// of the same problem changes nothing.
	p.set(1, "ntp is still down")
	time.Sleep(200 * time.Millisecond)
	waitState(t, sink, map[string]cond{"NTPProblem": down}, events)

	p.set(2, "cannot tell")
	events = append(events, changeEvent("NTPProblem", "Unknown", "NTPIsUp", "cannot tell"))
	waitState(t, sink, map[string]cond{"NTPProblem": {"Unknown", "NTPIsUp", "cannot tell"}}, events)

	p.set(0, "fine")
	events = append(events, changeEvent("NTPProblem", "False", "NTPIsUp", "ntp service is up"))
	waitState(t, sink, map[string]cond{"NTPProblem": def}, events)
	m := mustMetrics(t, reg)
	if got := metricValue(t, m.ProblemGauge.WithLabelValues("NTPProblem", "NTPIsDown")); got != 0 {
		t.Errorf("problem_gauge{NTPProblem,NTPIsDown} = %v, want 0", got)
	}
	if got := metricValue(t, m.ProblemCounter.WithLabelValues("NTPIsDown")); got != 1 {
		t.Errorf("problem_counter{NTPIsDown} = %v, want 1", got)
	}
}

func mustMetrics(t *testing.T, reg prometheus.Registerer) *Metrics {
	t.Helper()
	m, err := MetricsFor(reg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPluginMessageChangeBasedUpdate(t *testing.T) {
	p := newControlled(t)
	p.set(1, "offset 2s")
	cfg := pluginConfig(t, map[string]any{"enable_message_change_based_condition_update": true}, map[string]any{
		"type": "permanent", "condition": "NTPProblem", "reason": "NTPIsDown", "path": p.path, "args": []string{p.dir},
	})
	sink := newFakeSink()
	runSource(t, newTestSource(t, cfg, testOptions(t)), sink)
	waitState(t, sink, map[string]cond{"NTPProblem": {"True", "NTPIsDown", "offset 2s"}},
		[]ev{changeEvent("NTPProblem", "True", "NTPIsDown", "offset 2s")})
	p.set(1, "offset 9s")
	waitState(t, sink, map[string]cond{"NTPProblem": {"True", "NTPIsDown", "offset 9s"}},
		[]ev{changeEvent("NTPProblem", "True", "NTPIsDown", "offset 2s"), changeEvent("NTPProblem", "True", "NTPIsDown", "offset 9s")})
}

// skip_initial_status: the defaults are not declared at start; a condition
// is published with its first result.
func TestPluginSkipInitialStatus(t *testing.T) {
	p := newControlled(t)
	gate := filepath.Join(p.dir, "gate")
	cfg := pluginConfig(t, map[string]any{"skip_initial_status": true}, map[string]any{
		"type": "permanent", "condition": "NTPProblem", "reason": "NTPIsDown", "path": script(t, `test -e "$1/gate" || exit 2; exit 0`), "args": []string{p.dir},
	})
	sink := newFakeSink()
	runSource(t, newTestSource(t, cfg, testOptions(t)), sink)
	// Unknown first (no gate): published at once, as the first result.
	waitState(t, sink, map[string]cond{"NTPProblem": {"Unknown", "NTPIsUp", ""}}, []ev{changeEvent("NTPProblem", "Unknown", "NTPIsUp", "")})
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitState(t, sink, map[string]cond{"NTPProblem": {"False", "NTPIsUp", "ntp service is up"}},
		[]ev{changeEvent("NTPProblem", "Unknown", "NTPIsUp", ""), changeEvent("NTPProblem", "False", "NTPIsUp", "ntp service is up")})

	// And nothing at all before the first result.
	slow := pluginConfig(t, map[string]any{"skip_initial_status": true}, map[string]any{
		"type": "permanent", "condition": "NTPProblem", "reason": "NTPIsDown", "path": script(t, `sleep 1; exit 0`),
	})
	sink = newFakeSink()
	runSource(t, newTestSource(t, slow, testOptions(t)), sink)
	time.Sleep(300 * time.Millisecond)
	if got := sink.condMap(); len(got) != 0 {
		t.Errorf("published before the first result: %v", got)
	}
}

// A temporary rule: an Event while the plugin does not say OK, one per
// episode of the problem; problem_counter counts every failing run, as NPD.
func TestPluginTemporaryRule(t *testing.T) {
	p := newControlled(t)
	p.set(1, "ntp is down")
	cfg := pluginConfig(t, nil, map[string]any{"type": "temporary", "reason": "NTPIsDown", "path": p.path, "args": []string{p.dir}})
	sink := newFakeSink()
	reg := prometheus.NewRegistry()
	opts := testOptions(t)
	opts.Registerer = reg
	runSource(t, newTestSource(t, cfg, opts), sink)
	def := map[string]cond{"NTPProblem": {"False", "NTPIsUp", "ntp service is up"}}
	waitState(t, sink, def, []ev{{warning, "NTPIsDown", "ntp is down"}})
	counter := mustMetrics(t, reg).ProblemCounter.WithLabelValues("NTPIsDown")
	cluster.Eventually(t, 5*time.Second, func() error {
		if got := metricValue(t, counter); got < 3 {
			return fmt.Errorf("problem_counter{NTPIsDown} = %v, want every failing run counted", got)
		}
		return nil
	})
	if got := len(sink.eventList()); got != 1 {
		t.Errorf("%d Events for one episode, want 1", got)
	}
	p.set(0, "")
	time.Sleep(200 * time.Millisecond)
	p.set(1, "ntp is down")
	waitState(t, sink, def, []ev{{warning, "NTPIsDown", "ntp is down"}, {warning, "NTPIsDown", "ntp is down"}})
}

// At most `concurrency` plugins of a config run at once, and the bound is
// reached.
func TestPluginConcurrencyBound(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	body := fmt.Sprintf(`echo start >> %q; sleep 0.5; echo end >> %q; exit 0`, log, log)
	var rules []map[string]any
	for i := range 5 {
		rules = append(rules, map[string]any{"type": "temporary", "reason": fmt.Sprintf("R%d", i), "path": script(t, body)})
	}
	cfg := pluginConfig(t, map[string]any{"concurrency": 2, "invoke_interval": "1h"}, rules...)
	runSource(t, newTestSource(t, cfg, testOptions(t)), newFakeSink())
	var lines []string
	cluster.Eventually(t, 10*time.Second, func() error {
		f, err := os.Open(log)
		if err != nil {
			return err
		}
		defer f.Close()
		lines = nil
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		if n := strings.Count(strings.Join(lines, " "), "end"); n < 5 {
			return fmt.Errorf("%d of 5 runs done", n)
		}
		return nil
	})
	running, most := 0, 0
	for _, l := range lines {
		if l == "start" {
			running++
		} else {
			running--
		}
		most = max(most, running)
	}
	if most != 2 {
		t.Errorf("at most %d plugins ran at once, want 2 (concurrency): %q", most, lines)
	}
}

// The shipped custom-plugin-monitor.json, with the path of the test's own
// check_ntp.sh: conditions at start, then NTPIsDown (temporary Event and
// permanent condition) when the check fails.
func TestCustomPluginMonitorFixture(t *testing.T) {
	p := newControlled(t)
	p.set(1, "NTP is down")
	cfg := fixture(t, "custom-plugin-monitor.json", map[string]any{
		"pluginConfig.invoke_interval": "100ms",
		"rules": []any{
			map[string]any{"type": "temporary", "reason": "NTPIsDown", "path": p.path, "args": []string{p.dir}, "timeout": "3s"},
			map[string]any{"type": "permanent", "condition": "NTPProblem", "reason": "NTPIsDown", "path": p.path, "args": []string{p.dir}, "timeout": "3s"},
		},
	})
	sink := newFakeSink()
	runSource(t, newTestSource(t, cfg, testOptions(t)), sink)
	waitState(t, sink, map[string]cond{"NTPProblem": {"True", "NTPIsDown", "NTP is down"}}, []ev{
		{warning, "NTPIsDown", "NTP is down"},
		changeEvent("NTPProblem", "True", "NTPIsDown", "NTP is down"),
	})
}

// metricValue is the value of a gauge or counter.
func metricValue(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}
