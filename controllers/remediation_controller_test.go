package controllers_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/controllers"
	"github.com/nodewarden/nodewarden/test/cluster"
)

const trigger = "HostEventRebootAfter48"

// startController runs the reconciler in-process, as `nodewarden controller`
// wires it, and returns a function that stops it (as a crash would: no
// clean-up of node state).
func startController(t *testing.T, c *cluster.Cluster) (stop func()) {
	t.Helper()
	return startControllerWith(t, c, false)
}

func startControllerWith(t *testing.T, c *cluster.Cluster, dryRun bool) (stop func()) {
	t.Helper()
	return startControllerOpts(t, c, controllers.Options{DryRun: dryRun})
}

// startControllerOpts is startController with opts (Clientset, Registerer
// and Log are filled in).
func startControllerOpts(t *testing.T, c *cluster.Cluster, opts controllers.Options) (stop func()) {
	t.Helper()
	log := testr.New(t)
	mgr, err := ctrl.NewManager(c.Config, controllers.ManagerOptions(ctrl.Options{
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 log,
		// Each test (and each restart) builds the controller anew in one process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	}))
	if err != nil {
		t.Fatal(err)
	}
	opts.Clientset, opts.Registerer, opts.Log = kubernetes.NewForConfigOrDie(c.Config), prometheus.NewRegistry(), log
	if err := controllers.Setup(mgr, opts); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func addNodes(t *testing.T, c *cluster.Cluster, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := c.AddNode(t.Context(), n, cluster.NodeOptions{Labels: map[string]string{"pool": "web"}}); err != nil {
			t.Fatal(err)
		}
	}
}

// setTrigger plays the agent: it sets the node's condition (status True with
// a "not before" deadline, or False).
func setTrigger(t *testing.T, c *cluster.Cluster, node string, status corev1.ConditionStatus, notBefore time.Time) {
	t.Helper()
	msg := "SystemMaintenance.Reboot is Scheduled, not before " + notBefore.UTC().Format(time.RFC3339)
	reason := "SystemMaintenanceRebootScheduled"
	if status == corev1.ConditionFalse {
		msg, reason = "SystemMaintenance.Reboot was Executed", "SystemMaintenanceRebootExecuted"
	}
	now := metav1.Now()
	patch := fmt.Sprintf(`{"status":{"conditions":[{"type":%q,"status":%q,"reason":%q,"message":%q,"lastTransitionTime":%q,"lastHeartbeatTime":%q}]}}`,
		trigger, status, reason, msg, now.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	if _, err := c.Clientset.CoreV1().Nodes().PatchStatus(t.Context(), node, []byte(patch)); err != nil {
		t.Fatal(err)
	}
}

func createPolicy(t *testing.T, c *cluster.Cluster, name string, mutate func(*v1alpha1.RemediationPolicy)) {
	t.Helper()
	rp := &v1alpha1.RemediationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.RemediationPolicySpec{
			NodeSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"pool": "web"}},
			Conditions:   []v1alpha1.ConditionRule{{Type: trigger}},
			Drain:        v1alpha1.DrainSpec{Timeout: metav1.Duration{Duration: 2 * time.Minute}},
		},
	}
	if mutate != nil {
		mutate(rp)
	}
	if err := c.Client.Create(t.Context(), rp); err != nil {
		t.Fatal(err)
	}
}

// deployWeb runs a Deployment with a PDB and waits until all replicas are available.
func deployWeb(t *testing.T, c *cluster.Cluster, replicas int32, maxUnavailable int32) {
	t.Helper()
	ctx := t.Context()
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "web", Image: "registry.k8s.io/pause:3.10"}},
					// Spread the pods so every node has some to drain.
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.ScheduleAnyway,
						LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
					}},
				},
			},
		},
	}
	if _, err := c.Clientset.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(maxUnavailable)),
			Selector:       &metav1.LabelSelector{MatchLabels: labels},
		},
	}
	if _, err := c.Clientset.PolicyV1().PodDisruptionBudgets("default").Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 90*time.Second, func() error {
		d, err := c.Clientset.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.AvailableReplicas != replicas {
			return fmt.Errorf("deployment web: %d/%d available", d.Status.AvailableReplicas, replicas)
		}
		p, err := c.Clientset.PolicyV1().PodDisruptionBudgets("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.ObservedGeneration != p.Generation || p.Status.CurrentHealthy != replicas {
			return fmt.Errorf("pdb web: healthy %d of %d", p.Status.CurrentHealthy, replicas)
		}
		return nil
	})
}

// watchAvailability records the lowest available replica count of the web
// Deployment from now until the test ends.
func watchAvailability(t *testing.T, c *cluster.Cluster) (lowest func() int32) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	d, err := c.Clientset.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var low atomic.Int32
	low.Store(d.Status.AvailableReplicas)
	w, err := c.Clientset.AppsV1().Deployments("default").Watch(ctx, metav1.ListOptions{
		FieldSelector: "metadata.name=web", ResourceVersion: d.ResourceVersion,
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for ev := range w.ResultChan() {
			if ev.Type != watch.Modified {
				continue
			}
			if d, ok := ev.Object.(*appsv1.Deployment); ok && d.Status.AvailableReplicas < low.Load() {
				low.Store(d.Status.AvailableReplicas)
			}
		}
	}()
	return low.Load
}

func node(t *testing.T, c *cluster.Cluster, name string) *corev1.Node {
	t.Helper()
	n, err := c.Clientset.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func state(n *corev1.Node) string { return n.Annotations[v1alpha1.AnnotationState] }

func waitState(t *testing.T, c *cluster.Cluster, name, want string, timeout time.Duration) {
	t.Helper()
	cluster.Eventually(t, timeout, func() error {
		n := node(t, c, name)
		if got := state(n); got != want {
			return fmt.Errorf("node %s: state %q (unschedulable %v), want %q", name, got, n.Spec.Unschedulable, want)
		}
		return nil
	})
}

func podsOn(t *testing.T, c *cluster.Cluster, nodeName string) int {
	t.Helper()
	pods, err := c.Clientset.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{FieldSelector: "spec.nodeName=" + nodeName})
	if err != nil {
		t.Fatal(err)
	}
	return len(pods.Items)
}

func TestDrainTwoNodesWithinPDB(t *testing.T) {
	c := cluster.StartFull(t)
	addNodes(t, c, "n1", "n2", "n3", "n4", "n5", "n6")
	deployWeb(t, c, 12, 1)
	lowest := watchAvailability(t, c)
	startController(t, c)
	createPolicy(t, c, "maintenance", func(rp *v1alpha1.RemediationPolicy) { rp.Spec.MaxConcurrent = intstr.FromInt32(2) })

	deadline := time.Now().Add(47 * time.Hour)
	setTrigger(t, c, "n1", corev1.ConditionTrue, deadline)
	setTrigger(t, c, "n2", corev1.ConditionTrue, deadline)

	for _, n := range []string{"n1", "n2"} {
		waitState(t, c, n, "Drained", 2*time.Minute)
		got := node(t, c, n)
		if !got.Spec.Unschedulable {
			t.Errorf("node %s Drained but not cordoned", n)
		}
		if got.Annotations[v1alpha1.AnnotationPolicy] != "maintenance" || got.Annotations[v1alpha1.AnnotationTrigger] != trigger+"=True" {
			t.Errorf("node %s annotations: %v", n, got.Annotations)
		}
		if p := podsOn(t, c, n); p != 0 {
			t.Errorf("node %s Drained with %d pods left", n, p)
		}
	}
	cluster.Eventually(t, time.Minute, func() error {
		d, err := c.Clientset.AppsV1().Deployments("default").Get(t.Context(), "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.AvailableReplicas != 12 {
			return fmt.Errorf("%d/12 available after the drains", d.Status.AvailableReplicas)
		}
		return nil
	})
	if low := lowest(); low < 11 {
		t.Errorf("PDB maxUnavailable=1 violated: available replicas fell to %d of 12", low)
	}
	for _, n := range []string{"n3", "n4", "n5", "n6"} {
		if got := node(t, c, n); got.Spec.Unschedulable || state(got) != "" {
			t.Errorf("untriggered node %s was touched: unschedulable %v, state %q", n, got.Spec.Unschedulable, state(got))
		}
	}

	// Recovery: the condition clears, nodewarden undoes everything it did.
	setTrigger(t, c, "n1", corev1.ConditionFalse, time.Time{})
	cluster.Eventually(t, time.Minute, func() error {
		n := node(t, c, "n1")
		if n.Spec.Unschedulable {
			return fmt.Errorf("n1 still cordoned after recovery")
		}
		for k := range n.Annotations {
			if strings.HasPrefix(k, "nodewarden.io/") {
				return fmt.Errorf("n1 still has annotation %s", k)
			}
		}
		return nil
	})
}

func TestBudgetEarliestDeadlineFirstAndCircuitBreaker(t *testing.T) {
	c := cluster.StartFull(t)
	addNodes(t, c, "n1", "n2", "n3", "n4", "n5", "n6")
	startController(t, c)
	// No drain: this test is about which nodes are taken and when.
	now := time.Now()
	setTrigger(t, c, "n2", corev1.ConditionTrue, now.Add(30*time.Hour))
	setTrigger(t, c, "n3", corev1.ConditionTrue, now.Add(10*time.Hour)) // earliest
	setTrigger(t, c, "n1", corev1.ConditionTrue, now.Add(20*time.Hour))
	// The policy arrives after the triggers, so all three compete for one slot.
	createPolicy(t, c, "one-at-a-time", func(rp *v1alpha1.RemediationPolicy) {
		rp.Spec.Drain.Enabled = ptr.To(false)
		rp.Spec.MaxConcurrent = intstr.FromInt32(1)
	})

	// One at a time, earliest deadline first: n3, then n1, then n2, each
	// taken only once the previous one recovered.
	for _, want := range []string{"n3", "n1", "n2"} {
		waitState(t, c, want, "Cordoned", time.Minute)
		held := 0
		for _, n := range []string{"n1", "n2", "n3"} {
			if state(node(t, c, n)) != "" {
				held++
			}
		}
		if held != 1 {
			t.Fatalf("maxConcurrent 1, but %d nodes held while %s was taken", held, want)
		}
		setTrigger(t, c, want, corev1.ConditionFalse, time.Time{})
		waitState(t, c, want, "", time.Minute)
	}

	// Circuit breaker: 4 of 6 selected nodes triggered (a bad rule, a
	// cluster-wide incident), maxUnhealthy 50% (3): nothing is taken.
	for _, n := range []string{"n1", "n2", "n3", "n4"} {
		patch := fmt.Sprintf(`{"status":{"conditions":[{"type":"KernelDeadlock","status":"True","reason":"DockerHung","message":"task docker:7 blocked","lastTransitionTime":%q,"lastHeartbeatTime":%q}]}}`,
			time.Now().UTC().Format(time.RFC3339), time.Now().UTC().Format(time.RFC3339))
		if _, err := c.Clientset.CoreV1().Nodes().PatchStatus(t.Context(), n, []byte(patch)); err != nil {
			t.Fatal(err)
		}
	}
	createPolicy(t, c, "breaker", func(rp *v1alpha1.RemediationPolicy) {
		rp.Spec.Conditions = []v1alpha1.ConditionRule{{Type: "KernelDeadlock"}}
		rp.Spec.MaxUnhealthy = intstr.FromString("50%")
		rp.Spec.MaxConcurrent = intstr.FromInt32(6)
	})
	cluster.Eventually(t, time.Minute, func() error {
		var rp v1alpha1.RemediationPolicy
		if err := c.Client.Get(t.Context(), types.NamespacedName{Name: "breaker"}, &rp); err != nil {
			return err
		}
		if !apimeta.IsStatusConditionTrue(rp.Status.Conditions, v1alpha1.ConditionCircuitOpen) || rp.Status.TriggeredNodes != 4 {
			return fmt.Errorf("policy breaker: triggered %d, conditions %+v; want CircuitOpen True with 4 triggered", rp.Status.TriggeredNodes, rp.Status.Conditions)
		}
		return nil
	})
	cluster.Eventually(t, 10*time.Second, func() error {
		evs, err := c.Clientset.EventsV1().Events(metav1.NamespaceAll).List(t.Context(), metav1.ListOptions{FieldSelector: "reason=CircuitOpen"})
		if err != nil {
			return err
		}
		if len(evs.Items) != 1 || evs.Items[0].Regarding.Name != "breaker" {
			return fmt.Errorf("%d CircuitOpen events, want exactly one about policy breaker", len(evs.Items))
		}
		return nil
	})
	for _, n := range []string{"n1", "n2", "n3", "n4", "n5", "n6"} {
		if got := node(t, c, n); got.Spec.Unschedulable || state(got) != "" {
			t.Errorf("circuit open, yet node %s was taken: unschedulable %v, state %q", n, got.Spec.Unschedulable, state(got))
		}
	}
}

func TestHumanCordonIsKeptAndDrainResumesAfterRestart(t *testing.T) {
	c := cluster.StartFull(t)
	addNodes(t, c, "n1", "n2", "n3", "n4")
	deployWeb(t, c, 8, 0) // a PDB that allows nothing: the drain must wait
	stop := startController(t, c)
	createPolicy(t, c, "maintenance", func(rp *v1alpha1.RemediationPolicy) { rp.Spec.MaxConcurrent = intstr.FromInt32(2) })

	// n4 was cordoned by a human before anything happened.
	if _, err := c.Clientset.CoreV1().Nodes().Patch(t.Context(), "n4", types.MergePatchType, []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	setTrigger(t, c, "n1", corev1.ConditionTrue, time.Now().Add(47*time.Hour))
	setTrigger(t, c, "n4", corev1.ConditionTrue, time.Now().Add(47*time.Hour))
	waitState(t, c, "n1", "Draining", time.Minute)
	before := podsOn(t, c, "n1")
	if before == 0 {
		t.Fatal("no pods on n1 to drain; the test proves nothing")
	}

	// The controller dies mid-drain; the PDB still blocks every eviction.
	stop()
	lowest := watchAvailability(t, c)
	if got := podsOn(t, c, "n1"); got != before {
		t.Fatalf("pods evicted from n1 despite a PDB allowing none: %d -> %d", before, got)
	}
	startController(t, c)
	waitState(t, c, "n1", "Draining", 10*time.Second) // resumed, not restarted from scratch

	// Allow one disruption at a time: the new controller finishes both drains.
	pdb, err := c.Clientset.PolicyV1().PodDisruptionBudgets("default").Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pdb.Spec.MaxUnavailable = ptr.To(intstr.FromInt32(1))
	if _, err := c.Clientset.PolicyV1().PodDisruptionBudgets("default").Update(t.Context(), pdb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, "n1", "Drained", 2*time.Minute)
	waitState(t, c, "n4", "Drained", 2*time.Minute)
	if low := lowest(); low < 7 {
		t.Errorf("after the restart the drain broke the PDB: available fell to %d of 8", low)
	}

	// Both recover: n1 is uncordoned; n4, cordoned by a human first, stays cordoned.
	setTrigger(t, c, "n1", corev1.ConditionFalse, time.Time{})
	setTrigger(t, c, "n4", corev1.ConditionFalse, time.Time{})
	waitState(t, c, "n1", "", time.Minute)
	waitState(t, c, "n4", "", time.Minute)
	if node(t, c, "n1").Spec.Unschedulable {
		t.Error("n1 still cordoned after recovery")
	}
	if !node(t, c, "n4").Spec.Unschedulable {
		t.Error("n4 was uncordoned by nodewarden, but a human had cordoned it")
	}
}

func TestMain(m *testing.M) {
	// client-go's reflectors log through the global logger.
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	os.Exit(m.Run())
}

func TestDryRunReportsButWritesNoNode(t *testing.T) {
	c := cluster.Start(t) // no kubelets needed: nothing is drained
	for _, n := range []string{"d1", "d2"} {
		if err := c.Client.Create(t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n, Labels: map[string]string{"pool": "web"}}}); err != nil {
			t.Fatal(err)
		}
	}
	startControllerWith(t, c, true)
	createPolicy(t, c, "maintenance", nil)
	setTrigger(t, c, "d1", corev1.ConditionTrue, time.Now().Add(47*time.Hour))

	// The decision is reported (Event, policy status) ...
	cluster.Eventually(t, 30*time.Second, func() error {
		evs, err := c.Clientset.EventsV1().Events(metav1.NamespaceAll).List(t.Context(), metav1.ListOptions{FieldSelector: "reason=Cordoned"})
		if err != nil {
			return err
		}
		if len(evs.Items) == 0 || evs.Items[0].Regarding.Name != "d1" {
			return fmt.Errorf("no Cordoned event about d1 yet")
		}
		var rp v1alpha1.RemediationPolicy
		if err := c.Client.Get(t.Context(), types.NamespacedName{Name: "maintenance"}, &rp); err != nil {
			return err
		}
		if rp.Status.TriggeredNodes != 1 {
			return fmt.Errorf("policy status: %d triggered, want 1", rp.Status.TriggeredNodes)
		}
		return nil
	})
	// ... and the Node is untouched.
	n := node(t, c, "d1")
	if n.Spec.Unschedulable || state(n) != "" {
		t.Errorf("dry run changed node d1: unschedulable %v, annotations %v", n.Spec.Unschedulable, n.Annotations)
	}
}
