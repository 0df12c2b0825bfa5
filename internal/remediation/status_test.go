package remediation

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

func TestStatus(t *testing.T) {
	earlier := metav1.NewTime(t0.Add(-time.Hour))
	policy := rp("p")
	policy.Generation = 4
	policy.Status.Conditions = []metav1.Condition{
		{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: ReasonActive, LastTransitionTime: earlier},
		{Type: v1alpha1.ConditionCircuitOpen, Status: metav1.ConditionFalse, Reason: ReasonWithinMaxUnhealthy, LastTransitionTime: earlier},
	}
	got := Status(&policy, PolicyStatus{Name: "p", Selected: 6, Triggered: 4, Remediating: 1, Deferred: 3, MaxConcurrent: 1, MaxUnhealthy: 3, CircuitOpen: true}, t0)
	want := v1alpha1.RemediationPolicyStatus{
		ObservedGeneration: 4, SelectedNodes: 6, TriggeredNodes: 4, RemediatingNodes: 1,
		Conditions: []metav1.Condition{
			{
				Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: ReasonActive, ObservedGeneration: 4,
				LastTransitionTime: earlier, // unchanged status keeps its time
				Message:            "6 nodes selected, 4 triggered, 1 remediating (maxConcurrent 1), 3 waiting",
			},
			{
				Type: v1alpha1.ConditionCircuitOpen, Status: metav1.ConditionTrue, Reason: ReasonMaxUnhealthyExceeded, ObservedGeneration: 4,
				LastTransitionTime: metav1.NewTime(t0),
				Message:            "4 of 6 selected nodes triggered, maxUnhealthy allows 3: no node is cordoned or drained until fewer are triggered",
			},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Status (-want +got):\n%s", diff)
	}
	if policy.Status.Conditions[1].Status != metav1.ConditionFalse {
		t.Errorf("Status modified the policy it was given")
	}
}

func TestStatusInvalid(t *testing.T) {
	policy := rp("p")
	got := Status(&policy, PolicyStatus{Name: "p", Invalid: "maxConcurrent must be at least 1"}, t0)
	for _, c := range got.Conditions {
		if c.Reason != ReasonInvalidSpec || c.Status == metav1.ConditionTrue || c.Message != "maxConcurrent must be at least 1" {
			t.Errorf("condition %s = %s/%s %q", c.Type, c.Status, c.Reason, c.Message)
		}
	}
}
