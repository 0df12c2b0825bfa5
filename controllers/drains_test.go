package controllers

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/remediation"
)

// TestCancelledDrainDoesNotForgetItsSuccessor: a drain that was cancelled
// (the node released) but is still winding down when a new drain of the same
// node starts must not, when it ends, remove the new one from running: that
// would let the next pass start a third drain beside it.
func TestCancelledDrainDoesNotForgetItsSuccessor(t *testing.T) {
	// Each drain's pod listing waits for its own release.
	release := []chan struct{}{make(chan struct{}), make(chan struct{})}
	listing := make(chan int, 10)
	var mu sync.Mutex
	lists := 0
	cs := &podListHook{Clientset: fake.NewClientset(), hook: func() {
		mu.Lock()
		i := lists
		lists++
		mu.Unlock()
		listing <- i
		if i < len(release) {
			<-release[i]
		}
	}}
	d := NewDrains(cs, NewMetrics(prometheus.NewRegistry()), testr.New(t))
	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = d.Start(ctx); close(stopped) }()
	t.Cleanup(func() {
		close(release[1])
		stop()
		<-stopped
	})

	rp := &v1alpha1.RemediationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "p"}}
	first := remediation.DrainOrder{Attempt: 1, Deadline: time.Now().Add(time.Hour)}
	second := remediation.DrainOrder{Attempt: 1, Deadline: first.Deadline.Add(time.Minute)}
	d.Ensure("n", rp, first)
	<-listing // drain 1 is listing the node's pods
	d.Cancel("n")
	d.Ensure("n", rp, second)
	<-listing // drain 2 too

	close(release[0]) // drain 1 sees its cancellation and ends
	// Every pass of the reconciler ensures the node's drain; none may start
	// a third one while drain 2 still runs.
	for range 50 {
		d.Ensure("n", rp, second)
		select {
		case i := <-listing:
			t.Fatalf("drain %d started while drain 2 was still running", i+1)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// podListHook calls hook before each pod listing. (A fake clientset's
// reactors run under its lock, so a reactor cannot block one call alone.)
type podListHook struct {
	*fake.Clientset
	hook func()
}

func (c *podListHook) CoreV1() typedcorev1.CoreV1Interface {
	return podListHookCore{c.Clientset.CoreV1(), c.hook}
}

type podListHookCore struct {
	typedcorev1.CoreV1Interface
	hook func()
}

func (c podListHookCore) Pods(ns string) typedcorev1.PodInterface {
	return podListHookPods{c.CoreV1Interface.Pods(ns), c.hook}
}

type podListHookPods struct {
	typedcorev1.PodInterface
	hook func()
}

func (p podListHookPods) List(ctx context.Context, opts metav1.ListOptions) (*corev1.PodList, error) {
	p.hook()
	return p.PodInterface.List(ctx, opts)
}
