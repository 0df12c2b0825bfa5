package controllers

import (
	"context"
	"errors"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/drain"
	"github.com/nodewarden/nodewarden/internal/remediation"
)

// Drains runs at most one drain per node, each in its own goroutine, so that
// a drain waiting on a PodDisruptionBudget never blocks decisions about other
// nodes. It only evicts and reports: how an attempt ended is kept as a
// remediation.DrainReport until the reconciler has recorded it on the node
// (every state change is the reconciler's). It is a manager Runnable: it
// runs only on the leader, and when the leader stops, every drain stops with
// it; the next leader resumes them from the nodes' Draining state.
type Drains struct {
	drainer *drain.Drainer
	metrics *Metrics
	clock   clock.PassiveClock
	log     logr.Logger

	// jobs are the attempts, keyed by attempt number. A running attempt is
	// kept whatever attempt is ordered (no superseded hook): Decide orders
	// the next one only after this one's report is recorded (retries and
	// escalations start from DrainFailed), and otherwise Cancel ends it.
	jobs *nodeJobs[int, remediation.DrainReport]
}

// NewDrains returns an idle drain runner.
func NewDrains(client kubernetes.Interface, m *Metrics, log logr.Logger) *Drains {
	d := &Drains{
		drainer: &drain.Drainer{Client: client, Log: log.WithName("drain"),
			// Counted as they happen: a drain behind a PDB can retry for its whole timeout.
			OnRetry: func(*corev1.Pod, error) { m.EvictionRetry.Inc() },
		},
		metrics: m,
		clock:   clock.RealClock{},
		log:     log.WithName("drains"),
		jobs:    newNodeJobs(func(r remediation.DrainReport) int { return r.Attempt }),
	}
	d.jobs.gone = func(node string) { d.log.Info("node deleted: its drain stops", "node", node) }
	return d
}

// Done delivers a Node each time one of its drain attempts ended.
func (d *Drains) Done() <-chan event.GenericEvent { return d.jobs.done }

// Start blocks until ctx ends, then stops every drain and waits for them.
func (d *Drains) Start(ctx context.Context) error { return d.jobs.stop(ctx) }

// Ensure starts the attempt o of node's drain for rp, unless an attempt is
// running or this one already ended and waits to be recorded.
func (d *Drains) Ensure(node string, rp *v1alpha1.RemediationPolicy, o remediation.DrainOrder) {
	d.jobs.ensure(node, o.Attempt, func(ctx context.Context) (remediation.DrainReport, bool) {
		return d.run(ctx, node, rp.DeepCopy(), o)
	})
}

// Cancel stops node's drain, if any, and drops an unrecorded report: the
// node was released or handed over, and the outcome is no longer anyone's.
func (d *Drains) Cancel(node string) { d.jobs.cancel(node) }

// Retain cancels the drains of nodes that are not in exists: a node deleted
// mid-drain has nothing left to evict.
func (d *Drains) Retain(exists func(node string) bool) { d.jobs.retain(exists) }

// Reports returns the attempts that ended and are not yet recorded.
func (d *Drains) Reports() map[string]remediation.DrainReport { return d.jobs.unrecorded() }

// Recorded drops node's report once it is written on the node. No later
// attempt can have reported meanwhile: none starts while a report waits.
func (d *Drains) Recorded(node string) { d.jobs.recorded(node) }

// run drains node once and says how it ended; ended is false when the
// attempt was cancelled (released, or the controller stops).
func (d *Drains) run(ctx context.Context, node string, rp *v1alpha1.RemediationPolicy, o remediation.DrainOrder) (remediation.DrainReport, bool) {
	start := d.clock.Now()
	log := d.log.WithValues("node", node, "policy", rp.Name, "attempt", o.Attempt, "deadline", o.Deadline, "force", o.Force)
	log.Info("drain started")
	opts := drain.OptionsFrom(rp.Spec.Drain)
	opts.Force = o.Force
	res, err := d.drainer.Drain(ctx, node, opts, o.Deadline)
	if ctx.Err() != nil {
		log.Info("drain cancelled")
		return remediation.DrainReport{}, false
	}
	report := remediation.DrainReport{Attempt: o.Attempt, Succeeded: err == nil, Evicted: res.Evicted + res.Deleted, Terminating: res.Terminating}
	result := string(v1alpha1.StateDrained)
	if err != nil {
		result = string(v1alpha1.StateDrainFailed)
		report.BlockedBy = res.BlockedBy
		if report.BlockedBy == "" || !errors.Is(err, drain.ErrTimeout) && !errors.Is(err, drain.ErrBlocked) {
			report.BlockedBy = err.Error()
		}
	}
	d.metrics.DrainDuration.WithLabelValues(result).Observe(d.clock.Since(start).Seconds())
	log.Info("drain ended", "result", result, "evicted", res.Evicted, "retries", res.Retries, "blockedBy", report.BlockedBy)
	return report, true
}
