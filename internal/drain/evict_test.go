package drain

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	policyv1client "k8s.io/client-go/kubernetes/typed/policy/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

// The fake clientset stands in for the API server only where a real one
// cannot be steered into the situation: drain_test.go covers the behaviour
// against a real control plane.

// fakeNode holds pods on one node; evict decides each eviction.
func fakeNode(pods []*corev1.Pod, evict func(pod string) error) *fake.Clientset {
	var objs []runtime.Object
	for _, p := range pods {
		p.Spec.NodeName = "n1"
		objs = append(objs, p)
	}
	client := fake.NewClientset(objs...)
	client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		e := a.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction)
		if err := evict(e.Name); err != nil {
			return true, nil, err
		}
		// The fake has no kubelet: an accepted eviction removes the pod.
		return true, nil, client.Tracker().Delete(corev1.SchemeGroupVersion.WithResource("pods"), e.Namespace, e.Name)
	})
	return client
}

func replicated(name string) *corev1.Pod {
	return pod(func(p *corev1.Pod) { p.Name, p.UID = name, types.UID(name) })
}

func pdbRefusal() error {
	return apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
}

func TestPodsBehindAPDBDoNotHoldUpTheOthers(t *testing.T) {
	var pods []*corev1.Pod
	for i := range 3 {
		pods = append(pods, replicated(fmt.Sprintf("guarded-%d", i)))
	}
	pods = append(pods, replicated("free"))
	client := fakeNode(pods, func(name string) error {
		if strings.HasPrefix(name, "guarded-") {
			return pdbRefusal()
		}
		return nil
	})
	var retried atomic.Int32
	d := &Drainer{Client: client, Log: testr.New(t), OnRetry: func(*corev1.Pod, error) { retried.Add(1) }}

	res, err := d.Drain(t.Context(), "n1", Options{Parallelism: 1}, time.Now().Add(time.Second))
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Drain = %v, want ErrTimeout", err)
	}
	if res.Evicted != 1 {
		t.Errorf("evicted %d, want the free pod although one worker and three refused pods", res.Evicted)
	}
	if res.Retries < 3 || int(retried.Load()) != res.Retries {
		t.Errorf("Retries = %d, OnRetry called %d times; want each refusal counted once by both", res.Retries, retried.Load())
	}
	if !strings.Contains(err.Error(), "guarded-0 (eviction refused: Cannot evict pod") || strings.Contains(err.Error(), "free (not evicted yet)") {
		t.Errorf("timeout error = %v", err)
	}
}

func TestEvictionsAreBounded(t *testing.T) {
	const parallelism = 3
	var pods []*corev1.Pod
	for i := range 20 {
		pods = append(pods, replicated(fmt.Sprintf("p%02d", i)))
	}
	// The first evictions wait until `parallelism` of them are in flight at
	// once, so that an unbounded drain would show more than that.
	var inFlight, most atomic.Int32
	full := make(chan struct{})
	var once sync.Once
	client := fakeNode(pods, func(string) error { return nil })
	d := &Drainer{Log: testr.New(t), Client: evictHook{client, func(ctx context.Context) error {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if n == parallelism {
			once.Do(func() { close(full) })
		}
		select {
		case <-full:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}}}

	res, err := d.Drain(t.Context(), "n1", Options{Parallelism: parallelism}, time.Now().Add(10*time.Second))
	if err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if res.Evicted != 20 {
		t.Errorf("evicted %d, want 20", res.Evicted)
	}
	if m := most.Load(); m != parallelism {
		t.Errorf("%d evictions in flight at once, want at most (and, here, exactly) %d", m, parallelism)
	}
}

// evictHook runs before each eviction outside the fake clientset, whose
// reactors hold one lock and so cannot observe concurrency.
type evictHook struct {
	kubernetes.Interface
	before func(ctx context.Context) error
}

func (h evictHook) PolicyV1() policyv1client.PolicyV1Interface {
	return policyHook{h.Interface.PolicyV1(), h.before}
}

type policyHook struct {
	policyv1client.PolicyV1Interface
	before func(ctx context.Context) error
}

func (h policyHook) Evictions(namespace string) policyv1client.EvictionInterface {
	return evictionsHook{h.PolicyV1Interface.Evictions(namespace), h.before}
}

type evictionsHook struct {
	policyv1client.EvictionInterface
	before func(ctx context.Context) error
}

func (h evictionsHook) Evict(ctx context.Context, e *policyv1.Eviction) error {
	if err := h.before(ctx); err != nil {
		return err
	}
	return h.EvictionInterface.Evict(ctx, e)
}

func TestEvictionNeverDeletesAndCarriesTheUID(t *testing.T) {
	p := replicated("web")
	p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](600)
	client := fakeNode([]*corev1.Pod{p}, func(string) error { return nil })
	d := &Drainer{Client: client, Log: testr.New(t)}

	limit := int64(60)
	// A deadline far enough away not to shorten the cap.
	if _, err := d.Drain(t.Context(), "n1", Options{GracePeriodSeconds: &limit}, time.Now().Add(10*time.Minute)); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	var evictions []*policyv1.Eviction
	for _, a := range client.Actions() {
		if a.GetVerb() == "delete" {
			t.Errorf("Drain sent a delete: %v", a)
		}
		if a.GetSubresource() == "eviction" {
			evictions = append(evictions, a.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction))
		}
	}
	if len(evictions) != 1 {
		t.Fatalf("%d evictions, want 1", len(evictions))
	}
	opts := evictions[0].DeleteOptions
	if opts == nil || opts.Preconditions == nil || opts.Preconditions.UID == nil || *opts.Preconditions.UID != "web" {
		t.Errorf("eviction without the pod's UID as precondition: %+v", opts)
	}
	if opts == nil || opts.GracePeriodSeconds == nil || *opts.GracePeriodSeconds != 60 {
		t.Errorf("eviction grace period %v, want the 60s cap", opts)
	}
}

func TestListErrorsAreRetriedUntilTheDeadline(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("etcd is down")
	})
	d := &Drainer{Client: client, Log: testr.New(t)}
	_, err := d.Drain(t.Context(), "n1", Options{}, time.Now().Add(time.Second))
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "etcd is down") {
		t.Errorf("Drain = %v, want ErrTimeout naming the list error", err)
	}
}
