package controller

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/deadline"
	"github.com/nodewarden/nodewarden/test/bench"
	"github.com/nodewarden/nodewarden/test/cluster"
)

const (
	// optInEnv must be 1 for any benchmark of this package to run.
	optInEnv = "NODEWARDEN_BENCH"
	// trigger is the condition the policies act on, as the agent writes it.
	trigger = "HostEventRebootAfter48"
	// poolLabel selects the benchmark's nodes.
	poolLabel = "pool"
	poolValue = "bench"
)

// requireOptIn skips unless the benchmarks were asked for.
func requireOptIn(b *testing.B) {
	b.Helper()
	if testing.Short() {
		b.Skip("starts a control plane; skipped with -short")
	}
	if os.Getenv(optInEnv) != "1" {
		b.Skipf("set %s=1 to run the controller benchmarks (they start a control plane with up to thousands of nodes)", optInEnv)
	}
}

// env is a running control plane and a client without client-side rate
// limiting, so that the benchmark's own writes are never what is measured.
type env struct {
	c    *cluster.Cluster
	cs   kubernetes.Interface
	full bool
}

func newEnv(b *testing.B, full bool) *env {
	b.Helper()
	started := time.Now()
	c := cluster.StartWith(b, cluster.Options{Full: full})
	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = -1, 0
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("control plane (level %d) up in %.1fs, files in %s", map[bool]int{false: 1, true: 2}[full], time.Since(started).Seconds(), c.Dir)
	return &env{c: c, cs: cs, full: full}
}

// nodeName is the i-th benchmark node.
func nodeName(prefix string, i int) string { return fmt.Sprintf("%s-%05d", prefix, i) }

// newNode is a Node shaped like one a cloud kubelet registers, minus what a
// kubelet adds later: a dozen labels, the usual annotations, capacity and a
// list of images (which the controller's cache transform drops; it is here so
// that the initial list weighs what it would). On a level-2 cluster kwok
// initialises it (conditions, addresses, nodeInfo); on level 1 it is created
// with a Ready condition, as nothing else would set one.
func newNode(name string, kwok bool) *corev1.Node {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("32"),
		corev1.ResourceMemory:           resource.MustParse("128Gi"),
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("200Gi"),
	}
	images := make([]corev1.ContainerImage, 20)
	for i := range images {
		images[i] = corev1.ContainerImage{
			Names: []string{
				fmt.Sprintf("registry.example.com/team-%d/service-%d@sha256:%064x", i%5, i, i+1),
				fmt.Sprintf("registry.example.com/team-%d/service-%d:v1.%d.0", i%5, i, i),
			},
			SizeBytes: int64(50+i*10) << 20,
		}
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				poolLabel:                                  poolValue,
				"kubernetes.io/hostname":                   name,
				"kubernetes.io/os":                         "linux",
				"kubernetes.io/arch":                       "amd64",
				"beta.kubernetes.io/os":                    "linux",
				"beta.kubernetes.io/arch":                  "amd64",
				"node.kubernetes.io/instance-type":         "ecs.g7.8xlarge",
				"beta.kubernetes.io/instance-type":         "ecs.g7.8xlarge",
				"topology.kubernetes.io/region":            "cn-hangzhou",
				"topology.kubernetes.io/zone":              "cn-hangzhou-" + string(rune('h'+len(name)%3)),
				"failure-domain.beta.kubernetes.io/region": "cn-hangzhou",
				"node-role.kubernetes.io/worker":           "",
				"type":                                     "kwok",
			},
			Annotations: map[string]string{
				"node.alpha.kubernetes.io/ttl":                           "0",
				"volumes.kubernetes.io/controller-managed-attach-detach": "true",
				"csi.volume.kubernetes.io/nodeid":                        fmt.Sprintf(`{"diskplugin.csi.alibabacloud.com":"i-%s"}`, name),
			},
		},
		Spec: corev1.NodeSpec{ProviderID: "alicloud://cn-hangzhou.i-" + name, PodCIDR: "10.244.0.0/24"},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity,
			Images:      images,
		},
	}
	if kwok {
		n.Annotations[cluster.KwokNodeAnnotation] = "fake"
	} else {
		now := metav1.Now()
		n.Status.Conditions = []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "kubelet is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now,
		}}
	}
	return n
}

// parallel runs f(i) for i in [0, n) on workers goroutines and returns the
// first error.
func parallel(n, workers int, f func(i int) error) error {
	var (
		mu    sync.Mutex
		first error
		next  int
		wg    sync.WaitGroup
	)
	for range min(workers, n) {
		wg.Go(func() {
			for {
				mu.Lock()
				if next >= n || first != nil {
					mu.Unlock()
					return
				}
				i := next
				next++
				mu.Unlock()
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return first
}

// settledNodes creates n nodes named prefix-i, waits until all are Ready and
// no Node was written for quiet (kube-controller-manager's own rewrites
// settle), and returns the watch that saw it and the names.
func (e *env) settledNodes(b *testing.B, ctx context.Context, prefix string, n int, ready, quiet, settle time.Duration) (*nodeWatcher, []string) {
	b.Helper()
	w, err := e.watchNodes(ctx)
	if err != nil {
		b.Fatal(err)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = nodeName(prefix, i)
	}
	started := time.Now()
	if err := e.createNodes(ctx, names); err != nil {
		b.Fatal(err)
	}
	if err := w.waitReady(n, ready); err != nil {
		b.Fatal(err)
	}
	events, err := w.waitQuiet(quiet, settle)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d nodes Ready, no Node written for %s, after %.1fs (%d Node events)", n, quiet, time.Since(started).Seconds(), events)
	return w, names
}

// createNodes creates the named nodes, 32 at a time; existing ones are kept.
func (e *env) createNodes(ctx context.Context, names []string) error {
	return parallel(len(names), 32, func(i int) error {
		_, err := e.cs.CoreV1().Nodes().Create(ctx, newNode(names[i], e.full), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
}

func (e *env) deleteNodes(ctx context.Context, names []string) error {
	return parallel(len(names), 32, func(i int) error {
		err := e.cs.CoreV1().Nodes().Delete(ctx, names[i], metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
}

// setTrigger plays the agent: the trigger condition True with a "not before"
// deadline 47 h ahead, or False.
func (e *env) setTrigger(ctx context.Context, node string, status corev1.ConditionStatus) error {
	now := time.Now().UTC()
	msg := "SystemMaintenance.Reboot is Scheduled, " + deadline.Suffix(now.Add(47*time.Hour))
	reason := "SystemMaintenanceRebootScheduled"
	if status == corev1.ConditionFalse {
		msg, reason = "SystemMaintenance.Reboot was Executed", "SystemMaintenanceRebootExecuted"
	}
	ts := now.Format(time.RFC3339)
	patch := fmt.Sprintf(`{"status":{"conditions":[{"type":%q,"status":%q,"reason":%q,"message":%q,"lastTransitionTime":%q,"lastHeartbeatTime":%q}]}}`,
		trigger, status, reason, msg, ts, ts)
	_, err := e.cs.CoreV1().Nodes().PatchStatus(ctx, node, []byte(patch))
	return err
}

// policy selects every benchmark node and acts on the trigger, with a
// budget that never defers (maxConcurrent) and a circuit that never opens
// (maxUnhealthy 100%).
func policy(name string, maxConcurrent int, drain bool) *v1alpha1.RemediationPolicy {
	rp := &v1alpha1.RemediationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.RemediationPolicySpec{
			NodeSelector:  &metav1.LabelSelector{MatchLabels: map[string]string{poolLabel: poolValue}},
			Conditions:    []v1alpha1.ConditionRule{{Type: trigger}},
			MaxConcurrent: intstr.FromInt32(int32(maxConcurrent)),
			MaxUnhealthy:  intstr.FromString("100%"),
			// The timeout is serialised even when drain is off, so it must be valid.
			Drain: v1alpha1.DrainSpec{Enabled: ptr.To(drain), Timeout: metav1.Duration{Duration: 5 * time.Minute}},
		},
	}
	if drain {
		// The benchmark's pods are bare pods, as from a job runner.
		rp.Spec.Drain.EvictUnreplicatedPods = true
	}
	return rp
}

// waitPolicySynced waits until the controller has written the policy's status
// for its current generation with every node selected: the controller has
// listed all nodes and decided once.
func (e *env) waitPolicySynced(ctx context.Context, name string, nodes int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		var rp v1alpha1.RemediationPolicy
		if err := e.c.Client.Get(ctx, clientKey(name), &rp); err != nil {
			last = err.Error()
		} else {
			if rp.Status.ObservedGeneration == rp.Generation && int(rp.Status.SelectedNodes) == nodes {
				return nil
			}
			last = fmt.Sprintf("generation %d observed %d, selected %d of %d", rp.Generation, rp.Status.ObservedGeneration, rp.Status.SelectedNodes, nodes)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("policy %s not synced after %s: %s", name, timeout, last)
}

func clientKey(name string) client.ObjectKey { return client.ObjectKey{Name: name} }

// ---------------------------------------------------------------------------
// The controller as a process.

// startController runs `bin controller` against the cluster, its output in
// logPath. Extra environment for it (GODEBUG=gctrace=1, GOMEMLIMIT=...) goes
// in $NODEWARDEN_BENCH_CONTROLLER_ENV, extra flags (--kube-api-qps=...) in
// $NODEWARDEN_BENCH_CONTROLLER_ARGS, both space-separated. The kernel kills it
// if the benchmark dies; it is stopped when the benchmark ends.
func startController(b *testing.B, bin, kubeconfig, logPath string) *cluster.Process {
	b.Helper()
	out, err := os.Create(logPath)
	if err != nil {
		b.Fatal(err)
	}
	args := append([]string{"controller", "--kubeconfig", kubeconfig,
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0"},
		strings.Fields(os.Getenv("NODEWARDEN_BENCH_CONTROLLER_ARGS"))...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), strings.Fields(os.Getenv("NODEWARDEN_BENCH_CONTROLLER_ENV"))...)
	p, err := cluster.StartCommand("controller", cmd, out)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Stop)
	return p
}

// alive fails the benchmark if the controller exited.
func alive(b *testing.B, p *cluster.Process) {
	b.Helper()
	if p.Exited() {
		tail, _ := os.ReadFile(p.LogPath)
		b.Fatalf("controller exited (%v); last output:\n%s", p.Err(), tail[max(0, len(tail)-4000):])
	}
}

// cpuTime is the process's CPU time, 0 once it is gone.
func cpuTime(pid int) time.Duration {
	d, _ := bench.CPUTime(pid)
	return d
}

// loadavg is the 1-minute load average: the machine is shared, so every
// figure is reported next to it.
func loadavg() float64 {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	fs := strings.Fields(string(raw))
	if len(fs) == 0 {
		return -1
	}
	v, _ := strconv.ParseFloat(fs[0], 64)
	return v
}

// ---------------------------------------------------------------------------
// Watching the nodes.

// obs is one version of a Node as a watch delivered it, stamped on receipt.
type obs struct {
	at          time.Time
	state       string // nodewarden.io/state
	unsched     bool
	conditionOn bool // the trigger condition is True
}

func (o obs) cordoned() bool { return o.unsched && o.state != "" }
func (o obs) released() bool { return !o.unsched && o.state == "" }

// held: the node takes one of its policy's maxConcurrent slots, which every
// state but Waiting does (docs/policy.md, "Budgets").
func (o obs) held() bool { return o.state != "" && o.state != string(v1alpha1.StateWaiting) }

// nodeWatcher follows every Node through one cluster-wide watch. For nodes
// that were marked it keeps every version seen since the mark, so that a
// benchmark marks a node, writes, and then finds the first version that
// shows the controller's answer, whenever it asks.
type nodeWatcher struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every event
	last    time.Time     // of the last event
	events  int           // since the start
	ready   map[string]bool
	since   map[string][]obs // marked nodes
	// held are the nodes whose last version is held, in the order the API
	// server wrote them (one watch on one resource is a serial history), so
	// heldMax is the most held at any instant, not at the instants someone
	// looked.
	held    map[string]bool
	heldMax int
	// relists count the lists after the first: across one, the history has a
	// gap and heldMax may mix two instants.
	relists int
}

func (e *env) watchNodes(ctx context.Context) (*nodeWatcher, error) {
	w := &nodeWatcher{changed: make(chan struct{}), ready: map[string]bool{}, since: map[string][]obs{}, held: map[string]bool{}}
	rv, err := w.list(ctx, e.cs)
	if err != nil {
		return nil, err
	}
	w.relists = 0
	go w.run(ctx, e.cs, rv)
	return w, nil
}

func (w *nodeWatcher) list(ctx context.Context, cs kubernetes.Interface) (string, error) {
	l, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", err
	}
	now := time.Now()
	w.mu.Lock()
	w.relists++
	w.mu.Unlock()
	for i := range l.Items {
		w.observe(&l.Items[i], now, false)
	}
	return l.ResourceVersion, nil
}

func (w *nodeWatcher) run(ctx context.Context, cs kubernetes.Interface, rv string) {
	for ctx.Err() == nil {
		wi, err := cs.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true})
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		for ev := range wi.ResultChan() {
			at := time.Now()
			switch ev.Type {
			case watch.Error:
				// Most likely 410 Gone: list again.
				if r, err := w.list(ctx, cs); err == nil {
					rv = r
				}
			case watch.Bookmark:
				if n, ok := ev.Object.(*corev1.Node); ok {
					rv = n.ResourceVersion
				}
			default:
				if n, ok := ev.Object.(*corev1.Node); ok {
					rv = n.ResourceVersion
					w.observe(n, at, ev.Type == watch.Deleted)
				}
			}
		}
		wi.Stop()
	}
}

func (w *nodeWatcher) observe(n *corev1.Node, at time.Time, deleted bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer func() { close(w.changed); w.changed = make(chan struct{}) }()
	w.last = at
	w.events++
	if deleted {
		delete(w.ready, n.Name)
		delete(w.since, n.Name)
		delete(w.held, n.Name)
		return
	}
	o := obs{at: at, state: n.Annotations[v1alpha1.AnnotationState], unsched: n.Spec.Unschedulable}
	if o.held() {
		w.held[n.Name] = true
		w.heldMax = max(w.heldMax, len(w.held))
	} else {
		delete(w.held, n.Name)
	}
	ready := false
	for _, c := range n.Status.Conditions {
		switch string(c.Type) {
		case string(corev1.NodeReady):
			ready = c.Status == corev1.ConditionTrue
		case trigger:
			o.conditionOn = c.Status == corev1.ConditionTrue
		}
	}
	w.ready[n.Name] = ready
	if s, ok := w.since[n.Name]; ok {
		w.since[n.Name] = append(s, o)
	}
}

// mark starts recording the nodes' versions, forgetting earlier ones.
func (w *nodeWatcher) mark(names ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range names {
		w.since[n] = []obs{}
	}
}

// resetHeld starts a new peak of held nodes from the present count, and
// returns the relist count to compare with heldPeak's.
func (w *nodeWatcher) resetHeld() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.heldMax = len(w.held)
	return w.relists
}

// heldPeak is the most nodes held at once since resetHeld, and the relist
// count.
func (w *nodeWatcher) heldPeak() (peak, relists int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.heldMax, w.relists
}

// seen reports, for each name that has one, when the first version since
// its mark that satisfies the last of preds arrived, after versions that
// satisfied the earlier ones in order (seen(names, obs.cordoned,
// obs.released): released after having been cordoned). It also returns a
// channel closed on the next event, to wait for more without polling.
func (w *nodeWatcher) seen(names []string, preds ...func(obs) bool) (map[string]time.Time, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]time.Time{}
	for _, n := range names {
		i := 0
		for _, o := range w.since[n] {
			if !preds[i](o) {
				continue
			}
			if i++; i == len(preds) {
				out[n] = o.at
				break
			}
		}
	}
	return out, w.changed
}

// counts reports how many nodes exist and how many of them are Ready.
func (w *nodeWatcher) counts() (nodes, ready int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.ready {
		nodes++
		if r {
			ready++
		}
	}
	return nodes, ready
}

var errTimeout = errors.New("timed out")

// waitFirst waits until, for every name, a version seen since its mark
// satisfies pred, and returns when each was first seen.
func (w *nodeWatcher) waitFirst(names []string, pred func(obs) bool, timeout time.Duration) (map[string]time.Time, error) {
	found := make(map[string]time.Time, len(names))
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		ch := w.changed
		for _, n := range names {
			if _, ok := found[n]; ok {
				continue
			}
			for _, o := range w.since[n] {
				if pred(o) {
					found[n] = o.at
					break
				}
			}
		}
		var missing []string
		for _, n := range names {
			if _, ok := found[n]; !ok {
				missing = append(missing, n)
			}
		}
		w.mu.Unlock()
		if len(missing) == 0 {
			return found, nil
		}
		select {
		case <-ch:
		case <-deadline:
			return found, fmt.Errorf("%w after %s: %d of %d nodes not there yet, e.g. %s (%s)", errTimeout, timeout, len(missing), len(names), missing[0], w.describe(missing[0]))
		}
	}
}

// waitOne is waitFirst for one node.
func (w *nodeWatcher) waitOne(name string, pred func(obs) bool, timeout time.Duration) (time.Time, error) {
	m, err := w.waitFirst([]string{name}, pred, timeout)
	return m[name], err
}

func (w *nodeWatcher) describe(name string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.since[name]
	if len(s) == 0 {
		return "no version seen since the mark"
	}
	o := s[len(s)-1]
	return fmt.Sprintf("last seen: state %q unschedulable %v trigger %v", o.state, o.unsched, o.conditionOn)
}

// waitReady waits until n nodes exist and are Ready.
func (w *nodeWatcher) waitReady(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		nodes, ready := w.counts()
		if nodes == n && ready == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %d nodes, %d Ready, want %d", errTimeout, nodes, ready, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitQuiet waits until no Node has changed for quiet, and returns how many
// Node events there were meanwhile. After nodes are added the cluster keeps
// writing to all of them for a while (kwok initialises them; the
// controller-manager's TTL controller rewrites node.alpha.kubernetes.io/ttl
// on every node when the cluster crosses a size threshold), and each such
// annotation change wakes the controller: an idle measurement must start
// after that.
func (w *nodeWatcher) waitQuiet(quiet, timeout time.Duration) (int, error) {
	w.mu.Lock()
	start := w.events
	w.mu.Unlock()
	deadline := time.Now().Add(timeout)
	for {
		w.mu.Lock()
		last, n := w.last, w.events-start
		w.mu.Unlock()
		if time.Since(last) >= quiet {
			return n, nil
		}
		if time.Now().After(deadline) {
			return n, fmt.Errorf("%w: nodes still changing after %s (%d events)", errTimeout, timeout, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// releaseAll clears the trigger on the nodes and waits until the controller
// has given every one of them back (schedulable, no state annotation).
func (e *env) releaseAll(ctx context.Context, w *nodeWatcher, names []string, timeout time.Duration) error {
	w.mark(names...)
	if err := parallel(len(names), 16, func(i int) error { return e.setTrigger(ctx, names[i], corev1.ConditionFalse) }); err != nil {
		return err
	}
	_, err := w.waitFirst(names, obs.released, timeout)
	return err
}

// apiServerPID finds the kube-apiserver serving host (https://127.0.0.1:PORT)
// by its --secure-port, so that its CPU can be read too; 0 if not found
// (the machine is shared: other clusters' API servers run beside it).
func apiServerPID(host string) int {
	u, err := url.Parse(host)
	if err != nil || u.Port() == "" {
		return 0
	}
	want := "--secure-port=" + u.Port()
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(raw), "\x00")
		if filepath.Base(args[0]) == "kube-apiserver" && slices.Contains(args, want) {
			return pid
		}
	}
	return 0
}
