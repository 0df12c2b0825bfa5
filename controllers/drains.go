package controllers

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/drain"
	"github.com/nodewarden/nodewarden/internal/remediation"
)

// Drains runs at most one drain per node, each in its own goroutine, so that
// a drain waiting on a PodDisruptionBudget never blocks decisions about other
// nodes. It is a manager Runnable: it runs only on the leader, and when the
// leader stops, every drain stops with it; the next leader resumes them from
// the nodes' Draining state.
type Drains struct {
	drainer  *drain.Drainer
	recorder events.EventRecorder
	metrics  *Metrics
	clock    clock.PassiveClock
	log      logr.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex
	// running is each node's drain in progress. An entry is removed by
	// Cancel at once, and by the drain itself when it ends only if it is
	// still its own: a cancelled drain that winds down after a new one
	// started must not forget the new one.
	running map[string]*drainRun
	// finished holds the deadline of each node's last completed drain. A
	// Draining episode is identified by its deadline (state-since +
	// timeout), so a cache that still shows the node Draining after the
	// drain wrote Drained does not start the same drain again.
	finished map[string]time.Time

	done chan event.GenericEvent
}

// NewDrains returns an idle drain runner.
func NewDrains(client kubernetes.Interface, recorder events.EventRecorder, m *Metrics, log logr.Logger) *Drains {
	ctx, cancel := context.WithCancel(context.Background())
	return &Drains{
		drainer: &drain.Drainer{Client: client, Log: log.WithName("drain"),
			// Counted as they happen: a drain behind a PDB can retry for its whole timeout.
			OnRetry: func(*corev1.Pod, error) { m.EvictionRetry.Inc() },
		},
		recorder: recorder,
		metrics:  m,
		clock:    clock.RealClock{},
		log:      log.WithName("drains"),
		ctx:      ctx,
		cancel:   cancel,
		running:  map[string]*drainRun{},
		finished: map[string]time.Time{},
		done:     make(chan event.GenericEvent, 64),
	}
}

// Done delivers a Node each time one of its drains ended.
func (d *Drains) Done() <-chan event.GenericEvent { return d.done }

// Start blocks until ctx ends, then stops every drain and waits for them.
func (d *Drains) Start(ctx context.Context) error {
	<-ctx.Done()
	d.cancel()
	d.wg.Wait()
	return nil
}

// Ensure starts a drain of node for rp unless one is running.
func (d *Drains) Ensure(node string, rp *v1alpha1.RemediationPolicy, deadline time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.running[node]; ok || d.ctx.Err() != nil {
		return
	}
	if last, ok := d.finished[node]; ok && last.Equal(deadline) {
		return
	}
	ctx, cancel := context.WithCancel(d.ctx)
	r := &drainRun{cancel: cancel}
	d.running[node] = r
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		finished := d.run(ctx, node, rp.DeepCopy(), deadline)
		d.forget(node, r, finished, deadline)
	}()
}

// Cancel stops node's drain, if any.
func (d *Drains) Cancel(node string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := d.running[node]; ok {
		r.cancel()
		delete(d.running, node)
	}
}

// drainRun is one drain in progress; its address tells it from a later drain of
// the same node.
type drainRun struct{ cancel context.CancelFunc }

func (d *Drains) forget(node string, r *drainRun, finished bool, deadline time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.running[node] == r {
		delete(d.running, node)
	}
	if finished {
		d.finished[node] = deadline
	}
}

// run drains node and records the outcome; it reports whether the drain
// came to an end (rather than being cancelled or failing to record).
func (d *Drains) run(ctx context.Context, node string, rp *v1alpha1.RemediationPolicy, deadline time.Time) bool {
	start := d.clock.Now()
	log := d.log.WithValues("node", node, "policy", rp.Name, "deadline", deadline)
	log.Info("drain started")
	res, drainErr := d.drainer.Drain(ctx, node, drain.OptionsFrom(rp.Spec.Drain), deadline)
	if ctx.Err() != nil {
		log.Info("drain cancelled")
		return false
	}
	// Finish writes Drained or DrainFailed only if the node is still
	// Draining: the condition may have cleared or a human may have
	// uncordoned it meanwhile, and then the outcome is no longer ours.
	n, err := d.drainer.Finish(ctx, node, drainErr)
	if err != nil {
		log.Error(err, "recording the drain's outcome failed; the next pass drains again")
		return false
	}
	if n == nil {
		return true // no longer Draining: released or uncordoned meanwhile
	}
	state, _ := drain.Outcome(drainErr)
	reason, kind, msg := remediation.ReasonDrainSucceeded, corev1.EventTypeNormal,
		fmt.Sprintf("drained for policy %s: %d pods evicted", rp.Name, res.Evicted)
	if drainErr != nil {
		reason, kind, msg = remediation.ReasonDrainFailed, corev1.EventTypeWarning,
			fmt.Sprintf("drain for policy %s failed, the node stays cordoned: %v", rp.Name, drainErr)
	}
	d.metrics.DrainDuration.WithLabelValues(string(state)).Observe(d.clock.Since(start).Seconds())
	d.metrics.Actions.WithLabelValues(string(state), "success").Inc()
	log.Info("drain finished", "state", state, "evicted", res.Evicted, "retries", res.Retries)
	d.recorder.Eventf(n, rp, kind, reason, reason, "%s", msg)
	select {
	case d.done <- event.GenericEvent{Object: n}:
	case <-ctx.Done():
	}
	return true
}
