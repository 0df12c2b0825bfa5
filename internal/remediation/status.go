package remediation

import (
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// Reasons of the policy's status conditions.
const (
	ReasonActive               = "Active"
	ReasonDryRun               = "DryRun"
	ReasonInvalidSpec          = "InvalidSpec"
	ReasonMaxUnhealthyExceeded = "MaxUnhealthyExceeded"
	ReasonWithinMaxUnhealthy   = "WithinMaxUnhealthy"
)

// Status is the policy's new status from what Decide counted. A condition's
// lastTransitionTime moves to now only when its status changes.
func Status(rp *v1alpha1.RemediationPolicy, s PolicyStatus, now time.Time) v1alpha1.RemediationPolicyStatus {
	out := v1alpha1.RemediationPolicyStatus{
		ObservedGeneration: rp.Generation,
		SelectedNodes:      s.Selected,
		TriggeredNodes:     s.Triggered,
		RemediatingNodes:   s.Remediating,
		Conditions:         slices.Clone(rp.Status.Conditions),
	}
	for _, c := range []metav1.Condition{readyCondition(s), circuitCondition(s)} {
		c.ObservedGeneration = rp.Generation
		c.LastTransitionTime = metav1.NewTime(now)
		meta.SetStatusCondition(&out.Conditions, c)
	}
	return out
}

func readyCondition(s PolicyStatus) metav1.Condition {
	c := metav1.Condition{
		Type:   v1alpha1.ConditionReady,
		Status: metav1.ConditionTrue,
		Reason: ReasonActive,
		Message: fmt.Sprintf("%d nodes selected, %d triggered, %d remediating (maxConcurrent %d), %d waiting",
			s.Selected, s.Triggered, s.Remediating, s.MaxConcurrent, s.Deferred),
	}
	switch {
	case s.Invalid != "":
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, ReasonInvalidSpec, s.Invalid
	case s.DryRun:
		c.Reason, c.Message = ReasonDryRun, "dry run, nothing is written: "+c.Message
	}
	return c
}

func circuitCondition(s PolicyStatus) metav1.Condition {
	c := metav1.Condition{
		Type:    v1alpha1.ConditionCircuitOpen,
		Status:  metav1.ConditionFalse,
		Reason:  ReasonWithinMaxUnhealthy,
		Message: fmt.Sprintf("%d of %d selected nodes triggered, maxUnhealthy allows %d", s.Triggered, s.Selected, s.MaxUnhealthy),
	}
	switch {
	case s.Invalid != "":
		c.Status, c.Reason, c.Message = metav1.ConditionUnknown, ReasonInvalidSpec, s.Invalid
	case s.CircuitOpen:
		c.Status, c.Reason = metav1.ConditionTrue, ReasonMaxUnhealthyExceeded
		c.Message += ": no node is cordoned or drained until fewer are triggered"
	}
	return c
}
