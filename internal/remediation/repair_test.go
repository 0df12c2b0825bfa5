package remediation

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

func ladder(steps ...v1alpha1.RepairStep) *v1alpha1.RepairSpec {
	return &v1alpha1.RepairSpec{Steps: steps}
}

func step(a v1alpha1.RepairAction, after time.Duration) v1alpha1.RepairStep {
	s := v1alpha1.RepairStep{Action: a, After: metav1.Duration{Duration: after}}
	if a == v1alpha1.RepairWebhook {
		s.Webhook = &v1alpha1.WebhookRepair{URL: "https://runbook.example/repair"}
	}
	return s
}

func repair(r *v1alpha1.RepairSpec) policyOpt {
	return func(p *v1alpha1.RemediationPolicy) { p.Spec.Repair = r }
}

func repairsPerHour(n int32) policyOpt {
	return func(p *v1alpha1.RemediationPolicy) { p.Spec.MaxRepairsPerHour = &n }
}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"InterfaceNotUp", "InterfaceNotUp", true},
		{"InterfaceNotUp", "InterfaceNotUpX", false},
		{"NvidiaXid*", "NvidiaXid79", true},
		{"NvidiaXid*", "Nvidia", false},
		{"*Xid*", "NvidiaXid48Error", true},
		{"*Error", "NvidiaXid48Error", true},
		{"*Error", "ErrorX", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "acb", false},
		{"*", "", true},
		{"", "", true},
		{"", "x", false},
		{"a**b", "ab", true},
	} {
		if got := globMatch(tc.pattern, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %t, want %t", tc.pattern, tc.s, got, tc.want)
		}
	}
}

// FuzzGlobMatch: a pattern without * matches only itself, and a pattern
// made from s by replacing any one run of it with * matches s.
func FuzzGlobMatch(f *testing.F) {
	f.Add("NvidiaXid79", 6, 3)
	f.Fuzz(func(t *testing.T, s string, from, n int) {
		if strings.Contains(s, "*") {
			return
		}
		if !globMatch(s, s) {
			t.Fatalf("%q does not match itself", s)
		}
		if len(s) == 0 {
			return
		}
		from = abs(from) % len(s)
		n = abs(n) % (len(s) - from + 1)
		pattern := s[:from] + "*" + s[from+n:]
		if !globMatch(pattern, s) {
			t.Fatalf("%q does not match %q", pattern, s)
		}
	})
}

func abs(i int) int {
	if i < 0 {
		return -i
	}
	return i
}

// The ladder: drained → (after) DeleteNode started with an order → the
// report is recorded → the next step waits its after → Webhook → the last
// step ends and the node stays; recovering mid-ladder releases it.
func TestRepairLadder(t *testing.T) {
	p := rp("p", maxUnhealthy(intstr.FromString("100%")), repairsPerHour(10),
		repair(ladder(step(v1alpha1.RepairWait, 10*time.Minute), step(v1alpha1.RepairClusterAPI, 5*time.Minute), step(v1alpha1.RepairWebhook, time.Hour))))
	c := &cluster{t: t, policies: []v1alpha1.RemediationPolicy{p}, nodes: []corev1.Node{
		node("a", rebootTrue(time.Hour, ""), held("p", v1alpha1.StateDrained)),
	}}
	var repairs map[string]RepairReport
	pass := func(now time.Time) Plan {
		t.Helper()
		plan := Decide(now, c.policies, c.nodes, Reports{Repairs: repairs})
		for i, d := range plan.Nodes {
			c.nodes[i] = apply(t, c.nodes[i], d.Patch)
			if d.Action == ActionRecord {
				delete(repairs, d.Node)
			}
		}
		return plan
	}
	// Drained 5 minutes ago: the Wait step starts at drained+10m.
	plan := pass(t0)
	c.want(plan, "a: Hold p")
	if want := 5 * time.Minute; plan.RequeueAfter != want {
		t.Errorf("RequeueAfter %s, want %s (the first step's after)", plan.RequeueAfter, want)
	}
	t1 := t0.Add(5 * time.Minute)
	plan = pass(t1)
	c.want(plan, "a: Repair p")
	if d := plan.Nodes[0]; d.Repair != nil {
		t.Errorf("a Wait step gave the repairer an order: %+v", d.Repair)
	}
	n := c.node("a")
	if n.Annotations[v1alpha1.AnnotationState] != "Repairing" || n.Annotations[v1alpha1.AnnotationRepairStep] != "0:Wait" || n.Annotations[v1alpha1.AnnotationRepairResult] != "Succeeded" {
		t.Fatalf("after the Wait step: %v", n.Annotations)
	}
	// ClusterAPI 5 minutes after the Wait step ended.
	c.want(pass(t1.Add(4*time.Minute)), "a: Hold p")
	t2 := t1.Add(5 * time.Minute)
	plan = pass(t2)
	c.want(plan, "a: Repair p")
	order := plan.Nodes[0].Repair
	if order == nil || order.Action != v1alpha1.RepairClusterAPI || order.Step != 1 || !order.Started.Equal(t2) {
		t.Fatalf("order %+v, want ClusterAPI step 1 started %s", order, t2)
	}
	if got := plan.Policies[0].RecentRepairs; len(got) != 1 || got[0].Node != "a" || got[0].Action != v1alpha1.RepairClusterAPI {
		t.Errorf("recentRepairs %v, want the ClusterAPI step", got)
	}
	// Running: the order stands until a report comes.
	plan = pass(t2.Add(time.Second))
	c.want(plan, "a: Hold p")
	if plan.Nodes[0].Repair == nil {
		t.Error("a running step lost its order (a restarted controller would never finish it)")
	}
	// A report of another step (a stale one) is not recorded.
	repairs = map[string]RepairReport{"a": {Step: 0, Started: t1, Succeeded: true}}
	c.want(pass(t2.Add(2*time.Second)), "a: Hold p")
	repairs = map[string]RepairReport{"a": {Step: 1, Started: t2, Succeeded: false, Message: "machine not found"}}
	t3 := t2.Add(3 * time.Second)
	plan = pass(t3)
	c.want(plan, "a: Record p")
	if got := c.node("a").Annotations[v1alpha1.AnnotationRepairResult]; got != "Failed: machine not found" {
		t.Errorf("repair-result %q", got)
	}
	if !slices.Contains(reasons(plan), "node/a RepairFailed") {
		t.Errorf("events %v, want RepairFailed", reasons(plan))
	}
	// A failed step still escalates: the Webhook an hour later.
	c.want(pass(t3.Add(59*time.Minute)), "a: Hold p")
	t4 := t3.Add(time.Hour)
	plan = pass(t4)
	c.want(plan, "a: Repair p")
	if o := plan.Nodes[0].Repair; o == nil || o.Action != v1alpha1.RepairWebhook || o.Webhook == nil {
		t.Fatalf("order %+v, want the Webhook step", o)
	}
	repairs = map[string]RepairReport{"a": {Step: 2, Started: t4, Succeeded: true, Message: "HTTP 202"}}
	c.want(pass(t4.Add(time.Second)), "a: Record p")
	plan = pass(t4.Add(48 * time.Hour))
	c.want(plan, "a: Hold p")
	if !strings.Contains(plan.Nodes[0].Why, "every repair step was taken") || plan.Nodes[0].Repair != nil {
		t.Errorf("after the last step: %q, order %v", plan.Nodes[0].Why, plan.Nodes[0].Repair)
	}
	if got := plan.Policies[0].Repairing; got != 1 {
		t.Errorf("status repairing %d, want 1", got)
	}

	// The node recovers: released, every repair annotation gone.
	c.node("a").Status.Conditions[0].Status = corev1.ConditionFalse
	c.node("a").Status.Conditions[0].LastTransitionTime = metav1.NewTime(t4.Add(49 * time.Hour))
	plan = pass(t4.Add(50 * time.Hour))
	c.want(plan, "a: Release p")
	for k := range c.node("a").Annotations {
		if strings.HasPrefix(k, v1alpha1.AnnotationPrefix) {
			t.Errorf("after release the node keeps %s", k)
		}
	}
}

// Keyed on reason: a rule with reasons and its own ladder wins over the
// policy's for the reasons it lists, and a reason no rule lists does not
// trigger at all when every rule lists reasons.
func TestRepairKeyedOnReason(t *testing.T) {
	const ready = "AcceleratedHardwareReady"
	xid := v1alpha1.ConditionRule{Type: ready, Status: corev1.ConditionFalse, Reasons: []string{"NvidiaXid*"},
		Repair: ladder(step(v1alpha1.RepairDeleteNode, 0))}
	link := v1alpha1.ConditionRule{Type: ready, Status: corev1.ConditionFalse, Reasons: []string{"InterfaceNotUp"}}
	p := rp("p", maxUnhealthy(intstr.FromString("100%")), maxConcurrent(intstr.FromInt32(5)), repairsPerHour(10), rules(xid, link),
		repair(ladder(step(v1alpha1.RepairWait, 0))))
	withReason := func(reason string) nodeOpt {
		return func(n *corev1.Node) {
			n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: ready, Status: corev1.ConditionFalse, Reason: reason, LastTransitionTime: metav1.NewTime(t0.Add(-time.Hour))})
		}
	}
	drained := func(name, reason string) corev1.Node {
		return node(name, withReason(reason), held("p", v1alpha1.StateDrained), annotate(v1alpha1.AnnotationTrigger, ready+"=False"))
	}
	nodes := []corev1.Node{drained("gpu", "NvidiaXid79"), drained("net", "InterfaceNotUp"), node("other", withReason("KernelPanic"))}
	plan := Decide(t0, []v1alpha1.RemediationPolicy{p}, nodes, Reports{})
	got := map[string]string{}
	for _, d := range plan.Nodes {
		got[d.Node] = string(d.Action)
		if d.Patch.SetAnnotations != nil {
			got[d.Node] += " " + d.Patch.SetAnnotations[v1alpha1.AnnotationRepairStep] + " " + d.Patch.SetAnnotations[v1alpha1.AnnotationRepairLadder]
		}
	}
	want := map[string]string{"gpu": "Repair 0:DeleteNode condition:0", "net": "Repair 0:Wait policy", "other": "None"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	// The ladder is fixed when it starts: a reason that changes later does
	// not move the node to another ladder.
	n := apply(t, nodes[0], plan.Nodes[0].Patch)
	n.Status.Conditions[0].Reason = "InterfaceNotUp"
	if l, label := compilePolicy(&p).ladder(&n, triggerFromAnnotations(&n)); label != "condition:0" || l.Steps[0].Action != v1alpha1.RepairDeleteNode {
		t.Errorf("ladder after the reason changed: %s %v", label, l)
	}
}

// The circuit breaker stops repairs, and maxRepairsPerHour defers a step
// until the oldest counted one is an hour old.
func TestRepairBudgets(t *testing.T) {
	drained := func(name string) corev1.Node {
		return node(name, rebootTrue(time.Hour, ""), held("p", v1alpha1.StateDrained))
	}
	deleteLadder := repair(ladder(step(v1alpha1.RepairDeleteNode, 0)))
	t.Run("circuit open", func(t *testing.T) {
		p := rp("p", maxConcurrent(intstr.FromInt32(5)), maxUnhealthy(intstr.FromInt32(1)), deleteLadder, repairsPerHour(10))
		plan := Decide(t0, []v1alpha1.RemediationPolicy{p}, []corev1.Node{drained("a"), drained("b")}, Reports{})
		for _, d := range plan.Nodes {
			if d.Action == ActionRepair || d.Repair != nil {
				t.Errorf("%s: %s with the circuit open", d.Node, d.Action)
			}
		}
	})
	t.Run("rate limit", func(t *testing.T) {
		p := rp("p", maxConcurrent(intstr.FromInt32(5)), maxUnhealthy(intstr.FromString("100%")), deleteLadder, repairsPerHour(2))
		p.Status.RecentRepairs = []v1alpha1.RepairRecord{
			{Node: "gone-1", Action: v1alpha1.RepairDeleteNode, Started: metav1.NewTime(t0.Add(-50 * time.Minute))},
			{Node: "gone-0", Action: v1alpha1.RepairDeleteNode, Started: metav1.NewTime(t0.Add(-2 * time.Hour))},
		}
		plan := Decide(t0, []v1alpha1.RemediationPolicy{p}, []corev1.Node{drained("a"), drained("b"), drained("c")}, Reports{})
		if got := actions(plan); !slices.Equal(got, []string{"a: Repair p", "b: Hold p", "c: Hold p"}) {
			t.Errorf("actions %v: one more step fits in the hour", got)
		}
		if want := 10*time.Minute + time.Second; plan.RequeueAfter != want {
			t.Errorf("RequeueAfter %s, want %s (when gone-1's step is an hour old)", plan.RequeueAfter, want)
		}
		if got := plan.Policies[0].RecentRepairs; len(got) != 2 || got[0].Node != "gone-1" || got[1].Node != "a" {
			t.Errorf("recentRepairs %v, want gone-1 then a (the two-hour-old one pruned)", got)
		}
	})
	t.Run("zero stops every destructive step", func(t *testing.T) {
		p := rp("p", maxUnhealthy(intstr.FromString("100%")), deleteLadder, repairsPerHour(0))
		if got := actions(Decide(t0, []v1alpha1.RemediationPolicy{p}, []corev1.Node{drained("a")}, Reports{})); !slices.Equal(got, []string{"a: Hold p"}) {
			t.Errorf("actions %v", got)
		}
	})
}

// Property: over random bursts of drained nodes, DeleteNode steps that
// succeed (the node vanishes, taking its annotations with it) and a status
// the cache shows one pass late, no rolling hour ever sees more steps
// started than maxRepairsPerHour — as long as the reconciler overlays what
// it recorded (WithRecentRepairs), which this checks it needs.
func TestRepairRateLimitProperty(t *testing.T) {
	for seed := range uint64(100) {
		rng := rand.New(rand.NewPCG(seed, 7))
		limit := 1 + rng.IntN(3)
		p := rp("p", maxConcurrent(intstr.FromInt32(50)), maxUnhealthy(intstr.FromString("100%")),
			repair(ladder(step(v1alpha1.RepairDeleteNode, time.Duration(rng.IntN(3))*time.Minute))), repairsPerHour(int32(limit)))
		var nodes []corev1.Node
		var started []time.Time
		var lagging, written []v1alpha1.RepairRecord // the status as the cache shows it, and as written
		now := t0
		for pass := range 200 {
			now = now.Add(time.Duration(1+rng.IntN(10)) * time.Minute)
			if rng.IntN(4) == 0 {
				nodes = append(nodes, node("n"+string(rune('a'+pass%26))+string(rune('0'+pass/26%10)), rebootTrue(time.Hour, ""), func(n *corev1.Node) {
					held("p", v1alpha1.StateDrained)(n)
					n.Annotations[v1alpha1.AnnotationStateSince] = formatTime(now.Add(-time.Minute))
				}))
			}
			policy := p
			policy.Status.RecentRepairs = lagging
			in := WithRecentRepairs([]v1alpha1.RemediationPolicy{policy}, map[string][]v1alpha1.RepairRecord{"p": written})
			plan := Decide(now, in, nodes, Reports{})
			var kept []corev1.Node
			for i, d := range plan.Nodes {
				if d.Action == ActionRepair {
					started = append(started, now)
				}
				if d.Repair != nil && d.Repair.Action == v1alpha1.RepairDeleteNode {
					continue // deleted at once
				}
				kept = append(kept, apply(t, nodes[i], d.Patch))
			}
			nodes = kept
			lagging, written = written, plan.Policies[0].RecentRepairs
		}
		for i := range started {
			in := 0
			for _, s := range started[i:] {
				if s.Sub(started[i]) < time.Hour {
					in++
				}
			}
			if in > limit {
				t.Fatalf("seed %d: %d steps started within the hour from %s, maxRepairsPerHour %d", seed, in, started[i], limit)
			}
		}
	}
}
