// Package statustest is the cluster the tests of kubectl-nodewarden look
// at: nodes in a few states under two policies, and their records. The unit
// tests use the objects as they are; the golden test creates them on a real
// API server.
package statustest

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// Now is the time the fixture is looked at.
var Now = time.Date(2026, 1, 8, 17, 0, 0, 0, time.UTC)

// Condition types of the fixture.
const (
	Reboot = "HostEventRebootAfter48"
	Kernel = "KernelDeadlock"
)

// Fixture is the cluster:
//
//   - policy maintenance (reboot condition, maxConcurrent 2) holds node-a
//     (Draining, deadline in 3h) and node-c (DrainFailed, blocked by a
//     PDB, deadline in 1h), so node-b (deadline in 5h) waits for the budget;
//   - policy kernel (KernelDeadlock for 10m) is paused: node-d waits for
//     it; node-e's condition is 2m old, so it has 8m of for: left;
//   - node-f is healthy.
type Fixture struct {
	Policies []v1alpha1.RemediationPolicy
	Nodes    []corev1.Node
	Records  []v1alpha1.RemediationRecord
}

func ptr[T any](v T) *T { return &v }

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// New returns a fresh fixture.
func New() Fixture {
	policy := func(name string, rule v1alpha1.ConditionRule, maxConcurrent int32) v1alpha1.RemediationPolicy {
		return v1alpha1.RemediationPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1alpha1.RemediationPolicySpec{
				Conditions: []v1alpha1.ConditionRule{rule},
				Cordon:     ptr(true),
				Drain: v1alpha1.DrainSpec{
					Enabled:     ptr(true),
					Timeout:     metav1.Duration{Duration: 15 * time.Minute},
					MaxAttempts: 3,
				},
				UncordonOnRecovery: ptr(true),
				MaxConcurrent:      intstr.FromInt32(maxConcurrent),
				MaxUnhealthy:       intstr.FromString("50%"),
			},
		}
	}
	maintenance := policy("maintenance", v1alpha1.ConditionRule{Type: Reboot, Status: corev1.ConditionTrue}, 2)
	kernel := policy("kernel", v1alpha1.ConditionRule{Type: Kernel, Status: corev1.ConditionTrue, For: metav1.Duration{Duration: 10 * time.Minute}}, 1)
	kernel.Spec.Paused = true

	reboot := func(since time.Duration, deadline time.Duration) corev1.NodeCondition {
		return corev1.NodeCondition{
			Type: Reboot, Status: corev1.ConditionTrue, Reason: "SystemMaintenanceReboot",
			LastTransitionTime: metav1.NewTime(Now.Add(-since)),
			Message:            "SystemMaintenance.Reboot is Scheduled, not before " + rfc(Now.Add(deadline)),
		}
	}
	kernelCond := func(since time.Duration) corev1.NodeCondition {
		return corev1.NodeCondition{
			Type: Kernel, Status: corev1.ConditionTrue, Reason: "DockerHung",
			LastTransitionTime: metav1.NewTime(Now.Add(-since)),
			Message:            "task docker:2740 blocked for more than 120 seconds",
		}
	}
	node := func(name string, conds ...corev1.NodeCondition) corev1.Node {
		return corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
			Status:     corev1.NodeStatus{Conditions: conds},
		}
	}
	hold := func(n *corev1.Node, state v1alpha1.NodeState, since time.Duration, deadline time.Duration) {
		n.Spec.Unschedulable = true
		n.Annotations = map[string]string{
			v1alpha1.AnnotationState:        string(state),
			v1alpha1.AnnotationPolicy:       "maintenance",
			v1alpha1.AnnotationTrigger:      Reboot + "=True",
			v1alpha1.AnnotationStateSince:   rfc(Now.Add(-since)),
			v1alpha1.AnnotationTriggerSince: rfc(Now.Add(-since)),
			v1alpha1.AnnotationCordonedBy:   v1alpha1.CordonedByNodewarden,
			v1alpha1.AnnotationDeadline:     rfc(Now.Add(deadline)),
		}
	}
	a := node("node-a", reboot(20*time.Minute, 3*time.Hour))
	hold(&a, v1alpha1.StateDraining, 10*time.Minute, 3*time.Hour)
	a.Annotations[v1alpha1.AnnotationDrainAttempts] = "1"
	a.Annotations[v1alpha1.AnnotationDrainStarted] = rfc(Now.Add(-5 * time.Minute))
	b := node("node-b", reboot(15*time.Minute, 5*time.Hour))
	c := node("node-c", reboot(2*time.Hour, time.Hour))
	hold(&c, v1alpha1.StateDrainFailed, 30*time.Minute, time.Hour)
	c.Annotations[v1alpha1.AnnotationDrainAttempts] = "3"
	c.Annotations[v1alpha1.AnnotationBlockedBy] = "PodDisruptionBudget default/web allows no disruption (pod default/web-7d4b9c8f5-x2x9q)"
	d := node("node-d", kernelCond(time.Hour))
	e := node("node-e", kernelCond(2*time.Minute))
	f := node("node-f")

	step := func(ago time.Duration, reason, typ, msg string) v1alpha1.RecordStep {
		return v1alpha1.RecordStep{Time: metav1.NewTime(Now.Add(-ago)), Reason: reason, Type: typ, Message: msg}
	}
	record := func(name, node string, started time.Duration, outcome v1alpha1.RecordOutcome, steps ...v1alpha1.RecordStep) v1alpha1.RemediationRecord {
		open := "false"
		if outcome == v1alpha1.OutcomeOpen {
			open = "true"
		}
		r := v1alpha1.RemediationRecord{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
				v1alpha1.LabelRecordNode: node, v1alpha1.LabelRecordPolicy: "maintenance", v1alpha1.LabelRecordOpen: open,
			}},
			Status: v1alpha1.RemediationRecordStatus{
				Node: node, Policy: "maintenance",
				Trigger:   v1alpha1.RecordTrigger{Type: Reboot, Status: corev1.ConditionTrue, Reason: "SystemMaintenanceReboot"},
				StartedAt: metav1.NewTime(Now.Add(-started)),
				Outcome:   outcome,
				Steps:     steps,
			},
		}
		return r
	}
	old := record("node-c-maintenance-1", "node-c", 26*time.Hour, v1alpha1.OutcomeReleased,
		step(26*time.Hour, "Cordoned", "Normal", "policy maintenance: cordoned because of HostEventRebootAfter48=True"),
		step(26*time.Hour, "DrainStarted", "Normal", "policy maintenance: drain attempt 1 started"),
		step(26*time.Hour-2*time.Minute, "DrainSucceeded", "Normal", "policy maintenance: drained, 4 pods evicted"),
		step(25*time.Hour, "Uncordoned", "Normal", "policy maintenance: the node recovered; uncordoned"))
	old.Status.EndedAt = ptr(metav1.NewTime(Now.Add(-25 * time.Hour)))
	old.Status.Duration = "1h0m0s"
	old.Status.PodsEvicted = 4
	cOpen := record("node-c-maintenance-2", "node-c", 30*time.Minute, v1alpha1.OutcomeOpen,
		step(30*time.Minute, "Cordoned", "Normal", "policy maintenance: cordoned because of HostEventRebootAfter48=True"),
		step(30*time.Minute, "DrainStarted", "Normal", "policy maintenance: drain attempt 1 started"),
		step(15*time.Minute, "DrainFailed", "Warning", "policy maintenance: drain attempt 3 failed: PodDisruptionBudget default/web allows no disruption"))
	cOpen.Status.DroppedSteps = 2
	cOpen.Status.BlockedBy = c.Annotations[v1alpha1.AnnotationBlockedBy]
	aOpen := record("node-a-maintenance-1", "node-a", 10*time.Minute, v1alpha1.OutcomeOpen,
		step(10*time.Minute, "Cordoned", "Normal", "policy maintenance: cordoned because of HostEventRebootAfter48=True"),
		step(5*time.Minute, "DrainStarted", "Normal", "policy maintenance: drain attempt 1 started"))
	return Fixture{
		Policies: []v1alpha1.RemediationPolicy{kernel, maintenance},
		Nodes:    []corev1.Node{a, b, c, d, e, f},
		Records:  []v1alpha1.RemediationRecord{old, cOpen, aOpen},
	}
}
