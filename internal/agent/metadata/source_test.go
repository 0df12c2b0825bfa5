package metadata

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/agent/hostevent"
)

func writeDMI(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The values are what each cloud's VMs show in /sys/class/dmi/id.
func TestDetect(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  v1alpha1.MetadataProvider
	}{
		{"AWS Nitro", map[string]string{"sys_vendor": "Amazon EC2", "product_name": "m5.large"}, v1alpha1.MetadataProviderAWS},
		{"AWS Xen", map[string]string{"sys_vendor": "Xen", "product_name": "HVM domU", "bios_version": "4.11.amazon"}, v1alpha1.MetadataProviderAWS},
		{"plain Xen", map[string]string{"sys_vendor": "Xen", "product_name": "HVM domU", "bios_version": "4.11"}, ""},
		{"Azure", map[string]string{"sys_vendor": "Microsoft Corporation", "product_name": "Virtual Machine", "chassis_asset_tag": azureAssetTag}, v1alpha1.MetadataProviderAzure},
		{"Azure, asset tag unreadable", map[string]string{"sys_vendor": "Microsoft Corporation", "product_name": "Virtual Machine"}, v1alpha1.MetadataProviderAzure},
		{"Hyper-V on premises", map[string]string{"sys_vendor": "Microsoft Corporation", "product_name": "Virtual Machine", "chassis_asset_tag": "0000-0000"}, ""},
		{"GCP", map[string]string{"sys_vendor": "Google", "product_name": "Google Compute Engine"}, v1alpha1.MetadataProviderGCP},
		{"Alibaba", map[string]string{"sys_vendor": "Alibaba Cloud", "product_name": "Alibaba Cloud ECS"}, v1alpha1.MetadataProviderAlibaba},
		{"bare metal", map[string]string{"sys_vendor": "Dell Inc.", "product_name": "PowerEdge R640"}, ""},
		{"no DMI", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, seen := Detect(writeDMI(t, tt.files))
			if got != tt.want {
				t.Errorf("Detect = %q (saw %s), want %q", got, seen, tt.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	t.Run("none", func(t *testing.T) {
		cfg := &v1alpha1.AgentConfig{}
		cfg.Default()
		if s, err := New(cfg, Options{}); s != nil || err != nil {
			t.Errorf("provider none: %v, %v; want no source", s, err)
		}
	})
	t.Run("auto on EC2", func(t *testing.T) {
		cfg := testConfig(v1alpha1.MetadataProviderAuto, "http://127.0.0.1:1", nil)
		cfg.Metadata.DMIPath = writeDMI(t, map[string]string{"sys_vendor": "Amazon EC2", "product_name": "t3.small"})
		s, err := New(cfg, Options{BootTime: bootTime, Log: testr.New(t)})
		if err != nil {
			t.Fatal(err)
		}
		if s.Provider() != v1alpha1.MetadataProviderAWS || s.Name() != "cloud-metadata aws http://127.0.0.1:1" {
			t.Errorf("provider %q, name %q", s.Provider(), s.Name())
		}
		if diff := cmp.Diff([]string{"HostEventDelete", "HostEventRebootAfter48", "HostEventStop"}, s.ConditionTypes()); diff != "" {
			t.Errorf("condition types (-want +got):\n%s", diff)
		}
	})
	t.Run("auto elsewhere", func(t *testing.T) {
		cfg := testConfig(v1alpha1.MetadataProviderAuto, "http://127.0.0.1:1", nil)
		cfg.Metadata.DMIPath = writeDMI(t, map[string]string{"sys_vendor": "QEMU", "product_name": "Standard PC"})
		s, err := New(cfg, Options{BootTime: bootTime, Log: testr.New(t)})
		if err != nil {
			t.Fatal(err)
		}
		if s.Provider() != "" || len(s.ConditionTypes()) != 0 {
			t.Errorf("provider %q, conditions %v; want none", s.Provider(), s.ConditionTypes())
		}
		out := newSink()
		done := make(chan struct{})
		go func() { defer close(done); s.Run(context.Background(), out) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Run of a source with no cloud did not return")
		}
		if out.mark() != 0 {
			t.Errorf("published %v", out.since(0))
		}
	})
	t.Run("own mapping", func(t *testing.T) {
		cfg := testConfig(v1alpha1.MetadataProviderAWS, "http://127.0.0.1:1", func(m *v1alpha1.MetadataConfig) {
			m.Conditions = []v1alpha1.HostEventCondition{
				{Type: "SpotInterruption", EventTypes: []string{"AWS.SpotTerminate", "AWS.SpotStop", "Azure.Preempt"}},
				{Type: "AzureOnly", EventTypes: []string{"Azure.Freeze"}},
			}
		})
		s, err := New(cfg, Options{BootTime: bootTime, Log: testr.New(t)})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"SpotInterruption"}, s.ConditionTypes()); diff != "" {
			t.Errorf("condition types (-want +got):\n%s", diff)
		}
	})
	t.Run("metrics registered once", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		cfg := testConfig(v1alpha1.MetadataProviderAWS, "http://127.0.0.1:1", nil)
		for range 3 { // the agent builds its sources on start and on every reload
			if _, err := New(cfg, Options{Registerer: reg, BootTime: bootTime}); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// Without any answer, the conditions are declared after DeclareAfter, not
// before: right after a restart a True condition is not flipped False.
func TestUnreachableEndpoint(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	url := f.URL
	f.srv.Close() // nothing listens there any more
	s, out := start(t, testConfig(v1alpha1.MetadataProviderAWS, url, nil), Options{DeclareAfter: 500 * time.Millisecond})
	time.Sleep(200 * time.Millisecond)
	if out.mark() != 0 {
		t.Fatalf("declared before every endpoint answered or DeclareAfter passed: %v", out.since(0))
	}
	out.wait(t, "HostEventRebootAfter48", corev1.ConditionFalse, "NoHostEvent", "")
	if n := s.errorCount("events/maintenance/scheduled", "token"); n < 1 {
		t.Errorf("unreachable endpoint counted %v times", n)
	}
}

func TestBootTimeClearsEventsDueBeforeIt(t *testing.T) {
	t.Parallel()
	f, _ := newAWS(t)
	f.set(awsScheduledPath, route{body: fixture(t, "aws/scheduled.json")})
	// The node booted after the reboot was due: it has happened.
	_, out := start(t, testConfig(v1alpha1.MetadataProviderAWS, f.URL, nil), Options{BootTime: time.Date(2019, 1, 21, 9, 10, 0, 0, time.UTC)})
	out.wait(t, "HostEventRebootAfter48", corev1.ConditionFalse, "AWSSystemRebootDoneAfterBoot", "")
}

func TestStateApply(t *testing.T) {
	m, err := hostevent.NewMapping(map[string][]string{"HostEventStop": {"AWS.InstanceStop"}})
	if err != nil {
		t.Fatal(err)
	}
	st := newState(m)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	ev := func(status hostevent.Status, at time.Time) feedEvent {
		return feedEvent{Event: hostevent.Event{Type: "AWS.InstanceStop", Status: status, ActionTime: at}, Key: "e1"}
	}
	statuses := func(fs []feedEvent) []string {
		var out []string
		for _, f := range fs {
			out = append(out, string(f.Status)+"@"+f.ActionTime.Format(time.RFC3339))
		}
		return out
	}
	due := t0.Add(time.Hour)
	if got := statuses(st.apply("x", []feedEvent{ev(hostevent.StatusScheduled, due)}, t0)); !cmp.Equal(got, []string{"Scheduled@2024-01-01T01:00:00Z"}) {
		t.Errorf("first read: %v", got)
	}
	// The same read again: nothing new, and the message does not move.
	msg := st.tracker.Conditions(time.Time{})[0].Message
	if got := st.apply("x", []feedEvent{ev(hostevent.StatusScheduled, due)}, t0.Add(time.Minute)); len(got) != 0 {
		t.Errorf("repeat: %v", statuses(got))
	}
	if again := st.tracker.Conditions(time.Time{})[0].Message; again != msg {
		t.Errorf("message moved on a repeat: %q -> %q", msg, again)
	}
	// Another endpoint's read does not touch this one's events.
	if got := st.apply("y", nil, t0.Add(2*time.Minute)); len(got) != 0 {
		t.Errorf("other endpoint: %v", statuses(got))
	}
	// Rescheduled under the same key.
	later := due.Add(time.Hour)
	got := statuses(st.apply("x", []feedEvent{ev(hostevent.StatusScheduled, later)}, t0.Add(3*time.Minute)))
	if want := []string{"Scheduled@2024-01-01T02:00:00Z", "Canceled@2024-01-01T01:00:00Z"}; !cmp.Equal(got, want) {
		t.Errorf("rescheduled: %v, want %v", got, want)
	}
	// Gone after its time: executed.
	got = statuses(st.apply("x", nil, later.Add(time.Minute)))
	if want := []string{"Executed@2024-01-01T02:00:00Z"}; !cmp.Equal(got, want) {
		t.Errorf("gone: %v, want %v", got, want)
	}
	c := st.tracker.Conditions(time.Time{})[0]
	if c.Status != corev1.ConditionFalse || c.Reason != "AWSInstanceStopExecuted" {
		t.Errorf("condition %+v", c)
	}
}

func TestCamel(t *testing.T) {
	for in, want := range map[string]string{
		"system-reboot":                 "SystemReboot",
		"instance-retirement":           "InstanceRetirement",
		"MIGRATE_ON_HOST_MAINTENANCE":   "MigrateOnHostMaintenance",
		"TERMINATE_ON_HOST_MAINTENANCE": "TerminateOnHostMaintenance",
		"Reboot":                        "Reboot",
		"spot-terminate":                "SpotTerminate",
	} {
		if got := camel(in); got != want {
			t.Errorf("camel(%q) = %q, want %q", in, got, want)
		}
	}
}
