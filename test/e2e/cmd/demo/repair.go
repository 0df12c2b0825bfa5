package main

// The second act (`make demo REPAIR=1`): a fault that never clears. A hung
// task is written to one node's kernel log; its agent's NPD kernel monitor
// (upstream's permanent KernelDeadlock rule, which nothing clears) turns
// KernelDeadlock True; policy node-repair cordons and drains the node, and
// since the node does not recover, its repair ladder deletes the Node. This
// program then plays the cloud (a node group, Karpenter): the instance is
// terminated (its agent stopped), a replacement registers under a new name
// and gets its own agent; and, as a descheduler would, it evicts pods from
// the fullest nodes until the app is spread evenly again, the new node
// included.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

const (
	// kernelCondition is what the agents' NPD kernel monitor (hack/demo.sh
	// writes its config) declares, and policy node-repair acts on.
	kernelCondition = "KernelDeadlock"
	// hungTask matches the monitor's permanent rule (reason DockerHung), as
	// in upstream node-problem-detector's kernel-monitor.json.
	hungTask = "INFO: task docker:2740 blocked for more than 120 seconds."
	// kwokNodeAnnotation marks the nodes kwok plays the kubelet of
	// (test/cluster.KwokNodeAnnotation).
	kwokNodeAnnotation = "kwok.x-k8s.io/node"
	// evictRetry bounds how long one eviction of the descheduler waits for
	// the PodDisruptionBudget to allow it.
	evictRetry = 30 * time.Second
)

// watchRepair streams every Node, the app's pods and PDB, and the Events
// about d.node, from now on, after the current state of the first three.
func (d *demo) watchRepair(ctx context.Context, out chan<- watched) error {
	nodes, err := d.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
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
	aboutNode := fields.Set{"involvedObject.kind": "Node", "involvedObject.name": d.node}.AsSelector().String()
	evs, err := d.cs.CoreV1().Events(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: aboutNode})
	if err != nil {
		return err
	}
	byName := func(name string) string { return fields.OneTermEqualSelector("metadata.name", name).String() }
	watches := []func() (watch.Interface, error){
		func() (watch.Interface, error) {
			return d.cs.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{ResourceVersion: nodes.ResourceVersion})
		},
		func() (watch.Interface, error) {
			return d.cs.CoreV1().Pods(d.namespace).Watch(ctx, metav1.ListOptions{LabelSelector: d.selector, ResourceVersion: pods.ResourceVersion})
		},
		func() (watch.Interface, error) {
			return d.cs.PolicyV1().PodDisruptionBudgets(d.namespace).Watch(ctx, metav1.ListOptions{FieldSelector: byName(d.app), ResourceVersion: pdb.ResourceVersion})
		},
		func() (watch.Interface, error) {
			return d.cs.CoreV1().Events(metav1.NamespaceAll).Watch(ctx, metav1.ListOptions{FieldSelector: aboutNode, ResourceVersion: evs.ResourceVersion})
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
	for i := range nodes.Items {
		out <- watched{watch.Added, &nodes.Items[i]}
	}
	out <- watched{watch.Added, pdb}
	for i := range pods.Items {
		out <- watched{watch.Added, &pods.Items[i]}
	}
	return nil
}

// repairStory writes the hung task to the node's kernel log and prints what
// happens until the app runs spread over the nodes again, the replacement
// included.
func (d *demo) repairStory(ctx context.Context) error {
	events := make(chan watched, 1024)
	if err := d.watchRepair(ctx, events); err != nil {
		return err
	}

	var (
		node        *corev1.Node // d.node as last seen
		status      corev1.ConditionStatus
		cordoned    bool
		state       string
		step        string
		pods              = newAppPods()
		allowed     int32 = -1
		drained     bool  // every replica Running elsewhere after Drained
		deleted     bool
		initialised bool

		// The replacement.
		created   bool
		newReady  bool
		newConds  = map[corev1.NodeConditionType]corev1.ConditionStatus{}
		inService bool
		live      = map[string]bool{} // schedulable nodes, for the descheduler
		inFlight  string              // the pod the descheduler evicted last, until it is gone
	)

	for len(events) > 0 || !initialised {
		ev := <-events
		switch o := ev.obj.(type) {
		case *corev1.Node:
			if o.Name == d.replacement {
				return fmt.Errorf("node %s exists already: run `make demo REPAIR=1` again for a fresh cluster", d.replacement)
			}
			if !o.Spec.Unschedulable {
				live[o.Name] = true
			}
			if o.Name != d.node {
				break
			}
			node = o
			if c := condOf(o, kernelCondition); c != nil {
				status = c.Status
			}
			cordoned, state = o.Spec.Unschedulable, o.Annotations[v1alpha1.AnnotationState]
		case *policyv1.PodDisruptionBudget:
			allowed = o.Status.DisruptionsAllowed
		case *corev1.Pod:
			pods.seed(d.node, o)
		}
		initialised = node != nil && len(pods.original) > 0 && allowed >= 0
	}
	if status != corev1.ConditionFalse || cordoned || state != "" {
		return fmt.Errorf("%s is not in its initial state (%s=%s, unschedulable %v, state %q): run `make demo REPAIR=1` again for a fresh cluster",
			d.node, kernelCondition, status, cordoned, state)
	}

	fmt.Printf("\n==> The second act, timed from the write to %s's kernel log:\n\n", d.node)
	if err := appendKernelRecord(d.kernelLog, hungTask); err != nil {
		return err
	}
	d.start = time.Now()
	d.line(d.node, "kernel log <- %s", hungTask)

	for {
		var ev watched
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w while waiting (node %s: %s=%s, unschedulable %v, state %q, deleted %v; replacement %s created %v, Ready %v; %d/%d %s pods Running)",
				ctx.Err(), d.node, kernelCondition, status, cordoned, state, deleted, d.replacement, created, newReady, len(pods.running), d.replicas, d.app)
		case ev = <-events:
		}
		switch o := ev.obj.(type) {
		case *corev1.Node:
			switch o.Name {
			case d.node:
				if ev.typ == watch.Deleted {
					if deleted {
						break
					}
					deleted = true
					delete(live, d.node)
					d.line(d.node, "Node deleted by the controller; the policy's slot is free")
					fmt.Printf("\n    ... the cloud (a node group, Karpenter) replaces the machine:\n\n")
					if err := d.replace(ctx, node); err != nil {
						return err
					}
					created = true
					break
				}
				node = o
				if c := condOf(o, kernelCondition); c != nil && c.Status != status {
					status = c.Status
					d.line(d.node, "%s=%s  %s", kernelCondition, c.Status, c.Reason)
				}
				if s := o.Annotations[v1alpha1.AnnotationState]; s != state {
					switch {
					case s != "" && state == "" && o.Spec.Unschedulable:
						d.line(d.node, "cordoned by policy %s (nodewarden.io/state=%s)", o.Annotations[v1alpha1.AnnotationPolicy], s)
						cordoned = true
					case s == string(v1alpha1.StateDrained):
						d.line(d.node, "drained (nodewarden.io/state=Drained), %d %s pods left on it", len(pods.onNode), d.app)
					case s == string(v1alpha1.StateRepairing):
						step = o.Annotations[v1alpha1.AnnotationRepairStep]
						d.line(d.node, "nodewarden.io/state=Repairing, repair-step=%s", step)
					case s == "":
						d.line(d.node, "released: nodewarden.io annotations removed")
					default:
						d.line(d.node, "nodewarden.io/state=%s", s)
					}
					state = s
				}
				if r := o.Annotations[v1alpha1.AnnotationRepairResult]; r != "" && state == string(v1alpha1.StateRepairing) && step != "" {
					d.line(d.node, "repair-result=%s", r)
					step = ""
				}
				if o.Spec.Unschedulable != cordoned {
					cordoned = o.Spec.Unschedulable
					if cordoned {
						d.line(d.node, "cordoned")
					}
				}
			case d.replacement:
				if ev.typ == watch.Deleted {
					return fmt.Errorf("the replacement %s was deleted", d.replacement)
				}
				if !newReady && ready(o) {
					newReady = true
					d.line(d.replacement, "Ready (kwok plays its kubelet)")
				}
				for _, typ := range []corev1.NodeConditionType{kernelCondition, conditionType} {
					if c := condOf(o, typ); c != nil && newConds[typ] != c.Status {
						newConds[typ] = c.Status
						d.line(d.replacement, "%s=%s  %s  (its own agent)", typ, c.Status, c.Reason)
					}
				}
				if !inService && newReady && newConds[kernelCondition] == corev1.ConditionFalse && newConds[conditionType] == corev1.ConditionFalse {
					if hasNodewardenAnnotations(o) || o.Spec.Unschedulable {
						return fmt.Errorf("the replacement %s is held by nodewarden (unschedulable %v, annotations %v)", d.replacement, o.Spec.Unschedulable, o.Annotations)
					}
					inService = true
					live[d.replacement] = true
					d.line(d.replacement, "in service: schedulable, no nodewarden.io annotations (a new Node owes the policy nothing)")
					fmt.Printf("\n    ... the scheduler leaves running pods where they are; a descheduler (RemovePodsViolatingTopologySpreadConstraint)\n")
					fmt.Printf("        evicts them from the fullest nodes, within the PDB, and they start again on %s:\n\n", d.replacement)
				}
			}
		case *policyv1.PodDisruptionBudget:
			// The drain's and the descheduler's, not the wait in between.
			if a := o.Status.DisruptionsAllowed; a != allowed && (!drained || inService) {
				allowed = a
				d.line("PDB "+d.app, "%d/%d healthy, %d disruption(s) allowed", o.Status.CurrentHealthy, o.Status.ExpectedPods, a)
			}
		case *corev1.Pod:
			pods.observe(d, ev.typ, o)
		case *corev1.Event:
			if ev.typ != watch.Added {
				break // a repeat of one already printed
			}
			switch o.Reason {
			case "RepairStarted", "RepairSucceeded", "RepairFailed":
				d.line(d.node, "Event %s: %s", o.Reason, o.Message)
			}
			if o.Reason == "RepairFailed" {
				return fmt.Errorf("the repair step failed: %s", o.Message)
			}
		}

		if state == string(v1alpha1.StateDrained) && !drained && len(pods.onNode) == 0 && int32(len(pods.running)) == d.replicas {
			drained = true
			d.line(d.app, "%d/%d Running, none on %s (%s)", len(pods.running), d.replicas, d.node, spread(mapValues(pods.running)))
			fmt.Printf("\n    ... the kernel stays deadlocked, %s stays True: the policy's repair ladder goes on\n\n", kernelCondition)
		}
		if state == string(v1alpha1.StateDrainFailed) {
			return errors.New("the drain failed; see the controller's log")
		}
		// The descheduler: one eviction at a time, the next once every
		// replica runs again.
		if !inService || int32(len(pods.running)) != d.replicas {
			continue
		}
		if _, ok := pods.running[inFlight]; ok {
			continue // evicted, but the watch has not said so yet
		}
		fullest, emptiest, per := skew(pods.running, live)
		if per[fullest]-per[emptiest] <= 1 {
			if per[d.replacement] == 0 {
				return fmt.Errorf("no %s pod went to %s", d.app, d.replacement)
			}
			d.line(d.app, "%d/%d Running, spread evenly again (%s)", len(pods.running), d.replicas, spread(mapValues(pods.running)))
			fmt.Printf("\n==> The second act took %.1fs.\n", time.Since(d.start).Seconds())
			return nil
		}
		victim := ""
		for name, p := range pods.running {
			if p.Spec.NodeName == fullest && (victim == "" || name < victim) {
				victim = name
			}
		}
		if err := d.evict(ctx, victim); err != nil {
			return err
		}
		inFlight = victim
		d.line(victim, "evicted from %s by the descheduler (%s: %d pods, %s: %d)", fullest, fullest, per[fullest], emptiest, per[emptiest])
	}
}

// skew counts the running pods on each schedulable node and names the node
// with the most and the one with the fewest (the first by name on a tie).
func skew(running map[string]corev1.Pod, live map[string]bool) (fullest, emptiest string, per map[string]int) {
	per = map[string]int{}
	for n := range live {
		per[n] = 0
	}
	for _, p := range running {
		if live[p.Spec.NodeName] {
			per[p.Spec.NodeName]++
		}
	}
	names := make([]string, 0, len(per))
	for n := range per {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if fullest == "" || per[n] > per[fullest] {
			fullest = n
		}
		if emptiest == "" || per[n] < per[emptiest] {
			emptiest = n
		}
	}
	return fullest, emptiest, per
}

// evict asks the Eviction API to evict pod, as a descheduler does, waiting
// while the PodDisruptionBudget does not allow it.
func (d *demo) evict(ctx context.Context, pod string) error {
	deadline := time.Now().Add(evictRetry)
	for {
		err := d.cs.PolicyV1().Evictions(d.namespace).Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: d.namespace}})
		switch {
		case err == nil:
			return nil
		case apierrors.IsTooManyRequests(err) && time.Now().Before(deadline):
		default:
			return fmt.Errorf("evict %s: %w", pod, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// replace plays the cloud after the Node old was deleted: its machine is
// terminated (the agent stops with it), and a replacement from the same
// template (labels, capacity) registers under a new name and gets its own
// agent, as a DaemonSet would give it one.
func (d *demo) replace(ctx context.Context, old *corev1.Node) error {
	pid, err := d.agentCmd(ctx, "agent-stop", d.node)
	if err != nil {
		return err
	}
	d.line(d.node, "machine terminated: its agent (pid %s) stopped", pid)

	labels := map[string]string{}
	for k, v := range old.Labels {
		labels[k] = v
	}
	labels[corev1.LabelHostname] = d.replacement
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        d.replacement,
			Labels:      labels,
			Annotations: map[string]string{kwokNodeAnnotation: "fake"},
		},
		Status: corev1.NodeStatus{Capacity: old.Status.Capacity, Allocatable: old.Status.Allocatable},
	}
	if _, err := d.cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create the replacement node: %w", err)
	}
	d.line(d.replacement, "a new machine registers its Node (same labels and capacity as %s)", d.node)

	pid, err = d.agentCmd(ctx, "agent-start", d.replacement)
	if err != nil {
		return err
	}
	d.line(d.replacement, "its agent started (pid %s), as the DaemonSet would start one", pid)
	return nil
}

// agentCmd runs `-agents VERB NODE` and returns what it printed (a pid).
func (d *demo) agentCmd(ctx context.Context, verb, node string) (string, error) {
	cmd := exec.CommandContext(ctx, d.agents, verb, node)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s %s: %w", d.agents, verb, node, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// appendKernelRecord appends message to the kernel log at path in
// /dev/kmsg's format, "priority,sequence,microseconds since boot,flags;message",
// as the kernel would log it now.
func appendKernelRecord(path, message string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	seq := strings.Count(string(data), "\n") + 1
	var since time.Duration
	if up, err := os.ReadFile("/proc/uptime"); err == nil {
		if f := strings.Fields(string(up)); len(f) > 0 {
			if s, err := strconv.ParseFloat(f[0], 64); err == nil {
				since = time.Duration(s * float64(time.Second))
			}
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "3,%d,%d,-;%s\n", seq, since.Microseconds(), message); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func ready(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func mapValues(m map[string]corev1.Pod) []corev1.Pod {
	out := make([]corev1.Pod, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	return out
}
