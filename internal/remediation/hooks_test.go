package remediation

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

func preDrainHook(name string) nodeOpt {
	return annotate(v1alpha1.PreDrainHookPrefix+name, "example.com/"+name+"-controller")
}

func postDrainHook(name string) nodeOpt {
	return annotate(v1alpha1.PostDrainHookPrefix+name, "example.com/"+name+"-controller")
}

func hookTimeout(d time.Duration) policyOpt {
	return func(p *v1alpha1.RemediationPolicy) { p.Spec.Drain.HookTimeout = &metav1.Duration{Duration: d} }
}

// since sets nodewarden.io/state-since ago before t0 (held sets 5m).
func since(ago time.Duration) nodeOpt {
	return annotate(v1alpha1.AnnotationStateSince, formatTime(t0.Add(-ago)))
}

// urgent is a deadline 10 minutes after t0: closer than drain.timeout (15m).
const urgent = "2024-01-08T17:10:00Z"

func TestDecideDrainHooks(t *testing.T) {
	waitStep := repair(ladder(step(v1alpha1.RepairWait, 0)))
	recovered := cond(reboot, corev1.ConditionFalse, time.Minute, "")
	tests := []struct {
		name     string
		policies []v1alpha1.RemediationPolicy
		nodes    []corev1.Node
		want     []string
		events   []string
		requeue  time.Duration
		why      string // in node a's Why
		deferred []v1alpha1.DeferredNode
	}{
		{
			name:     "a pre-drain hook holds the drain; held since state-since, until hookTimeout",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""), held("p", v1alpha1.StateCordoned), preDrainHook("backup"), preDrainHook("audit"))},
			want:     []string{"a: Hold p"},
			events:   []string{"node/a HookHolding"},
			requeue:  25 * time.Minute,
			why:      "hooks hold the drain attempt: pre-drain.hook.nodewarden.io/audit (owner example.com/audit-controller), pre-drain.hook.nodewarden.io/backup",
			deferred: []v1alpha1.DeferredNode{{Name: "a", Reason: v1alpha1.DeferredHookHolding}},
		},
		{
			name: "HookHolding fires once: the status remembers the node",
			policies: []v1alpha1.RemediationPolicy{rp("p", func(p *v1alpha1.RemediationPolicy) {
				p.Status.DeferredNodes = []v1alpha1.DeferredNode{{Name: "a", Reason: v1alpha1.DeferredHookHolding}}
			})},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""), held("p", v1alpha1.StateCordoned), preDrainHook("backup"))},
			want:     []string{"a: Hold p"},
			events:   []string{},
			requeue:  25 * time.Minute,
			deferred: []v1alpha1.DeferredNode{{Name: "a", Reason: v1alpha1.DeferredHookHolding}},
		},
		{
			name:     "the hook is removed: the drain starts",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""), held("p", v1alpha1.StateCordoned), annotate("example.com/other", "x"))},
			want:     []string{"a: StartDrain p"},
			events:   []string{"node/a DrainStarted"},
		},
		{
			name:     "hookTimeout passed: the drain starts anyway with HookTimedOut",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""), held("p", v1alpha1.StateCordoned), since(30*time.Minute), preDrainHook("backup"))},
			want:     []string{"a: StartDrain p"},
			events:   []string{"node/a HookTimedOut", "node/a DrainStarted"},
		},
		{
			name:     "hookTimeout 0: the hook holds for ever",
			policies: []v1alpha1.RemediationPolicy{rp("p", hookTimeout(0))},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""), held("p", v1alpha1.StateCordoned), since(48*time.Hour), preDrainHook("backup"))},
			want:     []string{"a: Hold p"},
			events:   []string{"node/a HookHolding"},
			why:      "drain.hookTimeout is 0",
		},
		{
			name:     "the deadline is drain.timeout away: the pre-drain hook is overridden",
			policies: []v1alpha1.RemediationPolicy{rp("p", hookTimeout(0))},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, urgent), held("p", v1alpha1.StateCordoned), preDrainHook("backup"))},
			want:     []string{"a: StartDrain p"},
			events:   []string{"node/a HookOverridden", "node/a DrainStarted"},
		},
		{
			name:     "a deadline further away: held, and woken when it becomes urgent",
			policies: []v1alpha1.RemediationPolicy{rp("p", hookTimeout(0))},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, "2024-01-08T17:20:00Z"), held("p", v1alpha1.StateCordoned), preDrainHook("backup"))},
			want:     []string{"a: Hold p"},
			events:   []string{"node/a HookHolding"},
			requeue:  5 * time.Minute,
		},
		{
			name:     "a pre-drain hook holds a retry too",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""), held("p", v1alpha1.StateDrainFailed), annotate(v1alpha1.AnnotationDrainAttempts, "1"), preDrainHook("backup"))},
			want:     []string{"a: Hold p"},
			events:   []string{"node/a HookHolding"},
			requeue:  25 * time.Minute,
		},
		{
			name:     "a post-drain hook does not hold the drain",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""), held("p", v1alpha1.StateCordoned), postDrainHook("snapshot"))},
			want:     []string{"a: StartDrain p"},
			events:   []string{"node/a DrainStarted"},
		},
		{
			name:     "a post-drain hook holds the release of a drained node that recovered",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			nodes:    []corev1.Node{node("a", recovered, held("p", v1alpha1.StateDrained), postDrainHook("snapshot"))},
			want:     []string{"a: Hold p"},
			events:   []string{"node/a HookHolding"},
			requeue:  25 * time.Minute,
			why:      "hooks hold the release",
			deferred: []v1alpha1.DeferredNode{{Name: "a", Reason: v1alpha1.DeferredHookHolding}},
		},
		{
			name:     "post-drain hook timed out: released, with HookTimedOut",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			nodes:    []corev1.Node{node("a", recovered, held("p", v1alpha1.StateDrained), since(time.Hour), postDrainHook("snapshot"))},
			want:     []string{"a: Release p"},
			events:   []string{"node/a HookTimedOut", "node/a Uncordoned"},
		},
		{
			name:     "a pre-drain hook does not hold the release",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			nodes:    []corev1.Node{node("a", recovered, held("p", v1alpha1.StateDrained), preDrainHook("backup"))},
			want:     []string{"a: Release p"},
			events:   []string{"node/a Uncordoned"},
		},
		{
			name:     "a post-drain hook holds the first repair step",
			policies: []v1alpha1.RemediationPolicy{rp("p", waitStep)},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""), held("p", v1alpha1.StateDrained), postDrainHook("snapshot"))},
			want:     []string{"a: Hold p"},
			events:   []string{"node/a HookHolding"},
			requeue:  25 * time.Minute,
			why:      "hooks hold repair step 1 (Wait)",
		},
		{
			name:     "post-drain hook timed out: the first repair step starts",
			policies: []v1alpha1.RemediationPolicy{rp("p", waitStep)},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""), held("p", v1alpha1.StateDrained), since(time.Hour), postDrainHook("snapshot"))},
			want:     []string{"a: Repair p"},
			events:   []string{"node/a HookTimedOut", "node/a RepairStarted"},
		},
		{
			name:     "hooks never block a human's uncordon",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			nodes: []corev1.Node{
				node("a", rebootTrue(time.Hour, ""), held("p", v1alpha1.StateDrained), func(n *corev1.Node) { n.Spec.Unschedulable = false }, postDrainHook("snapshot"), preDrainHook("backup")),
			},
			want:   []string{"a: Stop p"},
			events: []string{"node/a RemediationStopped"},
		},
		{
			name:     "nor the exclude label",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			nodes:    []corev1.Node{node("a", recovered, held("p", v1alpha1.StateDrained), excludedLabel, postDrainHook("snapshot"))},
			want:     []string{"a: Release p"},
			events:   []string{"node/a Uncordoned"},
		},
		{
			name:     "the window holds first: no HookHolding while no window is open",
			policies: []v1alpha1.RemediationPolicy{rp("p", withWindows(mw(closedWindow, 4*time.Hour, "")))},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""), held("p", v1alpha1.StateCordoned), preDrainHook("backup"))},
			want:     []string{"a: Hold p"},
			events:   []string{"node/a OutsideMaintenanceWindow"},
			requeue:  nextSaturday.Sub(t0),
			deferred: []v1alpha1.DeferredNode{{Name: "a", Reason: v1alpha1.DeferredOutsideMaintenanceWindow}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan := Decide(t0, tc.policies, tc.nodes, Reports{})
			if diff := cmp.Diff(tc.want, actions(plan)); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.events, reasons(plan), cmpEmpty); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if plan.RequeueAfter != tc.requeue {
				t.Errorf("RequeueAfter = %v, want %v", plan.RequeueAfter, tc.requeue)
			}
			if d, _ := plan.Node("a"); !strings.Contains(d.Why, tc.why) {
				t.Errorf("why %q, want it to contain %q", d.Why, tc.why)
			}
			if tc.deferred != nil {
				if diff := cmp.Diff(tc.deferred, plan.Policies[0].DeferredNodes); diff != "" {
					t.Errorf("deferredNodes (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestDrainHookLifecycle: a hook holds a cordoned node's drain until its
// owner removes it; then the drain starts and runs to Drained.
func TestDrainHookLifecycle(t *testing.T) {
	c := &cluster{t: t, policies: []v1alpha1.RemediationPolicy{rp("p")}, nodes: []corev1.Node{
		node("a", rebootTrue(time.Hour, ""), held("p", v1alpha1.StateCordoned), preDrainHook("backup")),
	}, reports: map[string]DrainReport{}}
	c.want(c.pass(t0), "a: Hold p")
	c.want(c.pass(t0.Add(time.Minute)), "a: Hold p")
	delete(c.node("a").Annotations, v1alpha1.PreDrainHookPrefix+"backup")
	c.want(c.pass(t0.Add(2*time.Minute)), "a: StartDrain p")
	c.reports["a"] = DrainReport{Attempt: 1, Succeeded: true}
	c.want(c.pass(t0.Add(3*time.Minute)), "a: Record p")
	if got := c.node("a").Annotations[v1alpha1.AnnotationState]; got != string(v1alpha1.StateDrained) {
		t.Errorf("state %q, want Drained", got)
	}
}
