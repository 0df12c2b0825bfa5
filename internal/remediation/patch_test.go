package remediation

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

var trigger = Trigger{Type: reboot, Status: corev1.ConditionTrue, Since: t0.Add(-time.Hour)}

func TestCordonPatch(t *testing.T) {
	policy := rp("maint",
		withTaints(
			corev1.Taint{Key: "nodewarden.io/maintenance", Value: "reboot", Effect: corev1.TaintEffectNoSchedule},
			corev1.Taint{Key: "team.example/hold", Effect: corev1.TaintEffectNoExecute}, // the node has it already
		),
		withAnnotations("example.com/reason", "maintenance", "example.com/owner", "sre"), // owner already set
	)
	n := node("a",
		taint("team.example/hold", corev1.TaintEffectNoExecute),
		annotate("example.com/owner", "someone"),
		annotate(v1alpha1.AnnotationHumanUncordoned, "2024-01-01T00:00:00Z"),
	)
	got := CordonPatch(&n, &policy, trigger, t0, "")
	want := NodePatch{
		ResourceVersion: "7",
		SetAnnotations: map[string]string{
			v1alpha1.AnnotationState:            "Cordoned",
			v1alpha1.AnnotationPolicy:           "maint",
			v1alpha1.AnnotationTrigger:          "HostEventRebootAfter48=True",
			v1alpha1.AnnotationStateSince:       "2024-01-08T17:00:00Z",
			v1alpha1.AnnotationTriggerSince:     "2024-01-08T16:00:00Z",
			v1alpha1.AnnotationCordonedBy:       "nodewarden",
			v1alpha1.AnnotationAddedTaints:      "nodewarden.io/maintenance:NoSchedule",
			v1alpha1.AnnotationAddedAnnotations: "example.com/reason",
			"example.com/reason":                "maintenance",
		},
		RemoveAnnotations: []string{v1alpha1.AnnotationHumanUncordoned},
		Unschedulable:     ptr(true),
		ReplaceTaints:     true,
		Taints: []corev1.Taint{
			{Key: "team.example/hold", Effect: corev1.TaintEffectNoExecute},
			{Key: "nodewarden.io/maintenance", Value: "reboot", Effect: corev1.TaintEffectNoSchedule},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("CordonPatch (-want +got):\n%s", diff)
	}
	body, err := got.MergePatch()
	if err != nil {
		t.Fatal(err)
	}
	wantBody := `{"metadata":{"annotations":{"example.com/reason":"maintenance","nodewarden.io/added-annotations":"example.com/reason",` +
		`"nodewarden.io/added-taints":"nodewarden.io/maintenance:NoSchedule","nodewarden.io/cordoned-by":"nodewarden",` +
		`"nodewarden.io/human-uncordoned":null,"nodewarden.io/policy":"maint","nodewarden.io/state":"Cordoned",` +
		`"nodewarden.io/state-since":"2024-01-08T17:00:00Z","nodewarden.io/trigger":"HostEventRebootAfter48=True",` +
		`"nodewarden.io/trigger-since":"2024-01-08T16:00:00Z"},"resourceVersion":"7"},` +
		`"spec":{"taints":[{"key":"team.example/hold","effect":"NoExecute"},{"key":"nodewarden.io/maintenance","value":"reboot","effect":"NoSchedule"}],"unschedulable":true}}`
	if diff := cmp.Diff(wantBody, string(body)); diff != "" {
		t.Errorf("MergePatch (-want +got):\n%s", diff)
	}
}

func TestCordonPatchKeepsSomeoneElsesCordon(t *testing.T) {
	policy := rp("maint")
	n := node("a", unschedulable)
	got := CordonPatch(&n, &policy, trigger, t0, "")
	if got.Unschedulable != nil {
		t.Errorf("Unschedulable = %v, want untouched", *got.Unschedulable)
	}
	if by := got.SetAnnotations[v1alpha1.AnnotationCordonedBy]; by != v1alpha1.CordonedByOther {
		t.Errorf("cordoned-by = %q, want %q", by, v1alpha1.CordonedByOther)
	}
}

func TestCordonPatchWithoutCordon(t *testing.T) {
	policy := rp("maint", func(p *v1alpha1.RemediationPolicy) { p.Spec.Cordon = ptr(false) })
	n := node("a")
	got := CordonPatch(&n, &policy, trigger, t0, "")
	if _, ok := got.SetAnnotations[v1alpha1.AnnotationCordonedBy]; ok || got.Unschedulable != nil {
		t.Errorf("cordon: false must not cordon: %+v", got)
	}
}

func TestReleasePatch(t *testing.T) {
	ours := []nodeOpt{
		held("maint", v1alpha1.StateDrained),
		annotate(v1alpha1.AnnotationTriggerSince, "2024-01-08T16:00:00Z"),
		annotate(v1alpha1.AnnotationAddedTaints, "nodewarden.io/maintenance:NoSchedule"),
		annotate(v1alpha1.AnnotationAddedAnnotations, "example.com/reason"),
		annotate("example.com/reason", "maintenance"),
		annotate("example.com/owner", "sre"),
		taint("team.example/hold", corev1.TaintEffectNoExecute),
		taint("nodewarden.io/maintenance", corev1.TaintEffectNoSchedule),
		taint("nodewarden.io/maintenance", corev1.TaintEffectNoExecute), // same key, other effect: not ours
	}
	stateKeys := []string{
		v1alpha1.AnnotationAddedAnnotations, v1alpha1.AnnotationAddedTaints, v1alpha1.AnnotationCordonedBy,
		v1alpha1.AnnotationPolicy, v1alpha1.AnnotationState, v1alpha1.AnnotationStateSince,
		v1alpha1.AnnotationTrigger, v1alpha1.AnnotationTriggerSince,
	}
	tests := []struct {
		name string
		node corev1.Node
		undo bool
		want NodePatch
	}{
		{
			name: "undo what nodewarden did",
			node: node("a", ours...),
			undo: true,
			want: NodePatch{
				ResourceVersion:   "7",
				RemoveAnnotations: append([]string{"example.com/reason"}, stateKeys...),
				Unschedulable:     ptr(false),
				ReplaceTaints:     true,
				Taints: []corev1.Taint{
					{Key: "team.example/hold", Effect: corev1.TaintEffectNoExecute},
					{Key: "nodewarden.io/maintenance", Effect: corev1.TaintEffectNoExecute},
				},
			},
		},
		{
			name: "someone else's cordon stays",
			node: node("a", append(ours, annotate(v1alpha1.AnnotationCordonedBy, v1alpha1.CordonedByOther))...),
			undo: true,
			want: NodePatch{
				ResourceVersion:   "7",
				RemoveAnnotations: append([]string{"example.com/reason"}, stateKeys...),
				ReplaceTaints:     true,
				Taints: []corev1.Taint{
					{Key: "team.example/hold", Effect: corev1.TaintEffectNoExecute},
					{Key: "nodewarden.io/maintenance", Effect: corev1.TaintEffectNoExecute},
				},
			},
		},
		{
			name: "uncordonOnRecovery false only forgets",
			node: node("a", ours...),
			undo: false,
			want: NodePatch{ResourceVersion: "7", RemoveAnnotations: stateKeys},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, ReleasePatch(&tc.node, tc.undo)); diff != "" {
				t.Errorf("ReleasePatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStopPatch(t *testing.T) {
	n := node("a", held("maint", v1alpha1.StateDraining), func(n *corev1.Node) { n.Spec.Unschedulable = false })
	got := StopPatch(&n, t0.Add(-time.Hour))
	if got.Unschedulable != nil {
		t.Errorf("a stop never touches spec.unschedulable, got %v", *got.Unschedulable)
	}
	if diff := cmp.Diff(map[string]string{v1alpha1.AnnotationHumanUncordoned: "2024-01-08T16:00:00Z"}, got.SetAnnotations); diff != "" {
		t.Errorf("SetAnnotations (-want +got):\n%s", diff)
	}
}

// Taking a node and releasing it gives back the node as it was, whatever
// taints and annotations it had of its own.
func TestCordonThenReleaseRestoresTheNode(t *testing.T) {
	policy := rp("maint",
		withTaints(corev1.Taint{Key: "nodewarden.io/maintenance", Effect: corev1.TaintEffectNoSchedule}, corev1.Taint{Key: "x", Effect: corev1.TaintEffectNoExecute}),
		withAnnotations("example.com/reason", "maintenance", "example.com/owner", "sre"),
	)
	for _, original := range []corev1.Node{
		node("plain"),
		node("cordoned", unschedulable),
		node("tainted", taint("x", corev1.TaintEffectNoExecute), annotate("example.com/owner", "me")),
	} {
		t.Run(original.Name, func(t *testing.T) {
			taken := apply(t, original, CordonPatch(&original, &policy, trigger, t0, ""))
			if !taken.Spec.Unschedulable {
				t.Errorf("taken node is schedulable")
			}
			released := apply(t, taken, ReleasePatch(&taken, true))
			if diff := cmp.Diff(original, released); diff != "" {
				t.Errorf("release did not restore the node (-original +released):\n%s", diff)
			}
		})
	}
}

func TestMergePatchRemovesLastTaint(t *testing.T) {
	n := node("a", held("maint", v1alpha1.StateDrained),
		annotate(v1alpha1.AnnotationAddedTaints, "k:NoSchedule"), taint("k", corev1.TaintEffectNoSchedule))
	released := apply(t, n, ReleasePatch(&n, true))
	if len(released.Spec.Taints) != 0 || released.Spec.Unschedulable || released.Annotations != nil {
		t.Errorf("released node = %+v", released)
	}
}
