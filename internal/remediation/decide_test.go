package remediation

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

const (
	soon  = "2024-01-09T02:00:00Z"
	later = "2024-01-10T02:00:00Z"
)

func TestDecide(t *testing.T) {
	tests := []struct {
		name     string
		policies []v1alpha1.RemediationPolicy
		nodes    []corev1.Node
		want     []string      // actions()
		events   []string      // reasons(); nil means "not checked"
		requeue  time.Duration // Plan.RequeueAfter
	}{
		{
			name:     "nothing holds",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			nodes:    []corev1.Node{node("a"), node("b", cond(reboot, corev1.ConditionFalse, time.Hour, ""))},
			want:     []string{"a: None", "b: None"},
			events:   []string{},
		},
		{
			name:     "a holding condition cordons",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Minute, later))},
			want:     []string{"a: Cordon p"},
			events:   []string{"node/a Cordoned"},
		},
		{
			name: "conditions are any-of",
			policies: []v1alpha1.RemediationPolicy{rp("p", maxConcurrent(intstr.FromInt32(5)), maxUnhealthy(intstr.FromInt32(5)), rules(
				rule("KernelDeadlock", corev1.ConditionTrue, 0),
				rule("Ready", corev1.ConditionUnknown, 0),
				rule("DiskBad", corev1.ConditionFalse, 0),
			))},
			nodes: []corev1.Node{
				node("a", cond("KernelDeadlock", corev1.ConditionTrue, time.Minute, "")),
				node("b", cond("Ready", corev1.ConditionUnknown, time.Minute, "")),
				node("c", cond("DiskBad", corev1.ConditionFalse, time.Minute, "")),
				node("d", cond("KernelDeadlock", corev1.ConditionFalse, time.Minute, ""), cond("Ready", corev1.ConditionTrue, time.Minute, "")),
			},
			want: []string{"a: Cordon p", "b: Cordon p", "c: Cordon p", "d: None"},
		},
		{
			name:     "held for less than for: requeues at the exact remaining time",
			policies: []v1alpha1.RemediationPolicy{rp("p", rules(rule(reboot, corev1.ConditionTrue, 10*time.Minute)))},
			nodes: []corev1.Node{
				node("a", rebootTrue(4*time.Minute, "")),
				node("b", rebootTrue(9*time.Minute+30*time.Second, "")),
			},
			want:    []string{"a: None", "b: None"},
			requeue: 30 * time.Second,
		},
		{
			name:     "held exactly for: acts",
			policies: []v1alpha1.RemediationPolicy{rp("p", rules(rule(reboot, corev1.ConditionTrue, 10*time.Minute)))},
			nodes:    []corev1.Node{node("a", rebootTrue(10*time.Minute, ""))},
			want:     []string{"a: Cordon p"},
		},
		{
			name: "the shortest of several for: sets the requeue",
			policies: []v1alpha1.RemediationPolicy{rp("p", rules(
				rule(reboot, corev1.ConditionTrue, 10*time.Minute),
				rule("KernelDeadlock", corev1.ConditionTrue, 2*time.Minute),
			))},
			nodes: []corev1.Node{node("a", rebootTrue(time.Minute, ""), cond("KernelDeadlock", corev1.ConditionTrue, 90*time.Second, ""))},
			want:  []string{"a: None"}, requeue: 30 * time.Second,
		},
		{
			name:     "not selected",
			policies: []v1alpha1.RemediationPolicy{rp("p", selector("pool", "gpu"))},
			nodes:    []corev1.Node{node("a", label("pool", "cpu"), rebootTrue(time.Hour, "")), node("b", label("pool", "gpu"), rebootTrue(time.Hour, ""))},
			want:     []string{"a: None", "b: Cordon p"},
		},
		{
			name:     "maxConcurrent 1: earliest deadline first, the rest deferred",
			policies: []v1alpha1.RemediationPolicy{rp("p", maxUnhealthy(intstr.FromString("100%")))},
			nodes: []corev1.Node{
				node("a", rebootTrue(3*time.Hour, "")),
				node("b", rebootTrue(time.Minute, later)),
				node("c", rebootTrue(time.Minute, soon)),
			},
			want:   []string{"a: Defer p", "b: Defer p", "c: Cordon p"},
			events: []string{"node/c Cordoned", "node/b Deferred", "node/a Deferred"},
			// b must be taken drain.timeout before its deadline, budget or not.
			requeue: time.Date(2024, 1, 10, 2, 0, 0, 0, time.UTC).Add(-15 * time.Minute).Sub(t0),
		},
		{
			name:     "order: deadline, then no deadline by oldest trigger, then name",
			policies: []v1alpha1.RemediationPolicy{rp("p", maxConcurrent(intstr.FromInt32(4)), maxUnhealthy(intstr.FromString("100%")))},
			nodes: []corev1.Node{
				node("n1", rebootTrue(time.Minute, "")),
				node("n2", rebootTrue(time.Hour, "")),
				node("n3", rebootTrue(time.Hour, "")),
				node("n4", rebootTrue(time.Minute, later)),
				node("n5", rebootTrue(2*time.Hour, later)),
				node("n6", rebootTrue(time.Second, soon)),
			},
			// Taken: n6 (soonest), n5 (later, older), n4 (later), n2 (no deadline, older, name).
			want: []string{"n1: Defer p", "n2: Cordon p", "n3: Defer p", "n4: Cordon p", "n5: Cordon p", "n6: Cordon p"},
		},
		{
			name:     "maxConcurrent as a percentage rounds down",
			policies: []v1alpha1.RemediationPolicy{rp("p", maxConcurrent(intstr.FromString("50%")), maxUnhealthy(intstr.FromString("100%")))},
			nodes: []corev1.Node{
				node("a", rebootTrue(4*time.Minute, "")),
				node("b", rebootTrue(3*time.Minute, "")),
				node("c", rebootTrue(2*time.Minute, "")),
				node("d"), node("e"),
			},
			want: []string{"a: Cordon p", "b: Cordon p", "c: Defer p", "d: None", "e: None"}, // 50% of 5 = 2
		},
		{
			name:     "a small percentage still allows one node",
			policies: []v1alpha1.RemediationPolicy{rp("p", maxConcurrent(intstr.FromString("10%")))},
			nodes:    []corev1.Node{node("a", rebootTrue(2*time.Minute, "")), node("b", rebootTrue(time.Minute, "")), node("c"), node("d"), node("e")},
			want:     []string{"a: Cordon p", "b: Defer p", "c: None", "d: None", "e: None"},
		},
		{
			name:     "held nodes in every state use the budget",
			policies: []v1alpha1.RemediationPolicy{rp("p", maxConcurrent(intstr.FromInt32(3)), maxUnhealthy(intstr.FromString("100%")))},
			nodes: []corev1.Node{
				node("a", held("p", v1alpha1.StateDraining), rebootTrue(time.Hour, "")),
				node("b", held("p", v1alpha1.StateDrained), rebootTrue(time.Hour, "")),
				node("c", held("p", v1alpha1.StateDrainFailed), annotate(v1alpha1.AnnotationDrainAttempts, "3"), rebootTrue(time.Hour, "")),
				node("d", rebootTrue(time.Hour, soon)),
			},
			want:    []string{"a: Hold p", "b: Hold p", "c: Hold p", "d: Defer p"},
			requeue: time.Date(2024, 1, 9, 2, 0, 0, 0, time.UTC).Add(-15 * time.Minute).Sub(t0),
		},
		{
			name:     "a deleted node frees its slot",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			// The node held in Draining is gone from the list.
			nodes: []corev1.Node{node("b", rebootTrue(time.Hour, ""))},
			want:  []string{"b: Cordon p"},
		},
		{
			name:     "a node being released still uses its slot in this pass",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			nodes:    []corev1.Node{node("a", held("p", v1alpha1.StateDrained)), node("b", rebootTrue(time.Hour, ""))},
			want:     []string{"a: Release p", "b: Defer p"},
		},
		{
			name:     "circuit breaker: more triggered than maxUnhealthy acts on none, the event fires once",
			policies: []v1alpha1.RemediationPolicy{rp("p", maxConcurrent(intstr.FromInt32(6)))},
			nodes: []corev1.Node{
				node("a", rebootTrue(time.Hour, "")), node("b", rebootTrue(time.Hour, "")),
				node("c", rebootTrue(time.Hour, "")), node("d", rebootTrue(time.Hour, "")),
				node("e"), node("f"),
			},
			want:   []string{"a: Defer p", "b: Defer p", "c: Defer p", "d: Defer p", "e: None", "f: None"},
			events: []string{"policy/p CircuitOpen"},
		},
		{
			name:     "circuit already open: no new event",
			policies: []v1alpha1.RemediationPolicy{rp("p", circuitWasOpen, maxUnhealthy(intstr.FromInt32(0)))},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""))},
			want:     []string{"a: Defer p"},
			events:   []string{},
		},
		{
			name:     "circuit closes: event, and remediation resumes",
			policies: []v1alpha1.RemediationPolicy{rp("p", circuitWasOpen)},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, "")), node("b")},
			want:     []string{"a: Cordon p", "b: None"},
			events:   []string{"policy/p CircuitClosed", "node/a Cordoned"},
		},
		{
			name:     "circuit open: a cordoned node is not drained, releases still happen",
			policies: []v1alpha1.RemediationPolicy{rp("p", maxUnhealthy(intstr.FromInt32(1)), maxConcurrent(intstr.FromInt32(3)))},
			nodes: []corev1.Node{
				node("a", held("p", v1alpha1.StateCordoned), rebootTrue(time.Hour, "")),
				node("b", rebootTrue(time.Hour, "")),
				node("c", held("p", v1alpha1.StateDrained)),
			},
			want: []string{"a: Hold p", "b: Defer p", "c: Release p"},
		},
		{
			name:     "cordoned still holding: the drain starts",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			nodes:    []corev1.Node{node("a", held("p", v1alpha1.StateCordoned), rebootTrue(time.Hour, ""))},
			want:     []string{"a: StartDrain p"},
			events:   []string{"node/a DrainStarted"},
		},
		{
			name:     "drain disabled: the node stays cordoned",
			policies: []v1alpha1.RemediationPolicy{rp("p", noDrain)},
			nodes:    []corev1.Node{node("a", held("p", v1alpha1.StateCordoned), rebootTrue(time.Hour, ""))},
			want:     []string{"a: Hold p"},
		},
		{
			name:     "condition cleared before the drain started: release, no drain",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			nodes:    []corev1.Node{node("a", held("p", v1alpha1.StateCordoned), cond(reboot, corev1.ConditionFalse, time.Second, ""))},
			want:     []string{"a: Release p"},
			events:   []string{"node/a Uncordoned"},
		},
		{
			name:     "a held node stays held while the condition matches, even within a new for:",
			policies: []v1alpha1.RemediationPolicy{rp("p", rules(rule(reboot, corev1.ConditionTrue, time.Hour)))},
			nodes:    []corev1.Node{node("a", held("p", v1alpha1.StateDrained), rebootTrue(time.Second, ""))},
			want:     []string{"a: Hold p"},
		},
		{
			name:     "condition cleared while draining: release (the reconciler cancels the drain)",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			nodes:    []corev1.Node{node("a", held("p", v1alpha1.StateDraining))},
			want:     []string{"a: Release p"},
		},
		{
			name:     "someone else's cordon: taken (and drained later), never uncordoned",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			nodes:    []corev1.Node{node("a", unschedulable, rebootTrue(time.Hour, ""))},
			want:     []string{"a: Cordon p"},
		},
		{
			name:     "someone else's cordon is left in place on release",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			nodes:    []corev1.Node{node("a", held("p", v1alpha1.StateDrained), annotate(v1alpha1.AnnotationCordonedBy, v1alpha1.CordonedByOther))},
			want:     []string{"a: Release p"},
			events:   []string{"node/a Released"},
		},
		{
			name:     "a human uncordoned a held node: stop",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			nodes: []corev1.Node{node("a", held("p", v1alpha1.StateDraining), rebootTrue(time.Hour, ""), func(n *corev1.Node) {
				n.Spec.Unschedulable = false
			})},
			want:   []string{"a: Stop p"},
			events: []string{"node/a RemediationStopped"},
		},
		{
			name:     "after a human uncordon the node is not taken again for the same transition",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""), annotate(v1alpha1.AnnotationHumanUncordoned, formatTime(t0.Add(-time.Hour))))},
			want:     []string{"a: None"},
		},
		{
			name:     "after a human uncordon a new transition is taken",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Minute, ""), annotate(v1alpha1.AnnotationHumanUncordoned, formatTime(t0.Add(-time.Hour))))},
			want:     []string{"a: Cordon p"},
		},
		{
			name:     "cordon: false never reads schedulable as a human uncordon",
			policies: []v1alpha1.RemediationPolicy{rp("p", func(p *v1alpha1.RemediationPolicy) { p.Spec.Cordon = ptr(false) }, noDrain)},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""), annotate(v1alpha1.AnnotationState, "Cordoned"), annotate(v1alpha1.AnnotationPolicy, "p"))},
			want:     []string{"a: Hold p"},
		},
		{
			name:     "two policies want a free node: the first by name takes it",
			policies: []v1alpha1.RemediationPolicy{rp("zeta"), rp("alpha")},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""))},
			want:     []string{"a: Cordon alpha"},
		},
		{
			name:     "a held node stays with its policy",
			policies: []v1alpha1.RemediationPolicy{rp("alpha"), rp("zeta")},
			nodes:    []corev1.Node{node("a", held("zeta", v1alpha1.StateDrained), rebootTrue(time.Hour, ""))},
			want:     []string{"a: Hold zeta"},
		},
		{
			name:     "the claiming policy defers: the other one does not step in",
			policies: []v1alpha1.RemediationPolicy{rp("alpha"), rp("zeta", maxConcurrent(intstr.FromInt32(5)))},
			nodes: []corev1.Node{
				node("a", held("alpha", v1alpha1.StateDraining), rebootTrue(time.Hour, "")),
				node("b", rebootTrue(time.Hour, "")),
				node("c"), node("d"),
			},
			want: []string{"a: Hold alpha", "b: Defer alpha", "c: None", "d: None"},
		},
		{
			name:     "a policy takes what the first one does not select",
			policies: []v1alpha1.RemediationPolicy{rp("alpha", selector("pool", "gpu")), rp("zeta")},
			nodes:    []corev1.Node{node("a", label("pool", "cpu"), rebootTrue(time.Hour, ""))},
			want:     []string{"a: Cordon zeta"},
		},
		{
			name:     "dry run: the same plan, flagged",
			policies: []v1alpha1.RemediationPolicy{rp("p", dryRun)},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, soon)), node("b", rebootTrue(time.Hour, later)), node("c"), node("d")},
			want:     []string{"a: Cordon p (dry run)", "b: Defer p (dry run)", "c: None", "d: None"},
			requeue:  time.Date(2024, 1, 10, 2, 0, 0, 0, time.UTC).Add(-15 * time.Minute).Sub(t0),
		},
		{
			name:     "a real policy claims before a dry-run one",
			policies: []v1alpha1.RemediationPolicy{rp("alpha", dryRun), rp("zeta")},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""))},
			want:     []string{"a: Cordon zeta"},
		},
		{
			name:     "the policy was deleted, the node recovered: release and undo",
			policies: []v1alpha1.RemediationPolicy{},
			nodes:    []corev1.Node{node("a", held("gone", v1alpha1.StateDrained), cond(reboot, corev1.ConditionFalse, time.Minute, ""))},
			want:     []string{"a: Release gone"},
			events:   []string{"node/a Uncordoned"},
		},
		{
			name:     "the policy was deleted, the node recovered, uncordonOnRecovery was false: released as it is",
			policies: []v1alpha1.RemediationPolicy{},
			nodes: []corev1.Node{node("a", held("gone", v1alpha1.StateDrained), annotate(v1alpha1.AnnotationKeepOnRecovery, "true"),
				cond(reboot, corev1.ConditionFalse, time.Minute, ""))},
			want:   []string{"a: Release gone"},
			events: []string{"node/a Released"},
		},
		{
			name:     "the policy was deleted mid-drain, the trigger still holds: the drain stops, the node stays cordoned (once an Event)",
			policies: []v1alpha1.RemediationPolicy{},
			nodes:    []corev1.Node{node("a", held("gone", v1alpha1.StateDraining), rebootTrue(time.Hour, ""))},
			want:     []string{"a: Record gone"},
			events:   []string{"node/a Orphaned"},
		},
		{
			name:     "an orphaned node is held silently",
			policies: []v1alpha1.RemediationPolicy{},
			nodes: []corev1.Node{node("a", held("gone", v1alpha1.StateCordoned), annotate(v1alpha1.AnnotationOrphaned, formatTime(t0.Add(-time.Hour))),
				rebootTrue(time.Hour, ""))},
			want:   []string{"a: Hold gone"},
			events: []string{},
		},
		{
			name:     "the policy no longer selects the node, the trigger still holds: orphaned",
			policies: []v1alpha1.RemediationPolicy{rp("p", selector("pool", "gpu"))},
			nodes:    []corev1.Node{node("a", held("p", v1alpha1.StateDrained), rebootTrue(time.Hour, ""))},
			want:     []string{"a: Record p"},
			events:   []string{"node/a Orphaned"},
		},
		{
			name:     "the policy no longer selects a recovered node: release",
			policies: []v1alpha1.RemediationPolicy{rp("p", selector("pool", "gpu"))},
			nodes:    []corev1.Node{node("a", held("p", v1alpha1.StateDrained), cond(reboot, corev1.ConditionFalse, time.Minute, ""))},
			want:     []string{"a: Release p"},
		},
		{
			name:     "the policy was deleted, another policy wants the node: handed over, never uncordoned",
			policies: []v1alpha1.RemediationPolicy{rp("other")},
			nodes:    []corev1.Node{node("a", held("gone", v1alpha1.StateDrained), rebootTrue(time.Hour, ""))},
			want:     []string{"a: Handover other"},
			events:   []string{"node/a HandedOver"},
		},
		{
			name:     "an invalid policy freezes its nodes",
			policies: []v1alpha1.RemediationPolicy{rp("p", withTaints(corev1.Taint{Key: "bad key", Effect: corev1.TaintEffectNoSchedule}))},
			nodes:    []corev1.Node{node("a", held("p", v1alpha1.StateCordoned)), node("b", rebootTrue(time.Hour, ""))},
			want:     []string{"a: Hold p", "b: None"},
			events:   []string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan := Decide(t0, tc.policies, tc.nodes, Reports{})
			if diff := cmp.Diff(tc.want, actions(plan)); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
			if tc.events != nil {
				if diff := cmp.Diff(tc.events, reasons(plan), cmpEmpty); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}
			}
			if plan.RequeueAfter != tc.requeue {
				t.Errorf("RequeueAfter = %v, want %v", plan.RequeueAfter, tc.requeue)
			}
		})
	}
}

// cmpEmpty makes an expected empty list equal to a nil one.
var cmpEmpty = cmp.FilterValues(func(a, b []string) bool { return len(a) == 0 && len(b) == 0 }, cmp.Ignore())

func TestDecidePolicyStatus(t *testing.T) {
	policies := []v1alpha1.RemediationPolicy{
		rp("p", selector("pool", "a"), maxConcurrent(intstr.FromString("50%"))),
		rp("q", selector("pool", "b"), maxUnhealthy(intstr.FromString("50%"))),
		rp("bad", func(p *v1alpha1.RemediationPolicy) { p.Spec.MaxConcurrent = intstr.FromString("150%") }),
	}
	nodes := []corev1.Node{
		node("a1", label("pool", "a"), held("p", v1alpha1.StateDraining), rebootTrue(time.Hour, "")),
		node("a2", label("pool", "a"), rebootTrue(time.Hour, "")),
		node("a3", label("pool", "a"), rebootTrue(time.Hour, "")),
		node("a4", label("pool", "a")),
		node("a5", label("pool", "a"), held("p", v1alpha1.StateDrained)),
		node("b1", label("pool", "b"), rebootTrue(time.Hour, "")),
		node("b2", label("pool", "b"), rebootTrue(time.Hour, "")),
		node("b3", label("pool", "b"), rebootTrue(time.Hour, "")),
		node("b4", label("pool", "b")),
	}
	plan := Decide(t0, policies, nodes, Reports{})
	want := []PolicyStatus{
		{Name: "bad", Invalid: `maxConcurrent must be a whole number or a percentage from 1% to 100%, not "150%"`, Selected: 9},
		// a1 and a5 held, a5 released: still 2 of 2 slots used in this pass.
		{Name: "p", Selected: 5, Triggered: 3, Remediating: 1, Deferred: 2, MaxConcurrent: 2, MaxUnhealthy: 2, CircuitOpen: true},
		{Name: "q", Selected: 4, Triggered: 3, Remediating: 0, Deferred: 3, MaxConcurrent: 1, MaxUnhealthy: 2, CircuitOpen: true},
	}
	if diff := cmp.Diff(want, plan.Policies); diff != "" {
		t.Errorf("policy statuses (-want +got):\n%s", diff)
	}
}

func TestDecideDecisionDetails(t *testing.T) {
	drainingSince := t0.Add(-5 * time.Minute)
	nodes := []corev1.Node{
		node("a", rebootTrue(time.Hour, soon)),
		node("b", held("p", v1alpha1.StateDraining), rebootTrue(time.Hour, "")),
		node("c", held("p", v1alpha1.StateCordoned), rebootTrue(time.Hour, "")),
	}
	plan := Decide(t0, []v1alpha1.RemediationPolicy{rp("p", maxConcurrent(intstr.FromInt32(3)), maxUnhealthy(intstr.FromInt32(3)))}, nodes, Reports{})

	a, _ := plan.Node("a")
	wantTrigger := &Trigger{Type: reboot, Status: corev1.ConditionTrue, Since: t0.Add(-time.Hour), Deadline: time.Date(2024, 1, 9, 2, 0, 0, 0, time.UTC)}
	if diff := cmp.Diff(wantTrigger, a.Trigger); diff != "" {
		t.Errorf("trigger (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(CordonPatch(&nodes[0], &[]v1alpha1.RemediationPolicy{rp("p")}[0], *wantTrigger, t0, ""), a.Patch); diff != "" {
		t.Errorf("cordon patch (-want +got):\n%s", diff)
	}

	b, _ := plan.Node("b")
	if want := (&DrainOrder{Attempt: 1, Deadline: drainingSince.Add(15 * time.Minute)}); !cmp.Equal(b.Drain, want) {
		t.Errorf("resumed drain = %+v, want %+v (state-since + timeout)", b.Drain, want)
	}
	if !b.Patch.IsEmpty() {
		t.Errorf("Hold must not write, got %+v", b.Patch)
	}

	c, _ := plan.Node("c")
	if want := (&DrainOrder{Attempt: 1, Deadline: t0.Add(15 * time.Minute)}); !cmp.Equal(c.Drain, want) {
		t.Errorf("new drain = %+v, want %+v", c.Drain, want)
	}
	if diff := cmp.Diff(StartDrainPatch(&nodes[2], 1, false, false, t0), c.Patch); diff != "" {
		t.Errorf("start drain patch (-want +got):\n%s", diff)
	}
}

// TestHumanUncordonLifecycle walks one node through take, drain, a human
// uncordon, the suppression, and a new transition, applying each patch.
func TestHumanUncordonLifecycle(t *testing.T) {
	policies := []v1alpha1.RemediationPolicy{rp("p", withTaints(corev1.Taint{Key: "nodewarden.io/maintenance", Effect: corev1.TaintEffectNoSchedule}))}
	n := node("a", rebootTrue(time.Hour, ""))
	step := func(now time.Time, want Action) NodeDecision {
		t.Helper()
		plan := Decide(now, policies, []corev1.Node{n}, Reports{})
		d := plan.Nodes[0]
		if d.Action != want {
			t.Fatalf("at %v: action %s (%s), want %s", now, d.Action, d.Why, want)
		}
		n = apply(t, n, d.Patch)
		return d
	}
	step(t0, ActionCordon)
	step(t0, ActionStartDrain)
	step(t0, ActionHold)

	n.Spec.Unschedulable = false // kubectl uncordon
	step(t0, ActionStop)
	if len(n.Spec.Taints) != 0 || n.Annotations[v1alpha1.AnnotationState] != "" {
		t.Fatalf("after stop: taints %v, annotations %v", n.Spec.Taints, n.Annotations)
	}
	step(t0.Add(time.Hour), ActionNone) // same transition: left alone

	// The condition clears and fires again: a new transition.
	n.Status.Conditions[0].Status = corev1.ConditionFalse
	step(t0.Add(2*time.Hour), ActionNone)
	n.Status.Conditions[0].Status = corev1.ConditionTrue
	n.Status.Conditions[0].LastTransitionTime.Time = t0.Add(3 * time.Hour)
	step(t0.Add(3*time.Hour), ActionCordon)
	if _, ok := n.Annotations[v1alpha1.AnnotationHumanUncordoned]; ok {
		t.Errorf("taking the node again must clear %s", v1alpha1.AnnotationHumanUncordoned)
	}
}

func TestDecideDoesNotModifyInput(t *testing.T) {
	policies := []v1alpha1.RemediationPolicy{rp("p", withTaints(corev1.Taint{Key: "k", Effect: corev1.TaintEffectNoExecute}))}
	nodes := []corev1.Node{
		node("b", rebootTrue(time.Hour, "")),
		node("a", held("p", v1alpha1.StateDrained), taint("k", corev1.TaintEffectNoExecute)),
	}
	before := []corev1.Node{*nodes[0].DeepCopy(), *nodes[1].DeepCopy()}
	beforePolicy := *policies[0].DeepCopy()
	Decide(t0, policies, nodes, Reports{})
	if diff := cmp.Diff(before, nodes); diff != "" {
		t.Errorf("nodes modified (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(beforePolicy, policies[0]); diff != "" {
		t.Errorf("policy modified (-before +after):\n%s", diff)
	}
}

func TestScaledLimit(t *testing.T) {
	tests := []struct {
		v     intstr.IntOrString
		total int
		want  int
	}{
		{intstr.FromInt32(3), 10, 3},
		{intstr.FromString("50%"), 5, 2},
		{intstr.FromString("50%"), 6, 3},
		{intstr.FromString("10%"), 5, 1},
		{intstr.FromString("1%"), 0, 1},
		{intstr.FromString("0%"), 10, 0},
		{intstr.FromString("100%"), 7, 7},
	}
	for _, tc := range tests {
		got, err := scaledLimit(tc.v, tc.total)
		if err != nil || got != tc.want {
			t.Errorf("scaledLimit(%s, %d) = %d, %v; want %d", tc.v.String(), tc.total, got, err, tc.want)
		}
	}
}
