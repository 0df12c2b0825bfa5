package remediation

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// cluster walks nodes through passes of Decide, applying each plan's
// patches as the API server would.
type cluster struct {
	t        *testing.T
	policies []v1alpha1.RemediationPolicy
	nodes    []corev1.Node
	reports  map[string]DrainReport
}

func (c *cluster) pass(now time.Time) Plan {
	c.t.Helper()
	plan := Decide(now, c.policies, c.nodes, Reports{Drains: c.reports})
	for i, d := range plan.Nodes {
		if !d.DryRun {
			c.nodes[i] = apply(c.t, c.nodes[i], d.Patch)
		}
		if d.Action == ActionRecord || d.CancelDrain {
			delete(c.reports, d.Node)
		}
	}
	return plan
}

func (c *cluster) node(name string) *corev1.Node {
	return &c.nodes[slices.IndexFunc(c.nodes, func(n corev1.Node) bool { return n.Name == name })]
}

func (c *cluster) want(plan Plan, want ...string) {
	c.t.Helper()
	if diff := cmp.Diff(want, actions(plan)); diff != "" {
		c.t.Fatalf("actions (-want +got):\n%s", diff)
	}
}

// A pass that runs before the cache has seen the last cordon (a for: ran
// out, nothing else changed) must still count that node: seen through
// Writes, the second node waits; seen through the stale cache alone, it
// would be cordoned and the policy would hold two nodes at maxConcurrent 1.
func TestStaleCacheNeverExceedsBudget(t *testing.T) {
	policies := []v1alpha1.RemediationPolicy{rp("p", rules(rule(reboot, corev1.ConditionTrue, 10*time.Minute)), maxUnhealthy(intstr.FromString("100%")))}
	cache := []corev1.Node{
		node("a", rebootTrue(20*time.Minute, later)),
		node("b", rebootTrue(5*time.Minute, soon)), // earlier deadline, for: not yet run out
	}
	var writes Writes
	first := Decide(t0, policies, writes.View(cache), Reports{})
	if got := actions(first); !slices.Equal(got, []string{"a: Cordon p", "b: None"}) {
		t.Fatalf("first pass: %v", got)
	}
	written := apply(t, cache[0], first.Nodes[0].Patch)
	written.ResourceVersion = "8"
	writes.Record(first.Nodes[0].Patch.ResourceVersion, &written)

	// Six minutes on, the cache still shows a as it was.
	later := t0.Add(6 * time.Minute)
	if got := actions(Decide(later, policies, writes.View(cache), Reports{})); !slices.Equal(got, []string{"a: StartDrain p", "b: Defer p"}) {
		t.Errorf("with the own writes: %v, want a draining and b deferred", got)
	}
	if got := actions(Decide(later, policies, cache, Reports{})); !slices.Contains(got, "b: Cordon p") {
		t.Errorf("the stale cache alone no longer shows the bug (%v): this test proves nothing", got)
	}

	// Once the cache shows the write (or anything after it), it wins.
	caught := slices.Clone(cache)
	caught[0] = written
	caught[0].ResourceVersion = "9"
	caught[0].Spec.Unschedulable = false // someone uncordoned it since
	if v := writes.View(caught); v[0].Spec.Unschedulable || writes.Pending() != 0 {
		t.Errorf("the cache caught up, yet the old write still shows (pending %d)", writes.Pending())
	}
}

// With the shipped host-maintenance policy (maxConcurrent 1), a node Drained
// for a reboot two days away holds the only slot; a spot notice two minutes
// away on another node must not wait for it.
func TestDeadlineBeatsBudget(t *testing.T) {
	c := &cluster{t: t, policies: []v1alpha1.RemediationPolicy{rp("p", maxUnhealthy(intstr.FromString("100%")))}, nodes: []corev1.Node{
		node("a", held("p", v1alpha1.StateDrained), rebootTrue(time.Hour, formatTime(t0.Add(47*time.Hour)))),
		node("b", rebootTrue(time.Minute, formatTime(t0.Add(2*time.Minute)))),
		node("c", rebootTrue(time.Minute, formatTime(t0.Add(3*time.Hour)))),
	}}
	plan := c.pass(t0)
	c.want(plan, "a: Hold p", "b: Cordon p", "c: Defer p")
	b, _ := plan.Node("b")
	if !b.OverBudget || c.node("b").Annotations[v1alpha1.AnnotationOverBudget] == "" {
		t.Errorf("b is not marked over budget: %+v", b)
	}
	if !slices.Contains(reasons(plan), "node/b BudgetYielded") {
		t.Errorf("no BudgetYielded event: %v", reasons(plan))
	}
	// c is taken drain.timeout (15m) before its deadline, slot or not.
	if want := 3*time.Hour - 15*time.Minute; plan.RequeueAfter != want {
		t.Errorf("RequeueAfter = %v, want %v", plan.RequeueAfter, want)
	}
	if s := plan.Policies[0]; len(s.OverBudget) != 1 || s.OverBudget[0].Name != "b" {
		t.Errorf("status overBudgetNodes = %+v", s.OverBudget)
	}
	// b's drain never runs past its deadline.
	plan = c.pass(t0.Add(10 * time.Second))
	if b, _ := plan.Node("b"); b.Action != ActionStartDrain || !b.Drain.Deadline.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("b: %s with %+v, want a drain ending at the deadline", b.Action, b.Drain)
	}
	plan = c.pass(t0.Add(3*time.Hour - 15*time.Minute))
	if c, _ := plan.Node("c"); c.Action != ActionCordon || !c.OverBudget {
		t.Errorf("c at its last moment: %s (%s)", c.Action, c.Why)
	}
	// The circuit breaker still wins over a deadline: a bad rule must not
	// cordon the cluster, however urgent it claims to be.
	c.policies[0].Spec.MaxUnhealthy = intstr.FromInt32(1)
	c.nodes = append(c.nodes, node("d", rebootTrue(time.Minute, formatTime(t0.Add(3*time.Hour)))))
	if d, _ := c.pass(t0.Add(3 * time.Hour)).Node("d"); d.Action != ActionDefer {
		t.Errorf("d with the circuit open: %s", d.Action)
	}
}

func TestStartBefore(t *testing.T) {
	policy := rp("p", maxUnhealthy(intstr.FromString("100%")), func(p *v1alpha1.RemediationPolicy) {
		p.Spec.Drain.StartBefore = &metav1.Duration{Duration: 2 * time.Hour}
	})
	deadline := t0.Add(47 * time.Hour)
	c := &cluster{t: t, policies: []v1alpha1.RemediationPolicy{policy}, nodes: []corev1.Node{
		node("a", rebootTrue(time.Minute, formatTime(deadline))),
		node("b", rebootTrue(time.Minute, formatTime(t0.Add(50*time.Hour)))),
		node("c", rebootTrue(time.Minute, formatTime(t0.Add(time.Hour)))),
	}}
	plan := c.pass(t0)
	// Waiting uses no slot: a and b both wait; c is within startBefore and
	// takes the one slot.
	c.want(plan, "a: Wait p", "b: Wait p", "c: Cordon p")
	a := c.node("a")
	if a.Spec.Unschedulable || !hasTaint(a, v1alpha1.TaintImpendingDisruption) || a.Annotations[v1alpha1.AnnotationState] != "Waiting" {
		t.Fatalf("a waiting: unschedulable %v taints %v annotations %v", a.Spec.Unschedulable, a.Spec.Taints, a.Annotations)
	}
	if a.Spec.Taints[0].Effect != corev1.TaintEffectPreferNoSchedule {
		t.Errorf("taint %v, want PreferNoSchedule", a.Spec.Taints[0])
	}
	if want := 45 * time.Hour; plan.RequeueAfter != want {
		t.Errorf("RequeueAfter = %v, want %v (a's start)", plan.RequeueAfter, want)
	}
	// c recovers and frees the slot; at deadline-2h a is cordoned and
	// drained in time.
	c.node("c").Status.Conditions[0].Status = corev1.ConditionFalse
	c.want(c.pass(t0.Add(time.Minute)), "a: Hold p", "b: Hold p", "c: Release p")
	c.want(c.pass(deadline.Add(-2*time.Hour)), "a: Cordon p", "b: Hold p", "c: None")
	plan = c.pass(deadline.Add(-2 * time.Hour))
	if d, _ := plan.Node("a"); d.Action != ActionStartDrain || !d.Drain.Deadline.Equal(deadline.Add(-2*time.Hour+15*time.Minute)) {
		t.Errorf("a: %s %+v", d.Action, d.Drain)
	}
	// b's condition clears while it waits: the taint goes with it.
	c.node("b").Status.Conditions[0].Status = corev1.ConditionFalse
	c.pass(deadline.Add(-time.Hour))
	if b := c.node("b"); len(b.Spec.Taints) != 0 || len(b.Annotations) != 0 {
		t.Errorf("b after release: taints %v annotations %v", b.Spec.Taints, b.Annotations)
	}
}

func TestDrainRetriesThenStuck(t *testing.T) {
	c := &cluster{t: t, policies: []v1alpha1.RemediationPolicy{rp("p")}, nodes: []corev1.Node{
		node("a", held("p", v1alpha1.StateCordoned), rebootTrue(time.Hour, "")),
	}, reports: map[string]DrainReport{}}
	now := t0
	plan := c.pass(now)
	c.want(plan, "a: StartDrain p")
	blocked := "1 pods left: default/web-1 (eviction refused: The disruption budget web needs 3 healthy pods and has 3 currently)"
	for attempt := 1; attempt <= 3; attempt++ {
		// A report for an older attempt is not this one's.
		c.reports["a"] = DrainReport{Attempt: attempt - 1, BlockedBy: "old"}
		c.want(c.pass(now), "a: Hold p")
		c.reports["a"] = DrainReport{Attempt: attempt, BlockedBy: blocked}
		now = now.Add(time.Second)
		plan = c.pass(now)
		c.want(plan, "a: Record p")
		if a := c.node("a"); a.Annotations[v1alpha1.AnnotationState] != "DrainFailed" || a.Annotations[v1alpha1.AnnotationBlockedBy] != blocked {
			t.Fatalf("after attempt %d: %v", attempt, a.Annotations)
		}
		stuck := plan.Policies[0].Stuck
		if len(stuck) != 1 || stuck[0].Attempts != int32(attempt) || stuck[0].BlockedBy != blocked {
			t.Fatalf("status after attempt %d: %+v", attempt, stuck)
		}
		if attempt == 3 {
			if stuck[0].NextAttempt != nil {
				t.Errorf("no attempts left, yet next attempt %v", stuck[0].NextAttempt)
			}
			break
		}
		backoff := time.Minute << (attempt - 1)
		if stuck[0].NextAttempt == nil || !stuck[0].NextAttempt.Time.Equal(now.Add(backoff)) {
			t.Fatalf("next attempt %v, want %v", stuck[0].NextAttempt, now.Add(backoff))
		}
		c.want(c.pass(now.Add(backoff-time.Second)), "a: Hold p")
		now = now.Add(backoff)
		c.want(c.pass(now), "a: StartDrain p")
	}
	plan = c.pass(now.Add(24 * time.Hour))
	if d := plan.Nodes[0]; d.Action != ActionHold || !strings.Contains(d.Why, "no retries left") {
		t.Errorf("after the last attempt: %s (%s)", d.Action, d.Why)
	}
	// Recovery releases it like any other.
	c.node("a").Status.Conditions[0].Status = corev1.ConditionFalse
	c.want(c.pass(now.Add(25*time.Hour)), "a: Release p")
	if a := c.node("a"); len(a.Annotations) != 0 || a.Spec.Unschedulable {
		t.Errorf("after release: %v", a.Annotations)
	}
}

func TestEscalations(t *testing.T) {
	stuck := func(opts ...nodeOpt) corev1.Node {
		return node("a", append([]nodeOpt{held("p", v1alpha1.StateDrainFailed), rebootTrue(time.Hour, ""),
			annotate(v1alpha1.AnnotationDrainAttempts, "3"),
			annotate(v1alpha1.AnnotationDrainStarted, formatTime(t0.Add(-40*time.Minute)))}, opts...)...)
	}
	forceAfter := func(d time.Duration) policyOpt {
		return func(p *v1alpha1.RemediationPolicy) { p.Spec.Drain.ForceAfter = &metav1.Duration{Duration: d} }
	}
	outOfService := func(p *v1alpha1.RemediationPolicy) { p.Spec.Drain.OutOfServiceTaint = true }
	notReady := cond("Ready", corev1.ConditionUnknown, time.Minute, "Kubelet stopped posting node status.")

	t.Run("forceAfter passed: one forced attempt", func(t *testing.T) {
		c := &cluster{t: t, policies: []v1alpha1.RemediationPolicy{rp("p", forceAfter(30*time.Minute))}, nodes: []corev1.Node{stuck()}}
		plan := c.pass(t0)
		d := plan.Nodes[0]
		if d.Action != ActionStartDrain || !d.Drain.Force || d.Drain.Attempt != 4 {
			t.Fatalf("%s %+v", d.Action, d.Drain)
		}
		if !slices.Contains(reasons(plan), "node/a DrainEscalated") {
			t.Errorf("events %v", reasons(plan))
		}
		c.node("a").Annotations[v1alpha1.AnnotationState] = "DrainFailed"
		if d := c.pass(t0.Add(time.Hour)).Nodes[0]; d.Action != ActionHold {
			t.Errorf("a second forced attempt: %s", d.Action)
		}
	})
	t.Run("forceAfter not yet: requeued for it", func(t *testing.T) {
		c := &cluster{t: t, policies: []v1alpha1.RemediationPolicy{rp("p", forceAfter(time.Hour))}, nodes: []corev1.Node{stuck()}}
		plan := c.pass(t0)
		if plan.Nodes[0].Action != ActionHold || plan.RequeueAfter != 20*time.Minute {
			t.Errorf("%s, requeue %v", plan.Nodes[0].Action, plan.RequeueAfter)
		}
	})
	t.Run("an unforced drain ends when forceAfter comes", func(t *testing.T) {
		n := node("a", held("p", v1alpha1.StateDraining), rebootTrue(time.Hour, ""),
			annotate(v1alpha1.AnnotationDrainStarted, formatTime(t0.Add(-5*time.Minute))))
		d := Decide(t0, []v1alpha1.RemediationPolicy{rp("p", forceAfter(10*time.Minute))}, []corev1.Node{n}, Reports{}).Nodes[0]
		if d.Drain == nil || !d.Drain.Deadline.Equal(t0.Add(5*time.Minute)) || d.Drain.Force {
			t.Errorf("%+v, want an unforced drain until %v", d.Drain, t0.Add(5*time.Minute))
		}
	})
	t.Run("NotReady node: out-of-service taint, recorded and undone", func(t *testing.T) {
		c := &cluster{t: t, policies: []v1alpha1.RemediationPolicy{rp("p", outOfService)}, nodes: []corev1.Node{stuck(notReady)}}
		plan := c.pass(t0)
		if d := plan.Nodes[0]; d.Action != ActionStartDrain || d.Drain.Force {
			t.Fatalf("%s %+v", d.Action, d.Drain)
		}
		a := c.node("a")
		if !slices.ContainsFunc(a.Spec.Taints, func(t corev1.Taint) bool {
			return t.Key == corev1.TaintNodeOutOfService && t.Effect == corev1.TaintEffectNoExecute
		}) || !strings.Contains(a.Annotations[v1alpha1.AnnotationAddedTaints], corev1.TaintNodeOutOfService) {
			t.Fatalf("taints %v annotations %v", a.Spec.Taints, a.Annotations)
		}
		a.Status.Conditions = a.Status.Conditions[:0]
		cond(reboot, corev1.ConditionFalse, 0, "")(a)
		c.want(c.pass(t0.Add(time.Hour)), "a: Release p")
		if a := c.node("a"); len(a.Spec.Taints) != 0 {
			t.Errorf("taints left after release: %v", a.Spec.Taints)
		}
	})
	t.Run("opt-in: without outOfServiceTaint a NotReady node only waits", func(t *testing.T) {
		c := &cluster{t: t, policies: []v1alpha1.RemediationPolicy{rp("p")}, nodes: []corev1.Node{stuck(notReady)}}
		c.want(c.pass(t0), "a: Hold p")
	})
	t.Run("a Ready node gets no out-of-service taint", func(t *testing.T) {
		c := &cluster{t: t, policies: []v1alpha1.RemediationPolicy{rp("p", outOfService)}, nodes: []corev1.Node{stuck(cond("Ready", corev1.ConditionTrue, time.Hour, ""))}}
		c.want(c.pass(t0), "a: Hold p")
	})
	t.Run("a failed drain on a NotReady node says so", func(t *testing.T) {
		c := &cluster{t: t, policies: []v1alpha1.RemediationPolicy{rp("p")}, nodes: []corev1.Node{
			node("a", held("p", v1alpha1.StateDraining), rebootTrue(time.Hour, ""), notReady)},
			reports: map[string]DrainReport{"a": {Attempt: 1, BlockedBy: "2 pods left: x/y (still terminating), x/z (still terminating)", Terminating: 2}}}
		c.pass(t0)
		if got := c.node("a").Annotations[v1alpha1.AnnotationBlockedBy]; !strings.Contains(got, "NotReady") {
			t.Errorf("blocked-by %q does not say the node is NotReady", got)
		}
	})
}

func TestRecoverFor(t *testing.T) {
	c := &cluster{t: t, policies: []v1alpha1.RemediationPolicy{rp("p", func(p *v1alpha1.RemediationPolicy) {
		p.Spec.RecoverFor = metav1.Duration{Duration: 10 * time.Minute}
	})}, nodes: []corev1.Node{node("a", held("p", v1alpha1.StateDrained), cond(reboot, corev1.ConditionFalse, 3*time.Minute, ""))}}
	plan := c.pass(t0)
	c.want(plan, "a: Hold p")
	if plan.RequeueAfter != 7*time.Minute {
		t.Errorf("RequeueAfter = %v, want 7m", plan.RequeueAfter)
	}
	// It flaps back: still held, no re-drain, no re-cordon.
	c.node("a").Status.Conditions[0].Status = corev1.ConditionTrue
	c.want(c.pass(t0.Add(time.Minute)), "a: Hold p")
	c.node("a").Status.Conditions[0].Status = corev1.ConditionFalse
	c.node("a").Status.Conditions[0].LastTransitionTime = metav1.NewTime(t0.Add(2 * time.Minute))
	c.want(c.pass(t0.Add(11*time.Minute)), "a: Hold p")
	c.want(c.pass(t0.Add(12*time.Minute)), "a: Release p")
}

func TestPolicyEditsCancelTheDrain(t *testing.T) {
	draining := func() corev1.Node { return node("a", held("p", v1alpha1.StateDraining), rebootTrue(time.Hour, "")) }
	t.Run("dryRun turned on", func(t *testing.T) {
		d := Decide(t0, []v1alpha1.RemediationPolicy{rp("p", dryRun)}, []corev1.Node{draining()}, Reports{}).Nodes[0]
		if d.Action != ActionHold || !d.CancelDrain || d.Drain != nil || !d.Patch.IsEmpty() {
			t.Errorf("%+v, want the drain cancelled and nothing written", d)
		}
	})
	t.Run("drain.enabled turned off", func(t *testing.T) {
		c := &cluster{t: t, policies: []v1alpha1.RemediationPolicy{rp("p", noDrain)}, nodes: []corev1.Node{draining()}}
		plan := c.pass(t0)
		if d := plan.Nodes[0]; !d.CancelDrain || d.Drain != nil {
			t.Errorf("%+v", d)
		}
		// Cordoned, so a restart does not resume the drain.
		if a := c.node("a"); a.Annotations[v1alpha1.AnnotationState] != "Cordoned" || !a.Spec.Unschedulable {
			t.Errorf("%v unschedulable %v", a.Annotations, a.Spec.Unschedulable)
		}
		c.want(c.pass(t0), "a: Hold p")
	})
	t.Run("a release cancels", func(t *testing.T) {
		n := node("a", held("p", v1alpha1.StateDraining), cond(reboot, corev1.ConditionFalse, 0, ""))
		if d := Decide(t0, []v1alpha1.RemediationPolicy{rp("p")}, []corev1.Node{n}, Reports{}).Nodes[0]; d.Action != ActionRelease || !d.CancelDrain {
			t.Errorf("%+v", d)
		}
	})
}

// Two policies: the holder's condition clears while the other's holds. The
// node goes from one to the other without an uncordon in between, and only
// when the other has a free slot.
func TestHandover(t *testing.T) {
	kernel := rp("kernel", rules(rule("KernelDeadlock", corev1.ConditionTrue, 0)))
	c := &cluster{t: t, policies: []v1alpha1.RemediationPolicy{rp("maint"), kernel}, nodes: []corev1.Node{
		node("a", held("maint", v1alpha1.StateDraining), cond(reboot, corev1.ConditionFalse, 0, ""), cond("KernelDeadlock", corev1.ConditionTrue, time.Hour, "")),
		node("b", held("kernel", v1alpha1.StateDrained), cond("KernelDeadlock", corev1.ConditionTrue, time.Hour, "")),
	}}
	// kernel's one slot is taken by b: maint keeps a meanwhile.
	plan := c.pass(t0)
	c.want(plan, "a: Hold maint", "b: Hold kernel")
	if !c.node("a").Spec.Unschedulable {
		t.Fatal("a was uncordoned while it waited for the other policy")
	}
	c.node("b").Status.Conditions[0].Status = corev1.ConditionFalse
	c.want(c.pass(t0.Add(time.Minute)), "a: Hold maint", "b: Release kernel")
	plan = c.pass(t0.Add(2 * time.Minute))
	c.want(plan, "a: Handover kernel", "b: None")
	if d := plan.Nodes[0]; d.Patch.Unschedulable != nil || !d.CancelDrain {
		t.Errorf("handover patch %+v", d.Patch)
	}
	a := c.node("a")
	if a.Annotations[v1alpha1.AnnotationPolicy] != "kernel" || a.Annotations[v1alpha1.AnnotationState] != "Cordoned" ||
		a.Annotations[v1alpha1.AnnotationTrigger] != "KernelDeadlock=True" || !a.Spec.Unschedulable {
		t.Fatalf("after handover: %v", a.Annotations)
	}
	// The new holder drains it with its own settings, and the cordon stays
	// nodewarden's to undo.
	c.want(c.pass(t0.Add(3*time.Minute)), "a: StartDrain kernel", "b: None")
	a.Status.Conditions[1].Status = corev1.ConditionFalse
	c.want(c.pass(t0.Add(4*time.Minute)), "a: Release kernel", "b: None")
	if a := c.node("a"); a.Spec.Unschedulable || len(a.Annotations) != 0 {
		t.Errorf("after release: unschedulable %v annotations %v", a.Spec.Unschedulable, a.Annotations)
	}
}

func TestRejectedSpecs(t *testing.T) {
	for name, opt := range map[string]policyOpt{
		"NoExecute taint":                  withTaints(corev1.Taint{Key: "example.com/x", Effect: corev1.TaintEffectNoExecute}),
		"evictDaemonSetPods with cordon":   func(p *v1alpha1.RemediationPolicy) { p.Spec.Drain.EvictDaemonSetPods = true },
		"evictDaemonSetPods, cordon unset": func(p *v1alpha1.RemediationPolicy) { p.Spec.Drain.EvictDaemonSetPods = true; p.Spec.Cordon = nil },
	} {
		t.Run(name, func(t *testing.T) {
			s := Decide(t0, []v1alpha1.RemediationPolicy{rp("p", opt)}, nil, Reports{}).Policies[0]
			if s.Invalid == "" {
				t.Errorf("accepted")
			}
		})
	}
}
