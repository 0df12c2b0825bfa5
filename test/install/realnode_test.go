package install

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	nodewardenv1alpha1 "github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/ociimage"
	"github.com/nodewarden/nodewarden/internal/remediation"
	"github.com/nodewarden/nodewarden/test/cluster"
	"github.com/nodewarden/nodewarden/test/e2e"
)

// The installs, run for real: the image built from this checkout (as `make
// image` builds it, for this machine's platform) is pushed to the real
// node's registry, and the kustomize and Helm installs run it as pods on the
// real kubelet, under their own ServiceAccounts, reading the host's
// /var/log/host_event.log through the hostPath mount.

// hostEventLog is the host event log the agent's default configuration reads.
const hostEventLog = "/var/log/host_event.log"

var builtImage struct {
	once sync.Once
	idx  v1.ImageIndex
	err  error
}

// nodewardenImage is the nodewarden image of this checkout for this machine,
// built once per test binary.
func nodewardenImage(t *testing.T) v1.ImageIndex {
	t.Helper()
	builtImage.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		builtImage.idx, builtImage.err = ociimage.Build(ctx, ociimage.Options{RepoRoot: cluster.RepoRoot(), Version: "e2e", Commit: "e2e"})
	})
	if builtImage.err != nil {
		t.Fatalf("build the nodewarden image: %v", builtImage.err)
	}
	return builtImage.idx
}

// relabelled is idx with a label added: another image (another digest) with
// the same executables, as a new release would be to `helm upgrade`.
func relabelled(t *testing.T, idx v1.ImageIndex, label string) v1.Image {
	t.Helper()
	_, images, err := ociimage.Images(idx)
	if err != nil || len(images) != 1 {
		t.Fatalf("the test image: %d images, %v", len(images), err)
	}
	cfg, err := images[0].ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.Config.Labels["nodewarden.test/build"] = label
	img, err := mutate.ConfigFile(images[0], cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// startRealNode starts a level-3 cluster without nodewarden's CRD (the
// installs bring it) and gives the test the host's event log, empty,
// putting back what was there when it ends.
func startRealNode(t *testing.T) *cluster.Cluster {
	t.Helper()
	tool(t, "kubectl")
	c := cluster.StartWith(t, cluster.Options{RealNode: true, CRDDirectories: []string{}})
	saved, err := os.ReadFile(hostEventLog)
	switch {
	case errors.Is(err, os.ErrNotExist):
		t.Cleanup(func() { _ = os.Remove(hostEventLog) })
	case err != nil:
		t.Fatal(err)
	default:
		t.Cleanup(func() { _ = os.WriteFile(hostEventLog, saved, 0o644) })
	}
	if err := os.WriteFile(hostEventLog, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

// install is one installation of nodewarden on a level-3 cluster.
type install struct {
	c         *cluster.Cluster
	ns        string
	prefix    string // object names: "nodewarden-agent" or "<release>-nodewarden-agent"
	agentSA   string
	imageRepo string
}

// TestRealNodeKustomize: `kubectl apply --server-side -k` of config/default
// with the image set by a kustomization, as docs/install.md says; the agent
// pod runs, confined, and follows the host's event log; the controller's two
// replicas elect a leader, which cordons and drains the real node when the
// log says it will be rebooted, evicting a real pod under a PDB.
func TestRealNodeKustomize(t *testing.T) {
	t.Parallel()
	c := startRealNode(t)
	ctx := t.Context()
	ref, err := c.RealNode.Registry.Push(ctx, "nodewarden:e2e", nodewardenImage(t))
	if err != nil {
		t.Fatal(err)
	}
	repo, digest, _ := strings.Cut(ref, "@")

	dir := t.TempDir()
	base, err := filepath.Rel(dir, filepath.Join(cluster.RepoRoot(), "config", "default"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := yaml.Marshal(map[string]any{
		"apiVersion": "kustomize.config.k8s.io/v1beta1",
		"kind":       "Kustomization",
		"resources":  []string{base},
		"images":     []map[string]string{{"name": "ghcr.io/nodewarden/nodewarden", "newName": repo, "digest": digest}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), k, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := kubectlApply(t, c, kustomizeBuild(t, "config/crd")); err != nil {
		t.Fatalf("kubectl apply --server-side -k config/crd: %v", err)
	}
	run(t, nil, "kubectl", "--kubeconfig", c.Kubeconfig, "wait", "--for=condition=Established",
		"--timeout=60s", "crd/remediationpolicies.nodewarden.io")
	if _, err := kubectlApply(t, c, kustomizeBuild(t, dir)); err != nil {
		t.Fatalf("kubectl apply --server-side -k (config/default with the test image): %v", err)
	}

	in := install{c: c, ns: namespace, prefix: "nodewarden", agentSA: "nodewarden-agent", imageRepo: repo}
	agent := in.agentRuns(t)
	confined(t, "/nodewarden-agent", 1)
	in.endpointsAnswer(t, agent)
	in.controllerDrains(t)
}

// TestRealNodeHelm: `helm install` with the test image; the agent runs and
// reports, its built-in health checks included (with the CRI check on);
// `helm upgrade` to another image rolls the agent's pod while its
// condition stays True (same lastTransitionTime: never dropped, never
// flipped).
func TestRealNodeHelm(t *testing.T) {
	t.Parallel()
	tool(t, "helm")
	c := startRealNode(t)
	ctx := t.Context()
	const rel, ns = "nw", "nw-helm"
	first, err := c.RealNode.Registry.Push(ctx, "nodewarden:e2e-1", nodewardenImage(t))
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.RealNode.Registry.Push(ctx, "nodewarden:e2e-2", relabelled(t, nodewardenImage(t), "2"))
	if err != nil {
		t.Fatal(err)
	}
	repo, _, _ := strings.Cut(first, "@")
	helm := func(args ...string) string {
		t.Helper()
		return string(run(t, nil, "helm", append([]string{"--kubeconfig", c.Kubeconfig, "--namespace", ns}, args...)...))
	}
	// The health checks run every 5s and ask the real node's containerd,
	// whose socket is in the harness's directory.
	helm("install", rel, "charts/nodewarden", "--create-namespace", "--set", "image.repository="+repo, "--set", "image.tag=e2e-1",
		"--set", "agent.healthChecks.interval=5s", "--set", "agent.healthChecks.containerRuntime.enabled=true",
		"--set", "agent.healthChecks.containerRuntime.endpoint="+c.RealNode.CRIEndpoint())

	in := install{c: c, ns: ns, prefix: rel + "-nodewarden", agentSA: rel + "-nodewarden-agent", imageRepo: repo}
	agent := in.agentRuns(t)
	if !strings.HasSuffix(agent.Status.ContainerStatuses[0].ImageID, strings.SplitN(first, "@", 2)[1]) {
		t.Errorf("agent runs image %s, want %s", agent.Status.ContainerStatuses[0].ImageID, first)
	}
	confined(t, "/nodewarden-agent", 1)
	in.endpointsAnswer(t, agent)
	in.healthChecksReport(t)

	if _, err := e2e.AppendHostEvent(hostEventLog, "SystemMaintenance.Reboot", "Scheduled", time.Now().Add(47*time.Hour)); err != nil {
		t.Fatal(err)
	}
	before := in.condition(t, corev1.ConditionTrue, time.Minute)

	// Watch the condition for as long as the rollout takes: it must never
	// be anything but True.
	watchCtx, stopWatch := context.WithCancel(ctx)
	var lost []string
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for watchCtx.Err() == nil {
			node, err := c.Clientset.CoreV1().Nodes().Get(watchCtx, cluster.RealNodeName, metav1.GetOptions{})
			if err == nil {
				if cond := findCondition(node, "HostEventRebootAfter48"); cond == nil || cond.Status != corev1.ConditionTrue {
					lost = append(lost, fmt.Sprintf("%s: %v", time.Now().Format(time.StampMilli), cond))
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	helm("upgrade", rel, "charts/nodewarden", "--reuse-values", "--set", "image.tag=e2e-2")
	var rolled *corev1.Pod
	cluster.Eventually(t, 3*time.Minute, func() error {
		p, err := in.agentPod(ctx)
		if err != nil {
			return err
		}
		if p.UID == agent.UID || !podReady(p) {
			return fmt.Errorf("agent pod %s (uid %s) not yet replaced by a Ready one", p.Name, p.UID)
		}
		rolled = p
		return nil
	})
	// The new agent has read the log again by the time it is Ready; give
	// a write of a wrong status time to show up before stopping the watch.
	time.Sleep(3 * time.Second)
	stopWatch()
	<-watched
	if len(lost) > 0 {
		t.Errorf("during the rollout the condition was not True %d times: %v", len(lost), lost)
	}
	if id := rolled.Status.ContainerStatuses[0].ImageID; !strings.HasSuffix(id, strings.SplitN(second, "@", 2)[1]) {
		t.Errorf("after helm upgrade the agent runs %s, want %s", id, second)
	}
	after := in.condition(t, corev1.ConditionTrue, time.Minute)
	if !after.LastTransitionTime.Equal(&before.LastTransitionTime) {
		t.Errorf("the condition's lastTransitionTime moved across the upgrade: %s → %s", before.LastTransitionTime, after.LastTransitionTime)
	}
}

func (in install) agentPod(ctx context.Context) (*corev1.Pod, error) {
	pods, err := in.c.Clientset.CoreV1().Pods(in.ns).List(ctx, metav1.ListOptions{
		LabelSelector: "app.kubernetes.io/component=agent",
		FieldSelector: "spec.nodeName=" + cluster.RealNodeName,
	})
	if err != nil {
		return nil, err
	}
	var live []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			live = append(live, p)
		}
	}
	if len(live) != 1 {
		return nil, fmt.Errorf("%d live agent pods on the real node, want 1", len(live))
	}
	return &live[0], nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func findCondition(n *corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == t {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// agentRuns waits for the agent's pod on the real node to be Running and
// Ready (its readiness probe answered), as its ServiceAccount, and for the
// condition it writes through the admission policies.
func (in install) agentRuns(t *testing.T) *corev1.Pod {
	t.Helper()
	ctx := t.Context()
	var agent *corev1.Pod
	cluster.Eventually(t, 3*time.Minute, func() error {
		p, err := in.agentPod(ctx)
		if err != nil {
			return err
		}
		if !podReady(p) {
			return fmt.Errorf("agent pod %s: phase %s, not Ready: %v (kubelet log: %s/kubelet.log)", p.Name, p.Status.Phase, p.Status.ContainerStatuses, in.c.RealNode.LogDir)
		}
		agent = p
		return nil
	})
	if agent.Spec.ServiceAccountName != in.agentSA {
		t.Errorf("agent pod runs as ServiceAccount %q, want %q", agent.Spec.ServiceAccountName, in.agentSA)
	}
	in.condition(t, corev1.ConditionFalse, time.Minute)
	return agent
}

// condition waits until the real node's HostEventRebootAfter48 has status.
func (in install) condition(t *testing.T, status corev1.ConditionStatus, timeout time.Duration) corev1.NodeCondition {
	t.Helper()
	var got corev1.NodeCondition
	cluster.Eventually(t, timeout, func() error {
		node, err := in.c.Clientset.CoreV1().Nodes().Get(t.Context(), cluster.RealNodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cond := findCondition(node, "HostEventRebootAfter48")
		if cond == nil || cond.Status != status {
			return fmt.Errorf("HostEventRebootAfter48 on %s is %v, want %s", cluster.RealNodeName, cond, status)
		}
		got = *cond
		return nil
	})
	return got
}

// confined checks the processes of nodewarden's containers as the kernel
// sees them: the user, no capabilities, no privilege escalation, seccomp, a
// read-only root filesystem and host log directory. The manifests say so
// (TestAgentPod, TestControllerPod); this is what the kubelet and runc made
// of them. argv is how the container's process starts ("/nodewarden-agent",
// or "/nodewarden controller").
func confined(t *testing.T, argv string, want int) {
	t.Helper()
	pids, err := pidsOf(argv)
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) != want {
		t.Fatalf("%d processes run %q, want %d: %v", len(pids), argv, want, pids)
	}
	for _, pid := range pids {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		fields := map[string]string{}
		for line := range strings.Lines(string(status)) {
			if k, v, ok := strings.Cut(line, ":"); ok {
				fields[k] = strings.Join(strings.Fields(v), " ")
			}
		}
		for k, want := range map[string]string{
			"Uid": "65532 65532 65532 65532", "Gid": "65532 65532 65532 65532",
			"CapInh": "0000000000000000", "CapPrm": "0000000000000000", "CapEff": "0000000000000000", "CapBnd": "0000000000000000", "CapAmb": "0000000000000000",
			"NoNewPrivs": "1", "Seccomp": "2",
		} {
			if fields[k] != want {
				t.Errorf("%q (pid %d): %s %q, want %q", argv, pid, k, fields[k], want)
			}
		}
		mounts, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(mounts)) {
			f := strings.Fields(line)
			if len(f) > 5 && (f[4] == "/" || f[4] == "/var/log") && !strings.HasPrefix(f[5], "ro") {
				t.Errorf("%q (pid %d) has %s mounted %s, want ro", argv, pid, f[4], f[5])
			}
		}
	}
}

// pidsOf lists the processes whose command line starts with argv (its
// words separated by spaces).
func pidsOf(argv string) ([]int, error) {
	prefix := strings.ReplaceAll(argv, " ", "\x00") + "\x00"
	cmdlines, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		return nil, err
	}
	var found []int
	for _, f := range cmdlines {
		b, err := os.ReadFile(f)
		if err != nil || !strings.HasPrefix(string(b), prefix) {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(f, "/proc/%d/cmdline", &pid); err == nil {
			found = append(found, pid)
		}
	}
	return found, nil
}

// endpointsAnswer: `kubectl logs` reaches the agent's output through the
// kubelet, and its metrics answer through the API server's pod proxy.
func (in install) endpointsAnswer(t *testing.T, agent *corev1.Pod) {
	t.Helper()
	logs := string(run(t, nil, "kubectl", "--kubeconfig", in.c.Kubeconfig, "logs", "-n", in.ns, agent.Name))
	if !strings.Contains(logs, "HostEventRebootAfter48") && !strings.Contains(logs, "agent") {
		t.Errorf("kubectl logs %s says nothing of the agent:\n%s", agent.Name, logs)
	}
	metrics := string(run(t, nil, "kubectl", "--kubeconfig", in.c.Kubeconfig, "get", "--raw",
		fmt.Sprintf("/api/v1/namespaces/%s/pods/%s:8080/proxy/metrics", in.ns, agent.Name)))
	if !strings.Contains(metrics, "nodewarden_agent_") {
		t.Errorf("the agent's metrics have no nodewarden_agent_ series:\n%.2000s", metrics)
	}
}

// controllerDrains: both controller replicas run on the real node and one
// holds the Lease; when the host event log announces a reboot, the leader
// cordons the node and evicts a workload under a PDB (the kubelet really
// stops its containers: a pod is gone from the API only once it has).
func (in install) controllerDrains(t *testing.T) {
	t.Helper()
	ctx := t.Context()
	c := in.c
	var names []string
	var leader string
	cluster.Eventually(t, 3*time.Minute, func() error {
		pods, err := c.Clientset.CoreV1().Pods(in.ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=controller"})
		if err != nil {
			return err
		}
		names = names[:0]
		for _, p := range pods.Items {
			if !podReady(&p) || p.Spec.NodeName != cluster.RealNodeName {
				return fmt.Errorf("controller pod %s on %q: phase %s, not Ready", p.Name, p.Spec.NodeName, p.Status.Phase)
			}
			names = append(names, p.Name)
		}
		if len(names) != 2 {
			return fmt.Errorf("%d Ready controller pods, want 2", len(names))
		}
		return nil
	})
	cluster.Eventually(t, time.Minute, func() error {
		lease, err := c.Clientset.CoordinationV1().Leases(in.ns).Get(ctx, in.prefix+"-controller", metav1.GetOptions{})
		if err != nil {
			return err
		}
		holder := ptr.Deref(lease.Spec.HolderIdentity, "")
		for _, n := range names {
			if strings.HasPrefix(holder, n) {
				leader = n
				return nil
			}
		}
		return fmt.Errorf("lease holder %q is none of %v", holder, names)
	})
	confined(t, "/nodewarden controller", 2)
	metrics := string(run(t, nil, "kubectl", "--kubeconfig", c.Kubeconfig, "get", "--raw",
		fmt.Sprintf("/api/v1/namespaces/%s/pods/%s:8080/proxy/metrics", in.ns, leader)))
	if !strings.Contains(metrics, "nodewarden_controller_") {
		t.Errorf("the leader's metrics have no nodewarden_controller_ series:\n%.2000s", metrics)
	}

	// A workload on the real node; its PDB lets one pod go at a time.
	labels := map[string]string{"app": "web"}
	if err := c.Client.Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{MatchLabels: labels}},
	}); err != nil {
		t.Fatal(err)
	}
	web := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To[int64](2),
					Containers:                    []corev1.Container{{Name: "web", Image: c.RealNode.PauseImage}},
				},
			},
		},
	}
	if err := c.Client.Create(ctx, web); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 2*time.Minute, func() error {
		pods, err := c.Clientset.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return err
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.Spec.NodeName == cluster.RealNodeName {
				running++
			}
		}
		if running != 2 {
			return fmt.Errorf("%d web pods run on the real node, want 2", running)
		}
		return nil
	})
	// The controller runs only on the real node it is about to drain: its
	// evicted replicas would land on the simulated nodes, where nothing
	// runs, and the drain would stop with its leader (seen under load).
	// Its PodDisruptionBudget keeps both replicas here, so the drain
	// evicts the workload and stays blocked by the controller's own PDB,
	// as on a cluster with one node left.
	if _, err := c.Clientset.PolicyV1().PodDisruptionBudgets(in.ns).Patch(ctx, in.prefix+"-controller", types.MergePatchType,
		[]byte(`{"spec":{"maxUnavailable":0}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	// Simulated nodes added only now, so that everything above ran for
	// real: they take the evicted pods, and keep the policy's maxUnhealthy
	// (50%) from opening the circuit for the one real node.
	for _, n := range []string{"kw-a", "kw-b"} {
		if _, err := c.AddNode(ctx, n, cluster.NodeOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := e2e.AppendHostEvent(hostEventLog, "SystemMaintenance.Reboot", "Scheduled", time.Now().Add(47*time.Hour)); err != nil {
		t.Fatal(err)
	}
	in.condition(t, corev1.ConditionTrue, time.Minute)
	cluster.Eventually(t, 2*time.Minute, func() error {
		node, err := c.Clientset.CoreV1().Nodes().Get(ctx, cluster.RealNodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !node.Spec.Unschedulable || node.Annotations[nodewardenv1alpha1.AnnotationCordonedBy] == "" {
			return fmt.Errorf("real node: unschedulable %t, annotations %v", node.Spec.Unschedulable, node.Annotations)
		}
		return nil
	})
	cluster.Eventually(t, 3*time.Minute, func() error {
		pods, err := c.Clientset.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return err
		}
		for _, p := range pods.Items {
			if p.Spec.NodeName == cluster.RealNodeName {
				return fmt.Errorf("web pod %s is still on the real node (phase %s)", p.Name, p.Status.Phase)
			}
		}
		return nil
	})
	// What `kubectl describe node` shows: the controller's Events.
	cluster.Eventually(t, time.Minute, func() error {
		events, err := c.Clientset.CoreV1().Events("default").List(ctx, metav1.ListOptions{
			FieldSelector: "involvedObject.kind=Node,involvedObject.name=" + cluster.RealNodeName})
		if err != nil {
			return err
		}
		var reasons []string
		for _, e := range events.Items {
			if e.Reason == remediation.ReasonDrainStarted {
				return nil
			}
			reasons = append(reasons, e.Reason)
		}
		return fmt.Errorf("no %s Event on the real node, only %v", remediation.ReasonDrainStarted, reasons)
	})
}
