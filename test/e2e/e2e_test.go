package e2e_test

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/deadline"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// TestOneCluster runs the scenarios that can share a cluster and its one
// controller process: each has its own nodes (a "pool" label), its own
// policies selecting only those, and its own app namespace.
func TestOneCluster(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.startController(t, "controller")

	t.Run("Story", func(t *testing.T) { testStory(t, e) })
	t.Run("AgentRestart", func(t *testing.T) { testAgentRestart(t, e) })
	t.Run("TwoPolicies", func(t *testing.T) { testTwoPolicies(t, e) })
	t.Run("CircuitBreakerThenBurst", func(t *testing.T) { testCircuitBreakerThenBurst(t, e) })
}

// testStory is the demo's story: a maintenance notice on one node; the agent
// sets the condition, the controller cordons the node and drains it within
// the PDB while the pods start elsewhere; the event is logged Executed and
// the node comes back.
func testStory(t *testing.T, e *env) {
	e.addNodes(t, "story", "story-1", "story-2", "story-3")
	web := e.deployApp(t, "story", "story", 6, 1)
	nodes := watchPool(t, e, "story")
	lowest := web.watchAvailability(t)
	e.createPolicy(t, "story", "story", nil)
	before := web.podsOn(t, "story-2")
	if before == 0 {
		t.Fatal("no pods on story-2 to drain; the test would prove nothing")
	}

	action := time.Now().Add(47 * time.Hour).Truncate(time.Second)
	e.hostEvent(t, "story-2", rebootEvent, "Scheduled", action)
	c := e.waitCondition(t, "story-2", rebootCondition, corev1.ConditionTrue, "SystemMaintenanceRebootScheduled")
	if at, ok := deadline.Parse(c.Message); !ok || !at.Equal(action) {
		t.Errorf("condition message %q: deadline %v, %v; want %v", c.Message, at, ok, action)
	}

	n := e.waitState(t, "story-2", "Drained", 2*time.Minute)
	if !n.Spec.Unschedulable {
		t.Error("story-2 Drained but not cordoned")
	}
	if got := n.Annotations[v1alpha1.AnnotationPolicy]; got != "story" {
		t.Errorf("story-2 held by policy %q, want story", got)
	}
	if got := n.Annotations[v1alpha1.AnnotationTrigger]; got != rebootCondition+"=True" {
		t.Errorf("story-2 trigger %q", got)
	}
	if got := web.podsOn(t, "story-2"); got != 0 {
		t.Errorf("story-2 Drained with %d pods left", got)
	}
	web.waitAvailable(t, time.Minute) // all replicas Running on the other nodes
	if low := lowest(); low < web.replicas-1 {
		t.Errorf("PDB maxUnavailable=1 violated: available replicas fell to %d of %d", low, web.replicas)
	}
	if got, want := nodes.history("story-2"), []string{"Cordoned", "Draining", "Drained"}; !slices.Equal(got, want) {
		t.Errorf("story-2 went through states %q, want %q", got, want)
	}
	cluster.Eventually(t, 10*time.Second, func() error {
		got := reasons(e.events(t, "story-2"))
		for _, want := range []string{"SystemMaintenanceRebootScheduled", "Cordoned", "DrainStarted", "DrainSucceeded"} {
			if !slices.Contains(got, want) {
				return fmt.Errorf("events on story-2: %q, missing %s", got, want)
			}
		}
		return nil
	})

	// The reboot is done: the plugin logs the event as Executed.
	e.hostEvent(t, "story-2", rebootEvent, "Executed", action)
	e.waitCondition(t, "story-2", rebootCondition, corev1.ConditionFalse, "SystemMaintenanceRebootExecuted")
	e.waitReleased(t, "story-2", time.Minute)
	cluster.Eventually(t, 10*time.Second, func() error {
		if got := reasons(e.events(t, "story-2")); !slices.Contains(got, "Uncordoned") || !slices.Contains(got, "SystemMaintenanceRebootExecuted") {
			return fmt.Errorf("events on story-2: %q, want Uncordoned and SystemMaintenanceRebootExecuted too", got)
		}
		return nil
	})
	for _, other := range []string{"story-1", "story-3"} {
		if h := nodes.history(other); len(h) != 0 {
			t.Errorf("untriggered node %s was touched: states %q", other, h)
		}
	}
	if got := nodes.max(); got != 1 {
		t.Errorf("at most %d nodes held at once, want 1", got)
	}
}

// testAgentRestart kills an agent (nodewarden-agent, as the DaemonSet runs
// it) with -9 and starts it again as `nodewarden agent`: it replays its log
// and finds the Node as it left it, so it makes no transition and records no
// Event twice; both executables are the same agent. It then checks the
// restarted agent's endpoints and that SIGTERM stops it cleanly.
func testAgentRestart(t *testing.T, e *env) {
	agents := e.addNodes(t, "restart", "restart-1")
	const node = "restart-1"
	action := time.Now().Add(30 * time.Hour).Truncate(time.Second)
	// No policy selects this pool: nothing but the agent writes to the node.
	e.hostEvent(t, node, "SystemMaintenance.Redeploy", "Scheduled", action)
	e.hostEvent(t, node, "InstanceFailure.Reboot", "Executed", action.Add(-time.Hour))
	e.waitCondition(t, node, "HostEventRedeploy", corev1.ConditionTrue, "SystemMaintenanceRedeployScheduled")
	var before []corev1.Event
	cluster.Eventually(t, 30*time.Second, func() error {
		before = agentEvents(e.events(t, node))
		if got := reasons(before); !slices.Equal(got, []string{"InstanceFailureRebootExecuted", "SystemMaintenanceRedeployScheduled"}) {
			return fmt.Errorf("events on %s: %q", node, got)
		}
		return nil
	})
	conditions := agentConditions(e.node(t, node))

	agents[node].Kill()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	metricsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	restarted := startProc(t, e.dir, "agent-subcommand-"+node, nodewarden,
		append([]string{"agent"}, e.agentArgs(node, "--health-probe-bind-address", addr, "--metrics-bind-address", metricsAddr)...)...)
	// Ready: the agent replayed its log and saw the Node match what it wants.
	waitReadyz(t, restarted, addr)
	// A new line after the restart: once its Event exists, every Event the
	// replay could have produced was sent before it (one ordered queue).
	e.hostEvent(t, node, "SystemFailure.Reboot", "Executed", action.Add(-2*time.Hour))
	var after []corev1.Event
	cluster.Eventually(t, 30*time.Second, func() error {
		after = agentEvents(e.events(t, node))
		if !slices.Contains(reasons(after), "SystemFailureRebootExecuted") {
			return fmt.Errorf("events on %s: %q, waiting for SystemFailureRebootExecuted", node, reasons(after))
		}
		return nil
	})

	if got := agentConditions(e.node(t, node)); !maps.EqualFunc(got, conditions, func(a, b corev1.NodeCondition) bool {
		return a.Status == b.Status && a.Reason == b.Reason && a.Message == b.Message && a.LastTransitionTime.Equal(&b.LastTransitionTime) && a.LastHeartbeatTime.Equal(&b.LastHeartbeatTime)
	}) {
		t.Errorf("the restart changed the node's conditions:\nbefore %+v\nafter  %+v", conditions, got)
	}
	if len(after) != len(before)+1 {
		t.Errorf("events after the restart: %q, want the %d from before plus SystemFailureRebootExecuted", reasons(after), len(before))
	}
	for _, b := range before {
		for _, a := range after {
			if a.Name == b.Name && (a.Count != b.Count || a.ResourceVersion != b.ResourceVersion) {
				t.Errorf("event %s (%s) was recorded again: count %d -> %d", b.Name, b.Reason, b.Count, a.Count)
			}
		}
	}
	for path, want := range map[string]string{
		addr + "/healthz":        "ok",
		metricsAddr + "/metrics": `nodewarden_agent_host_events_total{status="Executed",type="SystemFailure.Reboot"} 1`,
	} {
		if body := httpGet(t, "http://"+path); !strings.Contains(body, want) {
			t.Errorf("GET %s does not contain %q:\n%s", path, want, body)
		}
	}
	restarted.Stop()
	if err := restarted.Err(); err != nil {
		t.Errorf("the agent did not exit cleanly on SIGTERM: %v; see %s", err, restarted.LogPath)
	}
}

// agentEvents are the Events the agent recorded (kube-controller-manager
// records some about Nodes too).
func agentEvents(evs []corev1.Event) []corev1.Event {
	return slices.DeleteFunc(evs, func(ev corev1.Event) bool { return ev.Source.Component != "nodewarden-agent" })
}

// agentConditions are the node's HostEvent* conditions by type.
func agentConditions(n *corev1.Node) map[corev1.NodeConditionType]corev1.NodeCondition {
	out := map[corev1.NodeConditionType]corev1.NodeCondition{}
	for _, c := range n.Status.Conditions {
		if strings.HasPrefix(string(c.Type), "HostEvent") {
			out[c.Type] = c
		}
	}
	return out
}

// testTwoPolicies runs two policies over the same nodes at once: one for host
// events, one for KernelDeadlock. KernelDeadlock comes from the agent's NPD
// drop-in: each agent also runs NPD's kernel monitor config (the kmsg
// plugin, on a file of kernel records instead of /dev/kmsg), and a hung-task
// record in the kernel log sets it True.
func testTwoPolicies(t *testing.T, e *env) {
	names := []string{"two-1", "two-2", "two-3"}
	e.addNodesWith(t, "two", func(node string) []string {
		return []string{"--npd-config", e.kernelMonitor(t, node), "--boot-time", bootTime.Format(time.RFC3339)}
	}, names...)
	for _, n := range names {
		e.waitCondition(t, n, "KernelDeadlock", corev1.ConditionFalse, "KernelHasNoDeadlock")
	}
	nodes := watchPool(t, e, "two")
	e.createPolicy(t, "two-host-events", "two", nil)
	e.createPolicy(t, "two-kernel", "two", func(rp *v1alpha1.RemediationPolicy) {
		rp.Spec.Conditions = []v1alpha1.ConditionRule{{Type: "KernelDeadlock"}}
		rp.Spec.Taints = []corev1.Taint{{Key: "example.com/kernel-deadlock", Effect: corev1.TaintEffectNoSchedule}}
	})

	action := time.Now().Add(47 * time.Hour).Truncate(time.Second)
	e.hostEvent(t, "two-1", rebootEvent, "Scheduled", action)
	e.kernelLog(t, "two-2", "INFO: task docker:7 blocked for more than 120 seconds.")
	e.waitCondition(t, "two-2", "KernelDeadlock", corev1.ConditionTrue, "DockerHung")
	cluster.Eventually(t, 10*time.Second, func() error { // the temporary rule matched too: an Event
		if got := reasons(agentEvents(e.events(t, "two-2"))); !slices.Contains(got, "TaskHung") {
			return fmt.Errorf("agent events on two-2: %q, want TaskHung", got)
		}
		return nil
	})

	// Each policy has its own budget (maxConcurrent 1): both act at once.
	for node, policy := range map[string]string{"two-1": "two-host-events", "two-2": "two-kernel"} {
		n := e.waitState(t, node, "Drained", time.Minute)
		if got := n.Annotations[v1alpha1.AnnotationPolicy]; got != policy {
			t.Errorf("%s held by policy %q, want %s", node, got, policy)
		}
		if !n.Spec.Unschedulable {
			t.Errorf("%s not cordoned", node)
		}
	}
	if n := e.node(t, "two-2"); !slices.ContainsFunc(n.Spec.Taints, func(tn corev1.Taint) bool { return tn.Key == "example.com/kernel-deadlock" }) {
		t.Errorf("two-2 lacks the kernel policy's taint: %v", n.Spec.Taints)
	}
	if got := nodes.max(); got != 2 {
		t.Errorf("at most %d nodes held at once, want 2 (one per policy)", got)
	}

	// NPD never clears a condition a log rule set; nodewarden's resolvePattern
	// extension does, when the kernel log says the problem is gone.
	e.hostEvent(t, "two-1", rebootEvent, "Executed", action)
	e.kernelLog(t, "two-2", "docker: hung task recovered")
	e.waitCondition(t, "two-2", "KernelDeadlock", corev1.ConditionFalse, "KernelHasNoDeadlock")
	e.waitReleased(t, "two-1", time.Minute)
	e.waitReleased(t, "two-2", time.Minute)
	// Only the policy's own taint is nodewarden's to remove; the node
	// lifecycle controller removes its node.kubernetes.io/unschedulable
	// taint on its own schedule after the uncordon.
	if n := e.node(t, "two-2"); slices.ContainsFunc(n.Spec.Taints, func(tn corev1.Taint) bool { return tn.Key == "example.com/kernel-deadlock" }) {
		t.Errorf("two-2 still has the kernel policy's taint after recovery: %v", n.Spec.Taints)
	}
	if h := nodes.history("two-3"); len(h) != 0 {
		t.Errorf("untriggered two-3 was touched: %q", h)
	}
}

// testCircuitBreakerThenBurst triggers 5 nodes at once. With maxUnhealthy 2
// the circuit breaker opens and nothing is cordoned. Once the operator
// raises maxUnhealthy, the burst is worked through at most maxConcurrent (2)
// nodes at a time, earliest deadline first, each node coming back when its
// maintenance is logged Executed, the app always within its PDB.
func testCircuitBreakerThenBurst(t *testing.T, e *env) {
	names := []string{"burst-1", "burst-2", "burst-3", "burst-4", "burst-5"}
	e.addNodes(t, "burst", names...)
	web := e.deployApp(t, "burst", "burst", 10, 2)
	nodes := watchPool(t, e, "burst")
	lowest := web.watchAvailability(t)

	// Deadlines 10h, 11h, ... ahead: the order in which nodes are taken.
	actions := map[string]time.Time{}
	for i, n := range names {
		actions[n] = time.Now().Add(time.Duration(10+i) * time.Hour).Truncate(time.Second)
		e.hostEvent(t, n, rebootEvent, "Scheduled", actions[n])
	}
	for _, n := range names {
		e.waitCondition(t, n, rebootCondition, corev1.ConditionTrue, "")
	}

	// The policy meets all five triggered at once: the circuit opens.
	e.createPolicy(t, "burst", "burst", func(rp *v1alpha1.RemediationPolicy) {
		rp.Spec.MaxConcurrent = intstr.FromInt32(2)
		rp.Spec.MaxUnhealthy = intstr.FromInt32(2)
	})
	cluster.Eventually(t, 30*time.Second, func() error {
		rp := e.policy(t, "burst")
		if rp.Status.ObservedGeneration != rp.Generation || rp.Status.TriggeredNodes != 5 ||
			!apimeta.IsStatusConditionTrue(rp.Status.Conditions, v1alpha1.ConditionCircuitOpen) {
			return fmt.Errorf("policy burst: observed generation %d of %d, triggered %d, conditions %+v; want CircuitOpen with 5 triggered",
				rp.Status.ObservedGeneration, rp.Generation, rp.Status.TriggeredNodes, rp.Status.Conditions)
		}
		return nil
	})
	cluster.Eventually(t, 10*time.Second, func() error {
		if got := reasons(e.events(t, "burst")); !slices.Equal(got, []string{"CircuitOpen"}) {
			return fmt.Errorf("events on policy burst: %q, want one CircuitOpen", got)
		}
		return nil
	})
	if got := nodes.max(); got != 0 {
		t.Fatalf("circuit open, yet %d nodes were held (order %q)", got, nodes.order())
	}

	// The operator decides the burst is real and lets it through.
	rp := e.policy(t, "burst")
	rp.Spec.MaxUnhealthy = intstr.FromString("100%")
	if err := e.Client.Update(t.Context(), rp); err != nil {
		t.Fatal(err)
	}
	// Each drained node gets rebooted and its event logged Executed, which
	// frees its slot for the next one.
	executed := map[string]bool{}
	cluster.Eventually(t, 3*time.Minute, func() error {
		pending := []string{}
		for _, n := range names {
			node := e.node(t, n)
			if !executed[n] && state(node) == "Drained" {
				if web.podsOn(t, n) != 0 {
					t.Fatalf("%s Drained with pods left", n)
				}
				e.hostEvent(t, n, rebootEvent, "Executed", actions[n])
				executed[n] = true
			}
			if !executed[n] || node.Spec.Unschedulable || state(node) != "" {
				pending = append(pending, fmt.Sprintf("%s (state %q, unschedulable %v)", n, state(node), node.Spec.Unschedulable))
			}
		}
		if len(pending) > 0 {
			return fmt.Errorf("not yet drained and back: %s", strings.Join(pending, ", "))
		}
		return nil
	})
	if got := nodes.max(); got != 2 {
		t.Errorf("at most %d nodes held at once, want exactly maxConcurrent (2)", got)
	}
	order := nodes.order()
	if len(order) != 5 || !slices.Equal(sorted(order[:2]), names[:2]) || !slices.Equal(order[2:], names[2:]) {
		t.Errorf("nodes taken in order %q, want earliest deadline first %q", order, names)
	}
	for _, n := range names {
		if got, want := nodes.history(n), []string{"Cordoned", "Draining", "Drained", ""}; !slices.Equal(got, want) {
			t.Errorf("%s went through states %q, want %q", n, got, want)
		}
	}
	web.waitAvailable(t, time.Minute)
	if low := lowest(); low < web.replicas-2 {
		t.Errorf("PDB maxUnavailable=2 violated: available replicas fell to %d of %d", low, web.replicas)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
