// Package drain empties one cordoned node through the Eviction API, so that
// PodDisruptionBudgets are honoured. It only evicts and reports: what the
// node's state becomes is the caller's decision.
//
// Drain looks at the node's pods, judges each (see Judge), evicts what may be
// evicted with bounded parallelism, waits, and looks again, until nothing is
// left to evict or wait for, a pod blocks the drain, or the deadline passes.
// Because every round starts from the pods the API server lists now, Drain is
// idempotent: called again on a half-drained node (after a controller restart)
// it evicts only what is left and only waits for pods already terminating.
//
// What "blocked" means: a pod that the options forbid evicting (a protected
// annotation, one of DisruptionAnnotations unless
// drain.honorDisruptionAnnotations is false, an emptyDir volume without evictEmptyDirPods, no controller
// without evictUnreplicatedPods) fails the drain at once with ErrBlocked,
// before anything is evicted, like `kubectl drain` without --force. Leaving
// such a pod silently would report Drained for a node that still runs it;
// evicting the others first would disrupt workloads for a drain that cannot
// finish. A pod that more than one PodDisruptionBudget selects fails the
// drain too, as soon as the Eviction API refuses it: no retry can evict it.
// Skipped pods (mirror, DaemonSet, finished) stay on the node and do not
// fail the drain.
//
// Grace periods fit the deadline: a pod whose grace period would run past it
// is given the whole seconds left instead, but at least MinGracePeriod, as
// aws-node-termination-handler does for a spot notice. A pod killed at the
// deadline by the platform gets no grace at all; a short one is better.
//
// Options.Force is the only path that deletes pods directly (the Pods API,
// not the Eviction API), and so the only one that disrupts more than a
// PodDisruptionBudget allows. It exists for the controller's opt-in
// drain.forceAfter escalation: a budget that never allows a disruption, or a
// pod that several budgets select, would otherwise hold a node that must go
// until its platform deadline kills the pods without a grace period. Force
// changes how a pod goes, not which pods go: blocked pods still fail the
// drain, so protected pods are never touched.
//
// Pods are listed by spec.nodeName from the API server each time, never from
// a cluster-wide cache, so memory does not grow with the cluster's pod count.
package drain

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// DefaultParallelism bounds concurrent evictions when Options.Parallelism is
// not set: enough to drain a node of a hundred pods in minutes, few enough
// that a resumed drain is no storm.
const DefaultParallelism = 5

const (
	// retryInterval spaces eviction attempts the API server refused without
	// a Retry-After (a PDB answers 429 with none), and failed pod listings.
	retryInterval = 5 * time.Second
	// pollInterval spaces the looks at the node while pods terminate.
	pollInterval = time.Second
	// maxPodsInMessage keeps error messages (and the Events made of them)
	// readable on a node with a hundred pods.
	maxPodsInMessage = 5
	// maxDescription bounds Result.BlockedBy (and the pod list of an
	// error), which the controller writes into a Node annotation and the
	// policy status: read with kubectl, on every node it holds.
	maxDescription = 500
)

// MinGracePeriod is as short as the deadline makes a pod's grace period: a
// process needs a few seconds after SIGTERM to stop taking work and flush
// what it holds, even when the deadline is (nearly) here.
const MinGracePeriod = 5 * time.Second

var (
	// ErrTimeout: the deadline passed with pods still to evict or to wait for.
	ErrTimeout = errors.New("drain timed out")
	// ErrBlocked: pods the options forbid evicting are on the node.
	ErrBlocked = errors.New("pods block the drain")
)

// Options say how to drain; OptionsFrom makes them from a policy.
type Options struct {
	// GracePeriodSeconds caps each pod's termination grace period; nil
	// leaves each pod's own.
	GracePeriodSeconds    *int64
	EvictDaemonSetPods    bool
	EvictEmptyDirPods     bool
	EvictUnreplicatedPods bool
	// ProtectedPodAnnotations: a pod with any of these annotations (a key,
	// or key=value) blocks the drain.
	ProtectedPodAnnotations []string
	// HonorDisruptionAnnotations: a pod with one of DisruptionAnnotations
	// blocks the drain as a protected one does.
	HonorDisruptionAnnotations bool
	// Parallelism bounds concurrent evictions; 0 means DefaultParallelism.
	Parallelism int
	// Force deletes the pods that would be evicted instead of evicting
	// them, ignoring PodDisruptionBudgets (see the package comment).
	Force bool
}

// OptionsFrom turns a policy's DrainSpec into Options, with the CRD's
// defaults for fields the API server did not default (e.g. in unit tests).
// spec.timeout is not among them: it is part of the deadline the caller
// passes to Drain.
func OptionsFrom(spec v1alpha1.DrainSpec) Options {
	return Options{
		GracePeriodSeconds:      spec.GracePeriodSeconds,
		EvictDaemonSetPods:      spec.EvictDaemonSetPods,
		EvictEmptyDirPods:       spec.EvictEmptyDirPods == nil || *spec.EvictEmptyDirPods,
		EvictUnreplicatedPods:   spec.EvictUnreplicatedPods,
		ProtectedPodAnnotations: spec.ProtectedPodAnnotations,
		// Protected by default: the pod's owner asked not to be disrupted.
		HonorDisruptionAnnotations: spec.HonorDisruptionAnnotations == nil || *spec.HonorDisruptionAnnotations,
	}
}

func (o Options) withDefaults() Options {
	if o.Parallelism <= 0 {
		o.Parallelism = DefaultParallelism
	}
	return o
}

// Drainer drains nodes. Its hooks are optional and are called from several
// goroutines at once.
type Drainer struct {
	Client kubernetes.Interface
	Log    logr.Logger
	// OnEvicted is called when the API server accepted a pod's eviction,
	// e.g. to record an Event.
	OnEvicted func(pod *corev1.Pod)
	// OnDeleted is called when, with Options.Force, the API server accepted
	// a pod's deletion: an operator wants to tell these from evictions.
	OnDeleted func(pod *corev1.Pod)
	// OnRetry is called when an eviction (or deletion) was refused and
	// will be tried again, e.g. for the eviction-retries metric;
	// apierrors.IsTooManyRequests(err) tells a PodDisruptionBudget refusal
	// from other failures.
	OnRetry func(pod *corev1.Pod, err error)
}

// Result is what one Drain call did.
type Result struct {
	// Evicted counts the evictions the API server accepted in this call.
	Evicted int
	// Deleted counts the deletions (Options.Force) the API server accepted
	// in this call.
	Deleted int
	// Retries counts evictions refused with 429 (a PodDisruptionBudget)
	// and tried again.
	Retries int
	// Errors counts evictions that failed otherwise and were tried again.
	Errors int
	// Skipped and Blocked are the pods the last look at the node left there
	// on purpose, and those that failed the drain.
	Skipped []PodRef
	Blocked []PodRef
	// BlockedBy says, when the drain did not finish, what it still waits
	// for or what failed it, in one line of at most 500 bytes for a Node
	// annotation and the policy status: up to 5 pods, why each is still
	// there, and how many more, e.g. "web/web-6d4 (eviction refused: The
	// disruption budget web needs 3 healthy pods and has 3 currently), and
	// 2 more". Empty when the node was drained.
	BlockedBy string
	// Terminating counts the pods left at the end that were terminating:
	// evicted or deleted, and not gone. Pods that stay terminating usually
	// mean a kubelet that is gone, which only the caller can tell.
	Terminating int
}

// PodRef names a pod and says why it is mentioned.
type PodRef struct {
	Namespace, Name string
	Reason          string
}

func (p PodRef) String() string {
	if p.Reason == "" {
		return p.Namespace + "/" + p.Name
	}
	return p.Namespace + "/" + p.Name + " (" + p.Reason + ")"
}

// Drain evicts the pods of node nodeName and waits until they are gone.
// It returns nil when nothing is left to evict or wait for; an error
// wrapping ErrBlocked or ErrTimeout when the drain failed, with
// Result.BlockedBy saying why; ctx's error when ctx ended first (the node
// was released, or the controller stops: calling Drain again resumes it).
// The deadline is the caller's: the controller counts it from the node's
// Draining state-since and caps it at the trigger's own deadline, so a
// resumed drain keeps the deadline it had from the start, and grace periods
// fit it.
func (d *Drainer) Drain(ctx context.Context, nodeName string, opts Options, deadline time.Time) (Result, error) {
	opts = opts.withDefaults()
	drainCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	log := d.Log.WithValues("node", nodeName)
	p := newProgress(opts.Force)

	var left plan
	for drainCtx.Err() == nil {
		pods, err := d.podsOnNode(drainCtx, nodeName, p)
		if err != nil {
			break
		}
		left = planDrain(pods, opts)
		p.setLeft(left)
		if len(left.blocked) > 0 {
			return p.block(left, left.blocked)
		}
		if len(left.evict)+len(left.wait) == 0 {
			res := p.result()
			log.Info("drained", "evicted", res.Evicted, "deleted", res.Deleted, "retries", res.Retries, "skipped", len(res.Skipped))
			return res, nil
		}
		d.evictAll(drainCtx, p.due(left.evict, time.Now()), opts, deadline, p)
		if refused := p.refusedForGood(); len(refused) > 0 {
			return p.block(left, refused)
		}
		sleep(drainCtx, pollInterval) // let evicted pods terminate before looking again
	}

	res, why := p.stuck(left)
	if ctx.Err() != nil {
		return res, fmt.Errorf("drain interrupted: %w", ctx.Err())
	}
	return res, fmt.Errorf("%w at %s: %s", ErrTimeout, deadline.UTC().Format(time.RFC3339), why)
}

// plan is what one look at the node found.
type plan struct {
	evict, wait      []*corev1.Pod
	skipped, blocked []PodRef
}

func planDrain(pods []corev1.Pod, opts Options) plan {
	var pl plan
	for i := range pods {
		pod := &pods[i]
		v := Judge(pod, opts)
		switch v.Action {
		case Evict:
			pl.evict = append(pl.evict, pod)
		case Wait:
			pl.wait = append(pl.wait, pod)
		case Skip:
			pl.skipped = append(pl.skipped, ref(pod, v.Reason))
		case Block:
			pl.blocked = append(pl.blocked, ref(pod, v.Reason))
		}
	}
	return pl
}

func (d *Drainer) podsOnNode(ctx context.Context, nodeName string, p *progress) ([]corev1.Pod, error) {
	selector := fields.OneTermEqualSelector("spec.nodeName", nodeName).String()
	for {
		list, err := d.Client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: selector})
		if err == nil {
			return list.Items, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		p.listFailed(err)
		d.Log.Error(err, "listing the node's pods failed; retrying", "node", nodeName)
		if !sleep(ctx, retryInterval) {
			return nil, ctx.Err()
		}
	}
}

// evictAll tries each pod's eviction once, at most opts.Parallelism at a
// time. A refused pod does not hold a worker while it waits for its retry:
// pods behind a PDB that allows nothing must not keep the others waiting.
func (d *Drainer) evictAll(ctx context.Context, pods []*corev1.Pod, opts Options, deadline time.Time, p *progress) {
	queue := make(chan *corev1.Pod)
	var wg sync.WaitGroup
	for range min(opts.Parallelism, len(pods)) {
		wg.Go(func() {
			for pod := range queue {
				d.evict(ctx, pod, opts, deadline, p)
			}
		})
	}
	for _, pod := range pods {
		if len(p.refusedForGood()) > 0 {
			break // the drain has failed: disrupt no other workload for it
		}
		select {
		case queue <- pod:
		case <-ctx.Done():
		}
	}
	close(queue)
	wg.Wait()
}

// evict evicts pod (with Force, deletes it) once, and records how it went.
func (d *Drainer) evict(ctx context.Context, pod *corev1.Pod, opts Options, deadline time.Time, p *progress) {
	log := d.Log.WithValues("node", pod.Spec.NodeName, "pod", ref(pod, "").String())
	err := d.remove(ctx, pod, opts, deadline)
	switch {
	case err == nil:
		p.removed(pod)
		log.V(1).Info(p.removedVerb())
		hook := d.OnEvicted
		if opts.Force {
			hook = d.OnDeleted
		}
		if hook != nil {
			hook(pod)
		}
		return
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		// Gone, or replaced by a pod of the same name: the next look at the
		// node tells whether anything is left to do.
		return
	case ctx.Err() != nil:
		return
	case isMultiplePDBRefusal(err):
		log.Info("eviction refused for good", "reason", reasonMultiplePDBs)
		p.refuseForGood(pod, reasonMultiplePDBs)
		return
	}

	delay := retryInterval
	if apierrors.IsTooManyRequests(err) {
		// client-go already waited out a Retry-After a few times before
		// giving up; honour the server's delay if it still suggests one.
		if seconds, ok := apierrors.SuggestsClientDelay(err); ok && seconds > 0 {
			delay = time.Duration(seconds) * time.Second
		}
		log.V(1).Info("eviction refused; will retry", "reason", reason(err), "after", delay)
	} else {
		log.Error(err, "removing the pod failed; will retry", "after", delay)
	}
	// Jitter keeps the pods of one drain (and several drains) from knocking
	// on the same PDB in step.
	p.refused(pod, err, time.Now().Add(wait.Jitter(delay, 0.2)))
	if d.OnRetry != nil {
		d.OnRetry(pod, err)
	}
}

// remove asks the API server to evict pod or, with Force, to delete it.
func (d *Drainer) remove(ctx context.Context, pod *corev1.Pod, opts Options, deadline time.Time) error {
	options := metav1.DeleteOptions{
		GracePeriodSeconds: gracePeriod(pod, opts.GracePeriodSeconds, time.Until(deadline)),
		// A pod recreated under the same name (a StatefulSet's) is a
		// different pod, possibly on another node: not ours to evict.
		Preconditions: metav1.NewUIDPreconditions(string(pod.UID)),
	}
	if opts.Force {
		return d.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, options)
	}
	return d.Client.PolicyV1().Evictions(pod.Namespace).Evict(ctx, &policyv1.Eviction{
		ObjectMeta:    metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace},
		DeleteOptions: &options,
	})
}

// reasonMultiplePDBs says why a pod that several PodDisruptionBudgets
// select blocks the drain.
const reasonMultiplePDBs = "more than one PodDisruptionBudget selects it, which the Eviction API does not support"

// isMultiplePDBRefusal tells the API server's refusal to evict a pod that
// more than one PodDisruptionBudget selects: no retry can succeed until
// someone changes the budgets. k8s.io/kubernetes
// pkg/registry/core/pod/storage/eviction.go (EvictionREST.Create) returns it
// as a bare Status, code 500 and no reason, so the message is all there is to
// tell it from a server fault (which is worth retrying).
func isMultiplePDBRefusal(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return false
	}
	s := status.Status()
	return s.Code == http.StatusInternalServerError &&
		strings.Contains(strings.ToLower(s.Message), "more than one poddisruptionbudget")
}

// progress is what a Drain call did so far; its workers update it together.
type progress struct {
	mu    sync.Mutex
	force bool
	res   Result
	// refusals is each refused pod's last refusal and when to try again.
	refusals map[types.UID]refusal
	// removedUIDs are the pods whose eviction (or deletion) was accepted,
	// which the last look at the node may predate.
	removedUIDs map[types.UID]bool
	// forGood are the pods whose eviction no retry can bring about.
	forGood []PodRef
	listErr error
}

type refusal struct {
	err       error
	notBefore time.Time
}

func newProgress(force bool) *progress {
	return &progress{force: force, refusals: map[types.UID]refusal{}, removedUIDs: map[types.UID]bool{}}
}

func (p *progress) removedVerb() string {
	if p.force {
		return "deleted"
	}
	return "evicted"
}

func (p *progress) removed(pod *corev1.Pod) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.force {
		p.res.Deleted++
	} else {
		p.res.Evicted++
	}
	p.removedUIDs[pod.UID] = true
	delete(p.refusals, pod.UID)
}

func (p *progress) refused(pod *corev1.Pod, err error, retryAt time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if apierrors.IsTooManyRequests(err) {
		p.res.Retries++
	} else {
		p.res.Errors++
	}
	p.refusals[pod.UID] = refusal{err: err, notBefore: retryAt}
}

func (p *progress) refuseForGood(pod *corev1.Pod, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.forGood = append(p.forGood, ref(pod, why))
}

func (p *progress) refusedForGood() []PodRef {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.forGood
}

// due are the pods whose eviction may be tried now.
func (p *progress) due(pods []*corev1.Pod, now time.Time) []*corev1.Pod {
	p.mu.Lock()
	defer p.mu.Unlock()
	var due []*corev1.Pod
	for _, pod := range pods {
		if r, ok := p.refusals[pod.UID]; !ok || !now.Before(r.notBefore) {
			due = append(due, pod)
		}
	}
	return due
}

func (p *progress) listFailed(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.listErr = err
}

func (p *progress) setLeft(pl plan) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.res.Skipped, p.res.Blocked = pl.skipped, pl.blocked
	p.listErr = nil
}

func (p *progress) result() Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.res
}

// block ends a drain that blocked pods fail, left being the last look at
// the node.
func (p *progress) block(left plan, blocked []PodRef) (Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	res := p.res
	_, res.Terminating = p.whyLeft(left)
	res.Blocked, res.BlockedBy = blocked, describe(blocked)
	return res, fmt.Errorf("%w: %s", ErrBlocked, res.BlockedBy)
}

// stuck ends a drain that ran out of time, left being the last look at the
// node; why is the end of its error.
func (p *progress) stuck(left plan) (res Result, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	res = p.res
	refs, terminating := p.whyLeft(left)
	res.Terminating = terminating
	switch {
	case p.listErr != nil:
		res.BlockedBy = describeLine("listing the node's pods failed: " + p.listErr.Error())
		why = res.BlockedBy
	case len(refs) == 0:
		res.BlockedBy = "the node's pods were not listed in time"
		why = res.BlockedBy
	default:
		res.BlockedBy = describe(refs)
		why = fmt.Sprintf("%d pods left: %s", len(refs), res.BlockedBy)
	}
	return res, why
}

// whyLeft says why each pod of the last look at the node is still there,
// and counts those that are terminating. p.mu must be held.
func (p *progress) whyLeft(left plan) (refs []PodRef, terminating int) {
	for _, pod := range left.evict {
		why := "not evicted yet"
		if r, ok := p.refusals[pod.UID]; ok {
			why = "eviction refused: " + reason(r.err)
			if p.force {
				why = "deletion failed: " + reason(r.err)
			}
		} else if p.removedUIDs[pod.UID] {
			why = p.removedVerb() + ", waiting for it to go"
			terminating++
		}
		refs = append(refs, ref(pod, why))
	}
	for _, pod := range left.wait {
		refs = append(refs, ref(pod, "still terminating"))
		terminating++
	}
	return refs, terminating
}

// reason is an API error's message with the causes the server gives. A
// PodDisruptionBudget's causes carry the useful part of its refusal ("The
// disruption budget web needs 3 healthy pods and has 3 currently"), and its
// message only says again that a budget refused: the causes alone stand for
// it, so that one line names more pods.
func reason(err error) string {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		return err.Error()
	}
	all := []string{status.Status().Message}
	var budgets []string
	for _, c := range status.Status().Details.Causes {
		all = append(all, c.Message)
		if c.Type == policyv1.DisruptionBudgetCause {
			budgets = append(budgets, c.Message)
		}
	}
	if len(budgets) > 0 {
		return strings.Join(budgets, " ")
	}
	return strings.Join(all, " ")
}

// describe names refs in one line of at most maxDescription bytes: as many
// of the first maxPodsInMessage as fit, then how many more there are.
func describe(refs []PodRef) string {
	// Room is kept for the count of the pods that do not fit.
	const room = maxDescription - len(", and 99999 more")
	var b strings.Builder
	for i, r := range refs {
		s := describeLine(r.String())
		if i > 0 {
			s = ", " + s
		}
		if i == maxPodsInMessage || (i > 0 && b.Len()+len(s) > room) {
			fmt.Fprintf(&b, ", and %d more", len(refs)-i)
			break
		}
		b.WriteString(truncate(s, room))
	}
	return b.String()
}

// describeLine makes s one line of at most maxDescription bytes: error
// messages (from webhooks, say) may span lines.
func describeLine(s string) string {
	return truncate(strings.Join(strings.Fields(s), " "), maxDescription)
}

func truncate(s string, n int) string {
	const ellipsis = "..."
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n-len(ellipsis)], "") + ellipsis
}

func ref(pod *corev1.Pod, why string) PodRef {
	return PodRef{Namespace: pod.Namespace, Name: pod.Name, Reason: why}
}

// sleep waits for d or until ctx ends, and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
