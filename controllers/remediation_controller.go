// Package controllers holds nodewarden's reconciler: a thin controller-runtime
// wrapper around remediation.Decide, which holds every rule.
package controllers

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/remediation"
)

// everything is the one request the reconciler handles: budgets and the
// circuit breaker are about all nodes of a policy at once, so every change
// leads to one decision over the whole cluster (the work queue folds bursts
// of changes into one pass).
var everything = reconcile.Request{NamespacedName: types.NamespacedName{Name: "all-nodes"}}

// RemediationReconciler carries out remediation.Decide's plan.
type RemediationReconciler struct {
	// Client reads Nodes and policies from the cache and writes through the API.
	Client   client.Client
	Drains   *Drains
	Repairs  *Repairs
	Recorder events.EventRecorder
	Metrics  *Metrics
	// DryRun: log and emit Events, write nothing to Nodes (policy status is still written).
	DryRun bool
	Clock  clock.PassiveClock
	Log    logr.Logger
	// Observers see every step the controller carried out, after its Event
	// (notifications, history). They must not block: a slow receiver must
	// never delay a drain.
	Observers []Observer

	// writes are this reconciler's Node writes the cache has not shown yet;
	// decisions see them, so a lagging cache never frees a slot twice.
	writes remediation.Writes
	// recentRepairs are the status.recentRepairs this reconciler wrote, by
	// policy: overlaid on a cache that may not show them yet.
	recentRepairs map[string][]v1alpha1.RepairRecord
}

// SetupWithManager watches Nodes and policies, and drain completions.
func (r *RemediationReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.Add(r.Drains); err != nil {
		return err
	}
	if err := mgr.Add(r.Repairs); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("remediation").
		WatchesRawSource(source.Kind(mgr.GetCache(), &corev1.Node{}, enqueueEverything[*corev1.Node](),
			predicate.TypedFuncs[*corev1.Node]{UpdateFunc: func(e event.TypedUpdateEvent[*corev1.Node]) bool {
				return nodeChanged(e.ObjectOld, e.ObjectNew)
			}})).
		Watches(&v1alpha1.RemediationPolicy{}, enqueueEverything[client.Object]()).
		WatchesRawSource(source.Channel(r.Drains.Done(), enqueueEverything[client.Object]())).
		WatchesRawSource(source.Channel(r.Repairs.Done(), enqueueEverything[client.Object]())).
		WithOptions(controller.Options{MaxConcurrentReconciles: 1}).
		Complete(r)
}

// enqueueEverything maps any change to the one request.
func enqueueEverything[T client.Object]() handler.TypedEventHandler[T, reconcile.Request] {
	return handler.TypedEnqueueRequestsFromMapFunc(func(context.Context, T) []reconcile.Request {
		return []reconcile.Request{everything}
	})
}

// Reconcile decides over all policies and nodes and carries the plan out.
func (r *RemediationReconciler) Reconcile(ctx context.Context, _ reconcile.Request) (ctrl.Result, error) {
	var policies v1alpha1.RemediationPolicyList
	if err := r.Client.List(ctx, &policies); err != nil {
		return ctrl.Result{}, err
	}
	var cached corev1.NodeList
	if err := r.Client.List(ctx, &cached); err != nil {
		return ctrl.Result{}, err
	}
	nodes := r.writes.View(cached.Items)
	now := r.Clock.Now()
	plan := remediation.Decide(now, remediation.WithRecentRepairs(policies.Items, r.recentRepairs), nodes,
		remediation.Reports{Drains: r.Drains.Reports(), Repairs: r.Repairs.Reports()})

	nodeByName := map[string]*corev1.Node{}
	for i := range nodes {
		nodeByName[nodes[i].Name] = &nodes[i]
	}
	exists := func(node string) bool { return nodeByName[node] != nil }
	r.Drains.Retain(exists)
	r.Repairs.Retain(exists)
	policyByName := map[string]*v1alpha1.RemediationPolicy{}
	for i := range policies.Items {
		policyByName[policies.Items[i].Name] = &policies.Items[i]
	}

	result := ctrl.Result{RequeueAfter: plan.RequeueAfter}
	done := map[string]bool{} // nodes whose decision was carried out: their events may be emitted
	var repairs []remediation.NodeDecision
	for _, d := range plan.Nodes {
		err := r.carryOut(ctx, d, nodeByName[d.Node], policyByName[d.Policy])
		switch {
		case err == nil:
			done[d.Node] = true
			if d.Repair != nil && !d.DryRun && !r.DryRun {
				repairs = append(repairs, d)
			}
		case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
			// The Node changed since the cache showed it; decide again on the new one.
			result.RequeueAfter = time.Second
		default:
			return ctrl.Result{}, fmt.Errorf("node %s: %s: %w", d.Node, d.Action, err)
		}
	}
	r.emit(plan.Events, done, nodeByName, policyByName)
	if err := r.writeStatuses(ctx, plan.Policies, policyByName, now); err != nil {
		return ctrl.Result{}, err
	}
	// Only now: maxRepairsPerHour counts from the status, and a step whose
	// node is deleted leaves no other trace.
	for _, d := range repairs {
		r.Repairs.Ensure(nodeByName[d.Node], d.Policy, *d.Repair)
	}
	r.observe(plan)
	return result, nil
}

// carryOut stops the node's drain if the decision says so, sends its patch,
// and makes sure the drain it wants is running.
func (r *RemediationReconciler) carryOut(ctx context.Context, d remediation.NodeDecision, node *corev1.Node, rp *v1alpha1.RemediationPolicy) error {
	if d.CancelDrain {
		// Never leave a drain evicting pods from a node we gave back, or
		// under settings that no longer apply; nor a repair step.
		r.Drains.Cancel(d.Node)
		r.Repairs.Cancel(d.Node)
	}
	if d.DryRun || r.DryRun {
		if !d.Patch.IsEmpty() {
			r.Log.Info("dry run: not writing", "node", d.Node, "policy", d.Policy, "action", d.Action, "why", d.Why)
			r.Metrics.Actions.WithLabelValues(actionLabel(d), "dry_run").Inc()
		}
		return nil
	}
	if !d.Patch.IsEmpty() {
		written, err := r.patchNode(ctx, node, d.Patch)
		r.Metrics.Actions.WithLabelValues(actionLabel(d), resultOf(err)).Inc()
		if err != nil {
			return err
		}
		r.writes.Record(d.Patch.ResourceVersion, written)
		if d.Action == remediation.ActionRecord {
			if _, repair := d.Patch.SetAnnotations[v1alpha1.AnnotationRepairResult]; repair {
				r.Repairs.Recorded(d.Node)
			} else {
				r.Drains.Recorded(d.Node)
			}
		}
		r.Log.Info("node updated", "node", d.Node, "policy", d.Policy, "action", d.Action, "why", d.Why)
	}
	if d.Drain != nil && rp != nil {
		// After a restart or a leader change the drain is resumed here,
		// with the deadline it had from the start.
		r.Drains.Ensure(d.Node, rp, *d.Drain)
	}
	return nil
}

// actionLabel names an action for the metrics; a recorded drain outcome by
// the state it led to (Drained, DrainFailed), which the alerts watch.
func actionLabel(d remediation.NodeDecision) string {
	if s, ok := d.Patch.SetAnnotations[v1alpha1.AnnotationState]; ok && d.Action == remediation.ActionRecord {
		return s
	}
	return string(d.Action)
}

// patchNode sends p and returns the Node as the API server wrote it.
func (r *RemediationReconciler) patchNode(ctx context.Context, node *corev1.Node, p remediation.NodePatch) (*corev1.Node, error) {
	body, err := p.MergePatch()
	if err != nil {
		return nil, err
	}
	written := node.DeepCopy()
	if err := r.Client.Patch(ctx, written, client.RawPatch(types.MergePatchType, body)); err != nil {
		return nil, err
	}
	return written, nil
}

// emit sends the plan's Events; a node's only once its decision was carried out.
func (r *RemediationReconciler) emit(evs []remediation.Event, done map[string]bool, nodes map[string]*corev1.Node, policies map[string]*v1alpha1.RemediationPolicy) {
	for _, e := range evs {
		var regarding, related client.Object
		if p := policies[e.Policy]; p != nil {
			related = p
		}
		if e.Node != "" {
			if !done[e.Node] || nodes[e.Node] == nil {
				continue
			}
			regarding = nodes[e.Node]
		} else {
			regarding, related = related, nil
		}
		if regarding == nil {
			continue
		}
		r.Recorder.Eventf(regarding, related, e.Type, e.Reason, e.Reason, "%s", e.Message)
		// One structured line per step, for log shippers: Events expire
		// after an hour.
		r.Log.Info("step", "node", e.Node, "policy", e.Policy, "reason", e.Reason, "type", e.Type, "message", e.Message)
		node := nodes[e.Node]
		for _, o := range r.Observers {
			o.Observe(e, node, policies[e.Policy])
		}
	}
}

// Observer is told of each step the controller carried out: the plan's
// Event, the node as the controller saw it when deciding (nil for a
// policy's own Events) and the policy (nil if it is gone).
type Observer interface {
	Observe(e remediation.Event, node *corev1.Node, policy *v1alpha1.RemediationPolicy)
}

func (r *RemediationReconciler) writeStatuses(ctx context.Context, statuses []remediation.PolicyStatus, policies map[string]*v1alpha1.RemediationPolicy, now time.Time) error {
	for _, s := range statuses {
		rp := policies[s.Name]
		if rp == nil {
			continue
		}
		want := remediation.Status(rp, s, now)
		if equality.Semantic.DeepEqual(rp.Status, want) {
			continue
		}
		updated := rp.DeepCopy()
		updated.Status = want
		if err := r.Client.Status().Patch(ctx, updated, client.MergeFrom(rp)); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("policy %s status: %w", rp.Name, err)
		}
		if len(s.RecentRepairs) > 0 {
			if r.recentRepairs == nil {
				r.recentRepairs = map[string][]v1alpha1.RepairRecord{}
			}
			r.recentRepairs[s.Name] = s.RecentRepairs
		}
	}
	return nil
}

// observe sets the gauges from the plan.
func (r *RemediationReconciler) observe(plan remediation.Plan) {
	r.Metrics.Nodes.Reset()
	for _, d := range plan.Nodes {
		if d.State != "" && d.Policy != "" {
			r.Metrics.Nodes.WithLabelValues(d.Policy, string(d.State)).Inc()
		}
	}
	r.Metrics.CircuitOpen.Reset()
	r.Metrics.TriggeredNodes.Reset()
	r.Metrics.StuckNodes.Reset()
	for _, p := range plan.Policies {
		open := 0.0
		if p.CircuitOpen {
			open = 1
		}
		r.Metrics.CircuitOpen.WithLabelValues(p.Name).Set(open)
		r.Metrics.TriggeredNodes.WithLabelValues(p.Name).Set(float64(p.Triggered))
		r.Metrics.StuckNodes.WithLabelValues(p.Name).Set(float64(len(p.Stuck)))
	}
}

func resultOf(err error) string {
	if err == nil {
		return "success"
	}
	if apierrors.IsConflict(err) {
		return "conflict"
	}
	return "error"
}

// nodeChanged reports a change that can alter a decision. kubelet (and kwok)
// rewrite every Node's heartbeats every few seconds, and controllers rewrite
// their own annotations on every node at once (kube-controller-manager's TTL
// annotation); those do not wake the reconciler, which matters with thousands
// of nodes (docs/performance.md).
func nodeChanged(old, cur *corev1.Node) bool {
	if old.Spec.Unschedulable != cur.Spec.Unschedulable ||
		!equality.Semantic.DeepEqual(old.Spec.Taints, cur.Spec.Taints) ||
		!equality.Semantic.DeepEqual(old.Labels, cur.Labels) ||
		!maps.Equal(nodewardenAnnotations(old), nodewardenAnnotations(cur)) ||
		len(old.Status.Conditions) != len(cur.Status.Conditions) {
		return true
	}
	for i, c := range cur.Status.Conditions {
		o := old.Status.Conditions[i]
		if o.Type != c.Type || o.Status != c.Status || o.Reason != c.Reason || o.Message != c.Message || !o.LastTransitionTime.Equal(&c.LastTransitionTime) {
			return true
		}
	}
	return false
}

// nodewardenAnnotations are the annotations decisions read: nodewarden's
// state (which also records the policy annotations it added) and the drain
// hooks other controllers add and remove.
func nodewardenAnnotations(n *corev1.Node) map[string]string {
	out := map[string]string{}
	for k, v := range n.Annotations {
		if strings.HasPrefix(k, v1alpha1.AnnotationPrefix) ||
			strings.HasPrefix(k, v1alpha1.PreDrainHookPrefix) || strings.HasPrefix(k, v1alpha1.PostDrainHookPrefix) {
			out[k] = v
		}
	}
	return out
}
