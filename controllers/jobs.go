package controllers

import (
	"context"
	"maps"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

// nodeJobs is what Drains and Repairs share: at most one job per node, each
// in its own goroutine so that a slow one never blocks decisions about other
// nodes, and how each ended kept as a report R until the reconciler has
// recorded it on the node. K identifies a job of a node (a drain attempt, a
// repair step), so that ensuring the same job on every pass starts it once.
// What a job does, which job may replace a running one, metrics and logging
// are the users'.
//
// Every job runs under a context that stop cancels: Drains and Repairs are
// manager Runnables, so their jobs run only on the leader and stop with it.
type nodeJobs[K comparable, R any] struct {
	// keyOf is the job a report is of.
	keyOf func(R) K
	// superseded, when set, lets ensure replace a running job of another
	// key, and is told of each job so cancelled; when nil, a running job
	// stays until it ends or is cancelled, and ensure starts nothing beside
	// it.
	superseded func(node string, old K)
	// gone is told of each running job retain cancels.
	gone func(node string)

	ctx       context.Context
	cancelAll context.CancelFunc
	wg        sync.WaitGroup

	mu sync.Mutex
	// running is each node's job in progress. An entry is removed by cancel
	// or a superseding ensure at once, and by the job itself when it ends
	// only if it is still its own: a cancelled job that winds down after a
	// new one started must not forget the new one (the next pass would start
	// a third beside it).
	running map[string]*job[K]
	// reports are the jobs that ended and are not yet recorded.
	reports map[string]R

	// done delivers a Node each time one of its jobs ended with a report:
	// it wakes the reconciler, which records it.
	done chan event.GenericEvent
}

// job is one job in progress; its address tells it from a later job on the
// same node, even one of the same key.
type job[K comparable] struct {
	cancel context.CancelFunc
	key    K
}

func newNodeJobs[K comparable, R any](keyOf func(R) K) *nodeJobs[K, R] {
	// gosec's G118 cannot follow a field of a generic type from this
	// function to stop, which calls it.
	ctx, cancel := context.WithCancel(context.Background()) //nolint:gosec // G118: stop calls it
	return &nodeJobs[K, R]{
		keyOf:     keyOf,
		gone:      func(string) {},
		ctx:       ctx,
		cancelAll: cancel,
		running:   map[string]*job[K]{},
		reports:   map[string]R{},
		done:      make(chan event.GenericEvent, 64),
	}
}

// stop blocks until ctx ends, then cancels every job and waits for them: the
// body of a manager Runnable's Start.
func (j *nodeJobs[K, R]) stop(ctx context.Context) error {
	<-ctx.Done()
	j.cancelAll()
	j.wg.Wait()
	return nil
}

// ensure starts run as node's job key, unless that job is running or has
// ended and its report waits to be recorded, or everything stopped. A
// running job of another key is superseded (cancelled) or kept, as
// superseded says; a waiting report of another key is an older job's, and
// dropped. run says how the job ended; ended is false when it was cancelled
// before it did, and then there is nothing to report.
func (j *nodeJobs[K, R]) ensure(node string, key K, run func(ctx context.Context) (report R, ended bool)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.ctx.Err() != nil {
		return
	}
	if r, ok := j.running[node]; ok {
		if r.key == key || j.superseded == nil {
			return
		}
		j.superseded(node, r.key)
		r.cancel()
		delete(j.running, node)
	}
	if rep, ok := j.reports[node]; ok {
		if j.keyOf(rep) == key {
			return
		}
		delete(j.reports, node)
	}
	ctx, cancel := context.WithCancel(j.ctx)
	r := &job[K]{cancel: cancel, key: key}
	j.running[node] = r
	j.wg.Add(1)
	go func() {
		defer j.wg.Done()
		report, ended := run(ctx)
		j.finish(node, r, report, ended)
	}()
}

func (j *nodeJobs[K, R]) finish(node string, r *job[K], report R, ended bool) {
	j.mu.Lock()
	own := j.running[node] == r
	if own {
		delete(j.running, node)
		if ended {
			j.reports[node] = report
		}
	}
	j.mu.Unlock()
	if !own || !ended {
		return
	}
	select {
	case j.done <- event.GenericEvent{Object: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}}:
	case <-j.ctx.Done():
	}
}

// cancel stops node's job, if any, and drops its unrecorded report.
func (j *nodeJobs[K, R]) cancel(node string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.cancelLocked(node)
}

func (j *nodeJobs[K, R]) cancelLocked(node string) {
	if r, ok := j.running[node]; ok {
		r.cancel()
		delete(j.running, node)
	}
	delete(j.reports, node)
}

// retain cancels the jobs, and drops the reports, of nodes not in exists.
func (j *nodeJobs[K, R]) retain(exists func(node string) bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for node := range j.running {
		if !exists(node) {
			j.gone(node)
			j.cancelLocked(node)
		}
	}
	for node := range j.reports {
		if !exists(node) {
			delete(j.reports, node)
		}
	}
}

// unrecorded returns a copy of the reports not yet recorded.
func (j *nodeJobs[K, R]) unrecorded() map[string]R {
	j.mu.Lock()
	defer j.mu.Unlock()
	return maps.Clone(j.reports)
}

// recorded drops node's report once it is written on the node.
func (j *nodeJobs[K, R]) recorded(node string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.reports, node)
}
