// Package crd_test checks that the API server, with nodewarden's CRD
// installed, accepts good RemediationPolicies with their defaults and rejects
// bad ones with a message a user can act on.
package crd_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/remediation"
	"github.com/nodewarden/nodewarden/test/cluster"
)

func create(t *testing.T, c *cluster.Cluster, doc string) error {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
		t.Fatal(err)
	}
	return c.Client.Create(t.Context(), obj)
}

func TestRemediationPolicyDefaults(t *testing.T) {
	c := cluster.Start(t)
	err := create(t, c, `
apiVersion: nodewarden.io/v1alpha1
kind: RemediationPolicy
metadata: {name: minimal}
spec:
  conditions:
  - type: HostEventRebootAfter48
`)
	if err != nil {
		t.Fatal(err)
	}
	var rp v1alpha1.RemediationPolicy
	if err := c.Client.Get(t.Context(), clientKey("minimal"), &rp); err != nil {
		t.Fatal(err)
	}
	s := rp.Spec
	checks := map[string]bool{
		"conditions[0].status=True": s.Conditions[0].Status == "True",
		"conditions[0].for=0s":      s.Conditions[0].For.Duration == 0,
		"cordon=true":               s.Cordon != nil && *s.Cordon,
		"drain.enabled=true":        s.Drain.Enabled != nil && *s.Drain.Enabled,
		"drain.timeout=15m":         s.Drain.Timeout.Duration == 15*time.Minute,
		"drain.evictEmptyDirPods":   s.Drain.EvictEmptyDirPods != nil && *s.Drain.EvictEmptyDirPods,
		"uncordonOnRecovery=true":   s.UncordonOnRecovery != nil && *s.UncordonOnRecovery,
		"maxConcurrent=1":           s.MaxConcurrent.String() == "1",
		"maxUnhealthy=50%":          s.MaxUnhealthy.String() == "50%",
		"dryRun=false":              !s.DryRun,
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("default %s not applied: %+v", what, s)
		}
	}

	// As stored, so that a field left absent differs from one defaulted to
	// zero: startBefore and forceAfter switch behaviour on by being there.
	stored := &unstructured.Unstructured{}
	stored.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("RemediationPolicy"))
	if err := c.Client.Get(t.Context(), clientKey("minimal"), stored); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path []string
		want any // nil: absent
	}{
		{[]string{"spec", "recoverFor"}, "0s"},
		{[]string{"spec", "drain", "maxAttempts"}, int64(3)},
		{[]string{"spec", "drain", "retryBackoff"}, "1m"},
		{[]string{"spec", "drain", "startBefore"}, nil},
		{[]string{"spec", "drain", "forceAfter"}, nil},
		{[]string{"spec", "drain", "outOfServiceTaint"}, nil},
		{[]string{"spec", "drain", "hookTimeout"}, "30m"},
		{[]string{"spec", "drain", "honorDisruptionAnnotations"}, true},
	} {
		got, found, err := unstructured.NestedFieldNoCopy(stored.Object, tc.path...)
		if err != nil {
			t.Fatal(err)
		}
		if tc.want == nil && found {
			t.Errorf("%s = %v, want it absent", strings.Join(tc.path, "."), got)
		} else if tc.want != nil && (!found || got != tc.want) {
			t.Errorf("%s = %#v (present: %v), want the default %#v", strings.Join(tc.path, "."), got, found, tc.want)
		}
	}
}

func TestRemediationPolicyValidation(t *testing.T) {
	c := cluster.Start(t)
	cases := []struct {
		name, spec, wantMessage string
		// wantField, if set, is the field the API server must blame: one
		// cause names it, with the message.
		wantField string
	}{
		{"no conditions", `conditions: []`, "spec.conditions", ""},
		{"conditions missing", `cordon: true`, "spec.conditions: Required value", ""},
		{"bad duration", `conditions: [{type: KernelDeadlock, for: 1d}]`, "for must be a duration such as 0s, 90s, 10m or 1h30m", ""},
		{"negative duration", `conditions: [{type: KernelDeadlock, for: -5m}]`, "for must be a duration", ""},
		{"bad drain timeout", `{conditions: [{type: KernelDeadlock}], drain: {timeout: soon}}`, "timeout must be a positive duration", ""},
		{"zero drain timeout", `{conditions: [{type: KernelDeadlock}], drain: {timeout: 0s}}`, "timeout must be a positive duration", ""},
		{"bad status", `conditions: [{type: KernelDeadlock, status: Maybe}]`, `Unsupported value: "Maybe"`, ""},
		{"percent over 100", `{conditions: [{type: KernelDeadlock}], maxConcurrent: 150%}`, "maxConcurrent must be a whole number of at least 1 or a percentage from 1% to 100%", ""},
		{"maxUnhealthy over 100", `{conditions: [{type: KernelDeadlock}], maxUnhealthy: 101%}`, "maxUnhealthy must be a whole number of at least 0 or a percentage from 0% to 100%", ""},
		{"maxConcurrent zero", `{conditions: [{type: KernelDeadlock}], maxConcurrent: 0}`, "maxConcurrent must be a whole number of at least 1", ""},
		{"unknown taint effect", `{conditions: [{type: KernelDeadlock}], taints: [{key: example.com/broken, effect: Sometimes}]}`, "taint effect must be NoSchedule or PreferNoSchedule", "spec.taints[0].effect"},
		{"NoExecute taint", `{conditions: [{type: KernelDeadlock}], taints: [{key: example.com/broken, effect: NoSchedule}, {key: example.com/gone, effect: NoExecute}]}`,
			"a NoExecute taint makes the taint manager evict pods without asking their PodDisruptionBudgets", "spec.taints[1].effect"},
		{"reserved annotation", `{conditions: [{type: KernelDeadlock}], annotations: {nodewarden.io/state: x}}`, "annotation keys under nodewarden.io/ are reserved", ""},
		{"bad condition type", `conditions: [{type: "not a type!"}]`, "condition type must be a name such as KernelDeadlock", ""},
		{"drain without cordon", `{conditions: [{type: KernelDeadlock}], cordon: false}`, "drain.enabled needs cordon: true", "spec"},
		// A NoExecute taint no longer keeps evicted pods off the node (it is
		// refused), and PreferNoSchedule never did.
		{"drain without cordon, NoExecute taint", `{conditions: [{type: KernelDeadlock}], cordon: false, taints: [{key: example.com/gone, effect: NoExecute}]}`, "drain.enabled needs cordon: true or a NoSchedule taint", "spec"},
		{"drain without cordon, PreferNoSchedule taint", `{conditions: [{type: KernelDeadlock}], cordon: false, taints: [{key: example.com/soon, effect: PreferNoSchedule}]}`, "drain.enabled needs cordon: true or a NoSchedule taint", "spec"},
		{"evictDaemonSetPods with cordon", `{conditions: [{type: KernelDeadlock}], cordon: true, drain: {evictDaemonSetPods: true}}`, "drain.evictDaemonSetPods needs cordon: false", "spec.drain.evictDaemonSetPods"},
		{"evictDaemonSetPods with the default cordon", `{conditions: [{type: KernelDeadlock}], taints: [{key: example.com/broken, effect: NoSchedule}], drain: {evictDaemonSetPods: true}}`, "drain.evictDaemonSetPods needs cordon: false", "spec.drain.evictDaemonSetPods"},
		{"recoverFor not a duration", `{conditions: [{type: KernelDeadlock}], recoverFor: 1d}`, "recoverFor must be a duration such as 0s, 5m or 1h", "spec.recoverFor"},
		{"recoverFor negative", `{conditions: [{type: KernelDeadlock}], recoverFor: -5m}`, "recoverFor must be a duration", "spec.recoverFor"},
		{"startBefore not a duration", `{conditions: [{type: KernelDeadlock}], drain: {startBefore: 2 hours}}`, "startBefore must be a positive duration such as 30m or 2h", "spec.drain.startBefore"},
		{"startBefore zero", `{conditions: [{type: KernelDeadlock}], drain: {startBefore: 0s}}`, "startBefore must be a positive duration", "spec.drain.startBefore"},
		{"startBefore negative", `{conditions: [{type: KernelDeadlock}], drain: {startBefore: -1h}}`, "startBefore must be a positive duration", "spec.drain.startBefore"},
		{"retryBackoff not a duration", `{conditions: [{type: KernelDeadlock}], drain: {retryBackoff: soon}}`, "retryBackoff must be a positive duration such as 30s or 1m", "spec.drain.retryBackoff"},
		{"retryBackoff zero", `{conditions: [{type: KernelDeadlock}], drain: {retryBackoff: "0"}}`, "retryBackoff must be a positive duration", "spec.drain.retryBackoff"},
		{"retryBackoff negative", `{conditions: [{type: KernelDeadlock}], drain: {retryBackoff: -30s}}`, "retryBackoff must be a positive duration", "spec.drain.retryBackoff"},
		{"forceAfter not a duration", `{conditions: [{type: KernelDeadlock}], drain: {forceAfter: 1d}}`, "forceAfter must be a positive duration such as 30m or 2h", "spec.drain.forceAfter"},
		{"forceAfter zero", `{conditions: [{type: KernelDeadlock}], drain: {forceAfter: 0s}}`, "forceAfter must be a positive duration", "spec.drain.forceAfter"},
		{"forceAfter negative", `{conditions: [{type: KernelDeadlock}], drain: {forceAfter: -30m}}`, "forceAfter must be a positive duration", "spec.drain.forceAfter"},
		{"hookTimeout not a duration", `{conditions: [{type: KernelDeadlock}], drain: {hookTimeout: 1d}}`, "hookTimeout must be a duration such as 30m or 2h, or 0 to wait for ever", "spec.drain.hookTimeout"},
		{"hookTimeout negative", `{conditions: [{type: KernelDeadlock}], drain: {hookTimeout: -30m}}`, "hookTimeout must be a duration", "spec.drain.hookTimeout"},
		{"maxAttempts zero", `{conditions: [{type: KernelDeadlock}], drain: {maxAttempts: 0}}`, "should be greater than or equal to 1", "spec.drain.maxAttempts"},
		{"maxAttempts over 100", `{conditions: [{type: KernelDeadlock}], drain: {maxAttempts: 101}}`, "should be less than or equal to 100", "spec.drain.maxAttempts"},
		{"negative grace period", `{conditions: [{type: KernelDeadlock}], drain: {gracePeriodSeconds: -1}}`, "gracePeriodSeconds", ""},
		{"repair without steps", `{conditions: [{type: KernelDeadlock}], repair: {steps: []}}`, "spec.repair.steps", ""},
		{"unknown repair action", `{conditions: [{type: KernelDeadlock}], repair: {steps: [{action: Reboot}]}}`, `Unsupported value: "Reboot"`, ""},
		{"webhook step without webhook", `{conditions: [{type: KernelDeadlock}], repair: {steps: [{action: Webhook}]}}`, "webhook must be set when action is Webhook, and only then", "spec.repair.steps[0].webhook"},
		{"webhook on another step", `{conditions: [{type: KernelDeadlock}], repair: {steps: [{action: DeleteNode, webhook: {url: "https://x.example"}}]}}`, "webhook must be set when action is Webhook, and only then", "spec.repair.steps[0].webhook"},
		{"webhook url not http", `{conditions: [{type: KernelDeadlock}], repair: {steps: [{action: Webhook, webhook: {url: "ftp://x.example/a"}}]}}`, "webhook.url must be an http:// or https:// URL", ""},
		{"webhook timeout too long", `{conditions: [{type: KernelDeadlock}], repair: {steps: [{action: Webhook, webhook: {url: "https://x.example", timeout: 10m}}]}}`, "webhook.timeout must be a positive duration of at most 5m", ""},
		{"repair after not a duration", `{conditions: [{type: KernelDeadlock}], repair: {steps: [{action: DeleteNode, after: 1d}]}}`, "after must be a duration such as 0s, 10m or 1h", ""},
		{"rule repair webhook missing", `{conditions: [{type: KernelDeadlock, repair: {steps: [{action: Webhook}]}}]}`, "webhook must be set when action is Webhook", "spec.conditions[0].repair.steps[0].webhook"},
		{"maxRepairsPerHour negative", `{conditions: [{type: KernelDeadlock}], maxRepairsPerHour: -1}`, "should be greater than or equal to 0", "spec.maxRepairsPerHour"},
		{"empty reason", `conditions: [{type: KernelDeadlock, reasons: [""]}]`, "spec.conditions[0].reasons[0]", ""},
		{"window without duration", `{conditions: [{type: KernelDeadlock}], maintenanceWindows: [{schedule: "0 2 * * SAT"}]}`, "spec.maintenanceWindows[0].duration: Required value", ""},
		{"window duration 0", `{conditions: [{type: KernelDeadlock}], maintenanceWindows: [{schedule: "0 2 * * SAT", duration: 0s}]}`, "duration must be a positive duration of at most 168h", "spec.maintenanceWindows[0].duration"},
		{"window duration over a week", `{conditions: [{type: KernelDeadlock}], maintenanceWindows: [{schedule: "0 2 * * SAT", duration: 169h}]}`, "duration must be a positive duration of at most 168h", "spec.maintenanceWindows[0].duration"},
		{"window duration not a duration", `{conditions: [{type: KernelDeadlock}], maintenanceWindows: [{schedule: "0 2 * * SAT", duration: 1d}]}`, "duration must be a positive duration of at most 168h", "spec.maintenanceWindows[0].duration"},
		{"window schedule empty", `{conditions: [{type: KernelDeadlock}], maintenanceWindows: [{schedule: "", duration: 4h}]}`, "spec.maintenanceWindows[0].schedule", ""},
		{"window schedule @every", `{conditions: [{type: KernelDeadlock}], maintenanceWindows: [{schedule: "@every 6h", duration: 4h}]}`, "schedule must be a 5-field cron expression", "spec.maintenanceWindows[0].schedule"},
		{"window schedule with a zone", `{conditions: [{type: KernelDeadlock}], maintenanceWindows: [{schedule: "CRON_TZ=Europe/Berlin 0 2 * * SAT", duration: 4h}]}`, "set the zone in timeZone", "spec.maintenanceWindows[0].schedule"},
		{"window time zone empty", `{conditions: [{type: KernelDeadlock}], maintenanceWindows: [{schedule: "0 2 * * SAT", duration: 4h, timeZone: ""}]}`, "spec.maintenanceWindows[0].timeZone", ""},
		{"window time zone not a name", `{conditions: [{type: KernelDeadlock}], maintenanceWindows: [{schedule: "0 2 * * SAT", duration: 4h, timeZone: "UTC+2 hours"}]}`, "timeZone must be an IANA time zone name", "spec.maintenanceWindows[0].timeZone"},
		{"paused not a bool", `{conditions: [{type: KernelDeadlock}], paused: "yes"}`, "spec.paused", ""},
		{"notification without receiver", `{conditions: [{type: KernelDeadlock}], notifications: [{events: [Cordoned]}]}`, "spec.notifications[0].receiver: Required value", ""},
		{"notification receiver not a Secret key", `{conditions: [{type: KernelDeadlock}], notifications: [{receiver: "ops slack"}]}`, "spec.notifications[0].receiver", ""},
		{"notification of an unknown reason", `{conditions: [{type: KernelDeadlock}], notifications: [{receiver: ops, events: [Rebooted]}]}`, `Unsupported value: "Rebooted"`, ""},
		{"notification event twice", `{conditions: [{type: KernelDeadlock}], notifications: [{receiver: ops, events: [Cordoned, Cordoned]}]}`, "spec.notifications[0].events[1]: Duplicate value", ""},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := "apiVersion: nodewarden.io/v1alpha1\nkind: RemediationPolicy\nmetadata: {name: bad-" + strconv.Itoa(i) + "}\nspec:\n  " +
				strings.ReplaceAll(tc.spec, "\n", "\n  ")
			if strings.HasPrefix(tc.spec, "{") {
				doc = "apiVersion: nodewarden.io/v1alpha1\nkind: RemediationPolicy\nmetadata: {name: bad-" + strconv.Itoa(i) + "}\nspec: " + tc.spec
			}
			err := create(t, c, doc)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("got %v, want the API server to reject it as Invalid", err)
			}
			if !strings.Contains(err.Error(), tc.wantMessage) {
				t.Errorf("message %q does not say %q", err.Error(), tc.wantMessage)
			}
			if tc.wantField != "" && !blames(err, tc.wantField, tc.wantMessage) {
				t.Errorf("no cause names field %s with %q: %v", tc.wantField, tc.wantMessage, causes(err))
			}
		})
	}
}

// TestRemediationPolicyAccepted: the values next to the rejected ones above
// are accepted, so that the rules refuse exactly what they mean to.
func TestRemediationPolicyAccepted(t *testing.T) {
	c := cluster.Start(t)
	for i, spec := range []string{
		// DaemonSet pods are evicted only from a node kept free by a taint
		// they do not tolerate.
		`{conditions: [{type: KernelDeadlock}], cordon: false, taints: [{key: example.com/broken, effect: NoSchedule}], drain: {evictDaemonSetPods: true}}`,
		`{conditions: [{type: KernelDeadlock}], cordon: false, taints: [{key: example.com/soon, effect: PreferNoSchedule}], drain: {enabled: false}}`,
		`{conditions: [{type: KernelDeadlock}], taints: [{key: example.com/soon, effect: PreferNoSchedule}]}`,
		`{conditions: [{type: KernelDeadlock}], paused: true, maintenanceWindows: [{schedule: "0 2 * * SAT", duration: 4h, timeZone: Europe/Berlin}, {schedule: "@daily", duration: 168h}, {schedule: "30 22 * * 1-5", duration: 1.5h, timeZone: America/Argentina/Buenos_Aires}]}`,
		`{conditions: [{type: KernelDeadlock}], recoverFor: 5m, drain: {startBefore: 2h, retryBackoff: 30s, forceAfter: 1h30m, maxAttempts: 1, outOfServiceTaint: true}}`,
		`{conditions: [{type: KernelDeadlock}], recoverFor: "0", drain: {startBefore: 1.5h, retryBackoff: 500ms, forceAfter: 90s, maxAttempts: 100}}`,
		`{conditions: [{type: KernelDeadlock}], drain: {hookTimeout: "0", honorDisruptionAnnotations: false}}`,
		`{conditions: [{type: KernelDeadlock}], drain: {hookTimeout: 2h30m}}`,
		`{conditions: [{type: AcceleratedHardwareReady, status: "False", reasons: ["NvidiaXID*Error"], repair: {steps: [{action: DeleteNode}]}}, {type: NetworkingReady, status: "False", reasons: [InterfaceNotUp]}], maxRepairsPerHour: 0, repair: {steps: [{action: Wait}, {action: ClusterAPI, after: 30m}, {action: Webhook, after: 1h, webhook: {url: "http://runbook.example:8080/repair", timeout: 5m, retries: 10}}]}}`,
		`{conditions: [{type: KernelDeadlock}], notifications: [{receiver: ops-slack}, {receiver: oncall.teams_2, events: [DrainFailed, RepairFailed, CircuitOpen, CircuitClosed, Deferred]}]}`,
	} {
		doc := "apiVersion: nodewarden.io/v1alpha1\nkind: RemediationPolicy\nmetadata: {name: good-" + strconv.Itoa(i) + "}\nspec: " + spec
		if err := create(t, c, doc); err != nil {
			t.Errorf("spec %s: %v", spec, err)
		}
	}
	// The windows as stored: timeZone defaults to UTC, and the controller
	// accepts every schedule and zone the schema let through.
	var rp v1alpha1.RemediationPolicy
	if err := c.Client.Get(t.Context(), clientKey("good-3"), &rp); err != nil {
		t.Fatal(err)
	}
	if ws := rp.Spec.MaintenanceWindows; len(ws) != 3 || ws[1].TimeZone != "UTC" || ws[0].TimeZone != "Europe/Berlin" {
		t.Errorf("maintenanceWindows as stored: %+v, want timeZone defaulted to UTC", ws)
	}
	if problem := remediation.SpecProblem(&rp.Spec); problem != "" {
		t.Errorf("SpecProblem: %s", problem)
	}
}

// blames reports whether err has a cause for field whose message says message.
func blames(err error, field, message string) bool {
	for _, c := range causes(err) {
		if c.Field == field && strings.Contains(c.Message, message) {
			return true
		}
	}
	return false
}

func causes(err error) []metav1.StatusCause {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		return nil
	}
	return status.Status().Details.Causes
}

func clientKey(name string) ctrlclient.ObjectKey { return ctrlclient.ObjectKey{Name: name} }

// Every sample in config/samples is accepted by the API server as it is,
// and its spec passes the controller's own checks: a user who copies one
// gets a policy that acts.
func TestSamplesAccepted(t *testing.T) {
	c := cluster.Start(t)
	paths, err := filepath.Glob(filepath.Join(cluster.RepoRoot(), "config", "samples", "remediationpolicy_*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			var policy v1alpha1.RemediationPolicy
			if err := yaml.UnmarshalStrict(data, &policy); err != nil {
				t.Fatalf("not a RemediationPolicy: %v", err)
			}
			if err := create(t, c, string(data)); err != nil {
				t.Fatalf("rejected: %v", err)
			}
			stored := &v1alpha1.RemediationPolicy{}
			if err := c.Client.Get(t.Context(), clientKey(policy.Name), stored); err != nil {
				t.Fatal(err)
			}
			if problem := remediation.SpecProblem(&stored.Spec); problem != "" {
				t.Errorf("the controller would not act on it: %s", problem)
			}
		})
	}
}
