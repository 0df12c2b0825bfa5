package e2e_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/test/cluster"
	"github.com/nodewarden/nodewarden/test/e2e"
)

const (
	systemNamespace = "nodewarden-system"
	rebootCondition = "HostEventRebootAfter48"
	rebootEvent     = "SystemMaintenance.Reboot"
)

// proc is a nodewarden or nodewarden-agent process. It dies with the test binary
// (Pdeathsig) and is stopped when the test that started it ends.
type proc = cluster.Process

func startProc(t testing.TB, dir, name, exe string, args ...string) *proc {
	t.Helper()
	p, err := cluster.StartProcess(dir, name, exe, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("last lines of %s (%s):\n%s", name, p.LogPath, tail(p.LogPath, 25))
		}
	})
	return p
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		lines = append(lines, s.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// env is one level-2 cluster with nodewarden's processes running against it.
type env struct {
	*cluster.Cluster
	dir string // processes' logs and the nodes' host event logs
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := cluster.StartFull(t)
	e := &env{Cluster: c, dir: t.TempDir()}
	if _, err := c.Clientset.CoreV1().Namespaces().Create(t.Context(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return e
}

// addNodes creates kwok nodes labelled pool=POOL, each with its own agent
// process following its own host event log.
func (e *env) addNodes(t *testing.T, pool string, names ...string) map[string]*proc {
	t.Helper()
	return e.addNodesWith(t, pool, func(string) []string { return nil }, names...)
}

// addNodesWith is addNodes with extra agent flags for each node.
func (e *env) addNodesWith(t *testing.T, pool string, extra func(node string) []string, names ...string) map[string]*proc {
	t.Helper()
	agents := map[string]*proc{}
	for _, n := range names {
		if _, err := e.AddNode(t.Context(), n, cluster.NodeOptions{Labels: map[string]string{"pool": pool}}); err != nil {
			t.Fatal(err)
		}
		agents[n] = e.startAgent(t, n, extra(n)...)
	}
	for _, n := range names {
		e.waitCondition(t, n, rebootCondition, corev1.ConditionFalse, "NoHostEvent")
	}
	return agents
}

func (e *env) hostLog(node string) string { return filepath.Join(e.dir, node+".host_event.log") }

// startAgent runs nodewarden-agent for node, as the DaemonSet does; extra
// flags are appended.
func (e *env) startAgent(t testing.TB, node string, extra ...string) *proc {
	t.Helper()
	return startProc(t, e.dir, "agent-"+node, nodewardenAgent, e.agentArgs(node, extra...)...)
}

// agentArgs are the flags of an agent for node in this cluster. The node is
// simulated: the built-in health checks, which read the machine the agent
// runs on, are off.
func (e *env) agentArgs(node string, extra ...string) []string {
	return append([]string{"--node-name", node, "--kubeconfig", e.Kubeconfig, "--namespace", systemNamespace,
		"--host-event-log", e.hostLog(node), "--metrics-bind-address", "0", "--health-probe-bind-address", "0",
		"--health-checks=false"}, extra...)
}

// startController runs `nodewarden controller --leader-elect`.
func (e *env) startController(t testing.TB, name string) *proc {
	t.Helper()
	return startProc(t, e.dir, name, nodewarden, "controller", "--kubeconfig", e.Kubeconfig, "--namespace", systemNamespace,
		"--leader-elect", "--metrics-bind-address", "0", "--health-probe-bind-address", "0")
}

// hostEvent appends a line to node's host event log, as the cloud's plugin does.
func (e *env) hostEvent(t testing.TB, node, eventType, status string, action time.Time) {
	t.Helper()
	if _, err := e2e.AppendHostEvent(e.hostLog(node), eventType, status, action); err != nil {
		t.Fatal(err)
	}
}

// bootTime is the boot time the agents running NPD's kmsg monitor are told
// (--boot-time): kernel records are timed from it.
var bootTime = time.Now().Add(-time.Hour).Truncate(time.Second)

// kernelMonitor writes NPD's kernel monitor config for node, reading the
// node's own file of kernel records instead of /dev/kmsg, and returns its path.
// The rules are upstream NPD's kernel-monitor.json ones for hung tasks; the
// KernelDeadlock condition carries nodewarden's resolvePattern extension.
func (e *env) kernelMonitor(t testing.TB, node string) string {
	t.Helper()
	kmsg := filepath.Join(e.dir, node+".kmsg")
	if err := os.WriteFile(kmsg, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`{
  "plugin": "kmsg",
  "logPath": %q,
  "lookback": "5m",
  "bufferSize": 10,
  "source": "kernel-monitor",
  "conditions": [
    {"type": "KernelDeadlock", "reason": "KernelHasNoDeadlock", "message": "kernel has no deadlock",
     "nodewarden": {"resolvePattern": "docker: hung task recovered"}}
  ],
  "rules": [
    {"type": "temporary", "reason": "TaskHung", "pattern": "task [\\S ]+:\\w+ blocked for more than \\w+ seconds\\."},
    {"type": "permanent", "condition": "KernelDeadlock", "reason": "DockerHung", "pattern": "task docker:\\w+ blocked for more than \\w+ seconds\\."}
  ]
}
`, kmsg)
	path := filepath.Join(e.dir, node+".kernel-monitor.json")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var kmsgSeq atomic.Int64

// kernelLog appends a kernel record to node's kernel log, in /dev/kmsg's
// format: "priority,sequence,microseconds since boot,flags;message".
func (e *env) kernelLog(t testing.TB, node, message string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(e.dir, node+".kmsg"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "3,%d,%d,-;%s\n", kmsgSeq.Add(1), time.Since(bootTime).Microseconds(), message); err != nil {
		t.Fatal(err)
	}
}

func (e *env) node(t testing.TB, name string) *corev1.Node {
	t.Helper()
	n, err := e.Clientset.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func condition(n *corev1.Node, typ string) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if string(n.Status.Conditions[i].Type) == typ {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// waitCondition waits until node's condition typ has status (and reason, if given).
func (e *env) waitCondition(t testing.TB, node, typ string, status corev1.ConditionStatus, reason string) *corev1.NodeCondition {
	t.Helper()
	var got *corev1.NodeCondition
	cluster.Eventually(t, time.Minute, func() error {
		got = condition(e.node(t, node), typ)
		switch {
		case got == nil:
			return fmt.Errorf("node %s: no condition %s", node, typ)
		case got.Status != status || reason != "" && got.Reason != reason:
			return fmt.Errorf("node %s: %s=%s (%s), want %s (%s)", node, typ, got.Status, got.Reason, status, reason)
		}
		return nil
	})
	return got
}

func state(n *corev1.Node) string { return n.Annotations[v1alpha1.AnnotationState] }

func (e *env) waitState(t testing.TB, node, want string, timeout time.Duration) *corev1.Node {
	t.Helper()
	var n *corev1.Node
	cluster.Eventually(t, timeout, func() error {
		n = e.node(t, node)
		if got := state(n); got != want {
			return fmt.Errorf("node %s: state %q (unschedulable %v), want %q", node, got, n.Spec.Unschedulable, want)
		}
		return nil
	})
	return n
}

// waitReleased waits until nodewarden has undone everything on node.
func (e *env) waitReleased(t testing.TB, node string, timeout time.Duration) {
	t.Helper()
	cluster.Eventually(t, timeout, func() error {
		n := e.node(t, node)
		if n.Spec.Unschedulable {
			return fmt.Errorf("node %s still cordoned (state %q)", node, state(n))
		}
		for k := range n.Annotations {
			if strings.HasPrefix(k, "nodewarden.io/") {
				return fmt.Errorf("node %s still has annotation %s", node, k)
			}
		}
		return nil
	})
}

func (e *env) createPolicy(t testing.TB, name, pool string, mutate func(*v1alpha1.RemediationPolicy)) {
	t.Helper()
	rp := &v1alpha1.RemediationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.RemediationPolicySpec{
			NodeSelector:  &metav1.LabelSelector{MatchLabels: map[string]string{"pool": pool}},
			Conditions:    []v1alpha1.ConditionRule{{Type: rebootCondition}},
			Drain:         v1alpha1.DrainSpec{Timeout: metav1.Duration{Duration: 3 * time.Minute}},
			MaxConcurrent: intstr.FromInt32(1),
		},
	}
	if mutate != nil {
		mutate(rp)
	}
	if err := e.Client.Create(t.Context(), rp); err != nil {
		t.Fatal(err)
	}
}

func (e *env) policy(t testing.TB, name string) *v1alpha1.RemediationPolicy {
	t.Helper()
	var rp v1alpha1.RemediationPolicy
	if err := e.Client.Get(context.Background(), types.NamespacedName{Name: name}, &rp); err != nil {
		t.Fatal(err)
	}
	return &rp
}

// app is a Deployment of pause pods on the nodes of one pool, with a PDB.
type app struct {
	e         *env
	namespace string
	replicas  int32
}

const appName = "web"

// deployApp runs replicas pods spread over pool's nodes behind a PDB with
// maxUnavailable, in a namespace of its own, and waits until all are available.
func (e *env) deployApp(t testing.TB, namespace, pool string, replicas, maxUnavailable int32) *app {
	t.Helper()
	ctx := t.Context()
	if _, err := e.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": appName}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: appName, Namespace: namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers:   []corev1.Container{{Name: "web", Image: "registry.k8s.io/pause:3.10"}},
					NodeSelector: map[string]string{"pool": pool},
					// Spread the pods so that every node has some to drain.
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.ScheduleAnyway,
						LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
					}},
				},
			},
		},
	}
	if _, err := e.Clientset.AppsV1().Deployments(namespace).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: appName, Namespace: namespace},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(maxUnavailable)),
			Selector:       &metav1.LabelSelector{MatchLabels: labels},
		},
	}
	if _, err := e.Clientset.PolicyV1().PodDisruptionBudgets(namespace).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	a := &app{e: e, namespace: namespace, replicas: replicas}
	a.waitAvailable(t, 90*time.Second)
	return a
}

// waitAvailable waits until every replica is available and the PDB has seen them.
func (a *app) waitAvailable(t testing.TB, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	cluster.Eventually(t, timeout, func() error {
		d, err := a.e.Clientset.AppsV1().Deployments(a.namespace).Get(ctx, appName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.AvailableReplicas != a.replicas {
			return fmt.Errorf("deployment %s/%s: %d/%d available", a.namespace, appName, d.Status.AvailableReplicas, a.replicas)
		}
		p, err := a.e.Clientset.PolicyV1().PodDisruptionBudgets(a.namespace).Get(ctx, appName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.ObservedGeneration != p.Generation || p.Status.CurrentHealthy != a.replicas {
			return fmt.Errorf("pdb %s/%s: healthy %d of %d", a.namespace, appName, p.Status.CurrentHealthy, a.replicas)
		}
		return nil
	})
}

// podsOn counts the app's pods on node, terminating ones included.
func (a *app) podsOn(t testing.TB, node string) int {
	t.Helper()
	pods, err := a.e.Clientset.CoreV1().Pods(a.namespace).List(context.Background(), metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		t.Fatal(err)
	}
	return len(pods.Items)
}

func (a *app) setMaxUnavailable(t testing.TB, n int32) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"maxUnavailable":%d}}`, n)
	if _, err := a.e.Clientset.PolicyV1().PodDisruptionBudgets(a.namespace).Patch(t.Context(), appName, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// watchAvailability records the lowest available replica count of the app
// from now until the test ends.
func (a *app) watchAvailability(t testing.TB) (lowest func() int32) {
	t.Helper()
	var (
		mu  sync.Mutex
		low = a.replicas
	)
	watchUntilCleanup(t, func(ctx context.Context, rv string) (watch.Interface, error) {
		return a.e.Clientset.AppsV1().Deployments(a.namespace).Watch(ctx, metav1.ListOptions{
			FieldSelector: "metadata.name=" + appName, ResourceVersion: rv,
		})
	}, func(ctx context.Context) (string, error) {
		d, err := a.e.Clientset.AppsV1().Deployments(a.namespace).Get(ctx, appName, metav1.GetOptions{})
		if err != nil {
			return "", err
		}
		mu.Lock()
		low = min(low, d.Status.AvailableReplicas)
		mu.Unlock()
		return d.ResourceVersion, nil
	}, func(obj any) {
		if d, ok := obj.(*appsv1.Deployment); ok {
			mu.Lock()
			low = min(low, d.Status.AvailableReplicas)
			mu.Unlock()
		}
	})
	return func() int32 {
		mu.Lock()
		defer mu.Unlock()
		return low
	}
}

// watchUntilCleanup calls seen with the object of every watch event until
// the test ends. get gives the starting state and resourceVersion; the watch
// is restarted from the last seen resourceVersion if the server closes it.
func watchUntilCleanup(t testing.TB, start func(ctx context.Context, rv string) (watch.Interface, error),
	get func(ctx context.Context) (string, error), seen func(obj any)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rv, err := get(ctx)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	w, err := start(ctx, rv)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			for ev := range w.ResultChan() {
				if ev.Type == watch.Error {
					rv = "" // expired: start again from a fresh state
					break
				}
				if o, ok := ev.Object.(metav1.Object); ok {
					rv = o.GetResourceVersion()
				}
				seen(ev.Object)
			}
			w.Stop()
			for ctx.Err() == nil {
				var err error
				if rv == "" {
					rv, err = get(ctx)
				}
				if err == nil {
					if w, err = start(ctx, rv); err == nil {
						break
					}
				}
				rv = ""
				select { // the API server is busy or the test is ending: back off
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		}
	}()
}

// nodeWatch records what happens to a pool's nodes while a test runs.
type nodeWatch struct {
	mu      sync.Mutex
	held    map[string]bool     // nodes nodewarden holds now (state annotation) or that are cordoned
	maxHeld int                 // the most held at once
	states  map[string][]string // each node's distinct states in order ("" = released)
	taken   []string            // nodes in the order they were first held
}

func watchPool(t testing.TB, e *env, pool string) *nodeWatch {
	t.Helper()
	nw := &nodeWatch{held: map[string]bool{}, states: map[string][]string{}}
	observe := func(n *corev1.Node) {
		nw.mu.Lock()
		defer nw.mu.Unlock()
		s := state(n)
		if h := nw.states[n.Name]; len(h) == 0 && s != "" || len(h) > 0 && h[len(h)-1] != s {
			nw.states[n.Name] = append(h, s)
		}
		held := s != "" || n.Spec.Unschedulable
		if held && !slices.Contains(nw.taken, n.Name) {
			nw.taken = append(nw.taken, n.Name)
		}
		if held {
			nw.held[n.Name] = true
		} else {
			delete(nw.held, n.Name)
		}
		nw.maxHeld = max(nw.maxHeld, len(nw.held))
	}
	e.watchPoolNodes(t, pool, observe)
	return nw
}

// watchPoolNodes calls observe with every version of every node of pool,
// from a list and a watch that resumes where it broke, until the test ends.
func (e *env) watchPoolNodes(t testing.TB, pool string, observe func(*corev1.Node)) {
	t.Helper()
	selector := "pool=" + pool
	watchUntilCleanup(t, func(ctx context.Context, rv string) (watch.Interface, error) {
		return e.Clientset.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{LabelSelector: selector, ResourceVersion: rv})
	}, func(ctx context.Context) (string, error) {
		list, err := e.Clientset.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return "", err
		}
		for i := range list.Items {
			observe(&list.Items[i])
		}
		return list.ResourceVersion, nil
	}, func(obj any) {
		if n, ok := obj.(*corev1.Node); ok {
			observe(n)
		}
	})
}

func (nw *nodeWatch) max() int {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return nw.maxHeld
}

func (nw *nodeWatch) history(node string) []string {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return slices.Clone(nw.states[node])
}

func (nw *nodeWatch) order() []string {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return slices.Clone(nw.taken)
}

// events lists the Events about a Node or a policy, by reason, oldest first.
func (e *env) events(t testing.TB, name string) []corev1.Event {
	t.Helper()
	list, err := e.Clientset.CoreV1().Events(metav1.NamespaceAll).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func reasons(evs []corev1.Event) []string {
	out := make([]string, 0, len(evs))
	for _, ev := range evs {
		out = append(out, ev.Reason)
	}
	slices.Sort(out)
	return out
}

// leaseHolder is who holds the controller's leader-election Lease ("" if none).
func (e *env) leaseHolder(t testing.TB) string {
	t.Helper()
	var l coordinationv1.Lease
	err := e.Client.Get(context.Background(), types.NamespacedName{Namespace: systemNamespace, Name: "nodewarden-controller"}, &l)
	if apierrors.IsNotFound(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return ptr.Deref(l.Spec.HolderIdentity, "")
}

// freePort is a loopback port nobody listens on (for a moment).
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// httpGet is the body of url, which must answer 200.
func httpGet(t testing.TB, url string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s, %v", url, resp.Status, err)
	}
	return string(body)
}

// waitReadyz waits until a process's /readyz answers 200.
func waitReadyz(t testing.TB, p *proc, addr string) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	cluster.Eventually(t, time.Minute, func() error {
		if p.Exited() {
			t.Fatalf("%s exited: %v; see %s", p.Name, p.Err(), p.LogPath)
		}
		resp, err := client.Get("http://" + addr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s /readyz: %s", p.Name, resp.Status)
		}
		return nil
	})
}
