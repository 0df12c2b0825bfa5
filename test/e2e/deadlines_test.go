package e2e_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// The scenarios of issue 13, as an operator would check them: deadlines beat
// budgets, budgets never over-run, stuck drains retry, say why and escalate,
// and the controller stays calm under churn and edits.

const (
	deleteCondition = "HostEventDelete"
	spotEvent       = "InstanceExpiration.Delete"
)

// TestDeadlinesAndBudgets runs the issue-13 scenarios that can share one
// cluster and one controller (whose /metrics they read). They run one after
// the other: some count the controller's eviction retries, which are global.
func TestDeadlinesAndBudgets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctl := e.startControllerWithMetrics(t, "controller")

	t.Run("SpotNoticeBeatsHeldSlot", func(t *testing.T) { testSpotNoticeBeatsHeldSlot(t, e) })
	t.Run("PDBStuckRetriesThenRearmed", func(t *testing.T) { testPDBStuckRetries(t, e, ctl) })
	t.Run("FlappingWithRecoverFor", func(t *testing.T) { testFlapping(t, e) })
	t.Run("PolicyDeletedMidDrain", func(t *testing.T) { testPolicyDeletedMidDrain(t, e, ctl) })
	t.Run("DryRunMidDrain", func(t *testing.T) { testDryRunMidDrain(t, e, ctl) })
	t.Run("NodeDeletedMidDrain", func(t *testing.T) { testNodeDeletedMidDrain(t, e, ctl) })
	t.Run("TwentyBurstsAtMaxConcurrentOne", func(t *testing.T) { testBursts(t, e, "bursts") })
}

// testSpotNoticeBeatsHeldSlot: the only slot (maxConcurrent 1) is held by a
// node Drained for a reboot 47 h away; a spot-like notice (InstanceExpiration.
// Delete, 2 minutes away, closer than drain.timeout) on another node must not
// wait for that slot: the node is taken over budget (BudgetYielded, status.
// overBudgetNodes) and drained before its deadline; the held node stays Drained.
func testSpotNoticeBeatsHeldSlot(t *testing.T, e *env) {
	e.addNodes(t, "spot", "spot-1", "spot-2", "spot-3")
	web := e.deployApp(t, "spot", "spot", 6, 1)
	nodes := watchTransitions(t, e, "spot")
	e.createPolicy(t, "spot", "spot", func(rp *v1alpha1.RemediationPolicy) {
		rp.Spec.Conditions = []v1alpha1.ConditionRule{{Type: rebootCondition}, {Type: deleteCondition}}
		rp.Spec.Drain.Timeout = metav1.Duration{Duration: 3 * time.Minute} // longer than the notice
		rp.Spec.MaxUnhealthy = intstr.FromString("100%")
	})

	reboot := time.Now().Add(47 * time.Hour).Truncate(time.Second)
	e.hostEvent(t, "spot-1", rebootEvent, "Scheduled", reboot)
	e.waitState(t, "spot-1", "Drained", 2*time.Minute)
	if web.podsOn(t, "spot-2") == 0 {
		t.Fatal("no pods on spot-2 to drain; the test would prove nothing")
	}

	notice := time.Now().Add(2 * time.Minute).Truncate(time.Second)
	e.hostEvent(t, "spot-2", spotEvent, "Scheduled", notice)
	e.waitCondition(t, "spot-2", deleteCondition, corev1.ConditionTrue, "InstanceExpirationDeleteScheduled")
	n := e.waitState(t, "spot-2", "Drained", time.Until(notice))
	drainedAt := nodes.firstAt("spot-2", "Drained")
	if !drainedAt.Before(notice) {
		t.Errorf("spot-2 Drained at %s, not before its deadline %s", drainedAt, notice)
	}
	t.Logf("spot-2 drained %s before its deadline", notice.Sub(drainedAt).Round(time.Second))
	if got := web.podsOn(t, "spot-2"); got != 0 {
		t.Errorf("spot-2 Drained with %d pods left", got)
	}
	if !n.Spec.Unschedulable || n.Annotations[v1alpha1.AnnotationOverBudget] == "" {
		t.Errorf("spot-2: unschedulable %v, %s %q; want cordoned and marked over budget",
			n.Spec.Unschedulable, v1alpha1.AnnotationOverBudget, n.Annotations[v1alpha1.AnnotationOverBudget])
	}
	cluster.Eventually(t, 30*time.Second, func() error {
		if got := reasons(e.events(t, "spot-2")); !slices.Contains(got, "BudgetYielded") {
			return fmt.Errorf("events on spot-2: %q, want BudgetYielded", got)
		}
		rp := e.policy(t, "spot")
		if !slices.ContainsFunc(rp.Status.OverBudgetNodes, func(o v1alpha1.OverBudgetNode) bool {
			return o.Name == "spot-2" && o.Deadline != nil && o.Deadline.Time.Equal(notice)
		}) {
			return fmt.Errorf("policy spot status.overBudgetNodes %+v, want spot-2 with deadline %s", rp.Status.OverBudgetNodes, notice)
		}
		return nil
	})
	if got, want := nodes.states("spot-1"), []string{"Cordoned", "Draining", "Drained"}; !slices.Equal(got, want) {
		t.Errorf("held spot-1 went through %q, want %q (it keeps its slot, Drained)", got, want)
	}
	if h := nodes.states("spot-3"); len(h) != 0 {
		t.Errorf("untriggered spot-3 touched: %q", h)
	}

	e.hostEvent(t, "spot-1", rebootEvent, "Executed", reboot)
	e.hostEvent(t, "spot-2", spotEvent, "Canceled", notice)
	e.waitReleased(t, "spot-1", time.Minute)
	e.waitReleased(t, "spot-2", time.Minute)
}

// testPDBStuckRetries: a PDB allowing no disruption fails every attempt;
// the drain is retried up to drain.maxAttempts, the node's blocked-by, the
// policy's status.stuckNodes and the stuck-nodes gauge name the PDB for as
// long as it is stuck; fixing the PDB and re-arming the attempts (as
// docs/operations.md says) finishes it and the gauge goes back to 0.
func testPDBStuckRetries(t *testing.T, e *env, ctl *controllerProc) {
	e.addNodes(t, "pdb", "pdb-1", "pdb-2")
	web := e.deployApp(t, "pdb", "pdb", 4, 0)
	nodes := watchTransitions(t, e, "pdb")
	e.createPolicy(t, "pdb", "pdb", func(rp *v1alpha1.RemediationPolicy) {
		rp.Spec.Drain.Timeout = metav1.Duration{Duration: 5 * time.Second}
		rp.Spec.Drain.RetryBackoff = &metav1.Duration{Duration: 2 * time.Second}
		rp.Spec.Drain.MaxAttempts = 2
	})
	before := web.podsOn(t, "pdb-1")
	if before == 0 {
		t.Fatal("no pods on pdb-1 to drain; the test would prove nothing")
	}
	gauge := `nodewarden_controller_stuck_nodes{policy="pdb"}`
	if v := ctl.metric(t, gauge); v != 0 {
		t.Errorf("%s = %v before anything happened, want 0", gauge, v)
	}

	action := time.Now().Add(47 * time.Hour).Truncate(time.Second)
	e.hostEvent(t, "pdb-1", rebootEvent, "Scheduled", action)
	var n *corev1.Node
	cluster.Eventually(t, 90*time.Second, func() error {
		n = e.node(t, "pdb-1")
		if state(n) != "DrainFailed" || n.Annotations[v1alpha1.AnnotationDrainAttempts] != "2" {
			return fmt.Errorf("pdb-1: state %q, attempts %q; want DrainFailed after 2 attempts",
				state(n), n.Annotations[v1alpha1.AnnotationDrainAttempts])
		}
		return nil
	})
	blocked := n.Annotations[v1alpha1.AnnotationBlockedBy]
	t.Logf("pdb-1 %s: %s", v1alpha1.AnnotationBlockedBy, blocked)
	if !strings.Contains(blocked, "disruption budget web") {
		t.Errorf("pdb-1 blocked-by %q does not name the disruption budget web", blocked)
	}
	cluster.Eventually(t, 30*time.Second, func() error {
		rp := e.policy(t, "pdb")
		i := slices.IndexFunc(rp.Status.StuckNodes, func(s v1alpha1.StuckNode) bool { return s.Name == "pdb-1" })
		if i < 0 {
			return fmt.Errorf("policy pdb status.stuckNodes %+v, want pdb-1", rp.Status.StuckNodes)
		}
		if s := rp.Status.StuckNodes[i]; s.Attempts != 2 || !strings.Contains(s.BlockedBy, "disruption budget web") || s.NextAttempt != nil {
			return fmt.Errorf("policy pdb status.stuckNodes[pdb-1] = %+v, want 2 attempts, blocked by the disruption budget web, no next attempt", s)
		}
		if v := ctl.metric(t, gauge); v != 1 {
			return fmt.Errorf("%s = %v, want 1", gauge, v)
		}
		return nil
	})
	// Stuck for as long as nobody steps in: no third attempt, gauge stays 1
	// (over more than drain.timeout + twice the backoff).
	consistently(t, 12*time.Second, func() error {
		n := e.node(t, "pdb-1")
		if state(n) != "DrainFailed" || n.Annotations[v1alpha1.AnnotationDrainAttempts] != "2" {
			return fmt.Errorf("pdb-1 no longer stuck: state %q, attempts %q", state(n), n.Annotations[v1alpha1.AnnotationDrainAttempts])
		}
		if v := ctl.metric(t, gauge); v != 1 {
			return fmt.Errorf("%s = %v while pdb-1 is stuck, want 1", gauge, v)
		}
		return nil
	})
	if got := web.podsOn(t, "pdb-1"); got != before {
		t.Errorf("pods evicted from pdb-1 despite a PDB allowing none: %d -> %d", before, got)
	}
	if got, want := nodes.states("pdb-1"), []string{"Cordoned", "Draining", "DrainFailed", "Draining", "DrainFailed"}; !slices.Equal(got, want) {
		t.Errorf("pdb-1 went through %q, want %q", got, want)
	}
	cluster.Eventually(t, 30*time.Second, func() error { // Events are sent in the background
		if c := countReason(e.events(t, "pdb-1"), "DrainFailed"); c != 2 {
			return fmt.Errorf("%d DrainFailed events on pdb-1, want 2", c)
		}
		return nil
	})

	// The operator fixes the budget, gives the drain the time it now needs
	// (one pod at a time, each waiting for its replacement to be Ready: more
	// than the 5 s that made it fail fast above on a loaded machine, seen in
	// CI) and, once the disruption controller allows an eviction, re-arms
	// the attempts.
	web.setMaxUnavailable(t, 1)
	e.updatePolicy(t, "pdb", func(rp *v1alpha1.RemediationPolicy) {
		rp.Spec.Drain.Timeout = metav1.Duration{Duration: time.Minute}
	})
	cluster.Eventually(t, time.Minute, func() error {
		pdb, err := e.Clientset.PolicyV1().PodDisruptionBudgets(web.namespace).Get(t.Context(), appName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pdb.Status.ObservedGeneration != pdb.Generation || pdb.Status.DisruptionsAllowed < 1 {
			return fmt.Errorf("pdb %s: observed generation %d of %d, %d disruptions allowed", appName, pdb.Status.ObservedGeneration, pdb.Generation, pdb.Status.DisruptionsAllowed)
		}
		return nil
	})
	e.annotateNode(t, "pdb-1", v1alpha1.AnnotationDrainAttempts, "1")
	e.waitState(t, "pdb-1", "Drained", 2*time.Minute)
	if got := web.podsOn(t, "pdb-1"); got != 0 {
		t.Errorf("pdb-1 Drained with %d pods left", got)
	}
	cluster.Eventually(t, 30*time.Second, func() error {
		if v := ctl.metric(t, gauge); v != 0 {
			return fmt.Errorf("%s = %v after the drain finished, want 0", gauge, v)
		}
		if s := e.policy(t, "pdb").Status.StuckNodes; len(s) != 0 {
			return fmt.Errorf("policy pdb status.stuckNodes %+v after the drain finished, want none", s)
		}
		return nil
	})
	e.hostEvent(t, "pdb-1", rebootEvent, "Executed", action)
	e.waitReleased(t, "pdb-1", time.Minute)
}

// testFlapping: with recoverFor 20s, a condition that goes False and True
// again several times within it costs one cordon and one drain; False for
// longer than recoverFor releases the node once.
func testFlapping(t *testing.T, e *env) {
	const recoverFor = 20 * time.Second
	e.addNodes(t, "flap", "flap-1")
	nodes := watchTransitions(t, e, "flap")
	e.createPolicy(t, "flap", "flap", func(rp *v1alpha1.RemediationPolicy) {
		rp.Spec.RecoverFor = metav1.Duration{Duration: recoverFor}
		rp.Spec.Drain.Timeout = metav1.Duration{Duration: 30 * time.Second}
	})

	action := time.Now().Add(47 * time.Hour).Truncate(time.Second)
	e.hostEvent(t, "flap-1", rebootEvent, "Scheduled", action)
	e.waitState(t, "flap-1", "Drained", time.Minute)
	for i := 1; i <= 3; i++ {
		e.hostEvent(t, "flap-1", rebootEvent, "Executed", action)
		off := e.waitCondition(t, "flap-1", rebootCondition, corev1.ConditionFalse, "SystemMaintenanceRebootExecuted")
		action = action.Add(time.Minute) // a new event: the condition goes True again
		e.hostEvent(t, "flap-1", rebootEvent, "Scheduled", action)
		on := e.waitCondition(t, "flap-1", rebootCondition, corev1.ConditionTrue, "SystemMaintenanceRebootScheduled")
		if d := on.LastTransitionTime.Sub(off.LastTransitionTime.Time); d >= recoverFor {
			t.Fatalf("flap %d: the condition was False for %s, not within recoverFor (%s): the machine is too slow for this test", i, d, recoverFor)
		}
		if s := state(e.node(t, "flap-1")); s != "Drained" {
			t.Errorf("flap %d: flap-1 is %q, want still Drained", i, s)
		}
	}
	e.hostEvent(t, "flap-1", rebootEvent, "Executed", action)
	off := e.waitCondition(t, "flap-1", rebootCondition, corev1.ConditionFalse, "SystemMaintenanceRebootExecuted")
	e.waitReleased(t, "flap-1", recoverFor+time.Minute)
	released := nodes.firstAt("flap-1", "")
	// lastTransitionTime has whole seconds, truncated: the real transition
	// came at or after it.
	if early := off.LastTransitionTime.Add(recoverFor).Sub(released); early > 0 {
		t.Errorf("flap-1 released %s after the condition cleared, %s before recoverFor (%s) passed", released.Sub(off.LastTransitionTime.Time), early, recoverFor)
	}
	if got, want := nodes.states("flap-1"), []string{"Cordoned", "Draining", "Drained", ""}; !slices.Equal(got, want) {
		t.Errorf("flap-1 went through %q, want %q: one cordon, one drain, one release", got, want)
	}
	if c, u := nodes.cordons("flap-1"); c != 1 || u != 1 {
		t.Errorf("flap-1 cordoned %d times and uncordoned %d times, want once each", c, u)
	}
	// The recorder sends Events in the background: the release can be on
	// the Node before its Event is stored.
	cluster.Eventually(t, 30*time.Second, func() error {
		evs := e.events(t, "flap-1")
		if c := countReason(evs, "DrainStarted"); c != 1 {
			return fmt.Errorf("%d DrainStarted events on flap-1, want 1", c)
		}
		if c := countReason(evs, "Uncordoned"); c != 1 {
			return fmt.Errorf("%d Uncordoned events on flap-1, want 1", c)
		}
		return nil
	})
}

// testPolicyDeletedMidDrain: the policy is deleted while a PDB holds its
// drain; the drain stops (no more eviction attempts, nothing evicted once
// the PDB would allow it), the node stays cordoned with an Orphaned Event
// while its condition holds, and is released and uncordoned once it clears.
func testPolicyDeletedMidDrain(t *testing.T, e *env, ctl *controllerProc) {
	e.addNodes(t, "orphan", "orphan-1", "orphan-2")
	web := e.deployApp(t, "orphan", "orphan", 4, 0)
	nodes := watchTransitions(t, e, "orphan")
	e.createPolicy(t, "orphan", "orphan", nil) // drain.timeout 3m: the drain keeps trying
	before := web.podsOn(t, "orphan-1")
	if before == 0 {
		t.Fatal("no pods on orphan-1 to drain; the test would prove nothing")
	}
	action := time.Now().Add(47 * time.Hour).Truncate(time.Second)
	e.hostEvent(t, "orphan-1", rebootEvent, "Scheduled", action)
	e.waitState(t, "orphan-1", "Draining", time.Minute)
	ctl.waitEvictionRefused(t)

	if err := e.Client.Delete(t.Context(), e.policy(t, "orphan")); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 30*time.Second, func() error {
		n := e.node(t, "orphan-1")
		if n.Annotations[v1alpha1.AnnotationOrphaned] == "" || state(n) != "Cordoned" {
			return fmt.Errorf("orphan-1: state %q, %s %q; want Cordoned and orphaned", state(n), v1alpha1.AnnotationOrphaned, n.Annotations[v1alpha1.AnnotationOrphaned])
		}
		if c := countReason(e.events(t, "orphan-1"), "Orphaned"); c != 1 {
			return fmt.Errorf("%d Orphaned events on orphan-1, want 1", c)
		}
		return nil
	})
	ctl.drainStopped(t, web, "orphan-1", before)

	e.hostEvent(t, "orphan-1", rebootEvent, "Executed", action)
	cleared := time.Now()
	e.waitReleased(t, "orphan-1", time.Minute)
	if c, u := nodes.cordons("orphan-1"); c != 1 || u != 1 {
		t.Errorf("orphan-1 cordoned %d times and uncordoned %d times, want once each", c, u)
	}
	if at := nodes.firstUncordon("orphan-1"); at.Before(cleared) {
		t.Errorf("orphan-1 uncordoned at %s, before its condition cleared (%s)", at, cleared)
	}
	if c := countReason(e.events(t, "orphan-1"), "Orphaned"); c != 1 {
		t.Errorf("%d Orphaned events on orphan-1, want 1", c)
	}
}

// testDryRunMidDrain: turning dryRun on while a PDB holds the drain cancels
// the drain and keeps the cordon; turning it off again finishes the drain.
func testDryRunMidDrain(t *testing.T, e *env, ctl *controllerProc) {
	e.addNodes(t, "dry", "dry-1", "dry-2")
	web := e.deployApp(t, "dry", "dry", 4, 0)
	e.createPolicy(t, "dry", "dry", nil)
	before := web.podsOn(t, "dry-1")
	if before == 0 {
		t.Fatal("no pods on dry-1 to drain; the test would prove nothing")
	}
	action := time.Now().Add(47 * time.Hour).Truncate(time.Second)
	e.hostEvent(t, "dry-1", rebootEvent, "Scheduled", action)
	e.waitState(t, "dry-1", "Draining", time.Minute)
	ctl.waitEvictionRefused(t)

	e.updatePolicy(t, "dry", func(rp *v1alpha1.RemediationPolicy) { rp.Spec.DryRun = true })
	ctl.waitLog(t, 30*time.Second, "drain cancelled", "dry-1")
	ctl.drainStopped(t, web, "dry-1", before)
	if n := e.node(t, "dry-1"); !n.Spec.Unschedulable || state(n) == "" {
		t.Errorf("dry-1 after dryRun: unschedulable %v, state %q; want still cordoned and held", n.Spec.Unschedulable, state(n))
	}

	e.updatePolicy(t, "dry", func(rp *v1alpha1.RemediationPolicy) { rp.Spec.DryRun = false })
	e.waitState(t, "dry-1", "Drained", 2*time.Minute)
	if got := web.podsOn(t, "dry-1"); got != 0 {
		t.Errorf("dry-1 Drained with %d pods left", got)
	}
	e.hostEvent(t, "dry-1", rebootEvent, "Executed", action)
	e.waitReleased(t, "dry-1", time.Minute)
}

// testNodeDeletedMidDrain: a Node deleted while a PDB holds its drain: the
// drain stops (the controller says so, and makes no more evictions).
func testNodeDeletedMidDrain(t *testing.T, e *env, ctl *controllerProc) {
	agents := e.addNodes(t, "gone", "gone-1", "gone-2")
	web := e.deployApp(t, "gone", "gone", 4, 0)
	e.createPolicy(t, "gone", "gone", nil)
	if web.podsOn(t, "gone-1") == 0 {
		t.Fatal("no pods on gone-1 to drain; the test would prove nothing")
	}
	e.hostEvent(t, "gone-1", rebootEvent, "Scheduled", time.Now().Add(47*time.Hour))
	e.waitState(t, "gone-1", "Draining", time.Minute)
	ctl.waitEvictionRefused(t)

	agents["gone-1"].Stop() // the machine is gone, and its agent with it
	if err := e.Clientset.CoreV1().Nodes().Delete(t.Context(), "gone-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ctl.waitLog(t, 30*time.Second, "node deleted: its drain stops", "gone-1")
	retries := ctl.metric(t, "nodewarden_controller_eviction_retries_total")
	consistently(t, 12*time.Second, func() error {
		if v := ctl.metric(t, "nodewarden_controller_eviction_retries_total"); v != retries {
			return fmt.Errorf("eviction retries went on after gone-1 was deleted: %v -> %v", retries, v)
		}
		return nil
	})
	if rp := e.policy(t, "gone"); rp.Status.RemediatingNodes != 0 {
		t.Errorf("policy gone still counts %d remediating nodes after its node was deleted", rp.Status.RemediatingNodes)
	}
}

// testBursts: 20 times, the trigger is set on 3 to 5 nodes in quick
// succession under maxConcurrent 1, and cleared once the held one is
// Drained. A watch counts the most nodes held at once: never 2.
func testBursts(t *testing.T, e *env, pool string) {
	var names []string
	for i := range 5 {
		names = append(names, fmt.Sprintf("%s-%d", pool, i+1))
	}
	e.addNodes(t, pool, names...)
	nodes := watchTransitions(t, e, pool)
	e.createPolicy(t, pool, pool, func(rp *v1alpha1.RemediationPolicy) {
		rp.Spec.MaxUnhealthy = intstr.FromString("100%")
		rp.Spec.Drain.Timeout = metav1.Duration{Duration: 30 * time.Second}
	})
	start := time.Now().Add(47 * time.Hour).Truncate(time.Second)
	took := map[string]int{}
	for round := range 20 {
		k := 3 + round%3
		triggered := make([]string, k)
		for i := range k {
			triggered[i] = names[(round+i)%len(names)]
		}
		// Each node triggered has an earlier deadline than those before it,
		// so a controller that missed its own last cordon (a stale cache)
		// would take it too; the triggers come back to back or a few tens
		// of milliseconds apart (about one pass of the controller), varying
		// by round, to hit that window.
		gap := time.Duration(round%4) * 25 * time.Millisecond
		actions := map[string]time.Time{}
		for i, n := range triggered {
			if i > 0 && gap > 0 {
				time.Sleep(gap) // the shape of the burst, not synchronisation
			}
			actions[n] = start.Add(time.Duration(round)*time.Hour - time.Duration(i)*time.Minute)
			e.hostEvent(t, n, rebootEvent, "Scheduled", actions[n])
		}
		var held string
		cluster.Eventually(t, time.Minute, func() error {
			for _, n := range triggered {
				if state(e.node(t, n)) == "Drained" {
					held = n
					return nil
				}
			}
			return fmt.Errorf("round %d: none of %q Drained yet", round, triggered)
		})
		took[held]++
		for _, n := range triggered {
			e.hostEvent(t, n, rebootEvent, "Executed", actions[n])
		}
		for _, n := range triggered {
			e.waitCondition(t, n, rebootCondition, corev1.ConditionFalse, "SystemMaintenanceRebootExecuted")
		}
		for _, n := range names {
			e.waitReleased(t, n, time.Minute)
		}
	}
	t.Logf("held per node over 20 bursts: %v; most held at once %d, most cordoned at once %d", took, nodes.maxHeld(), nodes.maxCordoned())
	if got := nodes.maxHeld(); got != 1 {
		t.Errorf("at most %d nodes held at once (state other than Waiting), want 1 (maxConcurrent)", got)
	}
	if got := nodes.maxCordoned(); got != 1 {
		t.Errorf("at most %d nodes cordoned at once, want 1", got)
	}
}

// TestBurstsLaggingWatch is the 20 bursts with the controller's informer
// cache lagging the API server by half a second (its watches go through
// lagProxy): a controller that counted held nodes from its cache alone would
// take a second node whose trigger it saw before the echo of its own last
// cordon. It has a cluster of its own: its controller is the only one.
func TestBurstsLaggingWatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	lagging := e.newLagProxy(t, 500*time.Millisecond)
	startProc(t, e.dir, "controller-lagging", nodewarden, "controller", "--kubeconfig", lagging.kubeconfig,
		"--namespace", systemNamespace, "--leader-elect", "--metrics-bind-address", "0", "--health-probe-bind-address", "0")
	testBursts(t, e, "lag")
}

// TestNotReadyNodeOutOfService: a node whose kubelet is gone (NotReady) and
// whose evicted pods stay Terminating is stuck, the node's blocked-by says
// it is NotReady; with drain.outOfServiceTaint the node is tainted
// node.kubernetes.io/out-of-service, kube-controller-manager's pod GC deletes
// the pods, and the drain completes. It has a cluster of its own: the node
// lifecycle controller must notice stopped heartbeats within seconds, not
// the hour the other clusters give it.
func TestNotReadyNodeOutOfService(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, cluster.Options{Full: true, ControllerManagerFlags: []string{"--node-monitor-grace-period=30s"}})
	e.startController(t, "controller")
	e.addNodes(t, "nr", "nr-1", "nr-2")
	web := e.deployApp(t, "nr", "nr", 4, 4) // the PDB is not what blocks here
	e.createPolicy(t, "nr", "nr", func(rp *v1alpha1.RemediationPolicy) {
		rp.Spec.Drain.Timeout = metav1.Duration{Duration: 5 * time.Second}
		rp.Spec.Drain.MaxAttempts = 1
	})
	before := web.podsOn(t, "nr-1")
	if before == 0 {
		t.Fatal("no pods on nr-1 to drain; the test would prove nothing")
	}

	// The kubelet dies: kwok stops acting for nr-1 (no lease renewals, no
	// pod updates) and the node lifecycle controller marks it NotReady.
	e.stopKubelet(t, "nr-1")
	cluster.Eventually(t, 2*time.Minute, func() error {
		if c := condition(e.node(t, "nr-1"), string(corev1.NodeReady)); c == nil || c.Status == corev1.ConditionTrue {
			return fmt.Errorf("nr-1 still Ready: %+v", c)
		}
		return nil
	})

	action := time.Now().Add(47 * time.Hour).Truncate(time.Second)
	e.hostEvent(t, "nr-1", rebootEvent, "Scheduled", action)
	n := e.waitState(t, "nr-1", "DrainFailed", time.Minute)
	blocked := n.Annotations[v1alpha1.AnnotationBlockedBy]
	t.Logf("nr-1 %s: %s", v1alpha1.AnnotationBlockedBy, blocked)
	if !strings.Contains(blocked, "NotReady") {
		t.Errorf("nr-1 blocked-by %q does not say the node is NotReady", blocked)
	}
	pods := e.podsOnNode(t, "nr", "nr-1")
	if len(pods) != before || slices.ContainsFunc(pods, func(p corev1.Pod) bool { return p.DeletionTimestamp == nil }) {
		t.Errorf("nr-1: want its %d pods evicted and stuck Terminating, got %d: %v", before, len(pods), podSummary(pods))
	}
	cluster.Eventually(t, 30*time.Second, func() error {
		rp := e.policy(t, "nr")
		if !slices.ContainsFunc(rp.Status.StuckNodes, func(s v1alpha1.StuckNode) bool {
			return s.Name == "nr-1" && strings.Contains(s.BlockedBy, "NotReady")
		}) {
			return fmt.Errorf("policy nr status.stuckNodes %+v, want nr-1 blocked by its NotReady kubelet", rp.Status.StuckNodes)
		}
		return nil
	})
	// Without the opt-in nothing escalates: the node stays stuck.
	consistently(t, 8*time.Second, func() error {
		n := e.node(t, "nr-1")
		if hasTaintKey(n, corev1.TaintNodeOutOfService) || state(n) != "DrainFailed" {
			return fmt.Errorf("nr-1 escalated without drain.outOfServiceTaint: state %q, taints %v", state(n), n.Spec.Taints)
		}
		return nil
	})

	// The operator opts in (and gives the pod GC, which runs every 20 s,
	// time to act within one attempt).
	e.updatePolicy(t, "nr", func(rp *v1alpha1.RemediationPolicy) {
		rp.Spec.Drain.OutOfServiceTaint = true
		rp.Spec.Drain.Timeout = metav1.Duration{Duration: 90 * time.Second}
	})
	cluster.Eventually(t, 30*time.Second, func() error {
		n := e.node(t, "nr-1")
		if !slices.ContainsFunc(n.Spec.Taints, func(tn corev1.Taint) bool {
			return tn.Key == corev1.TaintNodeOutOfService && tn.Value == "nodeshutdown" && tn.Effect == corev1.TaintEffectNoExecute
		}) {
			return fmt.Errorf("nr-1 taints %v, want %s=nodeshutdown:NoExecute", n.Spec.Taints, corev1.TaintNodeOutOfService)
		}
		return nil
	})
	e.waitState(t, "nr-1", "Drained", 2*time.Minute)
	if pods := e.podsOnNode(t, "nr", "nr-1"); len(pods) != 0 {
		t.Errorf("nr-1 Drained with pods left: %v", podSummary(pods))
	}
	if got := reasons(e.events(t, "nr-1")); !slices.Contains(got, "DrainEscalated") {
		t.Errorf("events on nr-1: %q, want DrainEscalated", got)
	}
	web.waitAvailable(t, 2*time.Minute) // the replacements run on nr-2
}

// ---- helpers ----

func newEnvWith(t *testing.T, opts cluster.Options) *env {
	t.Helper()
	c := cluster.StartWith(t, opts)
	e := &env{Cluster: c, dir: t.TempDir()}
	if _, err := c.Clientset.CoreV1().Namespaces().Create(t.Context(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return e
}

// controllerProc is a controller process whose /metrics and log a test reads.
type controllerProc struct {
	*proc
	metricsURL string
}

// startControllerWithMetrics is startController serving /metrics on a free
// loopback port.
func (e *env) startControllerWithMetrics(t *testing.T, name string) *controllerProc {
	t.Helper()
	metrics := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	health := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	p := startProc(t, e.dir, name, nodewarden, "controller", "--kubeconfig", e.Kubeconfig, "--namespace", systemNamespace,
		"--leader-elect", "--metrics-bind-address", metrics, "--health-probe-bind-address", health)
	waitReadyz(t, p, health)
	return &controllerProc{proc: p, metricsURL: "http://" + metrics + "/metrics"}
}

// metric is the value of one series of the controller's /metrics, e.g.
// `nodewarden_controller_stuck_nodes{policy="p"}`; 0 when absent.
func (c *controllerProc) metric(t testing.TB, series string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(httpGet(t, c.metricsURL), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %q: %v", series, v, err)
			}
			return f
		}
	}
	return 0
}

// waitEvictionRefused waits until the controller counts a new eviction
// refused (by a PDB): the drain is knocking.
func (c *controllerProc) waitEvictionRefused(t testing.TB) {
	t.Helper()
	const series = "nodewarden_controller_eviction_retries_total"
	start := c.metric(t, series)
	cluster.Eventually(t, 30*time.Second, func() error {
		if v := c.metric(t, series); v <= start {
			return fmt.Errorf("%s still %v: no eviction refused yet", series, v)
		}
		return nil
	})
}

// drainStopped checks that node's drain no longer runs: no eviction is
// retried while the PDB refuses (a live drain retries every ~5 s), and once
// the PDB allows disruptions nothing is evicted either; the node stays
// cordoned throughout.
func (c *controllerProc) drainStopped(t testing.TB, web *app, node string, pods int) {
	t.Helper()
	const series = "nodewarden_controller_eviction_retries_total"
	retries := c.metric(t, series)
	consistently(t, 12*time.Second, func() error {
		if v := c.metric(t, series); v != retries {
			return fmt.Errorf("evictions still retried after the drain should have stopped: %s %v -> %v", series, retries, v)
		}
		return nil
	})
	web.setMaxUnavailable(t, web.replicas)
	cluster.Eventually(t, 30*time.Second, func() error {
		p, err := web.e.Clientset.PolicyV1().PodDisruptionBudgets(web.namespace).Get(context.Background(), appName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.ObservedGeneration != p.Generation || p.Status.DisruptionsAllowed == 0 {
			return fmt.Errorf("pdb %s/%s allows %d disruptions (observed generation %d of %d)", web.namespace, appName, p.Status.DisruptionsAllowed, p.Status.ObservedGeneration, p.Generation)
		}
		return nil
	})
	consistently(t, 10*time.Second, func() error {
		if got := web.podsOn(t, node); got != pods {
			return fmt.Errorf("pods evicted from %s after its drain should have stopped: %d -> %d", node, pods, got)
		}
		if n := web.e.node(t, node); !n.Spec.Unschedulable {
			return fmt.Errorf("%s uncordoned while its condition holds (state %q)", node, state(n))
		}
		return nil
	})
}

// waitLog waits until a line of the controller's log contains every one of words.
func (c *controllerProc) waitLog(t testing.TB, timeout time.Duration, words ...string) {
	t.Helper()
	cluster.Eventually(t, timeout, func() error {
		b, err := os.ReadFile(c.LogPath)
		if err != nil {
			return err
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if !slices.ContainsFunc(words, func(w string) bool { return !strings.Contains(line, w) }) {
				t.Logf("controller log: %s", line)
				return nil
			}
		}
		return fmt.Errorf("no line of %s has all of %q", c.LogPath, words)
	})
}

// consistently fails the test if cond fails at any poll during d.
func consistently(t testing.TB, d time.Duration, cond func() error) {
	t.Helper()
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if err := cond(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (e *env) updatePolicy(t testing.TB, name string, mutate func(*v1alpha1.RemediationPolicy)) {
	t.Helper()
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		rp := e.policy(t, name)
		mutate(rp)
		return e.Client.Update(t.Context(), rp)
	}); err != nil {
		t.Fatal(err)
	}
}

// annotateNode is `kubectl annotate node NODE KEY=VALUE --overwrite`.
func (e *env) annotateNode(t testing.TB, node, key, value string) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, key, value)
	if _, err := e.Clientset.CoreV1().Nodes().Patch(t.Context(), node, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// stopKubelet makes kwok stop acting as node's kubelet, as if it were gone.
// Its heartbeats stop: kwok renews only the node Leases it holds, so the
// test takes the node's Lease for an hour, and the node lifecycle
// controller marks the node NotReady after its grace period. Its pods are
// left alone: they (and the node) get cluster.KwokDisregardAnnotation, so a
// pod evicted from it stays Terminating. (Removing kwok's node annotation
// does neither: kwok v0.8.0 filters updates by its selector and never hears
// that a node left it.)
func (e *env) stopKubelet(t testing.TB, node string) {
	t.Helper()
	leases := e.Clientset.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		l, err := leases.Get(t.Context(), node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		l.Spec.HolderIdentity = ptr.To("e2e-dead-kubelet")
		l.Spec.LeaseDurationSeconds = ptr.To[int32](3600)
		l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
		_, err = leases.Update(t.Context(), l, metav1.UpdateOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"true"}}}`, cluster.KwokDisregardAnnotation)
	if _, err := e.Clientset.CoreV1().Nodes().Patch(t.Context(), node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	pods, err := e.Clientset.CoreV1().Pods(metav1.NamespaceAll).List(t.Context(), metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if _, err := e.Clientset.CoreV1().Pods(p.Namespace).Patch(t.Context(), p.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *env) podsOnNode(t testing.TB, namespace, node string) []corev1.Pod {
	t.Helper()
	pods, err := e.Clientset.CoreV1().Pods(namespace).List(context.Background(), metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

func podSummary(pods []corev1.Pod) []string {
	out := []string{}
	for _, p := range pods {
		s := p.Name + " " + string(p.Status.Phase)
		if p.DeletionTimestamp != nil {
			s += " (terminating)"
		}
		out = append(out, s)
	}
	return out
}

func hasTaintKey(n *corev1.Node, key string) bool {
	return slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == key })
}

func countReason(evs []corev1.Event, reason string) int {
	c := 0
	for _, ev := range evs {
		if ev.Reason == reason {
			c += max(int(ev.Count), 1)
		}
	}
	return c
}

// transitions records, from a watch on a pool's nodes, every change of each
// node's nodewarden.io/state and spec.unschedulable, with when it was seen.
type transitions struct {
	mu          sync.Mutex
	last        map[string]observed
	log         map[string][]observed
	held        map[string]bool // in a slot state (state set and not Waiting)
	cordoned    map[string]bool
	most, mostC int
}

type observed struct {
	at            time.Time
	state         string
	unschedulable bool
}

func watchTransitions(t testing.TB, e *env, pool string) *transitions {
	t.Helper()
	tr := &transitions{last: map[string]observed{}, log: map[string][]observed{}, held: map[string]bool{}, cordoned: map[string]bool{}}
	seen := func(n *corev1.Node) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		o := observed{at: time.Now(), state: state(n), unschedulable: n.Spec.Unschedulable}
		if prev, ok := tr.last[n.Name]; !ok && (o.state != "" || o.unschedulable) || ok && (prev.state != o.state || prev.unschedulable != o.unschedulable) {
			tr.log[n.Name] = append(tr.log[n.Name], o)
		}
		tr.last[n.Name] = o
		setIf(tr.held, n.Name, o.state != "" && o.state != string(v1alpha1.StateWaiting))
		setIf(tr.cordoned, n.Name, o.unschedulable)
		tr.most, tr.mostC = max(tr.most, len(tr.held)), max(tr.mostC, len(tr.cordoned))
	}
	e.watchPoolNodes(t, pool, seen)
	return tr
}

func setIf(m map[string]bool, k string, v bool) {
	if v {
		m[k] = true
	} else {
		delete(m, k)
	}
}

// states are node's distinct states in order ("" = released).
func (tr *transitions) states(node string) []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []string
	for _, o := range tr.log[node] {
		if len(out) == 0 && o.state == "" || len(out) > 0 && out[len(out)-1] == o.state {
			continue
		}
		out = append(out, o.state)
	}
	return out
}

// firstAt is when node was first seen in state ("" = released after being held).
func (tr *transitions) firstAt(node, s string) time.Time {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	held := false
	for _, o := range tr.log[node] {
		held = held || o.state != ""
		if o.state == s && (s != "" || held) {
			return o.at
		}
	}
	return time.Time{}
}

// cordons counts node's cordons (unschedulable false -> true) and uncordons.
func (tr *transitions) cordons(node string) (cordons, uncordons int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	was := false
	for _, o := range tr.log[node] {
		switch {
		case o.unschedulable && !was:
			cordons++
		case !o.unschedulable && was:
			uncordons++
		}
		was = o.unschedulable
	}
	return cordons, uncordons
}

func (tr *transitions) firstUncordon(node string) time.Time {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	was := false
	for _, o := range tr.log[node] {
		if was && !o.unschedulable {
			return o.at
		}
		was = o.unschedulable
	}
	return time.Time{}
}

func (tr *transitions) maxHeld() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.most
}

func (tr *transitions) maxCordoned() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.mostC
}
