package npd

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

func TestNewSources(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := testOptions(t)
	opts.Registerer = reg
	paths := []string{"testdata/kernel-monitor.json", "testdata/host_event.json", "testdata/systemd-monitor.json"}
	// The agent builds its sources again on every reload: the metrics are
	// registered once.
	for range 2 {
		srcs, err := NewSources(paths, opts)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		var types [][]string
		for _, s := range srcs {
			names = append(names, s.Name())
			types = append(types, s.ConditionTypes())
		}
		if diff := cmp.Diff([]string{"npd testdata/kernel-monitor.json", "npd testdata/host_event.json", "npd testdata/systemd-monitor.json"}, names); diff != "" {
			t.Errorf("names (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([][]string{{"KernelDeadlock", "XfsShutdown", "CperHardwareErrorFatal"}, {"HostEventRebootAfter48"}, {}}, types); diff != "" {
			t.Errorf("condition types (-want +got):\n%s", diff)
		}
	}
	if srcs, err := NewSources(nil, opts); err != nil || srcs != nil {
		t.Errorf("no paths: %v, %v", srcs, err)
	}
	_, err := NewSources([]string{"testdata/host_event.json", "testdata/missing.json"}, opts)
	if err == nil || !strings.Contains(err.Error(), "npd config testdata/missing.json: cannot open") {
		t.Errorf("missing file: %v", err)
	}
	// custom-plugin-monitor.json names ./config/plugin/check_ntp.sh, which
	// must exist on the node, as NPD requires.
	_, err = NewSources([]string{"testdata/custom-plugin-monitor.json"}, opts)
	if err == nil || !strings.Contains(err.Error(), `rules[0] (reason "NTPIsDown"): path: plugin "./config/plugin/check_ntp.sh" cannot be run`) {
		t.Errorf("missing plugin: %v", err)
	}
}

func TestStartTime(t *testing.T) {
	now := time.Date(2024, 1, 1, 12, 0, 0, 0, time.UTC)
	boot := now.Add(-10 * time.Minute)
	for _, tt := range []struct {
		lookback, delay time.Duration
		boot            time.Time
		want            time.Time
	}{
		{0, 0, boot, now}, // no lookback: only new entries
		{5 * time.Minute, 0, boot, now.Add(-5 * time.Minute)},         // within lookback
		{time.Hour, 0, boot, boot},                                    // not before boot
		{time.Hour, 2 * time.Minute, boot, boot.Add(2 * time.Minute)}, // nor within delay of boot
		{time.Hour, 0, time.Time{}, now.Add(-time.Hour)},              // boot unknown
	} {
		if got := startTime(now, tt.boot, tt.lookback, tt.delay); !got.Equal(tt.want) {
			t.Errorf("startTime(lookback %v, delay %v) = %v, want %v", tt.lookback, tt.delay, got, tt.want)
		}
	}
}
