package remediation

import (
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// Reasons of the policy's status conditions.
const (
	ReasonActive               = "Active"
	ReasonDryRun               = "DryRun"
	ReasonPaused               = "Paused"
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
		StuckNodes:         s.Stuck,
		OverBudgetNodes:    s.OverBudget,
		RepairingNodes:     s.Repairing,
		RecentRepairs:      lastN(s.RecentRepairs, maxRecentRepairs),
		DeferredNodes:      s.DeferredNodes,
		Conditions:         slices.Clone(rp.Status.Conditions),
	}
	if !s.NextWindow.IsZero() {
		out.NextWindow = &metav1.Time{Time: s.NextWindow}
	}
	for _, c := range []metav1.Condition{readyCondition(s), circuitCondition(s)} {
		c.ObservedGeneration = rp.Generation
		c.LastTransitionTime = metav1.NewTime(now)
		meta.SetStatusCondition(&out.Conditions, c)
	}
	return out
}

// maxRecentRepairs is the schema's bound on status.recentRepairs; the
// newest are kept (maxRepairsPerHour, at most 1000, counts the newest).
const maxRecentRepairs = 1000

func lastN[T any](s []T, n int) []T {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// maxListed bounds status.stuckNodes and status.overBudgetNodes, so a
// cluster-wide incident does not make the policy object huge.
const maxListed = 20

// repairingCount counts the nodes p holds in Repairing once the plan is
// carried out.
func (d *decider) repairingCount(p *policy, views []nodeView) int32 {
	var n int32
	for i := range views {
		if nd := d.plan.Nodes[i]; heldAfter(nd, p) && annotationAfter(nd, views[i].node, v1alpha1.AnnotationState) == string(v1alpha1.StateRepairing) {
			n++
		}
	}
	return n
}

// stuck lists the nodes p holds in DrainFailed once the plan is carried
// out, the longest stuck first.
func (d *decider) stuck(p *policy, views []nodeView) []v1alpha1.StuckNode {
	var out []v1alpha1.StuckNode
	for i := range views {
		v, nd := &views[i], d.plan.Nodes[i]
		if !heldAfter(nd, p) || annotationAfter(nd, v.node, v1alpha1.AnnotationState) != string(v1alpha1.StateDrainFailed) {
			continue
		}
		s := v1alpha1.StuckNode{
			Name:      v.node.Name,
			Since:     metav1.NewTime(timeAfter(nd, v.node, v1alpha1.AnnotationStateSince)),
			Attempts:  int32(attempts(v.node)),
			BlockedBy: annotationAfter(nd, v.node, v1alpha1.AnnotationBlockedBy),
		}
		if !v.nextAttempt.IsZero() {
			s.NextAttempt = &metav1.Time{Time: v.nextAttempt}
		}
		out = append(out, s)
	}
	slices.SortStableFunc(out, func(a, b v1alpha1.StuckNode) int { return a.Since.Compare(b.Since.Time) })
	return out[:min(len(out), maxListed)]
}

// overBudget lists the nodes p holds beyond maxConcurrent once the plan is
// carried out.
func (d *decider) overBudget(p *policy, views []nodeView) []v1alpha1.OverBudgetNode {
	var out []v1alpha1.OverBudgetNode
	for i := range views {
		v, nd := &views[i], d.plan.Nodes[i]
		if !heldAfter(nd, p) || annotationAfter(nd, v.node, v1alpha1.AnnotationOverBudget) == "" {
			continue
		}
		o := v1alpha1.OverBudgetNode{Name: v.node.Name}
		if dl := timeAfter(nd, v.node, v1alpha1.AnnotationDeadline); !dl.IsZero() {
			o.Deadline = &metav1.Time{Time: dl}
		}
		out = append(out, o)
		if len(out) == maxListed {
			break
		}
	}
	return out
}

// heldAfter: p holds the node once nd is carried out.
func heldAfter(nd NodeDecision, p *policy) bool {
	switch nd.Action {
	case ActionRelease, ActionStop, ActionNone:
		return false
	case ActionDefer:
		return nd.State != "" && nd.Policy == p.name
	}
	return nd.Policy == p.name
}

// annotationAfter is the node's annotation once nd's patch is applied.
func annotationAfter(nd NodeDecision, n *corev1.Node, key string) string {
	if v, ok := nd.Patch.SetAnnotations[key]; ok {
		return v
	}
	if slices.Contains(nd.Patch.RemoveAnnotations, key) {
		return ""
	}
	return n.Annotations[key]
}

func timeAfter(nd NodeDecision, n *corev1.Node, key string) time.Time {
	t, err := time.Parse(time.RFC3339, annotationAfter(nd, n, key))
	if err != nil {
		return time.Time{}
	}
	return t
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
	case s.Paused:
		// Still Ready: releases and running drains go on.
		c.Reason, c.Message = ReasonPaused, "paused (spec.paused), nothing new starts: "+c.Message
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
