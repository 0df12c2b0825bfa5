package draino

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// baseline is what `KernelDeadlock` alone converts to.
func baseline() *v1alpha1.RemediationPolicy {
	p := newPolicy()
	p.Spec.Conditions = []v1alpha1.ConditionRule{{Type: "KernelDeadlock", Status: corev1.ConditionTrue}}
	p.Spec.Drain.ProtectedPodAnnotations = []string{safeToEvictFalse}
	return p
}

func TestBaseline(t *testing.T) {
	p, _, err := Convert([]string{"KernelDeadlock"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := baseline()
	want.Spec.Drain.Timeout = metav1.Duration{Duration: 11 * time.Minute}
	want.Spec.Drain.GracePeriodSeconds = ptr.To(int64(60))
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestFlags converts one flag at a time (plus a condition) and compares the
// whole policy with the baseline changed as the flag should change it.
func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		want     func(*v1alpha1.RemediationPolicy)
		wantWarn []string // substrings, each in some warning
		noWarn   []string // substrings in no warning
	}{
		{
			name: "dry-run",
			args: []string{"--dry-run"},
			want: func(p *v1alpha1.RemediationPolicy) { p.Spec.DryRun = true },
		},
		{
			name: "dry-run=false and --no-dry-run",
			args: []string{"--dry-run", "--dry-run=false"},
			want: func(*v1alpha1.RemediationPolicy) {},
		},
		{
			name: "no-dry-run (kingpin)",
			args: []string{"--dry-run", "--no-dry-run"},
			want: func(*v1alpha1.RemediationPolicy) {},
		},
		{
			name:   "skip-drain",
			args:   []string{"--skip-drain"},
			want:   func(p *v1alpha1.RemediationPolicy) { p.Spec.Drain.Enabled = ptr.To(false) },
			noWarn: []string{"--drain-buffer", "evictEmptyDirPods", "StatefulSet", "drain.timeout"},
		},
		{
			name:     "skip-drain with drain-buffer",
			args:     []string{"--skip-drain", "--drain-buffer=5m"},
			want:     func(p *v1alpha1.RemediationPolicy) { p.Spec.Drain.Enabled = ptr.To(false) },
			wantWarn: []string{"--drain-buffer: not needed"},
		},
		{
			name: "max-grace-period",
			args: []string{"--max-grace-period=2m"},
			want: func(p *v1alpha1.RemediationPolicy) {
				p.Spec.Drain.GracePeriodSeconds = ptr.To(int64(120))
				p.Spec.Drain.Timeout.Duration = 12 * time.Minute
			},
			wantWarn: []string{"drain.timeout: 12m0s is Draino's deadline", "--max-grace-period (2m0s)", "--eviction-headroom (10m0s, Draino's default)"},
		},
		{
			name: "max-grace-period with fractional seconds",
			args: []string{"--max-grace-period", "1500ms"},
			want: func(p *v1alpha1.RemediationPolicy) {
				p.Spec.Drain.GracePeriodSeconds = ptr.To(int64(1))
				p.Spec.Drain.Timeout.Duration = 10*time.Minute + 1500*time.Millisecond
			},
			wantWarn: []string{"truncated it to whole seconds"},
		},
		{
			name:     "eviction-headroom",
			args:     []string{"--eviction-headroom", "30s"},
			want:     func(p *v1alpha1.RemediationPolicy) { p.Spec.Drain.Timeout.Duration = 90 * time.Second },
			wantWarn: []string{"--eviction-headroom (30s)"},
		},
		{
			name:     "drain-buffer",
			args:     []string{"--drain-buffer=30m"},
			want:     func(*v1alpha1.RemediationPolicy) {},
			wantWarn: []string{"--drain-buffer (30m0s): not expressible"},
		},
		{
			name:     "evict-daemonset-pods is not carried over: Draino always cordoned",
			args:     []string{"--evict-daemonset-pods"},
			want:     func(*v1alpha1.RemediationPolicy) {},
			wantWarn: []string{"--evict-daemonset-pods: not carried over", "refuses drain.evictDaemonSetPods with cordon: true", "cordon: false and a NoSchedule taint"},
		},
		{
			name:     "evict-daemonset-pods with skip-drain",
			args:     []string{"--evict-daemonset-pods", "--skip-drain"},
			want:     func(p *v1alpha1.RemediationPolicy) { p.Spec.Drain.Enabled = ptr.To(false) },
			wantWarn: []string{"--evict-daemonset-pods: not needed: --skip-drain"},
			noWarn:   []string{"not carried over"},
		},
		{
			name:   "evict-emptydir-pods",
			args:   []string{"--evict-emptydir-pods"},
			want:   func(p *v1alpha1.RemediationPolicy) { p.Spec.Drain.EvictEmptyDirPods = ptr.To(true) },
			noWarn: []string{"without --evict-emptydir-pods"},
		},
		{
			name:     "without evict-emptydir-pods",
			args:     nil,
			want:     func(*v1alpha1.RemediationPolicy) {},
			wantWarn: []string{"without --evict-emptydir-pods: drain.evictEmptyDirPods is false", "without --evict-unreplicated-pods", "without --evict-statefulset-pods"},
		},
		{
			name:   "evict-unreplicated-pods",
			args:   []string{"--evict-unreplicated-pods=true"},
			want:   func(p *v1alpha1.RemediationPolicy) { p.Spec.Drain.EvictUnreplicatedPods = true },
			noWarn: []string{"without --evict-unreplicated-pods"},
		},
		{
			name:     "evict-statefulset-pods",
			args:     []string{"--evict-statefulset-pods"},
			want:     func(*v1alpha1.RemediationPolicy) {},
			wantWarn: []string{"--evict-statefulset-pods: nothing to convert"},
			noWarn:   []string{"without --evict-statefulset-pods"},
		},
		{
			name: "do-not-evict-pod-controlled-by (fork) replaces the default list",
			args: []string{"--do-not-evict-pod-controlled-by=StatefulSets.apps"},
			want: func(p *v1alpha1.RemediationPolicy) {
				p.Spec.Drain.EvictUnreplicatedPods = true
			},
			wantWarn: []string{
				"--do-not-evict-pod-controlled-by=StatefulSet: Draino left StatefulSet pods",
				"--do-not-evict-pod-controlled-by without DaemonSet: not carried over",
			},
		},
		{
			name: "do-not-evict-pod-controlled-by with uncontrolled, DaemonSet and another kind",
			args: []string{"--do-not-evict-pod-controlled-by=,DaemonSet", "--do-not-evict-pod-controlled-by", "Job.batch"},
			want: func(*v1alpha1.RemediationPolicy) {},
			wantWarn: []string{
				"--do-not-evict-pod-controlled-by=Job.batch: not expressible",
				`--do-not-evict-pod-controlled-by="": drain.evictUnreplicatedPods is false`,
			},
		},
		{
			name: "protected-pod-annotation key and key=value",
			args: []string{"--protected-pod-annotation=example.com/keep", "--protected-pod-annotation", "example.com/tier=critical", "--protected-pod-annotation=example.com/keep"},
			want: func(p *v1alpha1.RemediationPolicy) {
				p.Spec.Drain.ProtectedPodAnnotations = []string{safeToEvictFalse, "example.com/keep", "example.com/tier=critical"}
			},
			wantWarn: []string{"a protected pod blocks the drain"},
		},
		{
			name: "ignore-safe-to-evict-annotation",
			args: []string{"--ignore-safe-to-evict-annotation", "--protected-pod-annotation=keep"},
			want: func(p *v1alpha1.RemediationPolicy) {
				p.Spec.Drain.ProtectedPodAnnotations = []string{"keep"}
				p.Spec.Drain.HonorDisruptionAnnotations = ptr.To(false)
			},
			noWarn: []string{"safe-to-evict"},
		},
		{
			name: "ignore-safe-to-evict-annotation alone",
			args: []string{"--ignore-safe-to-evict-annotation"},
			want: func(p *v1alpha1.RemediationPolicy) {
				p.Spec.Drain.ProtectedPodAnnotations = nil
				p.Spec.Drain.HonorDisruptionAnnotations = ptr.To(false)
			},
			noWarn: []string{"protectedPodAnnotations:"},
		},
		{
			name: "node-label",
			args: []string{"--node-label=draino-enabled=true", "--node-label", "pool=a,topology.kubernetes.io/zone=z1", "--node-label=pool=a"},
			want: func(p *v1alpha1.RemediationPolicy) {
				p.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{
					"draino-enabled": "true", "pool": "a", "topology.kubernetes.io/zone": "z1",
				}}
			},
		},
		{
			name: "node-label with empty value means the label exists",
			args: []string{"--node-label=example.com/drain="},
			want: func(p *v1alpha1.RemediationPolicy) {
				p.Spec.NodeSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "example.com/drain", Operator: metav1.LabelSelectorOpExists},
				}}
			},
		},
		{
			name: "node-label without a value",
			args: []string{"--node-label=drain"},
			want: func(p *v1alpha1.RemediationPolicy) {
				p.Spec.NodeSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "drain", Operator: metav1.LabelSelectorOpExists},
				}}
			},
			wantWarn: []string{"--node-label=drain: no value"},
		},
		{
			name: "node-label-expr conjunction",
			args: []string{"--node-label-expr", "metadata.labels.region == 'us-west-1' && metadata.labels.app in ['a','b']"},
			want: func(p *v1alpha1.RemediationPolicy) {
				p.Spec.NodeSelector = &metav1.LabelSelector{
					MatchLabels:      map[string]string{"region": "us-west-1"},
					MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "b"}}},
				}
			},
			noWarn: []string{"--node-label-expr"},
		},
		{
			name: "node-label-expr not expressible selects nothing",
			args: []string{"--node-label-expr=metadata.labels.region == 'a' || metadata.labels.app == 'b'"},
			want: func(p *v1alpha1.RemediationPolicy) {
				p.Spec.NodeSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: UnconvertedSelectorKey, Operator: metav1.LabelSelectorOpExists},
				}}
			},
			wantWarn: []string{"--node-label-expr: not expressible as a label selector", "selects no node", "metadata.labels.region == 'a' || metadata.labels.app == 'b'"},
		},
		{
			name: "empty node-label-expr selects every node",
			args: []string{"--node-label-expr="},
			want: func(*v1alpha1.RemediationPolicy) {},
		},
		{
			name:     "max-simultaneous-cordon number",
			args:     []string{"--max-simultaneous-cordon=3"},
			want:     func(p *v1alpha1.RemediationPolicy) { p.Spec.MaxConcurrent = intstr.FromInt32(3) },
			wantWarn: []string{"--max-simultaneous-cordon: maxConcurrent: 3; Draino counted every unschedulable node"},
			noWarn:   []string{"maxConcurrent: 1 (nodewarden's default"},
		},
		{
			name: "max-simultaneous-cordon percent",
			args: []string{"--max-simultaneous-cordon", "10%"},
			want: func(p *v1alpha1.RemediationPolicy) { p.Spec.MaxConcurrent = intstr.FromString("10%") },
		},
		{
			name:     "max-simultaneous-cordon repeated keeps the tightest",
			args:     []string{"--max-simultaneous-cordon=20%", "--max-simultaneous-cordon=5%,10%"},
			want:     func(p *v1alpha1.RemediationPolicy) { p.Spec.MaxConcurrent = intstr.FromString("5%") },
			wantWarn: []string{"the tightest, 5%, is kept"},
		},
		{
			name:     "max-simultaneous-cordon number and percent",
			args:     []string{"--max-simultaneous-cordon=20%", "--max-simultaneous-cordon=4"},
			want:     func(p *v1alpha1.RemediationPolicy) { p.Spec.MaxConcurrent = intstr.FromInt32(4) },
			wantWarn: []string{"4 is kept and 20% is dropped"},
		},
		{
			name:     "max-simultaneous-cordon 0 is one node",
			args:     []string{"--max-simultaneous-cordon=0"},
			want:     func(p *v1alpha1.RemediationPolicy) { p.Spec.MaxConcurrent = intstr.FromInt32(1) },
			wantWarn: []string{"Draino always let one node be cordoned"},
		},
		{
			name:     "max-notready-nodes",
			args:     []string{"--max-notready-nodes=25%"},
			want:     func(p *v1alpha1.RemediationPolicy) { p.Spec.MaxUnhealthy = intstr.FromString("25%") },
			wantWarn: []string{"--max-notready-nodes: maxUnhealthy: 25%; Draino stopped when too many nodes of the cluster were NotReady"},
			noWarn:   []string{"maxUnhealthy: 50% (nodewarden's default)"},
		},
		{
			name:     "max-notready-nodes 0",
			args:     []string{"--max-notready-nodes=0"},
			want:     func(p *v1alpha1.RemediationPolicy) { p.Spec.MaxUnhealthy = intstr.FromString("0%") },
			wantWarn: []string{"this policy never acts"},
		},
		{
			name:     "config-name names the policy",
			args:     []string{"--config-name=pool-a"},
			want:     func(p *v1alpha1.RemediationPolicy) { p.Name = "pool-a" },
			wantWarn: []string{"--config-name: used as the policy name, pool-a"},
		},
		{
			name:     "config-name that is not an object name",
			args:     []string{"--config-name=Pool_A"},
			want:     func(*v1alpha1.RemediationPolicy) {},
			wantWarn: []string{"--config-name=Pool_A: not a valid object name"},
		},
		{
			name: "node-conditions flag (fork)",
			args: []string{"--node-conditions", `ReadonlyFilesystem={"conditionStatus":"True","delay":"5m"}`},
			want: func(p *v1alpha1.RemediationPolicy) {
				p.Spec.Conditions = append(p.Spec.Conditions, v1alpha1.ConditionRule{Type: "ReadonlyFilesystem", Status: corev1.ConditionTrue, For: metav1.Duration{Duration: 5 * time.Minute}})
			},
		},
		{
			name:     "process flags are notes",
			args:     []string{"--kubeconfig", "/k", "--master=https://x", "--listen=:1", "-d", "--namespace=kube-system", "--leader-election-token-name=draino", "--leader-election-retry-period=1s"},
			want:     func(*v1alpha1.RemediationPolicy) {},
			wantWarn: []string{"--kubeconfig: a flag of the process", "--master: a flag of the process", "--listen: a flag of the process", "--debug: a flag of the process", "--namespace: a flag of the process", "--leader-election-token-name: not configurable", "--leader-election-retry-period: not configurable"},
		},
		{
			name:     "unsupported flags are warnings",
			args:     []string{"--allow-force-delete", "--max-simultaneous-cordon-for-labels=2,app,shard", "--max-pending-pods=10", "--storage-class-allows-pv-deletion=local"},
			want:     func(*v1alpha1.RemediationPolicy) {},
			wantWarn: []string{"--allow-force-delete: not carried over", "--max-simultaneous-cordon-for-labels: not expressible in one policy", "--max-pending-pods: not expressible", "--storage-class-allows-pv-deletion: not supported"},
		},
		{
			name:     "a boolean at Draino's default is a no-op",
			args:     []string{"--allow-force-delete=false", "--cordon-emptydir-pods"},
			want:     func(*v1alpha1.RemediationPolicy) {},
			wantWarn: []string{"--allow-force-delete=false: Draino's default; nothing to convert", "--cordon-emptydir-pods=true: Draino's default"},
		},
		{
			name:     "cordon-emptydir-pods=false (fork) is not expressible",
			args:     []string{"--no-cordon-emptydir-pods"},
			want:     func(*v1alpha1.RemediationPolicy) {},
			wantWarn: []string{"--cordon-emptydir-pods: not expressible"},
		},
		{
			name: "a value flag given twice: the last wins",
			args: []string{"--max-grace-period=1m", "--max-grace-period=2m"},
			want: func(p *v1alpha1.RemediationPolicy) {
				p.Spec.Drain.GracePeriodSeconds = ptr.To(int64(120))
				p.Spec.Drain.Timeout.Duration = 12 * time.Minute
			},
			wantWarn: []string{`--max-grace-period: given 2 times; the last value ("2m") is used`},
		},
		{
			name: "drain retries (the fork)",
			args: []string{"--max-drain-attempts-before-fail=5", "--retry-backoff-delay=23m"},
			want: func(p *v1alpha1.RemediationPolicy) {
				p.Spec.Drain.MaxAttempts = 5
				p.Spec.Drain.RetryBackoff = &metav1.Duration{Duration: 23 * time.Minute}
			},
			wantWarn: []string{"--retry-backoff-delay=23m0s: drain.retryBackoff waits that long after the first failed drain and doubles it"},
		},
		{
			name: "drain retries forever (the fork's 0)",
			args: []string{"--max-drain-attempts-before-fail=0"},
			want: func(p *v1alpha1.RemediationPolicy) {
				p.Spec.Drain.MaxAttempts = 100
			},
			wantWarn: []string{"--max-drain-attempts-before-fail=0: Draino retried forever"},
		},

		// Node replacement after the drain (the fork).
		{
			name: "max-node-replacement-per-hour: a DeleteNode ladder after the fork's default hour",
			args: []string{"--max-node-replacement-per-hour=3"},
			want: func(p *v1alpha1.RemediationPolicy) {
				p.Spec.MaxRepairsPerHour = ptr.To(int32(3))
				p.Spec.Repair = deleteNodeAfter(time.Hour)
			},
			wantWarn: []string{
				"repair: DeleteNode 1h0m0s after the drain (--duration-before-replacement not given: the fork's default, 1h0m0s)",
				"labelled it node.datadoghq.com/replace=requested",
				"make the step a Webhook",
				"maxRepairsPerHour: 3 (--max-node-replacement-per-hour=3): Draino let one replacement through every 20m0s and none in the first 20m0s after it started",
			},
		},
		{
			name: "duration-before-replacement: the ladder's after, the fork's default rate",
			args: []string{"--duration-before-replacement=30m"},
			want: func(p *v1alpha1.RemediationPolicy) {
				p.Spec.MaxRepairsPerHour = ptr.To(int32(2))
				p.Spec.Repair = deleteNodeAfter(30 * time.Minute)
			},
			wantWarn: []string{
				"repair: DeleteNode 30m0s after the drain (--duration-before-replacement=30m0s)",
				"maxRepairsPerHour: 2 (--max-node-replacement-per-hour not given: the fork's default, 2)",
			},
		},
		{
			name: "replacement at once, more than one a minute: no start-up delay to report",
			args: []string{"--duration-before-replacement=0s", "--max-node-replacement-per-hour=120"},
			want: func(p *v1alpha1.RemediationPolicy) {
				p.Spec.MaxRepairsPerHour = ptr.To(int32(120))
				p.Spec.Repair = deleteNodeAfter(0)
			},
			wantWarn: []string{"repair: DeleteNode 0s after the drain", "one replacement through every 30s,"},
			noWarn:   []string{"none in the first"},
		},
		{
			name: "max-node-replacement-per-hour over the CRD's maximum",
			args: []string{"--max-node-replacement-per-hour=5000"},
			want: func(p *v1alpha1.RemediationPolicy) {
				p.Spec.MaxRepairsPerHour = ptr.To(int32(1000))
				p.Spec.Repair = deleteNodeAfter(time.Hour)
			},
			wantWarn: []string{"--max-node-replacement-per-hour=5000: maxRepairsPerHour is at most 1000", "maxRepairsPerHour: 1000 (--max-node-replacement-per-hour=5000)"},
		},
		{
			name:     "max-node-replacement-per-hour=0 crashed Draino: read as no replacement",
			args:     []string{"--max-node-replacement-per-hour=0", "--duration-before-replacement=2h"},
			want:     func(p *v1alpha1.RemediationPolicy) { p.Spec.MaxRepairsPerHour = ptr.To(int32(0)) },
			wantWarn: []string{"--max-node-replacement-per-hour=0: Draino crashed on this value", "--duration-before-replacement: not needed: --max-node-replacement-per-hour=0"},
			noWarn:   []string{"repair: DeleteNode"},
		},
		{
			name:     "replacement with skip-drain: never drained, never repaired",
			args:     []string{"--skip-drain", "--max-node-replacement-per-hour=3", "--duration-before-replacement=10m"},
			want:     func(p *v1alpha1.RemediationPolicy) { p.Spec.Drain.Enabled = ptr.To(false) },
			wantWarn: []string{"--max-node-replacement-per-hour: not expressible with --skip-drain", "--duration-before-replacement: not expressible with --skip-drain"},
			noWarn:   []string{"repair: DeleteNode"},
		},
		{
			name:     "replacement without the legacy node handler (the fork) never happened",
			args:     []string{"--no-legacy-node-handler", "--duration-before-replacement=2h"},
			want:     func(*v1alpha1.RemediationPolicy) {},
			wantWarn: []string{"--duration-before-replacement: not needed: --no-legacy-node-handler turned off the handler"},
			noWarn:   []string{"repair: DeleteNode", "--max-node-replacement-per-hour:"},
		},
		{
			name:     "the fork's default replacement is reported, not converted",
			args:     []string{"--config-name=pool-a"},
			want:     func(p *v1alpha1.RemediationPolicy) { p.Name = "pool-a" },
			wantWarn: []string{"--duration-before-replacement, --max-node-replacement-per-hour not given: Draino's DataDog fork (it needs --config-name) by default asked for a replacement of a node drained 1h0m0s earlier, at most 2 an hour"},
			noWarn:   []string{"repair: DeleteNode"},
		},
		{
			name:   "the fork in dry run replaced nothing",
			args:   []string{"--config-name=pool-a", "--dry-run"},
			want:   func(p *v1alpha1.RemediationPolicy) { p.Name, p.Spec.DryRun = "pool-a", true },
			noWarn: []string{"node.datadoghq.com/replace"},
		},
		{
			name:   "upstream Draino never replaced",
			args:   nil,
			want:   func(*v1alpha1.RemediationPolicy) {},
			noWarn: []string{"node.datadoghq.com/replace", "repair"},
		},
		{
			name:     "pre-provisioning (the fork) is not expressible",
			args:     []string{"--preprovisioning-by-default", "--preprovisioning-timeout=30m", "--preprovisioning-check-period=10s"},
			want:     func(*v1alpha1.RemediationPolicy) {},
			wantWarn: []string{"--preprovisioning-by-default: not expressible: nodewarden has no step before the drain", "--preprovisioning-timeout: not expressible", "--preprovisioning-check-period: not expressible"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(slices.Clone(tc.args), "KernelDeadlock")
			got, warnings, err := Convert(args, Options{})
			if err != nil {
				t.Fatalf("Convert(%q): %v", args, err)
			}
			want := baseline()
			tc.want(want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("policy (-want +got):\n%s", diff)
			}
			checkWarnings(t, warnings, tc.wantWarn, tc.noWarn)
			checkRoundTrip(t, got)
		})
	}
}

func TestCmdline(t *testing.T) {
	for _, tc := range []struct {
		name           string
		args           []string
		wantValues     map[string][]string
		wantPositional []string
	}{
		{
			name:           "program name, flags and conditions in any order, -- ends the flags",
			args:           []string{"/usr/local/bin/draino", "A", "--dry-run", "--listen", ":1", "B", "--", "--C", "-d"},
			wantValues:     map[string][]string{"dry-run": {"true"}, "listen": {":1"}},
			wantPositional: []string{"A", "B", "--C", "-d"},
		},
		{
			name:           "bare program name",
			args:           []string{"draino", "A"},
			wantValues:     map[string][]string{},
			wantPositional: []string{"A"},
		},
		{
			name:           "a value may start with a dash",
			args:           []string{"--max-grace-period", "-1m", "A"},
			wantValues:     map[string][]string{"max-grace-period": {"-1m"}},
			wantPositional: []string{"A"},
		},
		{
			name:           "booleans: kingpin and pflag forms, -d",
			args:           []string{"-d", "--skip-drain=0", "--no-dry-run", "--evict-emptydir-pods=T", "A"},
			wantValues:     map[string][]string{"debug": {"true"}, "skip-drain": {"false"}, "dry-run": {"false"}, "evict-emptydir-pods": {"true"}},
			wantPositional: []string{"A"},
		},
		{
			name: "repeatable flags keep every value; comma lists split only where values cannot hold commas",
			args: []string{"--node-label=a=1,b=2", "--node-label", "c=3", "--protected-pod-annotation=x=1,2", "--node-conditions", `A={"delay":"1m","priority":1}`},
			wantValues: map[string][]string{
				"node-label":               {"a=1", "b=2", "c=3"},
				"protected-pod-annotation": {"x=1,2"},
				"node-conditions":          {`A={"delay":"1m","priority":1}`},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl, err := parseCmdline(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantValues, cl.values); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantPositional, cl.positional); diff != "" {
				t.Errorf("positional (-want +got):\n%s", diff)
			}
		})
	}
}

// checkRoundTrip renders p and reads it back: nothing may be lost on the way
// (e.g. a zero value that the type omits).
// deleteNodeAfter is the repair ladder the fork's node replacement becomes.
func deleteNodeAfter(d time.Duration) *v1alpha1.RepairSpec {
	return &v1alpha1.RepairSpec{Steps: []v1alpha1.RepairStep{{Action: v1alpha1.RepairDeleteNode, After: metav1.Duration{Duration: d}}}}
}

func checkRoundTrip(t *testing.T, p *v1alpha1.RemediationPolicy) {
	t.Helper()
	out, err := Render(p)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	var back v1alpha1.RemediationPolicy
	if err := yaml.UnmarshalStrict(out, &back); err != nil {
		t.Fatalf("rendered YAML does not read back: %v\n%s", err, out)
	}
	if diff := cmp.Diff(p, &back); diff != "" {
		t.Errorf("policy changed through YAML (-converted +read back):\n%s", diff)
	}
}

func checkWarnings(t *testing.T, warnings, want, not []string) {
	t.Helper()
	for _, w := range want {
		if !slices.ContainsFunc(warnings, func(s string) bool { return strings.Contains(s, w) }) {
			t.Errorf("no warning contains %q; warnings:\n%s", w, strings.Join(warnings, "\n"))
		}
	}
	for _, w := range not {
		if slices.ContainsFunc(warnings, func(s string) bool { return strings.Contains(s, w) }) {
			t.Errorf("a warning contains %q; warnings:\n%s", w, strings.Join(warnings, "\n"))
		}
	}
}

// TestEveryFlagConvertsOrReports gives each known flag a non-default value:
// it must change the policy or be named in a warning, never vanish.
func TestEveryFlagConvertsOrReports(t *testing.T) {
	values := map[string]string{
		"node-label":                     "a=b",
		"node-label-expr":                "metadata.labels.a == 'b'",
		"node-conditions":                "Foo",
		"do-not-evict-pod-controlled-by": "StatefulSet",
		"protected-pod-annotation":       "example.com/x",
		"max-simultaneous-cordon":        "3",
		"max-notready-nodes":             "3",
		"config-name":                    "pool-a",
		"max-grace-period":               "2m",
		"max-drain-attempts-before-fail": "5",
		"max-node-replacement-per-hour":  "3",
	}
	base, _, err := Convert([]string{"KernelDeadlock"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(flagTable) != len(flags) {
		t.Fatalf("flags lists %d flags under %d names: one is listed twice", len(flags), len(flagTable))
	}
	for _, def := range flags {
		name := def.name
		t.Run(name, func(t *testing.T) {
			var arg string
			switch {
			case def.kind == boolFlag && def.boolDefault:
				arg = "--no-" + name
			case def.kind == boolFlag:
				arg = "--" + name
			default:
				v, ok := values[name]
				if !ok {
					v = "1m"
				}
				arg = "--" + name + "=" + v
			}
			p, warnings, err := Convert([]string{arg, "KernelDeadlock"}, Options{})
			if err != nil {
				t.Fatalf("Convert(%s): %v", arg, err)
			}
			if !def.mapped && def.note == "" {
				t.Errorf("--%s is neither mapped nor has a note", name)
			}
			checkRoundTrip(t, p)
			if cmp.Equal(base, p) && !slices.ContainsFunc(warnings, func(s string) bool { return strings.Contains(s, "--"+name) }) {
				t.Errorf("%s changed nothing and no warning names it; warnings:\n%s", arg, strings.Join(warnings, "\n"))
			}
		})
	}
}

func TestName(t *testing.T) {
	p, warnings, err := Convert([]string{"--config-name=pool-a", "X"}, Options{Name: "kernel-faults"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "kernel-faults" {
		t.Errorf("name = %q, want kernel-faults", p.Name)
	}
	checkWarnings(t, warnings, []string{"--config-name: not used: the policy is named kernel-faults"}, nil)

	if _, _, err := Convert([]string{"X"}, Options{Name: "Not_A_Name"}); err == nil {
		t.Error("an invalid Options.Name converted")
	}
}

func TestConditionSyntax(t *testing.T) {
	d := func(s string) metav1.Duration {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return metav1.Duration{Duration: v}
	}
	for _, tc := range []struct {
		arg      string
		want     v1alpha1.ConditionRule
		wantWarn string
		wantErr  string
	}{
		{arg: "KernelDeadlock", want: v1alpha1.ConditionRule{Type: "KernelDeadlock", Status: "True"}},
		{arg: "KernelDeadlock=True,10m", want: v1alpha1.ConditionRule{Type: "KernelDeadlock", Status: "True", For: d("10m")}},
		{arg: "Ready=Unknown,1h30m", want: v1alpha1.ConditionRule{Type: "Ready", Status: "Unknown", For: d("1h30m")}},
		{arg: "Ready=False,0s", want: v1alpha1.ConditionRule{Type: "Ready", Status: "False"}},
		{arg: "example.com/Broken=True,90s", want: v1alpha1.ConditionRule{Type: "example.com/Broken", Status: "True", For: d("90s")}},
		{arg: "KernelDeadlock=10m", want: v1alpha1.ConditionRule{Type: "KernelDeadlock", Status: "True", For: d("10m")},
			wantWarn: "crashed on this form; read as KernelDeadlock=True,10m"},
		{arg: "KernelDeadlock=True", want: v1alpha1.ConditionRule{Type: "KernelDeadlock", Status: "True"},
			wantWarn: "read as KernelDeadlock=True,0s"},
		{arg: "Ready=unknown,5m", want: v1alpha1.ConditionRule{Type: "Ready", Status: "Unknown", For: d("5m")},
			wantWarn: `compared the status "unknown" exactly and so never matched it`},
		{arg: "KernelDeadlock=,5m", want: v1alpha1.ConditionRule{Type: "KernelDeadlock", Status: "True", For: d("5m")},
			wantWarn: "empty status"},
		{arg: "KernelDeadlock=True,", want: v1alpha1.ConditionRule{Type: "KernelDeadlock", Status: "True"},
			wantWarn: "empty duration"},
		{arg: `KernelDeadlock={"conditionStatus":"True","delay":"10m"}`, want: v1alpha1.ConditionRule{Type: "KernelDeadlock", Status: "True", For: d("10m")}},
		{arg: `KernelDeadlock={}`, want: v1alpha1.ConditionRule{Type: "KernelDeadlock", Status: "True"}},
		{arg: `KernelDeadlock={"priority":3,"expectedResolutionTime":"1h"}`, want: v1alpha1.ConditionRule{Type: "KernelDeadlock", Status: "True"},
			wantWarn: "priority is not expressible"},
		{arg: `KernelDeadlock={"rateLimitQPS":0.5}`, want: v1alpha1.ConditionRule{Type: "KernelDeadlock", Status: "True"},
			wantWarn: "rateLimitQPS/rateLimitBurst are not expressible"},

		{arg: "=True,10m", wantErr: "no condition type"},
		{arg: "Kernel Deadlock", wantErr: "not a valid condition type"},
		{arg: "KernelDeadlock=Maybe", wantErr: `"Maybe" is neither a status`},
		{arg: "KernelDeadlock=Maybe,10m", wantErr: `status "Maybe" is not True, False or Unknown`},
		{arg: "KernelDeadlock=True,10", wantErr: `"10" is not a duration`},
		{arg: "KernelDeadlock=True,10m,5m", wantErr: `"10m,5m" is not a duration`},
		{arg: "KernelDeadlock=True,-5m", wantErr: "negative duration"},
		{arg: "KernelDeadlock=-5m", wantErr: "negative duration"},
		{arg: `KernelDeadlock={"delay":"soon"}`, wantErr: `delay "soon" is not a duration`},
		{arg: `KernelDeadlock={"status":"True"}`, wantErr: "invalid JSON condition"},
		{arg: `KernelDeadlock={"conditionStatus":"Yes"}`, wantErr: `conditionStatus "Yes"`},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			got, warnings, err := parseCondition(tc.arg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if tc.wantWarn == "" && len(warnings) > 0 {
				t.Errorf("unexpected warnings: %q", warnings)
			}
			if tc.wantWarn != "" {
				checkWarnings(t, warnings, []string{tc.wantWarn}, nil)
			}
		})
	}
}

func TestConditionsMerged(t *testing.T) {
	p, warnings, err := Convert([]string{"KernelDeadlock=True,10m", "KernelDeadlock=True,2m", "KernelDeadlock=False,1m", "OutOfDisk"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []v1alpha1.ConditionRule{
		{Type: "KernelDeadlock", Status: "True", For: metav1.Duration{Duration: 2 * time.Minute}},
		{Type: "KernelDeadlock", Status: "False", For: metav1.Duration{Duration: time.Minute}},
		{Type: "OutOfDisk", Status: "True"},
	}
	if diff := cmp.Diff(want, p.Spec.Conditions); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	checkWarnings(t, warnings, []string{"KernelDeadlock=True is given more than once; kept once with the shortest duration, 2m0s", "condition OutOfDisk: current kubelets no longer report"}, nil)
}

func TestBadInput(t *testing.T) {
	many := []string{}
	for i := range 33 {
		many = append(many, "C"+strings.Repeat("x", i))
	}
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no condition", []string{"--dry-run"}, "no node conditions"},
		{"nothing", nil, "no node conditions"},
		{"unknown flag", []string{"--drain-harder", "X"}, "unknown flag --drain-harder"},
		{"unknown negated flag", []string{"--no-such-thing", "X"}, "unknown flag --no-such-thing"},
		{"--no- on a value flag", []string{"--no-listen", "X"}, "unknown flag --no-listen"},
		{"unknown short flag", []string{"-v", "X"}, "unknown flag -v"},
		{"help", []string{"--help"}, "unknown flag --help"},
		{"missing value", []string{"X", "--max-grace-period"}, "--max-grace-period needs a value"},
		{"bad bool", []string{"--dry-run=maybe", "X"}, `--dry-run: "maybe" is not a boolean`},
		{"value on --no-", []string{"--no-dry-run=true", "X"}, "--no-dry-run takes no value"},
		{"bad duration", []string{"--max-grace-period=5", "X"}, "--max-grace-period=5: not a duration"},
		{"negative duration", []string{"--eviction-headroom=-1m", "X"}, "negative duration"},
		{"bad drain-buffer", []string{"--drain-buffer=soon", "X"}, "--drain-buffer=soon: not a duration"},
		{"zero drain deadline", []string{"--max-grace-period=0s", "--eviction-headroom=0s", "X"}, "drain.timeout must be positive"},
		{"bad condition", []string{"KernelDeadlock=Sometimes,5m"}, `status "Sometimes"`},
		{"too many conditions", many, "at most 32"},
		{"label and expr", []string{"--node-label=a=b", "--node-label-expr=metadata.labels.a == 'b'", "X"}, "cannot both be set"},
		{"label twice with different values", []string{"--node-label=a=b", "--node-label=a=c", "X"}, `label "a" is given twice`},
		{"bad label key", []string{"--node-label=a b=c", "X"}, "not a valid label name"},
		{"bad label value", []string{"--node-label=a=b c", "X"}, "not a valid label value"},
		{"bad protected annotation", []string{"--protected-pod-annotation=not valid", "X"}, "not a valid annotation key"},
		{"empty protected annotation", []string{"--protected-pod-annotation=", "X"}, "not a valid annotation key"},
		{"bad budget", []string{"--max-simultaneous-cordon=many", "X"}, "not a number or a percentage"},
		{"negative budget", []string{"--max-notready-nodes=-1", "X"}, "not a number or a percentage"},
		{"budget over 100%", []string{"--max-simultaneous-cordon=150%", "X"}, "over 100%"},
		{"replacement rate not a number", []string{"--max-node-replacement-per-hour=two", "X"}, "--max-node-replacement-per-hour=two: not a whole number"},
		{"negative replacement rate", []string{"--max-node-replacement-per-hour=-1", "X"}, "not a whole number of at least 0"},
		{"bad duration before replacement", []string{"--duration-before-replacement=1d", "X"}, "--duration-before-replacement=1d: not a duration"},
		{"negative duration before replacement", []string{"--duration-before-replacement=-1h", "X"}, "negative duration"},
		{"mixed eviction flags of two Draino versions", []string{"--do-not-evict-pod-controlled-by=DaemonSet", "--evict-unreplicated-pods", "X"}, "different Draino versions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Convert(tc.args, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Convert(%q) err = %v, want one containing %q", tc.args, err, tc.wantErr)
			}
		})
	}
}

func TestRender(t *testing.T) {
	p, _, err := Convert([]string{"KernelDeadlock"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p.TypeMeta = metav1.TypeMeta{} // Render sets them whatever the object says
	out, err := Render(p)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{"apiVersion: nodewarden.io/v1alpha1\n", "kind: RemediationPolicy\n", "metadata:\n  name: draino\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("rendered YAML lacks %q:\n%s", want, s)
		}
	}
	for _, noise := range []string{"\nstatus:", "creationTimestamp", "null", "{}"} {
		if strings.Contains(s, noise) {
			t.Errorf("rendered YAML contains %q:\n%s", noise, s)
		}
	}

	// A status with content is kept.
	p.Status.SelectedNodes = 3
	out, err = Render(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "selectedNodes: 3") {
		t.Errorf("non-empty status dropped:\n%s", out)
	}

	if _, err := Render(nil); err == nil {
		t.Error("Render(nil) succeeded")
	}
}
