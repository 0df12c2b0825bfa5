package v1alpha1

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

func TestSchemeKnowsRemediationPolicy(t *testing.T) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"RemediationPolicy", "RemediationPolicyList"} {
		if !s.Recognizes(GroupVersion.WithKind(kind)) {
			t.Errorf("scheme does not recognise %s", kind)
		}
	}
}

// The SPEC's example decodes into the types field for field.
func TestSpecExampleDecodes(t *testing.T) {
	const example = `
apiVersion: nodewarden.io/v1alpha1
kind: RemediationPolicy
metadata: {name: host-maintenance}
spec:
  nodeSelector: {}
  conditions:
  - type: HostEventRebootAfter48
    status: "True"
    for: 0s
  cordon: true
  taints: [{key: nodewarden.io/maintenance, effect: NoSchedule}]
  annotations: {example.com/reason: maintenance}
  drain:
    enabled: true
    timeout: 15m
    gracePeriodSeconds: null
    evictDaemonSetPods: false
    evictEmptyDirPods: true
    evictUnreplicatedPods: false
    protectedPodAnnotations: [example.com/keep]
  uncordonOnRecovery: true
  maxConcurrent: 1
  maxUnhealthy: 50%
  dryRun: false
  paused: true
  maintenanceWindows:
  - {schedule: "0 2 * * SAT", duration: 4h, timeZone: Europe/Berlin}
`
	var got RemediationPolicy
	if err := yaml.UnmarshalStrict([]byte(example), &got); err != nil {
		t.Fatal(err)
	}
	yes := true
	want := RemediationPolicySpec{
		NodeSelector: &metav1.LabelSelector{},
		Conditions:   []ConditionRule{{Type: "HostEventRebootAfter48", Status: corev1.ConditionTrue, For: metav1.Duration{}}},
		Cordon:       &yes,
		Taints:       []corev1.Taint{{Key: "nodewarden.io/maintenance", Effect: corev1.TaintEffectNoSchedule}},
		Annotations:  map[string]string{"example.com/reason": "maintenance"},
		Drain: DrainSpec{
			Enabled:                 &yes,
			Timeout:                 metav1.Duration{Duration: 15 * time.Minute},
			EvictEmptyDirPods:       &yes,
			ProtectedPodAnnotations: []string{"example.com/keep"},
		},
		UncordonOnRecovery: &yes,
		MaxConcurrent:      intstr.FromInt32(1),
		MaxUnhealthy:       intstr.FromString("50%"),
		Paused:             true,
		MaintenanceWindows: []MaintenanceWindow{{Schedule: "0 2 * * SAT", Duration: metav1.Duration{Duration: 4 * time.Hour}, TimeZone: "Europe/Berlin"}},
	}
	if diff := cmp.Diff(want, got.Spec); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
}

func TestDeepCopyIsIndependent(t *testing.T) {
	grace := int64(30)
	in := &RemediationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: RemediationPolicySpec{
			NodeSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"pool": "a"}},
			Conditions:         []ConditionRule{{Type: "A"}},
			Taints:             []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}},
			Annotations:        map[string]string{"a": "b"},
			Drain:              DrainSpec{GracePeriodSeconds: &grace, ProtectedPodAnnotations: []string{"x"}},
			MaintenanceWindows: []MaintenanceWindow{{Schedule: "@daily", Duration: metav1.Duration{Duration: time.Hour}}},
		},
		Status: RemediationPolicyStatus{
			Conditions:    []metav1.Condition{{Type: ConditionReady}},
			NextWindow:    &metav1.Time{Time: time.Unix(100, 0)},
			DeferredNodes: []DeferredNode{{Name: "n", Reason: DeferredPaused}},
		},
	}
	out := in.DeepCopyObject().(*RemediationPolicy)
	if diff := cmp.Diff(in, out); diff != "" {
		t.Fatalf("copy differs (-in +out):\n%s", diff)
	}
	out.Spec.NodeSelector.MatchLabels["pool"] = "b"
	out.Spec.Conditions[0].Type = "B"
	out.Spec.Taints[0].Key = "other"
	out.Spec.Annotations["a"] = "c"
	*out.Spec.Drain.GracePeriodSeconds = 1
	out.Spec.Drain.ProtectedPodAnnotations[0] = "y"
	out.Status.Conditions[0].Type = ConditionCircuitOpen
	out.Spec.MaintenanceWindows[0].Schedule = "@weekly"
	out.Status.NextWindow.Time = time.Unix(200, 0)
	out.Status.DeferredNodes[0].Name = "m"
	if in.Spec.MaintenanceWindows[0].Schedule != "@daily" || in.Status.NextWindow.Unix() != 100 || in.Status.DeferredNodes[0].Name != "n" {
		t.Errorf("changing the copy's windows or status changed the original: %+v", in)
	}
	if in.Spec.NodeSelector.MatchLabels["pool"] != "a" || in.Spec.Conditions[0].Type != "A" || in.Spec.Taints[0].Key != "k" ||
		in.Spec.Annotations["a"] != "b" || grace != 30 || in.Spec.Drain.ProtectedPodAnnotations[0] != "x" ||
		in.Status.Conditions[0].Type != ConditionReady {
		t.Errorf("changing the copy changed the original: %+v", in)
	}
	list := &RemediationPolicyList{Items: []RemediationPolicy{*in}}
	if diff := cmp.Diff(list, list.DeepCopyObject()); diff != "" {
		t.Errorf("list copy differs:\n%s", diff)
	}
}
