package controllers

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/history"
	"github.com/nodewarden/nodewarden/internal/remediation"
)

// HistoryOptions bound the RemediationRecords the controller keeps.
type HistoryOptions struct {
	// MaxRecords is how many records are kept at most (open ones count
	// but are never deleted); 0 turns history off.
	MaxRecords int
	// MaxAge is how long a closed record is kept after its episode ended;
	// 0: no age bound.
	MaxAge time.Duration
	// MaxSteps is how many steps one record keeps; 0: history.DefaultMaxSteps.
	MaxSteps int
	// SweepEvery is how often records are pruned and open records of
	// deleted nodes closed; 0: every 5 minutes.
	SweepEvery time.Duration
}

// historyQueue bounds the steps waiting to be written: beyond it a step is
// dropped (and counted) rather than ever blocking the reconciler.
const historyQueue = 1024

// History is the Observer that writes each remediation episode into a
// RemediationRecord. Observe only queues; one goroutine writes, with
// retries, so a slow or failing API server never delays a decision. It
// keeps no state of its own: a node's open record is found by its labels
// each time, so a restart or a new leader continues the same record. It is
// a manager Runnable, so it writes only on the leader.
type History struct {
	// Client writes records; Reader reads them and Nodes from the API
	// server, not a cache (records are not worth an informer's memory).
	Client client.Client
	Reader client.Reader
	Opts   HistoryOptions
	// DryRun: the controller writes no Node, so there is no episode to record.
	DryRun  bool
	Metrics *Metrics
	Clock   clock.PassiveClock
	Log     logr.Logger

	queue chan historyItem
	prune chan struct{}
}

// historyItem is one Event to record, with what Observe read from the node.
type historyItem struct {
	node    string
	ops     []history.Op
	step    v1alpha1.RecordStep
	event   remediation.Event
	trigger v1alpha1.RecordTrigger
	at      time.Time
}

// NewHistory returns a recorder; it writes once started.
func NewHistory(c client.Client, reader client.Reader, opts HistoryOptions, dryRun bool, m *Metrics, log logr.Logger) *History {
	if opts.SweepEvery <= 0 {
		opts.SweepEvery = 5 * time.Minute
	}
	if opts.MaxSteps <= 0 {
		opts.MaxSteps = history.DefaultMaxSteps
	}
	return &History{
		Client: c, Reader: reader, Opts: opts, DryRun: dryRun, Metrics: m, Clock: clock.RealClock{}, Log: log,
		queue: make(chan historyItem, historyQueue),
		prune: make(chan struct{}, 1),
	}
}

// Observe queues the step; it never blocks.
func (h *History) Observe(e remediation.Event, node *corev1.Node, policy *v1alpha1.RemediationPolicy) {
	if h.DryRun || (policy != nil && policy.Spec.DryRun) {
		return
	}
	ops := history.Ops(e, node)
	if len(ops) == 0 {
		return
	}
	now := h.Clock.Now()
	it := historyItem{node: e.Node, ops: ops, step: history.StepOf(e, now), event: e, trigger: history.TriggerOf(e, node), at: now}
	select {
	case h.queue <- it:
	default:
		h.Metrics.History.WithLabelValues("dropped").Inc()
		h.Log.Info("history queue full: step not recorded", "node", e.Node, "policy", e.Policy, "reason", e.Reason)
	}
}

// Start writes queued steps, and prunes and sweeps periodically, until ctx ends.
func (h *History) Start(ctx context.Context) error {
	tick := time.NewTicker(h.Opts.SweepEvery)
	defer tick.Stop()
	h.sweep(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case it := <-h.queue:
			for _, op := range it.ops {
				h.retry(ctx, func() error { return h.apply(ctx, it, op) }, "node", it.node, "policy", op.Policy, "reason", it.step.Reason)
			}
		case <-h.prune:
			h.retry(ctx, func() error { return h.pruneNow(ctx) }, "prune", true)
		case <-tick.C:
			h.sweep(ctx)
		}
	}
}

// retry runs f until it succeeds, at most 6 times with a doubling pause,
// at once after a conflict; then it gives up and logs (the step stays in the
// Events and the log).
func (h *History) retry(ctx context.Context, f func() error, kv ...any) {
	wait := 200 * time.Millisecond
	var err error
	for range 6 {
		if err = f(); err == nil {
			h.Metrics.History.WithLabelValues("success").Inc()
			return
		}
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait *= 2
	}
	h.Metrics.History.WithLabelValues("error").Inc()
	h.Log.Error(err, "history: giving up on a write", kv...)
}

// openRecord finds the open record of node under policy by its labels (the
// newest, should there be several).
func (h *History) openRecord(ctx context.Context, node, policy string) (*v1alpha1.RemediationRecord, error) {
	var list v1alpha1.RemediationRecordList
	if err := h.Reader.List(ctx, &list, client.MatchingLabels{
		v1alpha1.LabelRecordNode:   history.LabelValue(node),
		v1alpha1.LabelRecordPolicy: history.LabelValue(policy),
		v1alpha1.LabelRecordOpen:   "true",
	}); err != nil {
		return nil, err
	}
	var found *v1alpha1.RemediationRecord
	for i := range list.Items {
		r := &list.Items[i]
		if r.Status.Node != node || r.Status.Policy != policy || r.Status.Outcome != v1alpha1.OutcomeOpen {
			continue
		}
		if found == nil || found.Status.StartedAt.Before(&r.Status.StartedAt) {
			found = r
		}
	}
	return found, nil
}

// apply carries out one op of an item: append the step to the open record
// (creating it) or close it.
func (h *History) apply(ctx context.Context, it historyItem, op history.Op) error {
	rec, err := h.openRecord(ctx, it.node, op.Policy)
	if err != nil {
		return err
	}
	if rec == nil {
		if op.Kind == history.Close {
			return nil // nothing recorded of this episode (history was off, or the step dropped)
		}
		return h.create(ctx, it, op)
	}
	history.Add(&rec.Status, it.step, it.event, it.trigger, h.Opts.MaxSteps)
	if op.Kind == history.Close {
		history.End(&rec.Status, op.Outcome, it.at)
	}
	h.relabel(rec)
	return h.Client.Update(ctx, rec)
}

func (h *History) create(ctx context.Context, it historyItem, op history.Op) error {
	st := history.New(it.node, op.Policy, it.trigger, it.at)
	history.Add(&st, it.step, it.event, it.trigger, h.Opts.MaxSteps)
	name := history.Name(it.node, op.Policy, st.StartedAt.Time)
	for i := 0; ; i++ {
		rec := &v1alpha1.RemediationRecord{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: st}
		if i > 0 {
			// An episode of the same node and policy ended within the
			// second this one started in.
			rec.Name = fmt.Sprintf("%s-%d", name, i)
		}
		h.relabel(rec)
		err := h.Client.Create(ctx, rec)
		if err == nil {
			h.Log.V(1).Info("history: episode recorded", "record", rec.Name)
			h.requestPrune()
			return nil
		}
		if !apierrors.IsAlreadyExists(err) || i >= 5 {
			return err
		}
		var existing v1alpha1.RemediationRecord
		if err := h.Reader.Get(ctx, client.ObjectKey{Name: rec.Name}, &existing); err != nil {
			return err
		}
		if existing.Status.Outcome == v1alpha1.OutcomeOpen {
			// Written before (a write whose answer was lost): the retry
			// finds it by its labels and appends.
			return apierrors.NewAlreadyExists(v1alpha1.GroupVersion.WithResource("remediationrecords").GroupResource(), rec.Name)
		}
	}
}

// relabel sets the labels the record's status asks for, keeping others.
func (h *History) relabel(rec *v1alpha1.RemediationRecord) {
	labels := maps.Clone(rec.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, history.Labels(rec.Status))
	rec.Labels = labels
}

func (h *History) requestPrune() {
	select {
	case h.prune <- struct{}{}:
	default:
	}
}

// listRecords lists every record, page by page.
func (h *History) listRecords(ctx context.Context, opts ...client.ListOption) ([]v1alpha1.RemediationRecord, error) {
	var all []v1alpha1.RemediationRecord
	cont := ""
	for {
		var page v1alpha1.RemediationRecordList
		if err := h.Reader.List(ctx, &page, append(opts, client.Limit(500), client.Continue(cont))...); err != nil {
			return nil, err
		}
		for _, r := range page.Items {
			r.Status.Steps = nil // pruning and sweeping never read them
			all = append(all, r)
		}
		if cont = page.Continue; cont == "" {
			return all, nil
		}
	}
}

// pruneNow deletes the closed records beyond the bounds, oldest first.
func (h *History) pruneNow(ctx context.Context) error {
	records, err := h.listRecords(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range history.Prune(records, h.Clock.Now(), h.Opts.MaxRecords, h.Opts.MaxAge) {
		rec := &v1alpha1.RemediationRecord{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if err := h.Client.Delete(ctx, rec); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sweep closes the open records of deleted nodes (no Event says a node is
// gone; a DeleteNode repair step ends that way), then prunes.
func (h *History) sweep(ctx context.Context) {
	h.retry(ctx, func() error {
		open, err := h.listRecords(ctx, client.MatchingLabels{v1alpha1.LabelRecordOpen: "true"})
		if err != nil {
			return err
		}
		for _, r := range open {
			err := h.Reader.Get(ctx, client.ObjectKey{Name: r.Status.Node}, &metav1.PartialObjectMetadata{
				TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
			})
			if !apierrors.IsNotFound(err) {
				continue
			}
			now := h.Clock.Now()
			gone := remediation.Event{Node: r.Status.Node, Policy: r.Status.Policy, Type: corev1.EventTypeNormal,
				Reason: string(v1alpha1.OutcomeNodeDeleted), Message: "the Node was deleted"}
			it := historyItem{node: r.Status.Node, step: history.StepOf(gone, now), event: gone, at: now}
			op := history.Op{Kind: history.Close, Policy: r.Status.Policy, Outcome: v1alpha1.OutcomeNodeDeleted}
			if err := h.apply(ctx, it, op); err != nil {
				return err
			}
			h.Log.Info("history: node deleted, its episode closed", "node", r.Status.Node, "policy", r.Status.Policy)
		}
		return h.pruneNow(ctx)
	}, "sweep", true)
}
