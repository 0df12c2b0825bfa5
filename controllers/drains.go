package controllers

import (
	"context"
	"errors"
	"maps"
	"sync"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex
	// running is each node's drain attempt in progress. An entry is removed
	// by Cancel at once, and by the attempt itself when it ends only if it
	// is still its own: a cancelled attempt that winds down after a new one
	// started must not forget the new one.
	running map[string]*drainRun
	// reports are the attempts that ended and are not yet recorded.
	reports map[string]remediation.DrainReport

	done chan event.GenericEvent
}

// NewDrains returns an idle drain runner.
func NewDrains(client kubernetes.Interface, m *Metrics, log logr.Logger) *Drains {
	ctx, cancel := context.WithCancel(context.Background())
	return &Drains{
		drainer: &drain.Drainer{Client: client, Log: log.WithName("drain"),
			// Counted as they happen: a drain behind a PDB can retry for its whole timeout.
			OnRetry: func(*corev1.Pod, error) { m.EvictionRetry.Inc() },
		},
		metrics: m,
		clock:   clock.RealClock{},
		log:     log.WithName("drains"),
		ctx:     ctx,
		cancel:  cancel,
		running: map[string]*drainRun{},
		reports: map[string]remediation.DrainReport{},
		done:    make(chan event.GenericEvent, 64),
	}
}

// Done delivers a Node each time one of its drain attempts ended.
func (d *Drains) Done() <-chan event.GenericEvent { return d.done }

// Start blocks until ctx ends, then stops every drain and waits for them.
func (d *Drains) Start(ctx context.Context) error {
	<-ctx.Done()
	d.cancel()
	d.wg.Wait()
	return nil
}

// Ensure starts the attempt o of node's drain for rp, unless an attempt is
// running or this one already ended and waits to be recorded.
func (d *Drains) Ensure(node string, rp *v1alpha1.RemediationPolicy, o remediation.DrainOrder) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.running[node]; ok || d.ctx.Err() != nil {
		return
	}
	if r, ok := d.reports[node]; ok && r.Attempt == o.Attempt {
		return
	}
	delete(d.reports, node) // an older attempt's, superseded
	ctx, cancel := context.WithCancel(d.ctx)
	run := &drainRun{cancel: cancel, attempt: o.Attempt}
	d.running[node] = run
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		report, ended := d.run(ctx, node, rp.DeepCopy(), o)
		d.finish(node, run, report, ended)
	}()
}

// Cancel stops node's drain, if any, and drops an unrecorded report: the
// node was released or handed over, and the outcome is no longer anyone's.
func (d *Drains) Cancel(node string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cancelLocked(node)
}

func (d *Drains) cancelLocked(node string) {
	if r, ok := d.running[node]; ok {
		r.cancel()
		delete(d.running, node)
	}
	delete(d.reports, node)
}

// Retain cancels the drains of nodes that are not in exists: a node deleted
// mid-drain has nothing left to evict.
func (d *Drains) Retain(exists func(node string) bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for node := range d.running {
		if !exists(node) {
			d.log.Info("node deleted: its drain stops", "node", node)
			d.cancelLocked(node)
		}
	}
	for node := range d.reports {
		if !exists(node) {
			delete(d.reports, node)
		}
	}
}

// Reports returns the attempts that ended and are not yet recorded.
func (d *Drains) Reports() map[string]remediation.DrainReport {
	d.mu.Lock()
	defer d.mu.Unlock()
	return maps.Clone(d.reports)
}

// Recorded drops node's report once it is written on the node. No later
// attempt can have reported meanwhile: none starts while a report waits.
func (d *Drains) Recorded(node string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.reports, node)
}

// drainRun is one attempt in progress; its address tells it from a later
// attempt on the same node.
type drainRun struct {
	cancel  context.CancelFunc
	attempt int
}

func (d *Drains) finish(node string, r *drainRun, report remediation.DrainReport, ended bool) {
	d.mu.Lock()
	own := d.running[node] == r
	if own {
		delete(d.running, node)
		if ended {
			d.reports[node] = report
		}
	}
	d.mu.Unlock()
	if !own || !ended {
		return
	}
	select {
	case d.done <- event.GenericEvent{Object: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}}:
	case <-d.ctx.Done():
	}
}

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
