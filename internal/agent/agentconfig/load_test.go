package agentconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

const header = "apiVersion: nodewarden.io/v1alpha1\nkind: AgentConfig\n"

// writeConfig writes content to a new file and returns its path.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "agent.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func duration(d time.Duration) metav1.Duration { return metav1.Duration{Duration: d} }

// The defaults written out by hand from SPEC §2 and §2.1, so that a change
// to a default is a deliberate change to this test too.
func specDefaults() *v1alpha1.AgentConfig {
	return &v1alpha1.AgentConfig{
		TypeMeta: metav1.TypeMeta{APIVersion: "nodewarden.io/v1alpha1", Kind: "AgentConfig"},
		HostEventLog: v1alpha1.HostEventLogConfig{
			Path:           ptr.To("/var/log/host_event.log"),
			IncludeRotated: ptr.To(true),
			MaxLineBytes:   65536,
			PollInterval:   duration(time.Second),
			Conditions: []v1alpha1.HostEventCondition{
				{Type: "HostEventRebootAfter48", EventTypes: []string{"SystemMaintenance.Reboot", "SystemMaintenance.RebootAndIsolateErrorDisk", "SystemMaintenance.RebootAndReInitErrorDisk"}},
				{Type: "HostEventRedeploy", EventTypes: []string{"SystemMaintenance.Redeploy", "SystemFailure.Redeploy"}},
				{Type: "HostEventStop", EventTypes: []string{"SystemMaintenance.Stop", "SystemFailure.Stop", "InstanceExpiration.Stop", "AccountUnbalanced.Stop"}},
				{Type: "HostEventDelete", EventTypes: []string{"InstanceExpiration.Delete", "AccountUnbalanced.Delete", "SystemFailure.Delete"}},
			},
		},
		Metadata:           specMetadataDefaults(),
		LeaseRenewInterval: duration(60 * time.Second),
		LeaseDuration:      duration(240 * time.Second),
		ProcStatPath:       "/proc/stat",
		HealthChecks:       specHealthCheckDefaults(),
	}
}

// The healthChecks section's defaults, written out by hand from
// docs/agent-config.md: kernel, networking and storage on, the container
// runtime off, the EKS profile, /dev/kmsg if it can be opened.
func specHealthCheckDefaults() v1alpha1.HealthChecksConfig {
	return v1alpha1.HealthChecksConfig{
		Profiles:      []v1alpha1.HealthCheckProfile{"EKS"},
		Interval:      duration(30 * time.Second),
		Confirmations: 2,
		ProcPath:      "/proc",
		SysPath:       "/sys",
		KernelLog: v1alpha1.KernelLogConfig{
			Path:   ptr.To("auto"),
			Window: duration(time.Hour),
		},
		Kernel:     v1alpha1.CheckConfig{Enabled: ptr.To(true)},
		Networking: v1alpha1.CheckConfig{Enabled: ptr.To(true)},
		Storage: v1alpha1.StorageCheckConfig{
			Enabled: ptr.To(true),
			Paths:   []string{"/var/lib/kubelet", "/var/log"},
		},
		ContainerRuntime: v1alpha1.ContainerRuntimeCheckConfig{
			Enabled:                  ptr.To(false),
			Endpoint:                 "unix:///run/containerd/containerd.sock",
			Timeout:                  duration(5 * time.Second),
			PodStuckTerminatingAfter: duration(10 * time.Minute),
			JournalPath:              "",
			RestartThreshold:         5,
			RestartWindow:            duration(20 * time.Minute),
		},
	}
}

// The metadata section's defaults, written out by hand from
// docs/cloud-metadata.md: off, and each cloud's link-local endpoint.
func specMetadataDefaults() v1alpha1.MetadataConfig {
	endpoint := func(url string, poll time.Duration) v1alpha1.MetadataEndpointConfig {
		return v1alpha1.MetadataEndpointConfig{Endpoint: url, PollInterval: duration(poll), Timeout: duration(2 * time.Second)}
	}
	return v1alpha1.MetadataConfig{
		Provider: "none",
		DMIPath:  "/sys/class/dmi/id",
		Conditions: []v1alpha1.HostEventCondition{
			{Type: "HostEventRebootAfter48", EventTypes: []string{"AWS.SystemReboot", "AWS.InstanceReboot", "AWS.SystemMaintenance", "Azure.Reboot",
				"SystemMaintenance.Reboot", "SystemMaintenance.RebootAndIsolateErrorDisk", "SystemMaintenance.RebootAndReInitErrorDisk"}},
			{Type: "HostEventRedeploy", EventTypes: []string{"Azure.Redeploy", "GCP.TerminateOnHostMaintenance", "GCP.UpcomingTerminateOnHostMaintenance",
				"SystemMaintenance.Redeploy", "SystemFailure.Redeploy"}},
			{Type: "HostEventStop", EventTypes: []string{"AWS.InstanceRetirement", "AWS.InstanceStop", "AWS.SpotStop", "AWS.SpotHibernate",
				"SystemMaintenance.Stop", "SystemFailure.Stop", "InstanceExpiration.Stop", "AccountUnbalanced.Stop"}},
			{Type: "HostEventDelete", EventTypes: []string{"AWS.SpotTerminate", "Azure.Preempt", "Azure.Terminate", "GCP.Preempted", "Alibaba.SpotTermination",
				"InstanceExpiration.Delete", "AccountUnbalanced.Delete", "SystemFailure.Delete"}},
			{Type: "HostEventFreeze", EventTypes: []string{"Azure.Freeze", "GCP.MigrateOnHostMaintenance", "GCP.UpcomingMigrateOnHostMaintenance"}},
			{Type: "HostEventRebalanceRecommendation", EventTypes: []string{"AWS.RebalanceRecommendation"}},
		},
		Alibaba: v1alpha1.AlibabaMetadataConfig{
			MetadataEndpointConfig: endpoint("http://100.100.100.200", 30*time.Second),
			SpotPollInterval:       duration(5 * time.Second),
		},
		AWS: v1alpha1.AWSMetadataConfig{
			MetadataEndpointConfig: endpoint("http://169.254.169.254", 60*time.Second),
			SpotPollInterval:       duration(5 * time.Second),
		},
		Azure: v1alpha1.AzureMetadataConfig{MetadataEndpointConfig: endpoint("http://169.254.169.254", 5*time.Second)},
		GCP:   v1alpha1.GCPMetadataConfig{MetadataEndpointConfig: endpoint("http://169.254.169.254", 60*time.Second)},
	}
}

// A file and Default() may differ in nil versus empty lists only.
var equateEmpty = cmpopts.EquateEmpty()

func TestNoFileIsSpecDefaults(t *testing.T) {
	got, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(specDefaults(), got); diff != "" {
		t.Errorf("Load(\"\") (-want +got):\n%s", diff)
	}
	if errs := got.Validate(); len(errs) > 0 {
		t.Errorf("defaults do not validate: %v", errs)
	}
}

// The example is the documented one: it spells out every default, so it must
// load to exactly Default(), survive a round trip, and appear in the docs.
func TestExampleFile(t *testing.T) {
	const example = "testdata/agent-config.yaml"
	got, err := Load(example)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Default(), got, equateEmpty); diff != "" {
		t.Errorf("example differs from the defaults (-want +got):\n%s", diff)
	}

	out, err := yaml.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Load(writeConfig(t, string(out)))
	if err != nil {
		t.Fatalf("reloading the marshalled example: %v\n%s", err, out)
	}
	if diff := cmp.Diff(got, again, equateEmpty); diff != "" {
		t.Errorf("round trip (-first +second):\n%s", diff)
	}

	text, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../../docs/agent-config.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), string(text)) {
		t.Errorf("docs/agent-config.md does not contain %s verbatim", example)
	}
}

func TestLoadEveryField(t *testing.T) {
	got, err := Load(writeConfig(t, header+`
hostEventLog:
  path: /host/var/log/host_event.log
  includeRotated: false
  maxLineBytes: 4096
  pollInterval: 250ms
  conditions:
    - type: HostEventReboot
      eventTypes: [SystemMaintenance.Reboot, SystemFailure.Reboot]
metadata:
  provider: aws
  dmiPath: /host/sys/class/dmi/id
  conditions:
    - type: SpotInterruption
      eventTypes: [AWS.SpotTerminate, AWS.SpotStop]
  alibaba: {endpoint: "http://127.0.0.1:8001", pollInterval: 40s, timeout: 1s, spotPollInterval: 3s}
  aws: {endpoint: "http://127.0.0.1:8002/", pollInterval: 2m, timeout: 3s, spotPollInterval: 2s, rebalance: true}
  azure: {endpoint: "https://127.0.0.1:8003", pollInterval: 10s, timeout: 500ms, acknowledge: true}
  gcp: {endpoint: "http://metadata.google.internal", pollInterval: 5m, timeout: 4s}
leaseRenewInterval: 20s
leaseDuration: 45s
procStatPath: /host/proc/stat
npdConfigs: [/etc/npd/kernel-monitor.json, /etc/npd/host_event.json]
healthChecks:
  profiles: [AKS, EKS]
  interval: 1m
  confirmations: 3
  procPath: /host/proc
  sysPath: /host/sys
  kernelLog: {path: /host/dev/kmsg, window: 2h}
  kernel: {enabled: false}
  networking: {enabled: false}
  storage: {enabled: false, paths: [/host/var/lib/containerd]}
  containerRuntime:
    enabled: true
    endpoint: unix:///run/crio/crio.sock
    timeout: 10s
    podStuckTerminatingAfter: 15m
    journalPath: /host/var/log/journal
    restartThreshold: 3
    restartWindow: 1h
`))
	if err != nil {
		t.Fatal(err)
	}
	want := &v1alpha1.AgentConfig{
		TypeMeta: metav1.TypeMeta{APIVersion: "nodewarden.io/v1alpha1", Kind: "AgentConfig"},
		HostEventLog: v1alpha1.HostEventLogConfig{
			Path:           ptr.To("/host/var/log/host_event.log"),
			IncludeRotated: ptr.To(false),
			MaxLineBytes:   4096,
			PollInterval:   duration(250 * time.Millisecond),
			Conditions: []v1alpha1.HostEventCondition{
				{Type: "HostEventReboot", EventTypes: []string{"SystemMaintenance.Reboot", "SystemFailure.Reboot"}},
			},
		},
		Metadata: v1alpha1.MetadataConfig{
			Provider: "aws",
			DMIPath:  "/host/sys/class/dmi/id",
			Conditions: []v1alpha1.HostEventCondition{
				{Type: "SpotInterruption", EventTypes: []string{"AWS.SpotTerminate", "AWS.SpotStop"}},
			},
			Alibaba: v1alpha1.AlibabaMetadataConfig{
				MetadataEndpointConfig: v1alpha1.MetadataEndpointConfig{Endpoint: "http://127.0.0.1:8001", PollInterval: duration(40 * time.Second), Timeout: duration(time.Second)},
				SpotPollInterval:       duration(3 * time.Second),
			},
			AWS: v1alpha1.AWSMetadataConfig{
				MetadataEndpointConfig: v1alpha1.MetadataEndpointConfig{Endpoint: "http://127.0.0.1:8002/", PollInterval: duration(2 * time.Minute), Timeout: duration(3 * time.Second)},
				SpotPollInterval:       duration(2 * time.Second),
				Rebalance:              true,
			},
			Azure: v1alpha1.AzureMetadataConfig{
				MetadataEndpointConfig: v1alpha1.MetadataEndpointConfig{Endpoint: "https://127.0.0.1:8003", PollInterval: duration(10 * time.Second), Timeout: duration(500 * time.Millisecond)},
				Acknowledge:            true,
			},
			GCP: v1alpha1.GCPMetadataConfig{
				MetadataEndpointConfig: v1alpha1.MetadataEndpointConfig{Endpoint: "http://metadata.google.internal", PollInterval: duration(5 * time.Minute), Timeout: duration(4 * time.Second)},
			},
		},
		LeaseRenewInterval: duration(20 * time.Second),
		LeaseDuration:      duration(45 * time.Second),
		ProcStatPath:       "/host/proc/stat",
		NPDConfigs:         []string{"/etc/npd/kernel-monitor.json", "/etc/npd/host_event.json"},
		HealthChecks: v1alpha1.HealthChecksConfig{
			Profiles:      []v1alpha1.HealthCheckProfile{"AKS", "EKS"},
			Interval:      duration(time.Minute),
			Confirmations: 3,
			ProcPath:      "/host/proc",
			SysPath:       "/host/sys",
			KernelLog:     v1alpha1.KernelLogConfig{Path: ptr.To("/host/dev/kmsg"), Window: duration(2 * time.Hour)},
			Kernel:        v1alpha1.CheckConfig{Enabled: ptr.To(false)},
			Networking:    v1alpha1.CheckConfig{Enabled: ptr.To(false)},
			Storage:       v1alpha1.StorageCheckConfig{Enabled: ptr.To(false), Paths: []string{"/host/var/lib/containerd"}},
			ContainerRuntime: v1alpha1.ContainerRuntimeCheckConfig{
				Enabled:                  ptr.To(true),
				Endpoint:                 "unix:///run/crio/crio.sock",
				Timeout:                  duration(10 * time.Second),
				PodStuckTerminatingAfter: duration(15 * time.Minute),
				JournalPath:              "/host/var/log/journal",
				RestartThreshold:         3,
				RestartWindow:            duration(time.Hour),
			},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestLeaseDurationFollowsRenewInterval(t *testing.T) {
	got, err := Load(writeConfig(t, header+"leaseRenewInterval: 15s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := duration(60 * time.Second); got.LeaseDuration != want {
		t.Errorf("leaseDuration = %v, want %v (4 × leaseRenewInterval)", got.LeaseDuration, want)
	}
}

// The documented way to read maintenance from the cloud instead of the log.
func TestMetadataInsteadOfHostEventLog(t *testing.T) {
	got, err := Load(writeConfig(t, header+"hostEventLog:\n  path: \"\"\nmetadata:\n  provider: auto\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := specDefaults()
	want.HostEventLog.Path = ptr.To("")
	want.Metadata.Provider = "auto"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Both on, with condition types of their own.
	if _, err := Load(writeConfig(t, header+"metadata:\n  provider: alibaba\n  conditions:\n  - {type: SpotInterruption, eventTypes: [Alibaba.SpotTermination]}\n")); err != nil {
		t.Errorf("log and metadata on disjoint conditions: %v", err)
	}
}

// kernelLog.path: unset is "auto", "" is no kernel log; both are kept apart
// from each other and from a path.
func TestKernelLogPath(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{body: "healthChecks: {}\n", want: "auto"},
		{body: "healthChecks:\n  kernelLog: {window: 2h}\n", want: "auto"},
		{body: "healthChecks:\n  kernelLog: {path: auto}\n", want: "auto"},
		{body: "healthChecks:\n  kernelLog: {path: \"\"}\n", want: ""},
		{body: "healthChecks:\n  kernelLog: {path: /dev/kmsg}\n", want: "/dev/kmsg"},
	} {
		got, err := Load(writeConfig(t, header+tt.body))
		if err != nil {
			t.Errorf("%q: %v", tt.body, err)
			continue
		}
		if p := got.HealthChecks.KernelLog.Path; p == nil || *p != tt.want {
			t.Errorf("%q: kernelLog.path = %v, want a pointer to %q", tt.body, p, tt.want)
		}
	}
}

// Every check can be turned off; turning all off is valid.
func TestHealthChecksOff(t *testing.T) {
	got, err := Load(writeConfig(t, header+`
healthChecks:
  kernel: {enabled: false}
  networking: {enabled: false}
  storage: {enabled: false}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got.HealthChecks.AnyOn() {
		t.Errorf("AnyOn() = true with every check off: %+v", got.HealthChecks)
	}
	want := specDefaults()
	want.HealthChecks.Kernel.Enabled = ptr.To(false)
	want.HealthChecks.Networking.Enabled = ptr.To(false)
	want.HealthChecks.Storage.Enabled = ptr.To(false)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// The bounds are inclusive: each value at its limit loads.
func TestHealthChecksAtTheirLimits(t *testing.T) {
	for _, body := range []string{
		"healthChecks:\n  interval: 5s\n  kernelLog: {window: 5s}\n  containerRuntime: {timeout: 5s}\n",
		"healthChecks:\n  confirmations: 1\n",
		"healthChecks:\n  confirmations: 10\n",
		"healthChecks:\n  profiles: [AKS]\n",
		"healthChecks:\n  containerRuntime: {endpoint: \"unix:///x.sock\", podStuckTerminatingAfter: 1m, restartThreshold: 2, restartWindow: 1m}\n",
	} {
		if _, err := Load(writeConfig(t, header+body)); err != nil {
			t.Errorf("%q: %v", body, err)
		}
	}
}

func TestEmptyPathDisablesHostEventLog(t *testing.T) {
	got, err := Load(writeConfig(t, header+"hostEventLog:\n  path: \"\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got.HostEventLog.Path == nil || *got.HostEventLog.Path != "" {
		t.Errorf("path = %v, want a pointer to \"\" (source off), not the default", got.HostEventLog.Path)
	}
	// Only the path is off; the rest is defaulted as usual.
	want := specDefaults()
	want.HostEventLog.Path = ptr.To("")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// Every rejection, with the exact message. Each body is appended to the
// apiVersion/kind header unless raw.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		raw  bool
		want string
	}{
		// What the file is.
		{name: "empty file", raw: true, body: "",
			want: `[apiVersion: Required value: nodewarden.io/v1alpha1, kind: Required value: AgentConfig]`},
		{name: "wrong apiVersion", raw: true, body: "apiVersion: nodewarden.io/v1\nkind: AgentConfig\n",
			want: `apiVersion: Unsupported value: "nodewarden.io/v1": supported values: "nodewarden.io/v1alpha1"`},
		{name: "wrong kind, reported before its unknown fields", raw: true,
			body: "apiVersion: nodewarden.io/v1alpha1\nkind: RemediationPolicy\nmetadata: {name: x}\nspec: {}\n",
			want: `kind: Unsupported value: "RemediationPolicy": supported values: "AgentConfig"`},
		{name: "not a mapping", raw: true, body: "- a\n",
			want: `json: cannot unmarshal array into Go value of type v1.TypeMeta`},

		// Strict decoding.
		{name: "unknown field", body: "hostEventLogs: {}\n",
			want: `unknown field "hostEventLogs"`},
		{name: "unknown nested field", body: "hostEventLog:\n  paht: /var/log/x\n",
			want: `unknown field "hostEventLog.paht"`},
		{name: "field names are case-sensitive", body: "HostEventLog: {}\n",
			want: `unknown field "HostEventLog"`},
		{name: "unknown field in a condition", body: "hostEventLog:\n  conditions:\n  - type: A\n    eventType: [X.Y]\n",
			want: `unknown field "hostEventLog.conditions[0].eventType"`},
		{name: "repeated key", body: "procStatPath: /a\nprocStatPath: /b\n",
			want: "yaml: unmarshal errors:\n  line 4: key \"procStatPath\" already set in map"},
		{name: "wrong type", body: "hostEventLog:\n  maxLineBytes: lots\n",
			want: `json: cannot unmarshal string into Go struct field HostEventLogConfig.hostEventLog.maxLineBytes of type int32`},
		// metav1.Duration's own error, which encoding/json does not place;
		// the quoted value is what leads to the field.
		{name: "unparsable duration", body: "leaseRenewInterval: soon\n",
			want: `time: invalid duration "soon"`},

		// hostEventLog.
		{name: "relative log path", body: "hostEventLog:\n  path: var/log/host_event.log\n",
			want: `hostEventLog.path: Invalid value: "var/log/host_event.log": must be an absolute path, or "" to turn the host event source off`},
		{name: "line cap too small", body: "hostEventLog:\n  maxLineBytes: 10\n",
			want: `hostEventLog.maxLineBytes: Invalid value: 10: must be at least 1024`},
		{name: "negative line cap", body: "hostEventLog:\n  maxLineBytes: -1\n",
			want: `hostEventLog.maxLineBytes: Invalid value: -1: must be at least 1024`},
		{name: "line cap too large", body: "hostEventLog:\n  maxLineBytes: 16777217\n",
			want: `hostEventLog.maxLineBytes: Invalid value: 16777217: must be at most 16777216 (16 MiB)`},
		{name: "poll too fast", body: "hostEventLog:\n  pollInterval: 10ms\n",
			want: `hostEventLog.pollInterval: Invalid value: "10ms": must be at least 100ms`},

		// hostEventLog.conditions.
		{name: "condition type missing", body: "hostEventLog:\n  conditions:\n  - eventTypes: [A.B]\n",
			want: `hostEventLog.conditions[0].type: Required value: a Node condition type, e.g. HostEventRebootAfter48`},
		{name: "condition type not CamelCase", body: "hostEventLog:\n  conditions:\n  - {type: HostEventA, eventTypes: [A.B]}\n  - {type: hostEventB, eventTypes: [A.C]}\n",
			want: `hostEventLog.conditions[1].type: Invalid value: "hostEventB": must be CamelCase: an upper-case letter followed by letters and digits (^[A-Z][A-Za-z0-9]*$)`},
		{name: "condition type with a dot", body: "hostEventLog:\n  conditions:\n  - {type: Host.Event, eventTypes: [A.B]}\n",
			want: `hostEventLog.conditions[0].type: Invalid value: "Host.Event": must be CamelCase: an upper-case letter followed by letters and digits (^[A-Z][A-Za-z0-9]*$)`},
		{name: "kubelet's Ready", body: "hostEventLog:\n  conditions:\n  - {type: Ready, eventTypes: [A.B]}\n",
			want: `hostEventLog.conditions[0].type: Invalid value: "Ready": is a condition type the kubelet owns; the agent must not write it`},
		{name: "kubelet's MemoryPressure", body: "hostEventLog:\n  conditions:\n  - {type: MemoryPressure, eventTypes: [A.B]}\n",
			want: `hostEventLog.conditions[0].type: Invalid value: "MemoryPressure": is a condition type the kubelet owns; the agent must not write it`},
		{name: "kubelet's DiskPressure", body: "hostEventLog:\n  conditions:\n  - {type: DiskPressure, eventTypes: [A.B]}\n",
			want: `hostEventLog.conditions[0].type: Invalid value: "DiskPressure": is a condition type the kubelet owns; the agent must not write it`},
		{name: "kubelet's PIDPressure", body: "hostEventLog:\n  conditions:\n  - {type: PIDPressure, eventTypes: [A.B]}\n",
			want: `hostEventLog.conditions[0].type: Invalid value: "PIDPressure": is a condition type the kubelet owns; the agent must not write it`},
		{name: "kubelet's NetworkUnavailable", body: "hostEventLog:\n  conditions:\n  - {type: NetworkUnavailable, eventTypes: [A.B]}\n",
			want: `hostEventLog.conditions[0].type: Invalid value: "NetworkUnavailable": is a condition type the kubelet owns; the agent must not write it`},
		{name: "condition type twice", body: "hostEventLog:\n  conditions:\n  - {type: HostEventA, eventTypes: [A.B]}\n  - {type: HostEventA, eventTypes: [A.C]}\n",
			want: `hostEventLog.conditions[1].type: Duplicate value: "HostEventA"`},
		{name: "no event types", body: "hostEventLog:\n  conditions:\n  - {type: HostEventA}\n",
			want: `hostEventLog.conditions[0].eventTypes: Required value: at least one event type, e.g. SystemMaintenance.Reboot`},
		{name: "empty event type list", body: "hostEventLog:\n  conditions:\n  - {type: HostEventA, eventTypes: []}\n",
			want: `hostEventLog.conditions[0].eventTypes: Required value: at least one event type, e.g. SystemMaintenance.Reboot`},
		{name: "event type of one word", body: "hostEventLog:\n  conditions:\n  - {type: HostEventA, eventTypes: [A.B, Reboot]}\n",
			want: `hostEventLog.conditions[0].eventTypes[1]: Invalid value: "Reboot": must look like Word.Word, e.g. SystemMaintenance.Reboot (^[A-Za-z][A-Za-z0-9]*\.[A-Za-z][A-Za-z0-9]*$)`},
		{name: "event type of three words", body: "hostEventLog:\n  conditions:\n  - {type: HostEventA, eventTypes: [A.B.C]}\n",
			want: `hostEventLog.conditions[0].eventTypes[0]: Invalid value: "A.B.C": must look like Word.Word, e.g. SystemMaintenance.Reboot (^[A-Za-z][A-Za-z0-9]*\.[A-Za-z][A-Za-z0-9]*$)`},
		{name: "event type with a blank", body: "hostEventLog:\n  conditions:\n  - {type: HostEventA, eventTypes: [System Maintenance.Reboot]}\n",
			want: `hostEventLog.conditions[0].eventTypes[0]: Invalid value: "System Maintenance.Reboot": must look like Word.Word, e.g. SystemMaintenance.Reboot (^[A-Za-z][A-Za-z0-9]*\.[A-Za-z][A-Za-z0-9]*$)`},
		{name: "event type word starting with a digit", body: "hostEventLog:\n  conditions:\n  - {type: HostEventA, eventTypes: [System.1Reboot]}\n",
			want: `hostEventLog.conditions[0].eventTypes[0]: Invalid value: "System.1Reboot": must look like Word.Word, e.g. SystemMaintenance.Reboot (^[A-Za-z][A-Za-z0-9]*\.[A-Za-z][A-Za-z0-9]*$)`},
		{name: "event type twice in one condition", body: "hostEventLog:\n  conditions:\n  - {type: HostEventA, eventTypes: [A.B, A.B]}\n",
			want: `hostEventLog.conditions[0].eventTypes[1]: Duplicate value: "A.B"`},
		{name: "event type under two conditions", body: "hostEventLog:\n  conditions:\n  - {type: HostEventStop, eventTypes: [SystemMaintenance.Stop]}\n  - {type: HostEventHalt, eventTypes: [SystemFailure.Stop, SystemMaintenance.Stop]}\n",
			want: `hostEventLog.conditions[1].eventTypes[1]: Invalid value: "SystemMaintenance.Stop": is mapped to both "HostEventStop" (hostEventLog.conditions[0]) and "HostEventHalt"; an event type can drive only one condition`},

		// metadata.
		{name: "unknown provider", body: "metadata:\n  provider: oracle\n",
			want: `metadata.provider: Unsupported value: "oracle": supported values: "auto", "none", "alibaba", "aws", "azure", "gcp"`},
		{name: "provider in the wrong case", body: "metadata:\n  provider: AWS\n",
			want: `metadata.provider: Unsupported value: "AWS": supported values: "auto", "none", "alibaba", "aws", "azure", "gcp"`},
		{name: "metadata and the host event log on the same conditions", body: "metadata:\n  provider: auto\n",
			want: `metadata.provider: Invalid value: "auto": the metadata source and hostEventLog would both maintain HostEventDelete, HostEventRebootAfter48, HostEventRedeploy, HostEventStop; a condition type has one source: set hostEventLog.path: "" to take them from the metadata endpoint only, or give metadata.conditions (or hostEventLog.conditions) condition types of their own`},
		{name: "metadata and the host event log sharing one condition", body: "metadata:\n  provider: alibaba\n  conditions:\n  - {type: HostEventDelete, eventTypes: [Alibaba.SpotTermination]}\n",
			want: `metadata.provider: Invalid value: "alibaba": the metadata source and hostEventLog would both maintain HostEventDelete; a condition type has one source: set hostEventLog.path: "" to take them from the metadata endpoint only, or give metadata.conditions (or hostEventLog.conditions) condition types of their own`},
		{name: "relative DMI path", body: "metadata:\n  dmiPath: sys/class/dmi/id\n",
			want: `metadata.dmiPath: Invalid value: "sys/class/dmi/id": must be an absolute path`},
		{name: "metadata condition rules are the host event log's", body: "hostEventLog:\n  path: \"\"\nmetadata:\n  provider: aws\n  conditions:\n  - {type: Ready, eventTypes: [AWS.SystemReboot]}\n  - {type: HostEventA, eventTypes: [AWS.SystemReboot]}\n",
			want: `[metadata.conditions[0].type: Invalid value: "Ready": is a condition type the kubelet owns; the agent must not write it, metadata.conditions[1].eventTypes[0]: Invalid value: "AWS.SystemReboot": is mapped to both "Ready" (metadata.conditions[0]) and "HostEventA"; an event type can drive only one condition]`},
		{name: "endpoint without scheme", body: "metadata:\n  aws:\n    endpoint: 169.254.169.254\n",
			want: `metadata.aws.endpoint: Invalid value: "169.254.169.254": must be an http:// or https:// URL with a host and nothing after it, e.g. http://169.254.169.254`},
		{name: "endpoint with a path", body: "metadata:\n  gcp:\n    endpoint: http://169.254.169.254/computeMetadata/v1\n",
			want: `metadata.gcp.endpoint: Invalid value: "http://169.254.169.254/computeMetadata/v1": must be an http:// or https:// URL with a host and nothing after it, e.g. http://169.254.169.254`},
		{name: "poll too fast", body: "metadata:\n  azure:\n    pollInterval: 100ms\n",
			want: `metadata.azure.pollInterval: Invalid value: "100ms": must be at least 1s`},
		{name: "spot poll too fast", body: "metadata:\n  aws:\n    spotPollInterval: 500ms\n",
			want: `metadata.aws.spotPollInterval: Invalid value: "500ms": must be at least 1s`},
		{name: "timeout too short", body: "metadata:\n  alibaba:\n    timeout: 10ms\n",
			want: `metadata.alibaba.timeout: Invalid value: "10ms": must be between 100ms and 1m0s`},
		{name: "timeout too long", body: "metadata:\n  gcp:\n    timeout: 2m\n",
			want: `metadata.gcp.timeout: Invalid value: "2m0s": must be between 100ms and 1m0s`},
		{name: "unknown metadata field", body: "metadata:\n  aws:\n    acknowledge: true\n",
			want: `unknown field "metadata.aws.acknowledge"`},

		// Lease.
		{name: "renew too often", body: "leaseRenewInterval: 5s\n",
			want: `leaseRenewInterval: Invalid value: "5s": must be at least 10s`},
		{name: "lease shorter than two renewals", body: "leaseRenewInterval: 60s\nleaseDuration: 90s\n",
			want: `leaseDuration: Invalid value: "1m30s": must be at least twice leaseRenewInterval (2m0s), so that one late renewal does not expire the Lease`},

		// Paths.
		{name: "relative procStatPath", body: "procStatPath: proc/stat\n",
			want: `procStatPath: Invalid value: "proc/stat": must be an absolute path`},
		{name: "empty npd config", body: "npdConfigs: [\"\"]\n",
			want: `npdConfigs[0]: Required value: an absolute path`},
		{name: "relative npd config", body: "npdConfigs: [/etc/npd/a.json, b.json]\n",
			want: `npdConfigs[1]: Invalid value: "b.json": must be an absolute path`},
		{name: "npd config twice", body: "npdConfigs: [/etc/npd/a.json, /etc/npd/a.json]\n",
			want: `npdConfigs[1]: Duplicate value: "/etc/npd/a.json"`},

		// healthChecks.
		{name: "unknown healthChecks field", body: "healthChecks: {intervall: 1m}\n",
			want: `unknown field "healthChecks.intervall"`},
		{name: "unknown field in a check", body: "healthChecks:\n  storage: {enable: false}\n",
			want: `unknown field "healthChecks.storage.enable"`},
		{name: "unknown profile", body: "healthChecks:\n  profiles: [GKE]\n",
			want: `healthChecks.profiles[0]: Unsupported value: "GKE": supported values: "EKS", "AKS"`},
		{name: "profile in the wrong case", body: "healthChecks:\n  profiles: [EKS, aks]\n",
			want: `healthChecks.profiles[1]: Unsupported value: "aks": supported values: "EKS", "AKS"`},
		{name: "profile twice", body: "healthChecks:\n  profiles: [EKS, AKS, EKS]\n",
			want: `healthChecks.profiles[2]: Duplicate value: "EKS"`},
		{name: "checks too often", body: "healthChecks:\n  interval: 1s\n",
			want: `healthChecks.interval: Invalid value: "1s": must be at least 5s`},
		{name: "negative interval", body: "healthChecks:\n  interval: -30s\n",
			want: `healthChecks.interval: Invalid value: "-30s": must be at least 5s`},
		{name: "too many confirmations", body: "healthChecks:\n  confirmations: 11\n",
			want: `healthChecks.confirmations: Invalid value: 11: must be between 1 (no damping) and 10`},
		{name: "negative confirmations", body: "healthChecks:\n  confirmations: -1\n",
			want: `healthChecks.confirmations: Invalid value: -1: must be between 1 (no damping) and 10`},
		{name: "relative procPath", body: "healthChecks:\n  procPath: host/proc\n",
			want: `healthChecks.procPath: Invalid value: "host/proc": must be an absolute path`},
		{name: "relative sysPath", body: "healthChecks:\n  sysPath: host/sys\n",
			want: `healthChecks.sysPath: Invalid value: "host/sys": must be an absolute path`},
		{name: "relative kernel log path", body: "healthChecks:\n  kernelLog: {path: dev/kmsg}\n",
			want: `healthChecks.kernelLog.path: Invalid value: "dev/kmsg": must be an absolute path, "auto" (/dev/kmsg if it can be opened at start, else none) or "" (no kernel log)`},
		{name: "kernel log path auto in the wrong case", body: "healthChecks:\n  kernelLog: {path: Auto}\n",
			want: `healthChecks.kernelLog.path: Invalid value: "Auto": must be an absolute path, "auto" (/dev/kmsg if it can be opened at start, else none) or "" (no kernel log)`},
		{name: "kernel log window below the interval", body: "healthChecks:\n  interval: 1m\n  kernelLog: {window: 30s}\n",
			want: `healthChecks.kernelLog.window: Invalid value: "30s": must be at least interval (1m0s), or a line could be missed between two runs`},
		{name: "relative storage path", body: "healthChecks:\n  storage: {paths: [/var/lib/kubelet, var/log]}\n",
			want: `healthChecks.storage.paths[1]: Invalid value: "var/log": must be an absolute path`},
		{name: "empty storage path", body: "healthChecks:\n  storage: {paths: [\"\"]}\n",
			want: `healthChecks.storage.paths[0]: Required value: an absolute path`},
		{name: "storage path twice", body: "healthChecks:\n  storage: {paths: [/var/log, /var/lib/kubelet, /var/log]}\n",
			want: `healthChecks.storage.paths[2]: Duplicate value: "/var/log"`},
		{name: "CRI endpoint over TCP", body: "healthChecks:\n  containerRuntime: {endpoint: \"tcp://x\"}\n",
			want: `healthChecks.containerRuntime.endpoint: Invalid value: "tcp://x": must be unix:///path/to/the.sock`},
		{name: "CRI endpoint relative", body: "healthChecks:\n  containerRuntime: {endpoint: \"unix://relative\"}\n",
			want: `healthChecks.containerRuntime.endpoint: Invalid value: "unix://relative": must be unix:///path/to/the.sock`},
		{name: "CRI endpoint without scheme", body: "healthChecks:\n  containerRuntime: {endpoint: /run/containerd/containerd.sock}\n",
			want: `healthChecks.containerRuntime.endpoint: Invalid value: "/run/containerd/containerd.sock": must be unix:///path/to/the.sock`},
		{name: "CRI timeout above the interval", body: "healthChecks:\n  containerRuntime: {timeout: 31s}\n",
			want: `healthChecks.containerRuntime.timeout: Invalid value: "31s": must be positive and at most interval (30s)`},
		{name: "negative CRI timeout", body: "healthChecks:\n  containerRuntime: {timeout: -1s}\n",
			want: `healthChecks.containerRuntime.timeout: Invalid value: "-1s": must be positive and at most interval (30s)`},
		{name: "pod stuck terminating too soon", body: "healthChecks:\n  containerRuntime: {podStuckTerminatingAfter: 30s}\n",
			want: `healthChecks.containerRuntime.podStuckTerminatingAfter: Invalid value: "30s": must be at least 1m`},
		{name: "relative journal path", body: "healthChecks:\n  containerRuntime: {journalPath: var/log/journal}\n",
			want: `healthChecks.containerRuntime.journalPath: Invalid value: "var/log/journal": must be an absolute path`},
		{name: "restart threshold of 1", body: "healthChecks:\n  containerRuntime: {restartThreshold: 1}\n",
			want: `healthChecks.containerRuntime.restartThreshold: Invalid value: 1: must be at least 2`},
		{name: "restart window too short", body: "healthChecks:\n  containerRuntime: {restartWindow: 10s}\n",
			want: `healthChecks.containerRuntime.restartWindow: Invalid value: "10s": must be at least 1m`},
		{name: "healthChecks errors are all reported", body: "healthChecks:\n  interval: 1s\n  procPath: proc\n",
			want: `[healthChecks.interval: Invalid value: "1s": must be at least 5s, healthChecks.procPath: Invalid value: "proc": must be an absolute path]`},

		// Several errors are all reported.
		{name: "two errors", body: "leaseRenewInterval: 5s\nprocStatPath: proc/stat\n",
			want: `[leaseRenewInterval: Invalid value: "5s": must be at least 10s, procStatPath: Invalid value: "proc/stat": must be an absolute path]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			content := header + tt.body
			if tt.raw {
				content = tt.body
			}
			path := writeConfig(t, content)
			got, err := Load(path)
			if err == nil {
				t.Fatalf("Load succeeded with %+v, want error %q", got, tt.want)
			}
			if want := "config " + path + ": " + tt.want; err.Error() != want {
				t.Errorf("error\n got: %s\nwant: %s", err, want)
			}
		})
	}
}

func TestLoadUnreadable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "absent.yaml")
	_, err := Load(missing)
	if want := "config " + missing + ": cannot open: no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}

	huge := writeConfig(t, header+"# "+strings.Repeat("x", maxFileBytes)+"\n")
	_, err = Load(huge)
	if want := "config " + huge + ": larger than 1048576 bytes; is this the agent's configuration file?"; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

// DeepCopy is a stand-in for controller-gen's until the Makefile generates it;
// make sure it shares nothing.
func TestDeepCopySharesNothing(t *testing.T) {
	orig := specDefaults()
	orig.NPDConfigs = []string{"/a.json"}
	cp := orig.DeepCopy()
	*cp.HostEventLog.Path = "/other"
	*cp.HostEventLog.IncludeRotated = false
	cp.HostEventLog.Conditions[0].EventTypes[0] = "X.Y"
	cp.Metadata.Conditions[0].EventTypes[0] = "X.Y"
	cp.Metadata.Conditions[1].Type = "Other"
	cp.NPDConfigs[0] = "/b.json"
	*cp.HealthChecks.KernelLog.Path = "/other"
	cp.HealthChecks.Profiles[0] = "AKS"
	*cp.HealthChecks.Kernel.Enabled = false
	*cp.HealthChecks.Storage.Enabled = false
	cp.HealthChecks.Storage.Paths[0] = "/other"
	*cp.HealthChecks.ContainerRuntime.Enabled = true
	want := specDefaults()
	want.NPDConfigs = []string{"/a.json"}
	if diff := cmp.Diff(want, orig); diff != "" {
		t.Errorf("changing the copy changed the original (-want +got):\n%s", diff)
	}
}
