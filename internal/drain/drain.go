// Package drain empties one cordoned node through the Eviction API, so that
// PodDisruptionBudgets are honoured: it never deletes a pod itself.
//
// Drain looks at the node's pods, judges each (see Judge), evicts what may be
// evicted with bounded parallelism, waits, and looks again, until nothing is
// left to evict or wait for, a pod blocks the drain, or the deadline passes.
// Because every round starts from the pods the API server lists now, Drain is
// idempotent: called again on a half-drained node (after a controller restart)
// it evicts only what is left and only waits for pods already terminating.
//
// What "blocked" means: a pod that the options forbid evicting (a protected
// annotation, an emptyDir volume without evictEmptyDirPods, no controller
// without evictUnreplicatedPods) fails the drain at once with ErrBlocked,
// before anything is evicted, like `kubectl drain` without --force. Leaving
// such a pod silently would report Drained for a node that still runs it;
// evicting the others first would disrupt workloads for a drain that cannot
// finish. Skipped pods (mirror, DaemonSet, finished) stay on the node and do
// not fail the drain.
//
// Pods are listed by spec.nodeName from the API server each time, never from
// a cluster-wide cache, so memory does not grow with the cluster's pod count.
package drain

import (
	"context"
	"errors"
	"fmt"
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
)

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
	// Parallelism bounds concurrent evictions; 0 means DefaultParallelism.
	Parallelism int
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
	// OnRetry is called when an eviction was refused and will be tried
	// again, e.g. for the eviction-retries metric;
	// apierrors.IsTooManyRequests(err) tells a PodDisruptionBudget refusal
	// from other failures.
	OnRetry func(pod *corev1.Pod, err error)
}

// Result is what one Drain call did.
type Result struct {
	// Evicted counts the evictions the API server accepted in this call.
	Evicted int
	// Retries counts evictions refused with 429 (a PodDisruptionBudget)
	// and tried again.
	Retries int
	// Errors counts evictions that failed otherwise and were tried again.
	Errors int
	// Skipped and Blocked are the pods the last look at the node left there
	// on purpose, and those that failed the drain.
	Skipped []PodRef
	Blocked []PodRef
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
// wrapping ErrBlocked or ErrTimeout when the drain failed (the node should be
// marked DrainFailed); ctx's error when ctx ended first (the node was
// released, or the controller stops: the drain is not failed, and calling
// Drain again resumes it). The deadline is the caller's: the controller
// counts it from the node's Draining state-since, so a resumed drain keeps
// the deadline it had from the start.
func (d *Drainer) Drain(ctx context.Context, nodeName string, opts Options, deadline time.Time) (Result, error) {
	opts = opts.withDefaults()
	drainCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	log := d.Log.WithValues("node", nodeName)
	p := &progress{refusals: map[types.UID]refusal{}, evictedUIDs: map[types.UID]bool{}}

	var left plan
	for drainCtx.Err() == nil {
		pods, err := d.podsOnNode(drainCtx, nodeName, p)
		if err != nil {
			break
		}
		left = planDrain(pods, opts)
		p.setLeft(left)
		if len(left.blocked) > 0 {
			return p.result(), fmt.Errorf("%w: %s", ErrBlocked, describe(left.blocked))
		}
		if len(left.evict)+len(left.wait) == 0 {
			res := p.result()
			log.Info("drained", "evicted", res.Evicted, "retries", res.Retries, "skipped", len(res.Skipped))
			return res, nil
		}
		d.evictAll(drainCtx, p.due(left.evict, time.Now()), opts, p)
		sleep(drainCtx, pollInterval) // let evicted pods terminate before looking again
	}

	if ctx.Err() != nil {
		return p.result(), fmt.Errorf("drain interrupted: %w", ctx.Err())
	}
	return p.result(), fmt.Errorf("%w at %s: %s", ErrTimeout, deadline.UTC().Format(time.RFC3339), p.describeLeft(left))
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
func (d *Drainer) evictAll(ctx context.Context, pods []*corev1.Pod, opts Options, p *progress) {
	queue := make(chan *corev1.Pod)
	var wg sync.WaitGroup
	for range min(opts.Parallelism, len(pods)) {
		wg.Go(func() {
			for pod := range queue {
				d.evict(ctx, pod, opts, p)
			}
		})
	}
	for _, pod := range pods {
		select {
		case queue <- pod:
		case <-ctx.Done():
		}
	}
	close(queue)
	wg.Wait()
}

func (d *Drainer) evict(ctx context.Context, pod *corev1.Pod, opts Options, p *progress) {
	eviction := &policyv1.Eviction{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace},
		DeleteOptions: &metav1.DeleteOptions{
			GracePeriodSeconds: gracePeriod(pod, opts.GracePeriodSeconds),
			// A pod recreated under the same name (a StatefulSet's) is a
			// different pod, possibly on another node: not ours to evict.
			Preconditions: metav1.NewUIDPreconditions(string(pod.UID)),
		},
	}
	log := d.Log.WithValues("node", pod.Spec.NodeName, "pod", ref(pod, "").String())
	err := d.Client.PolicyV1().Evictions(pod.Namespace).Evict(ctx, eviction)
	switch {
	case err == nil:
		p.evicted(pod)
		log.V(1).Info("evicted")
		if d.OnEvicted != nil {
			d.OnEvicted(pod)
		}
		return
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		// Gone, or replaced by a pod of the same name: the next look at the
		// node tells whether anything is left to do.
		return
	case ctx.Err() != nil:
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
		log.Error(err, "eviction failed; will retry", "after", delay)
	}
	// Jitter keeps the pods of one drain (and several drains) from knocking
	// on the same PDB in step.
	p.refused(pod, err, time.Now().Add(wait.Jitter(delay, 0.2)))
	if d.OnRetry != nil {
		d.OnRetry(pod, err)
	}
}

// progress is what a Drain call did so far; its workers update it together.
type progress struct {
	mu  sync.Mutex
	res Result
	// refusals is each refused pod's last refusal and when to try again.
	refusals map[types.UID]refusal
	// evictedUIDs are the pods whose eviction was accepted, which the last
	// look at the node may predate.
	evictedUIDs map[types.UID]bool
	listErr     error
}

type refusal struct {
	err       error
	notBefore time.Time
}

func (p *progress) evicted(pod *corev1.Pod) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.res.Evicted++
	p.evictedUIDs[pod.UID] = true
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

// describeLeft says what kept the drain from finishing: the pods of the last
// look at the node and why each was still there.
func (p *progress) describeLeft(left plan) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.listErr != nil {
		return "listing the node's pods failed: " + p.listErr.Error()
	}
	var refs []PodRef
	for _, pod := range left.evict {
		why := "not evicted yet"
		if r, ok := p.refusals[pod.UID]; ok {
			why = "eviction refused: " + reason(r.err)
		} else if p.evictedUIDs[pod.UID] {
			why = "evicted, waiting for it to go"
		}
		refs = append(refs, ref(pod, why))
	}
	for _, pod := range left.wait {
		refs = append(refs, ref(pod, "still terminating"))
	}
	if len(refs) == 0 {
		return "the node's pods were not listed in time"
	}
	return fmt.Sprintf("%d pods left: %s", len(refs), describe(refs))
}

// reason is an API error's message with the causes the server gives, which
// carry the useful part of a PDB refusal ("The disruption budget web needs
// 3 healthy pods and has 3 currently").
func reason(err error) string {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		return err.Error()
	}
	parts := []string{status.Status().Message}
	for _, c := range status.Status().Details.Causes {
		parts = append(parts, c.Message)
	}
	return strings.Join(parts, " ")
}

func describe(refs []PodRef) string {
	var names []string
	for i, r := range refs {
		if i == maxPodsInMessage {
			names = append(names, fmt.Sprintf("and %d more", len(refs)-i))
			break
		}
		names = append(names, r.String())
	}
	return strings.Join(names, ", ")
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
