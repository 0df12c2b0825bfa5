package history

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/remediation"
)

func heldBy(policy string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Annotations: map[string]string{}}}
	if policy != "" {
		n.Annotations[v1alpha1.AnnotationPolicy] = policy
	}
	return n
}

func TestOps(t *testing.T) {
	for _, tc := range []struct {
		name  string
		event remediation.Event
		node  *corev1.Node
		want  []Op
	}{
		{"policy event", remediation.Event{Policy: "p", Reason: remediation.ReasonCircuitOpen}, nil, nil},
		{"deferred: not taken", remediation.Event{Node: "n1", Policy: "p", Reason: remediation.ReasonDeferred}, heldBy(""), nil},
		{"waiting starts", remediation.Event{Node: "n1", Policy: "p", Reason: remediation.ReasonWaiting}, heldBy(""),
			[]Op{{Kind: Append, Policy: "p"}}},
		{"cordoned starts or continues (after Waiting)", remediation.Event{Node: "n1", Policy: "p", Reason: remediation.ReasonCordoned}, heldBy("p"),
			[]Op{{Kind: Append, Policy: "p"}}},
		{"drain step", remediation.Event{Node: "n1", Policy: "p", Reason: remediation.ReasonDrainFailed}, heldBy("p"),
			[]Op{{Kind: Append, Policy: "p"}}},
		{"released", remediation.Event{Node: "n1", Policy: "p", Reason: remediation.ReasonReleased}, heldBy("p"),
			[]Op{{Kind: Close, Policy: "p", Outcome: v1alpha1.OutcomeReleased}}},
		{"uncordoned on release", remediation.Event{Node: "n1", Policy: "p", Reason: remediation.ReasonUncordoned}, heldBy("p"),
			[]Op{{Kind: Close, Policy: "p", Outcome: v1alpha1.OutcomeReleased}}},
		{"released, policy deleted: the holder from the node", remediation.Event{Node: "n1", Reason: remediation.ReasonReleased}, heldBy("gone"),
			[]Op{{Kind: Close, Policy: "gone", Outcome: v1alpha1.OutcomeReleased}}},
		{"orphaned continues the holder's", remediation.Event{Node: "n1", Reason: remediation.ReasonOrphaned}, heldBy("gone"),
			[]Op{{Kind: Append, Policy: "gone"}}},
		{"human uncordon", remediation.Event{Node: "n1", Policy: "p", Reason: remediation.ReasonStopped}, heldBy("p"),
			[]Op{{Kind: Close, Policy: "p", Outcome: v1alpha1.OutcomeHumanUncordoned}}},
		{"handover closes the old, opens the new", remediation.Event{Node: "n1", Policy: "new", Reason: remediation.ReasonHandedOver}, heldBy("old"),
			[]Op{{Kind: Close, Policy: "old", Outcome: v1alpha1.OutcomeHandedOver}, {Kind: Append, Policy: "new"}}},
		{"no policy at all", remediation.Event{Node: "n1", Reason: remediation.ReasonReleased}, heldBy(""), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Ops(tc.event, tc.node)); diff != "" {
				t.Errorf("Ops (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTriggerOf(t *testing.T) {
	deadline := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	cond := corev1.NodeCondition{Type: "HostEventRebootAfter48", Status: corev1.ConditionTrue, Reason: "SystemMaintenanceRebootScheduled"}
	taken := heldBy("")
	taken.Status.Conditions = []corev1.NodeCondition{{Type: "Ready", Reason: "KubeletReady"}, cond}
	held := heldBy("p")
	held.Status.Conditions = taken.Status.Conditions
	held.Annotations[v1alpha1.AnnotationTrigger] = "HostEventRebootAfter48=True"
	held.Annotations[v1alpha1.AnnotationDeadline] = deadline.Format(time.RFC3339)
	want := v1alpha1.RecordTrigger{Type: cond.Type, Status: cond.Status, Reason: cond.Reason, Deadline: &metav1.Time{Time: deadline}}
	for _, tc := range []struct {
		name  string
		event remediation.Event
		node  *corev1.Node
		want  v1alpha1.RecordTrigger
	}{
		{"from the Event", remediation.Event{Node: "n1", Policy: "p", Trigger: &remediation.Trigger{Type: cond.Type, Status: cond.Status, Deadline: deadline}}, taken, want},
		{"from the annotations", remediation.Event{Node: "n1", Policy: "p"}, held, want},
		{"policy deleted: the holder's annotations", remediation.Event{Node: "n1"}, held, want},
		{"another policy's annotations are not this one's", remediation.Event{Node: "n1", Policy: "q"}, held, v1alpha1.RecordTrigger{}},
		{"nothing says", remediation.Event{Node: "n1", Policy: "p"}, taken, v1alpha1.RecordTrigger{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, TriggerOf(tc.event, tc.node)); diff != "" {
				t.Errorf("TriggerOf (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEpisode(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 500, time.UTC)
	trig := v1alpha1.RecordTrigger{Type: "KernelDeadlock", Status: corev1.ConditionTrue}
	st := New("n1", "p", v1alpha1.RecordTrigger{}, t0)
	steps := []remediation.Event{
		{Reason: remediation.ReasonCordoned},
		{Reason: remediation.ReasonDrainStarted},
		{Reason: remediation.ReasonDrainFailed, BlockedBy: "pod default/web-1: PodDisruptionBudget web"},
		{Reason: remediation.ReasonDrainStarted},
		{Reason: remediation.ReasonDrainSucceeded, Evicted: 3},
		{Reason: remediation.ReasonRepairStarted},
		{Reason: remediation.ReasonRepairSucceeded},
		{Reason: remediation.ReasonUncordoned},
	}
	for i, e := range steps {
		Add(&st, StepOf(e, t0.Add(time.Duration(i)*time.Minute)), e, trig, 5)
	}
	End(&st, v1alpha1.OutcomeReleased, t0.Add(7*time.Minute+30*time.Second))
	var reasons []string
	for _, s := range st.Steps {
		reasons = append(reasons, s.Reason)
	}
	if want := []string{"Cordoned", "DrainStarted", "DrainFailed", "DrainStarted", "Uncordoned"}; !cmp.Equal(want, reasons) {
		t.Errorf("steps %v, want %v (the first four and the newest)", reasons, want)
	}
	if st.DroppedSteps != 3 || st.PodsEvicted != 3 || st.BlockedBy == "" || st.Trigger != trig {
		t.Errorf("dropped %d, evicted %d, blocked by %q, trigger %+v", st.DroppedSteps, st.PodsEvicted, st.BlockedBy, st.Trigger)
	}
	// Repaired although the bound dropped the RepairSucceeded step.
	if st.Outcome != v1alpha1.OutcomeRepaired || st.RepairsSucceeded != 1 || st.Duration != "7m30s" || st.EndedAt == nil {
		t.Errorf("outcome %s, duration %s, ended %v", st.Outcome, st.Duration, st.EndedAt)
	}

	repaired := New("n1", "p", trig, t0)
	for _, r := range []string{remediation.ReasonCordoned, remediation.ReasonRepairSucceeded, remediation.ReasonReleased} {
		Add(&repaired, StepOf(remediation.Event{Reason: r}, t0), remediation.Event{Reason: r}, trig, 0)
	}
	End(&repaired, v1alpha1.OutcomeReleased, t0)
	if repaired.Outcome != v1alpha1.OutcomeRepaired || repaired.Duration != "0s" {
		t.Errorf("released after a repair: outcome %s, duration %s; want Repaired, 0s", repaired.Outcome, repaired.Duration)
	}
	if l := Labels(repaired); l[v1alpha1.LabelRecordOpen] != "false" || l[v1alpha1.LabelRecordNode] != "n1" || l[v1alpha1.LabelRecordPolicy] != "p" {
		t.Errorf("labels %v", l)
	}
}

func TestName(t *testing.T) {
	start := time.Unix(1764928800, 0)
	if got := Name("ip-10-0-1-2.ec2.internal", "maintenance", start); got != "ip-10-0-1-2.ec2.internal.maintenance.1764928800" {
		t.Errorf("Name = %s", got)
	}
	long := strings.Repeat("a", 200)
	a, b := Name(long+"x", long, start), Name(long+"y", long, start)
	if a == b {
		t.Errorf("two long names collide: %s", a)
	}
	for _, n := range []string{a, b} {
		if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
			t.Errorf("%s: %v", n, errs)
		}
	}
	if v := LabelValue(long); len(validation.IsValidLabelValue(v)) > 0 {
		t.Errorf("label value %s: %v", v, validation.IsValidLabelValue(v))
	}
}

func TestPrune(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	rec := func(name string, endedHoursAgo int) v1alpha1.RemediationRecord {
		r := v1alpha1.RemediationRecord{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: v1alpha1.RemediationRecordStatus{Outcome: v1alpha1.OutcomeOpen}}
		if endedHoursAgo >= 0 {
			end := metav1.NewTime(now.Add(-time.Duration(endedHoursAgo) * time.Hour))
			r.Status.Outcome, r.Status.EndedAt = v1alpha1.OutcomeReleased, &end
		}
		return r
	}
	records := []v1alpha1.RemediationRecord{rec("open-old", -1), rec("c", 1), rec("a", 50), rec("b", 3), rec("d", 800)}
	for _, tc := range []struct {
		max    int
		maxAge time.Duration
		want   []string
	}{
		{0, 0, nil},
		{10, 0, nil},
		{4, 0, []string{"d"}},
		{2, 0, []string{"d", "a", "b"}},
		{1, 0, []string{"d", "a", "b", "c"}}, // the open one stays, above the bound
		{0, 30 * 24 * time.Hour, []string{"d"}},
		{0, 2 * time.Hour, []string{"d", "a", "b"}},
		{4, 48 * time.Hour, []string{"d", "a"}},
	} {
		t.Run(fmt.Sprintf("max %d age %s", tc.max, tc.maxAge), func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Prune(records, now, tc.max, tc.maxAge)); diff != "" {
				t.Errorf("Prune (-want +got):\n%s", diff)
			}
		})
	}
}
