// Command demo plays nodewarden's story on the cluster hack/demo.sh set up,
// and prints it as a live timeline: a maintenance event is appended to one
// node's host event log; the agent turns the node's condition True; the
// controller cordons the node and evicts its pods within the
// PodDisruptionBudget while they start again elsewhere; then the event is
// logged as Executed and the node comes back.
//
// It only writes to the host event log; everything it prints is what it
// watches happen in the cluster.
//
// With -act repair it plays the second act (`make demo REPAIR=1`, repair.go):
// a fault that never clears, a node drained and then deleted by the
// policy's repair ladder, and a replacement node, which this program creates
// itself, playing the cloud.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/test/e2e"
)

const (
	conditionType = "HostEventRebootAfter48"
	eventType     = "SystemMaintenance.Reboot"

	actMaintenance = "maintenance"
	actRepair      = "repair"
)

type options struct {
	kubeconfig string
	node       string
	hostLog    string
	namespace  string
	app        string
	policy     string
	timeout    time.Duration

	// The second act (-act repair).
	act         string
	kernelLog   string
	replacement string
	agents      string
}

func main() {
	var o options
	flag.StringVar(&o.kubeconfig, "kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the demo cluster")
	flag.StringVar(&o.node, "node", "node-2", "the node the maintenance event arrives on")
	flag.StringVar(&o.hostLog, "host-event-log", "", "that node's host event log, the file its agent follows")
	flag.StringVar(&o.namespace, "namespace", "default", "namespace of the sample app")
	flag.StringVar(&o.app, "app", "web", "name of the sample app's Deployment and PodDisruptionBudget")
	flag.StringVar(&o.policy, "policy", "host-maintenance", "the RemediationPolicy that acts on "+conditionType)
	flag.DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up after this long")
	flag.StringVar(&o.act, "act", actMaintenance, "which act: "+actMaintenance+" (the host event story) or "+actRepair+" (a fault that never clears: drained, deleted, replaced)")
	flag.StringVar(&o.kernelLog, "kernel-log", "", "-act "+actRepair+": the node's kernel log, the file its agent's NPD kernel monitor reads instead of /dev/kmsg")
	flag.StringVar(&o.replacement, "replacement", "node-6", "-act "+actRepair+": the name of the node the cloud creates in place of the deleted one")
	flag.StringVar(&o.agents, "agents", "", "-act "+actRepair+": the program that stops and starts a node's agent (`PROGRAM agent-stop|agent-start NODE`, printing its pid): hack/demo.sh")
	flag.Parse()
	switch {
	case o.act == actMaintenance && o.hostLog == "":
		fmt.Fprintln(os.Stderr, "demo: -host-event-log is required")
		os.Exit(2)
	case o.act == actRepair && (o.kernelLog == "" || o.agents == ""):
		fmt.Fprintln(os.Stderr, "demo: -act repair needs -kernel-log and -agents")
		os.Exit(2)
	case o.act != actMaintenance && o.act != actRepair:
		fmt.Fprintf(os.Stderr, "demo: -act %q: want %s or %s\n", o.act, actMaintenance, actRepair)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

type demo struct {
	options
	cs kubernetes.Interface
	c  client.Client

	replicas int32
	selector string
	start    time.Time
	// condType is the condition the act's policy acts on, which every agent
	// must have declared before the act starts.
	condType corev1.NodeConditionType
}

func run(ctx context.Context, o options) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	d := &demo{options: o, cs: cs, c: c, condType: conditionType}
	if o.act == actRepair {
		d.condType = kernelCondition
	}
	if err := d.waitReady(ctx); err != nil {
		return err
	}
	if o.act == actRepair {
		return d.repairStory(ctx)
	}
	return d.story(ctx)
}

// waitReady waits until every agent has declared its conditions, the
// controller has taken up the policy, and the app is fully available.
func (d *demo) waitReady(ctx context.Context) error {
	var last error
	for {
		last = d.ready(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the demo never became ready: %w", last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (d *demo) ready(ctx context.Context) error {
	nodes, err := d.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	declared := 0
	for _, n := range nodes.Items {
		if condOf(&n, d.condType) != nil {
			declared++
		}
	}
	if declared == 0 || declared < len(nodes.Items) {
		return fmt.Errorf("%d of %d agents have declared %s on their node", declared, len(nodes.Items), d.condType)
	}
	var rp v1alpha1.RemediationPolicy
	if err := d.c.Get(ctx, types.NamespacedName{Name: d.policy}, &rp); err != nil {
		return err
	}
	if rp.Status.ObservedGeneration != rp.Generation || !apimeta.IsStatusConditionTrue(rp.Status.Conditions, v1alpha1.ConditionReady) {
		return fmt.Errorf("the controller has not taken up policy %s yet", d.policy)
	}
	dep, err := d.cs.AppsV1().Deployments(d.namespace).Get(ctx, d.app, metav1.GetOptions{})
	if err != nil {
		return err
	}
	d.replicas = ptr.Deref(dep.Spec.Replicas, 1)
	if dep.Status.AvailableReplicas != d.replicas || dep.Status.UpdatedReplicas != d.replicas {
		return fmt.Errorf("deployment %s: %d/%d available", d.app, dep.Status.AvailableReplicas, d.replicas)
	}
	d.selector = metav1.FormatLabelSelector(dep.Spec.Selector)
	pdb, err := d.cs.PolicyV1().PodDisruptionBudgets(d.namespace).Get(ctx, d.app, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if pdb.Status.ObservedGeneration != pdb.Generation || pdb.Status.CurrentHealthy != d.replicas || pdb.Status.DisruptionsAllowed < 1 {
		return fmt.Errorf("pdb %s: %d/%d healthy, %d disruptions allowed", d.app, pdb.Status.CurrentHealthy, d.replicas, pdb.Status.DisruptionsAllowed)
	}
	pods, err := d.pods(ctx)
	if err != nil {
		return err
	}
	onNode := 0
	for _, p := range pods {
		if p.Spec.NodeName == d.node {
			onNode++
		}
	}
	if onNode == 0 {
		return fmt.Errorf("no %s pod on %s yet", d.app, d.node)
	}
	fmt.Printf("    %d agents have declared %s=False, the controller has taken up policy %s,\n", declared, d.condType, d.policy)
	fmt.Printf("    %s is %d/%d available (%s), its PDB allows %d disruption(s)\n",
		d.app, dep.Status.AvailableReplicas, d.replicas, spread(pods), pdb.Status.DisruptionsAllowed)
	return nil
}

func (d *demo) pods(ctx context.Context) ([]corev1.Pod, error) {
	list, err := d.cs.CoreV1().Pods(d.namespace).List(ctx, metav1.ListOptions{LabelSelector: d.selector})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// spread says how many running pods are on each node: "node-1: 2, node-3: 3".
func spread(pods []corev1.Pod) string {
	per := map[string]int{}
	for _, p := range pods {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
			per[p.Spec.NodeName]++
		}
	}
	names := make([]string, 0, len(per))
	for n := range per {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s: %d", n, per[n]))
	}
	return strings.Join(parts, ", ")
}

func cond(n *corev1.Node) *corev1.NodeCondition { return condOf(n, conditionType) }

func condOf(n *corev1.Node, typ corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == typ {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// line prints one timeline entry, timed from the first write to the log.
func (d *demo) line(subject, format string, args ...any) {
	fmt.Printf("  %+7.2fs  %-24s %s\n", time.Since(d.start).Seconds(), subject, fmt.Sprintf(format, args...))
}

// watched is one change seen by any of the watches.
type watched struct {
	typ watch.EventType
	obj runtime.Object
}

func (d *demo) watch(ctx context.Context, out chan<- watched) error {
	node, err := d.cs.CoreV1().Nodes().Get(ctx, d.node, metav1.GetOptions{})
	if err != nil {
		return err
	}
	pods, err := d.cs.CoreV1().Pods(d.namespace).List(ctx, metav1.ListOptions{LabelSelector: d.selector})
	if err != nil {
		return err
	}
	pdb, err := d.cs.PolicyV1().PodDisruptionBudgets(d.namespace).Get(ctx, d.app, metav1.GetOptions{})
	if err != nil {
		return err
	}
	byName := func(name string) string { return fields.OneTermEqualSelector("metadata.name", name).String() }
	watches := []func() (watch.Interface, error){
		func() (watch.Interface, error) {
			return d.cs.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{FieldSelector: byName(d.node), ResourceVersion: node.ResourceVersion})
		},
		func() (watch.Interface, error) {
			return d.cs.CoreV1().Pods(d.namespace).Watch(ctx, metav1.ListOptions{LabelSelector: d.selector, ResourceVersion: pods.ResourceVersion})
		},
		func() (watch.Interface, error) {
			return d.cs.PolicyV1().PodDisruptionBudgets(d.namespace).Watch(ctx, metav1.ListOptions{FieldSelector: byName(d.app), ResourceVersion: pdb.ResourceVersion})
		},
	}
	for _, start := range watches {
		w, err := start()
		if err != nil {
			return err
		}
		go func() {
			defer w.Stop()
			for ev := range w.ResultChan() {
				select {
				case out <- watched{ev.Type, ev.Object}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	out <- watched{watch.Added, node}
	out <- watched{watch.Added, pdb}
	for i := range pods.Items {
		out <- watched{watch.Added, &pods.Items[i]}
	}
	return nil
}

// story writes the two log lines and prints what happens in between.
func (d *demo) story(ctx context.Context) error {
	events := make(chan watched, 1024)
	if err := d.watch(ctx, events); err != nil {
		return err
	}

	// What the timeline has reported so far.
	var (
		status      corev1.ConditionStatus
		cordoned    bool
		state       string
		pods              = newAppPods()
		allowed     int32 = -1
		executedAt  time.Time
		settled     bool // every replica Running elsewhere after Drained
		initialised bool
	)

	// Drain the initial state of the watches before the first write.
	for len(events) > 0 || !initialised {
		ev := <-events
		switch o := ev.obj.(type) {
		case *corev1.Node:
			if c := cond(o); c != nil {
				status = c.Status
			}
			cordoned, state = o.Spec.Unschedulable, o.Annotations[v1alpha1.AnnotationState]
		case *policyv1.PodDisruptionBudget:
			allowed = o.Status.DisruptionsAllowed
		case *corev1.Pod:
			pods.seed(d.node, o)
		}
		initialised = len(pods.original) > 0 && allowed >= 0
	}
	if status != corev1.ConditionFalse || cordoned || state != "" {
		return fmt.Errorf("%s is not in its initial state (%s=%s, unschedulable %v, state %q): run `make demo` again for a fresh cluster",
			d.node, conditionType, status, cordoned, state)
	}

	action := time.Now().Add(47 * time.Hour).Truncate(time.Second)
	fmt.Printf("\n==> The story, timed from the write to %s's host event log:\n\n", d.node)
	if _, err := e2e.AppendHostEvent(d.hostLog, eventType, "Scheduled", action); err != nil {
		return err
	}
	d.start = time.Now()
	d.line(d.node, "host event log <- %s Scheduled, not before %s (47h ahead)", eventType, action.UTC().Format(time.RFC3339))

	for {
		var ev watched
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w while waiting (node %s: %s=%s, unschedulable %v, state %q; %d/%d %s pods Running)",
				ctx.Err(), d.node, conditionType, status, cordoned, state, len(pods.running), d.replicas, d.app)
		case ev = <-events:
		}
		switch o := ev.obj.(type) {
		case *corev1.Node:
			if c := cond(o); c != nil && c.Status != status {
				status = c.Status
				d.line(d.node, "%s=%s  %s", conditionType, c.Status, c.Reason)
			}
			if s := o.Annotations[v1alpha1.AnnotationState]; s != state {
				switch {
				case s != "" && state == "" && o.Spec.Unschedulable:
					d.line(d.node, "cordoned by policy %s (nodewarden.io/state=%s)", o.Annotations[v1alpha1.AnnotationPolicy], s)
					cordoned = true
				case s == string(v1alpha1.StateDrained):
					d.line(d.node, "drained (nodewarden.io/state=Drained), %d %s pods left on it", len(pods.onNode), d.app)
				case s != "":
					d.line(d.node, "nodewarden.io/state=%s", s)
				}
				state = s
			}
			if o.Spec.Unschedulable != cordoned {
				cordoned = o.Spec.Unschedulable
				if cordoned {
					d.line(d.node, "cordoned")
				}
			}
			if !executedAt.IsZero() && !cordoned && state == "" && !hasNodewardenAnnotations(o) {
				d.line(d.node, "uncordoned, nodewarden.io annotations removed: the node is back")
				fmt.Printf("\n==> The whole story took %.1fs.\n", time.Since(d.start).Seconds())
				return nil
			}
		case *policyv1.PodDisruptionBudget:
			if a := o.Status.DisruptionsAllowed; a != allowed {
				allowed = a
				d.line("PDB "+d.app, "%d/%d healthy, %d disruption(s) allowed", o.Status.CurrentHealthy, o.Status.ExpectedPods, a)
			}
		case *corev1.Pod:
			pods.observe(d, ev.typ, o)
		}

		if state == string(v1alpha1.StateDrained) && !settled && len(pods.onNode) == 0 && int32(len(pods.running)) == d.replicas {
			settled = true
			d.line(d.app, "%d/%d Running, none on %s (%s)", len(pods.running), d.replicas, d.node, spread(mapValues(pods.running)))
			fmt.Printf("\n    ... the reboot happens; the cloud logs the event as Executed:\n\n")
			if _, err := e2e.AppendHostEvent(d.hostLog, eventType, "Executed", action); err != nil {
				return err
			}
			executedAt = time.Now()
			d.line(d.node, "host event log <- %s Executed", eventType)
		}
		if state == string(v1alpha1.StateDrainFailed) {
			return errors.New("the drain failed; see the controller's log")
		}
	}
}

func hasNodewardenAnnotations(n *corev1.Node) bool {
	for k := range n.Annotations {
		if strings.HasPrefix(k, v1alpha1.AnnotationPrefix) {
			return true
		}
	}
	return false
}

// appPods follows the app's pods through a story: which existed before the
// event, which ran on the node being remediated, which were evicted from it,
// and which replacements started where.
type appPods struct {
	original, evicted, started map[string]bool
	running                    map[string]corev1.Pod // not terminating, Running
	onNode                     map[string]bool       // app pods on the node
}

func newAppPods() *appPods {
	return &appPods{original: map[string]bool{}, evicted: map[string]bool{}, started: map[string]bool{},
		running: map[string]corev1.Pod{}, onNode: map[string]bool{}}
}

// seed records a pod that was there before the event.
func (a *appPods) seed(node string, o *corev1.Pod) {
	a.original[o.Name] = true
	if o.Spec.NodeName == node {
		a.onNode[o.Name] = true
	}
	if o.Status.Phase == corev1.PodRunning && o.DeletionTimestamp == nil {
		a.running[o.Name] = *o
	}
}

// observe follows one watch event of a pod and prints an eviction from the
// node, or a replacement that started.
func (a *appPods) observe(d *demo, typ watch.EventType, o *corev1.Pod) {
	if typ == watch.Deleted || o.DeletionTimestamp != nil {
		delete(a.running, o.Name)
		if a.onNode[o.Name] && !a.evicted[o.Name] {
			a.evicted[o.Name] = true
			d.line(o.Name, "evicted from %s", d.node)
		}
		if typ == watch.Deleted {
			delete(a.onNode, o.Name)
		}
		return
	}
	if o.Spec.NodeName == d.node {
		a.onNode[o.Name] = true
	}
	if o.Status.Phase == corev1.PodRunning {
		a.running[o.Name] = *o
		if !a.original[o.Name] && !a.started[o.Name] {
			a.started[o.Name] = true
			d.line(o.Name, "Running on %s", o.Spec.NodeName)
		}
	}
}
