package drain_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/drain"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// TestDrain runs every scenario on one level-2 cluster. Each scenario has
// its own namespace and nodes (labelled scenario=<name>, which its workloads
// select), so they run in parallel without seeing each other.
func TestDrain(t *testing.T) {
	c := cluster.StartFull(t)
	t.Run("PDB maxUnavailable 1", func(t *testing.T) { t.Parallel(); testWithinBudget(t, newScenario(t, c, "budget")) })
	t.Run("PDB maxUnavailable 0", func(t *testing.T) { t.Parallel(); testFrozenBudget(t, newScenario(t, c, "frozen")) })
	t.Run("skipped and blocked pods", func(t *testing.T) { t.Parallel(); testSkipAndBlock(t, newScenario(t, c, "rules")) })
	t.Run("resume a half-done drain", func(t *testing.T) { t.Parallel(); testResume(t, newScenario(t, c, "resume")) })
	t.Run("two PDBs select a pod", func(t *testing.T) { t.Parallel(); testMultiplePDBs(t, newScenario(t, c, "multi")) })
	t.Run("Force", func(t *testing.T) { t.Parallel(); testForce(t, newScenario(t, c, "force")) })
	t.Run("disruption annotations", func(t *testing.T) { t.Parallel(); testDisruptionAnnotations(t, newScenario(t, c, "dnd")) })
}

// testWithinBudget: 6 replicas over 3 nodes, a PDB allowing one disruption.
// Draining the busiest node evicts its pods one at a time (the API server
// refuses the next with 429 until the replacement is available), and the
// Deployment never has fewer than 5 available replicas.
func testWithinBudget(t *testing.T, s *scenario) {
	nodes := []string{"budget-a", "budget-b", "budget-c"}
	s.addNodes(nodes...)
	s.deployment("web", 6, nil)
	s.pdb("web", 1)
	s.waitPDB("web", 6, 1)

	node := s.busiestNode(nodes...) // at least 2 of the 6 pods
	onNode := s.podsOn(node)
	t.Logf("draining %s, which runs %d of the 6 pods", node, len(onNode))
	s.cordon(node, v1alpha1.StateDraining)

	// kwok starts a replacement within milliseconds, sooner than the API
	// server retries an eviction that conflicted on the PDB (500 ms), so a
	// concurrent eviction could slip through without any 429; real pods take
	// seconds. Keep the replacements unschedulable until the PDB has refused
	// an eviction, then let them run.
	others := slices.DeleteFunc(slices.Clone(nodes), func(n string) bool { return n == node })
	for _, n := range others {
		s.setUnschedulable(n, true)
	}
	refused := make(chan struct{})
	var once sync.Once
	d := s.drainer()
	d.OnRetry = func(_ *corev1.Pod, err error) {
		if apierrors.IsTooManyRequests(err) {
			once.Do(func() { close(refused) })
		}
	}

	lowest := s.watchAvailable("web")
	type outcome struct {
		res drain.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := d.Drain(s.ctx, node, drain.Options{}, time.Now().Add(2*time.Minute))
		done <- outcome{res, err}
	}()
	select {
	case <-refused:
	case got := <-done:
		t.Fatalf("Drain returned %+v, %v before the PDB refused any eviction", got.res, got.err)
	}
	for _, n := range others {
		s.setUnschedulable(n, false)
	}
	got := <-done
	res := got.res
	if got.err != nil {
		t.Fatalf("Drain: %v (result %+v)", got.err, res)
	}
	if res.Evicted != len(onNode) {
		t.Errorf("evicted %d pods, want the %d the node ran", res.Evicted, len(onNode))
	}
	if res.Retries == 0 {
		t.Errorf("Result.Retries is 0 although the PDB refused an eviction")
	}
	if left := s.podsOn(node); len(left) != 0 {
		t.Errorf("pods left on %s after Drain returned: %v", node, names(left))
	}
	s.waitAvailable("web", 6)
	cluster.Eventually(t, 60*time.Second, func() error {
		pods, err := s.c.Clientset.CoreV1().Pods(s.ns).List(s.ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return err
		}
		running := 0
		for _, p := range pods.Items {
			if p.Spec.NodeName == node {
				return fmt.Errorf("pod %s is on the drained node", p.Name)
			}
			if ready(&p) {
				running++
			}
		}
		if running != 6 {
			return fmt.Errorf("%d/6 replacement pods running elsewhere", running)
		}
		return nil
	})
	if low := lowest(); low < 5 {
		t.Errorf("the Deployment fell to %d available replicas during the drain; the PDB allows 5", low)
	}
	t.Logf("evicted %d, %d evictions refused by the PDB and retried", res.Evicted, res.Retries)

	// Drain only evicts and reports: the node's state is the controller's.
	s.wantState(node, v1alpha1.StateDraining)

	t.Run("again is a no-op", func(t *testing.T) {
		res, err := d.Drain(s.ctx, node, drain.Options{}, time.Now().Add(time.Minute))
		if err != nil || res.Evicted != 0 || res.Retries != 0 {
			t.Errorf("second Drain = %+v, %v; want nothing evicted, no error", res, err)
		}
	})
}

// testFrozenBudget: a PDB that allows no disruption. The drain evicts
// nothing, gives up at its deadline with ErrTimeout and says why; a cancelled
// drain returns promptly with its context's error, not ErrTimeout.
func testFrozenBudget(t *testing.T, s *scenario) {
	s.addNodes("frozen-a")
	s.deployment("web", 2, nil)
	s.pdb("web", 0)
	s.waitPDB("web", 2, 0)
	s.cordon("frozen-a", v1alpha1.StateDraining)
	before := uids(s.podsOn("frozen-a"))

	d := s.drainer()
	res, err := d.Drain(s.ctx, "frozen-a", drain.Options{}, time.Now().Add(3*time.Second))
	if !errors.Is(err, drain.ErrTimeout) {
		t.Fatalf("Drain = %+v, %v; want ErrTimeout", res, err)
	}
	if !strings.Contains(err.Error(), "2 pods left") || !strings.Contains(err.Error(), "disruption budget web") {
		t.Errorf("the timeout error should name the pods and the PDB: %v", err)
	}
	if res.Evicted != 0 || res.Retries == 0 {
		t.Errorf("result %+v: want nothing evicted and the 429s counted", res)
	}
	if after := uids(s.podsOn("frozen-a")); !slices.Equal(before, after) {
		t.Errorf("pods on the node changed from %v to %v although the PDB allows no eviction", before, after)
	}

	t.Run("cancel stops at once and records nothing", func(t *testing.T) {
		refused := make(chan struct{})
		var once sync.Once
		d := s.drainer()
		d.OnRetry = func(*corev1.Pod, error) { once.Do(func() { close(refused) }) }

		ctx, cancel := context.WithCancel(s.ctx)
		defer cancel()
		type outcome struct {
			res drain.Result
			err error
		}
		done := make(chan outcome, 1)
		go func() {
			res, err := d.Drain(ctx, "frozen-a", drain.Options{}, time.Now().Add(time.Hour))
			done <- outcome{res, err}
		}()
		select {
		case <-refused:
		case <-time.After(30 * time.Second):
			t.Fatal("no eviction was refused within 30s")
		}
		cancel()
		cancelled := time.Now()
		var got outcome
		select {
		case got = <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Drain still running 5s after its context was cancelled")
		}
		t.Logf("Drain returned %s after the cancel", time.Since(cancelled).Round(time.Millisecond))
		if !errors.Is(got.err, context.Canceled) || errors.Is(got.err, drain.ErrTimeout) {
			t.Errorf("Drain after cancel = %v; want context.Canceled", got.err)
		}
		s.wantState("frozen-a", v1alpha1.StateDraining)
	})

	s.wantState("frozen-a", v1alpha1.StateDraining)
}

// testSkipAndBlock: a DaemonSet pod and a mirror pod stay; a pod without a
// controller blocks unless evictUnreplicatedPods; a pod with a protected
// annotation blocks. A blocked drain evicts nothing at all.
func testSkipAndBlock(t *testing.T, s *scenario) {
	const node = "rules-a"
	s.addNodes(node)
	s.daemonSet("agent")
	s.barePod("static-web", map[string]string{corev1.MirrorPodAnnotationKey: "static"})
	s.barePod("bare", nil)
	s.deployment("guarded", 1, map[string]string{"example.com/keep": "true"})
	s.deployment("web", 2, nil)
	s.waitRunningOn(node, 6)
	s.cordon(node, v1alpha1.StateDraining)
	before := uids(s.podsOn(node))

	protect := []string{"example.com/keep"}
	blocked := []struct {
		name        string
		opts        drain.Options
		wantBlocked []string // pod name prefixes
	}{
		{"unreplicated and protected pods block", drain.Options{ProtectedPodAnnotations: protect}, []string{"bare", "guarded-"}},
		{"with evictUnreplicatedPods only the protected pod blocks", drain.Options{EvictUnreplicatedPods: true, ProtectedPodAnnotations: protect}, []string{"guarded-"}},
	}
	for _, tt := range blocked {
		t.Run(tt.name, func(t *testing.T) {
			res, err := s.drainer().Drain(s.ctx, node, tt.opts, time.Now().Add(time.Minute))
			if !errors.Is(err, drain.ErrBlocked) {
				t.Fatalf("Drain = %+v, %v; want ErrBlocked", res, err)
			}
			if got := refNames(res.Blocked); !hasPrefixes(got, tt.wantBlocked) {
				t.Errorf("blocked %v, want %v", got, tt.wantBlocked)
			}
			for _, name := range refNames(res.Blocked) {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("the error does not name blocked pod %s: %v", name, err)
				}
			}
			if got := refNames(res.Skipped); !hasPrefixes(got, []string{"agent-", "static-web"}) {
				t.Errorf("skipped %v, want the DaemonSet and mirror pods", got)
			}
			if res.Evicted != 0 {
				t.Errorf("a blocked drain evicted %d pods", res.Evicted)
			}
			if after := uids(s.podsOn(node)); !slices.Equal(before, after) {
				t.Errorf("pods on the node changed from %v to %v", before, after)
			}
		})
	}

	t.Run("everything evictable goes, DaemonSet and mirror pods stay", func(t *testing.T) {
		res, err := s.drainer().Drain(s.ctx, node, drain.Options{EvictUnreplicatedPods: true}, time.Now().Add(time.Minute))
		if err != nil {
			t.Fatalf("Drain: %v", err)
		}
		if res.Evicted != 4 {
			t.Errorf("evicted %d, want 4 (bare, guarded, 2 web)", res.Evicted)
		}
		left := s.podsOn(node)
		if got := names(left); !hasPrefixes(got, []string{"agent-", "static-web"}) {
			t.Errorf("pods left on the node: %v, want the DaemonSet and mirror pods", got)
		}
		for _, p := range left {
			if !slices.Contains(before, p.UID) || p.DeletionTimestamp != nil {
				t.Errorf("pod %s was touched", p.Name)
			}
		}

		again, err := s.drainer().Drain(s.ctx, node, drain.Options{EvictUnreplicatedPods: true}, time.Now().Add(time.Minute))
		if err != nil || again.Evicted != 0 || len(again.Skipped) != 2 {
			t.Errorf("second Drain = %+v, %v; want no eviction, 2 skipped", again, err)
		}
	})
}

// testResume: a drain that a previous controller started left one pod
// terminating (a finalizer holds it). Drain evicts only the others, waits for
// that one without evicting it again, and finishes once it is gone.
func testResume(t *testing.T, s *scenario) {
	const node = "resume-a"
	s.addNodes(node)
	s.deployment("web", 3, nil)
	s.waitRunningOn(node, 3)
	s.cordon(node, v1alpha1.StateDraining)

	held := s.podsOn(node)[0]
	s.patchPod(held.Name, `{"metadata":{"finalizers":["example.com/hold"]}}`)
	if err := s.c.Clientset.CoreV1().Pods(s.ns).Delete(s.ctx, held.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var evicted []string
	d := s.drainer()
	d.OnEvicted = func(p *corev1.Pod) {
		mu.Lock()
		defer mu.Unlock()
		evicted = append(evicted, p.Name)
	}
	done := make(chan error, 1)
	var res drain.Result
	go func() {
		var err error
		res, err = d.Drain(s.ctx, node, drain.Options{}, time.Now().Add(2*time.Minute))
		done <- err
	}()

	cluster.Eventually(t, 60*time.Second, func() error {
		if left := s.podsOn(node); len(left) != 1 || left[0].UID != held.UID {
			return fmt.Errorf("pods on the node: %v, want only the held %s", names(left), held.Name)
		}
		return nil
	})
	select {
	case err := <-done:
		t.Fatalf("Drain returned (%v) while pod %s was still terminating on the node", err, held.Name)
	default:
	}

	s.patchPod(held.Name, `{"metadata":{"finalizers":null}}`)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Drain: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Drain still running 30s after the last pod was released")
	}
	mu.Lock()
	defer mu.Unlock()
	if res.Evicted != 2 || slices.Contains(evicted, held.Name) {
		t.Errorf("evicted %v (count %d); want the 2 other pods and not the terminating %s", evicted, res.Evicted, held.Name)
	}
}

// scenario is one namespace, its nodes (labelled scenario=<name>) and the
// workloads placed on them.
type scenario struct {
	t    *testing.T
	c    *cluster.Cluster
	ctx  context.Context
	name string
	ns   string
}

func newScenario(t *testing.T, c *cluster.Cluster, name string) *scenario {
	s := &scenario{t: t, c: c, ctx: t.Context(), name: name, ns: name}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := c.Clientset.CoreV1().Namespaces().Create(s.ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *scenario) drainer() *drain.Drainer {
	return &drain.Drainer{Client: s.c.Clientset, Log: testr.NewWithOptions(s.t, testr.Options{Verbosity: 1})}
}

func (s *scenario) addNodes(names ...string) {
	for _, n := range names {
		if _, err := s.c.AddNode(s.ctx, n, cluster.NodeOptions{Labels: map[string]string{"scenario": s.name}}); err != nil {
			s.t.Fatal(err)
		}
	}
}

func (s *scenario) podSpec() corev1.PodSpec {
	return corev1.PodSpec{
		NodeSelector: map[string]string{"scenario": s.name},
		Containers:   []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}},
	}
}

// deployment creates a Deployment of pods labelled app=<name> and waits
// until all its replicas are available.
func (s *scenario) deployment(name string, replicas int32, podAnnotations map[string]string) {
	s.t.Helper()
	labels := map[string]string{"app": name}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: podAnnotations},
				Spec:       s.podSpec(),
			},
		},
	}
	if _, err := s.c.Clientset.AppsV1().Deployments(s.ns).Create(s.ctx, dep, metav1.CreateOptions{}); err != nil {
		s.t.Fatal(err)
	}
	s.waitAvailable(name, replicas)
}

func (s *scenario) waitAvailable(name string, want int32) {
	s.t.Helper()
	cluster.Eventually(s.t, 60*time.Second, func() error {
		d, err := s.c.Clientset.AppsV1().Deployments(s.ns).Get(s.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.AvailableReplicas != want {
			return fmt.Errorf("deployment %s: %d/%d available", name, d.Status.AvailableReplicas, want)
		}
		return nil
	})
}

func (s *scenario) daemonSet(name string) {
	s.t.Helper()
	labels := map[string]string{"app": name}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: s.podSpec()},
		},
	}
	if _, err := s.c.Clientset.AppsV1().DaemonSets(s.ns).Create(s.ctx, ds, metav1.CreateOptions{}); err != nil {
		s.t.Fatal(err)
	}
}

// barePod creates a pod with no owner, bound to the scenario's first node
// as the kubelet binds a static pod's mirror.
func (s *scenario) barePod(name string, annotations map[string]string) {
	s.t.Helper()
	spec := s.podSpec()
	spec.NodeName = s.name + "-a"
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns, Annotations: annotations}, Spec: spec}
	if _, err := s.c.Clientset.CoreV1().Pods(s.ns).Create(s.ctx, pod, metav1.CreateOptions{}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *scenario) patchPod(name, mergePatch string) {
	s.t.Helper()
	if _, err := s.c.Clientset.CoreV1().Pods(s.ns).Patch(s.ctx, name, types.MergePatchType, []byte(mergePatch), metav1.PatchOptions{}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *scenario) pdb(name string, maxUnavailable int32) {
	s.t.Helper()
	s.pdbSelecting(name, name, maxUnavailable)
}

// pdbSelecting creates a PDB named name for the pods labelled app=<app>.
func (s *scenario) pdbSelecting(name, app string, maxUnavailable int32) {
	s.t.Helper()
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(maxUnavailable)),
			Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
		},
	}
	if _, err := s.c.Clientset.PolicyV1().PodDisruptionBudgets(s.ns).Create(s.ctx, pdb, metav1.CreateOptions{}); err != nil {
		s.t.Fatal(err)
	}
}

// waitPDB waits for the disruption controller's view of the PDB, so that
// evictions are judged on the budget and not refused as "still being
// processed".
func (s *scenario) waitPDB(name string, healthy, allowed int32) {
	s.t.Helper()
	cluster.Eventually(s.t, 60*time.Second, func() error {
		pdb, err := s.c.Clientset.PolicyV1().PodDisruptionBudgets(s.ns).Get(s.ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pdb.Status.ObservedGeneration != pdb.Generation || pdb.Status.CurrentHealthy != healthy || pdb.Status.DisruptionsAllowed != allowed {
			return fmt.Errorf("pdb %s: observed generation %d of %d, healthy %d, disruptionsAllowed %d; want healthy %d, allowed %d",
				name, pdb.Status.ObservedGeneration, pdb.Generation, pdb.Status.CurrentHealthy, pdb.Status.DisruptionsAllowed, healthy, allowed)
		}
		return nil
	})
}

// cordon makes the node unschedulable and puts it in state, as the
// reconciler does before it starts a drain.
func (s *scenario) cordon(node string, state v1alpha1.NodeState) {
	s.t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}},"spec":{"unschedulable":true}}`, v1alpha1.AnnotationState, state)
	if _, err := s.c.Clientset.CoreV1().Nodes().Patch(s.ctx, node, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *scenario) setUnschedulable(node string, unschedulable bool) {
	s.t.Helper()
	patch := fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, unschedulable)
	if _, err := s.c.Clientset.CoreV1().Nodes().Patch(s.ctx, node, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *scenario) wantState(node string, want v1alpha1.NodeState) {
	s.t.Helper()
	n, err := s.c.Clientset.CoreV1().Nodes().Get(s.ctx, node, metav1.GetOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	if got := n.Annotations[v1alpha1.AnnotationState]; got != string(want) {
		s.t.Errorf("node %s: state %q, want %q", node, got, want)
	}
}

func (s *scenario) podsOn(node string) []corev1.Pod {
	s.t.Helper()
	pods, err := s.c.Clientset.CoreV1().Pods(s.ns).List(s.ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		s.t.Fatal(err)
	}
	slices.SortFunc(pods.Items, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return pods.Items
}

func (s *scenario) waitRunningOn(node string, want int) {
	s.t.Helper()
	cluster.Eventually(s.t, 60*time.Second, func() error {
		pods := s.podsOn(node)
		running := 0
		for i := range pods {
			if ready(&pods[i]) {
				running++
			}
		}
		if running != want {
			return fmt.Errorf("node %s: %d/%d pods running: %v", node, running, want, names(pods))
		}
		return nil
	})
}

func (s *scenario) busiestNode(nodes ...string) string {
	busiest, most := "", -1
	for _, n := range nodes {
		if count := len(s.podsOn(n)); count > most {
			busiest, most = n, count
		}
	}
	return busiest
}

// watchAvailable follows the Deployment's availableReplicas from now; the
// returned function stops and returns the lowest value seen.
func (s *scenario) watchAvailable(name string) (lowest func() int32) {
	s.t.Helper()
	dep, err := s.c.Clientset.AppsV1().Deployments(s.ns).Get(s.ctx, name, metav1.GetOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(s.ctx)
	result := make(chan int32, 1)
	go func() {
		low, rv := dep.Status.AvailableReplicas, dep.ResourceVersion
		defer func() { result <- low }()
		for ctx.Err() == nil {
			w, err := s.c.Clientset.AppsV1().Deployments(s.ns).Watch(ctx, metav1.ListOptions{
				FieldSelector: "metadata.name=" + name, ResourceVersion: rv,
			})
			if err != nil {
				if ctx.Err() == nil {
					s.t.Errorf("watch deployment %s: %v", name, err)
				}
				return
			}
			for ev := range w.ResultChan() {
				if ev.Type == watch.Error {
					if ctx.Err() != nil {
						return // the stop, reported as an error by the stream
					}
					s.t.Errorf("watch deployment %s: %v", name, apierrors.FromObject(ev.Object))
					w.Stop()
					return
				}
				if d, ok := ev.Object.(*appsv1.Deployment); ok {
					low, rv = min(low, d.Status.AvailableReplicas), d.ResourceVersion
				}
			}
		}
	}()
	return func() int32 {
		cancel()
		return <-result
	}
}

func ready(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func names(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

func uids(pods []corev1.Pod) []types.UID {
	var out []types.UID
	for _, p := range pods {
		out = append(out, p.UID)
	}
	return out
}

func refNames(refs []drain.PodRef) []string {
	var out []string
	for _, r := range refs {
		out = append(out, r.Name)
	}
	slices.Sort(out)
	return out
}

// hasPrefixes reports whether the sorted names are exactly one per prefix,
// in order (generated names such as agent-x7k2p are known only by prefix).
func hasPrefixes(names, prefixes []string) bool {
	slices.Sort(names)
	if len(names) != len(prefixes) {
		return false
	}
	for i := range names {
		if !strings.HasPrefix(names[i], prefixes[i]) {
			return false
		}
	}
	return true
}
