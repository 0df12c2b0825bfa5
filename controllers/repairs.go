package controllers

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/remediation"
	"github.com/nodewarden/nodewarden/internal/repair"
)

// stepTimeout bounds a DeleteNode or ClusterAPI step: a few API calls, which
// client-go retries on its own; a step still running after it has hung, and
// failing it lets the ladder go on.
const stepTimeout = time.Minute

// webhookSlack is added to a webhook's own budget (every attempt timing out,
// every backoff) for the step's bound: Webhook stops itself first, and the
// bound only catches what it cannot (a body that never ends).
const webhookSlack = 30 * time.Second

// Repairs runs at most one repair step per node, each in its own goroutine,
// so that a webhook retrying for a minute never blocks decisions about other
// nodes. Like Drains it only acts and reports: how a step ended is kept as a
// remediation.RepairReport until the reconciler has recorded it on the node
// (every state change is the reconciler's, through remediation.Decide). It
// is a manager Runnable: it runs only on the leader, and when the leader
// stops, every step stops with it; the next leader starts again each step
// the nodes' annotations say is under way, so steps are safe to repeat
// (package repair). Wait steps are not its business: Decide times them.
type Repairs struct {
	clientset kubernetes.Interface
	client    client.Client
	http      *http.Client
	metrics   *Metrics
	log       logr.Logger

	// jobs are the steps, keyed by step and start time. A running step of
	// another key is superseded: Decide has moved on (the next step, or a
	// new ladder), and the old step's outcome would be nobody's.
	jobs *nodeJobs[stepKey, remediation.RepairReport]
}

// NewRepairs returns an idle repair runner. clientset deletes Nodes and
// lists their pods (DeleteNode); c patches Cluster API Machines (ClusterAPI:
// a custom resource, so a controller-runtime client, whose RESTMapper finds
// the served version); hc sends webhooks (nil: http.DefaultClient, which
// honours HTTPS_PROXY and friends).
func NewRepairs(clientset kubernetes.Interface, c client.Client, hc *http.Client, m *Metrics, log logr.Logger) *Repairs {
	r := &Repairs{
		clientset: clientset,
		client:    c,
		http:      hc,
		metrics:   m,
		log:       log.WithName("repairs"),
		jobs:      newNodeJobs(func(rep remediation.RepairReport) stepKey { return keyOf(rep.Step, rep.Started) }),
	}
	r.jobs.superseded = func(node string, old stepKey) {
		r.log.Info("repair step superseded: cancelled", "node", node, "step", old.step, "started", old.started)
	}
	r.jobs.gone = func(node string) { r.log.Info("node deleted: its repair step stops", "node", node) }
	return r
}

// Done delivers a Node each time one of its repair steps ended.
func (r *Repairs) Done() <-chan event.GenericEvent { return r.jobs.done }

// Start blocks until ctx ends, then stops every step and waits for them.
func (r *Repairs) Start(ctx context.Context) error { return r.jobs.stop(ctx) }

// stepKey identifies a step of a node: a new ladder (the node released and
// taken again) restarts the indexes, but not the start times.
type stepKey struct {
	step    int
	started time.Time
}

func keyOf(step int, started time.Time) stepKey { return stepKey{step, started.UTC()} }

// Ensure starts step o of node's repair for policy, unless that step (Step
// and Started) is running or has ended and waits to be recorded. Any other
// step of the node still running, or still reported, is superseded: Decide
// has moved on, and it is cancelled (its outcome would be nobody's). Wait
// steps, which Decide handles alone, are ignored.
func (r *Repairs) Ensure(node *corev1.Node, policy string, o remediation.RepairOrder) {
	if node == nil {
		return // deleted: nothing to repair (Retain cancels what ran)
	}
	if o.Action != v1alpha1.RepairDeleteNode && o.Action != v1alpha1.RepairClusterAPI && o.Action != v1alpha1.RepairWebhook {
		r.log.Info("not a step the repairer runs; ignored", "node", node.Name, "policy", policy, "step", o.Step, "action", o.Action)
		return
	}
	node = node.DeepCopy() // the caller's is the cache's, and the step outlives this call
	r.jobs.ensure(node.Name, keyOf(o.Step, o.Started), func(ctx context.Context) (remediation.RepairReport, bool) {
		return r.run(ctx, node, policy, o)
	})
}

// Cancel stops node's step, if any, and drops an unrecorded report: the node
// recovered or was released, and the outcome is no longer anyone's.
func (r *Repairs) Cancel(node string) { r.jobs.cancel(node) }

// Retain cancels the steps of nodes that are not in exists, and drops their
// reports: a deleted node has nothing left to repair or to record on (after
// a DeleteNode step that is the step's own success; a successor under the
// same name is a new node and owes the policy nothing).
func (r *Repairs) Retain(exists func(node string) bool) { r.jobs.retain(exists) }

// Reports returns the steps that ended and are not yet recorded.
func (r *Repairs) Reports() map[string]remediation.RepairReport { return r.jobs.unrecorded() }

// Recorded drops node's report once it is written on the node. Call it
// before ensuring the node's next step: the next step's report, should it
// end at once, must not be the one dropped.
func (r *Repairs) Recorded(node string) { r.jobs.recorded(node) }

// run carries out step o once and says how it ended; ended is false when the
// step was cancelled before it did (Cancel, Retain, a superseding step, the
// controller stopping).
func (r *Repairs) run(ctx context.Context, node *corev1.Node, policy string, o remediation.RepairOrder) (remediation.RepairReport, bool) {
	log := r.log.WithValues("node", node.Name, "policy", policy, "step", o.Step, "action", o.Action, "started", o.Started)
	log.Info("repair step started")
	limit := stepTimeout
	if o.Action == v1alpha1.RepairWebhook && o.Webhook != nil {
		limit = repair.WebhookBudget(*o.Webhook) + webhookSlack
	}
	stepCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()

	var done string
	var err error
	switch o.Action {
	case v1alpha1.RepairDeleteNode:
		err = repair.DeleteNode(stepCtx, r.clientset, node)
		done = fmt.Sprintf("node %s (uid %s) deleted", node.Name, node.UID)
	case v1alpha1.RepairClusterAPI:
		err = repair.ClusterAPI(stepCtx, r.client, node)
		if m, mErr := repair.MachineOf(node); mErr == nil {
			done = fmt.Sprintf("Machine %s marked for remediation (%s)", m, repair.RemediateMachineAnnotation)
		}
	case v1alpha1.RepairWebhook:
		if o.Webhook == nil {
			err = fmt.Errorf("step %d is a Webhook without webhook settings", o.Step)
			break
		}
		req := repair.NewRequest(node, policy, o)
		err = repair.Webhook(stepCtx, r.http, *o.Webhook, req)
		done = fmt.Sprintf("webhook accepted the RepairRequest (idempotency key %s)", req.IdempotencyKey)
	}
	// A step that did what it asked is a success even if it was cancelled
	// meanwhile: a DeleteNode's own delete makes Retain cancel it.
	if err != nil && ctx.Err() != nil {
		log.Info("repair step cancelled", "error", err.Error())
		return remediation.RepairReport{}, false
	}
	report := remediation.RepairReport{Step: o.Step, Started: o.Started, Succeeded: err == nil, Message: done}
	result := "success"
	if err != nil {
		result = "failure"
		report.Message = err.Error()
		if stepCtx.Err() != nil {
			report.Message = fmt.Sprintf("did not end within %s: %v", limit, err)
		}
	}
	r.metrics.Repairs.WithLabelValues(policy, string(o.Action), result).Inc()
	log.Info("repair step ended", "result", result, "message", report.Message)
	return report, true
}
