package drain_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/nodewarden/nodewarden/internal/drain"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// TestGraceFitsTheDeadline runs on a level-1 cluster: with no kubelet, an
// evicted pod bound to a node stays Terminating, and its
// metadata.deletionGracePeriodSeconds is the grace period the eviction asked
// the API server for.
func TestGraceFitsTheDeadline(t *testing.T) {
	c := cluster.Start(t)
	t.Run("shortened to the seconds left", func(t *testing.T) { t.Parallel(); testGraceShortened(t, c) })
	t.Run("never below the floor", func(t *testing.T) { t.Parallel(); testGraceFloor(t, c) })
}

// testGraceShortened: a pod with 300s of grace, drained with 20s left, is
// given at most the 20s; a pod whose 10s end before the deadline keeps them.
// Once the pods are gone (as a kubelet would remove them), the drain ends.
func testGraceShortened(t *testing.T, c *cluster.Cluster) {
	ctx := t.Context()
	ns := unboundNamespace(t, c, "fit")
	slow := runningPod(t, c, ns, "slow", "fit-a", 300)
	quick := runningPod(t, c, ns, "quick", "fit-a", 10)

	d := &drain.Drainer{Client: c.Clientset, Log: testr.New(t)}
	type outcome struct {
		res drain.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := d.Drain(ctx, "fit-a", drain.Options{EvictUnreplicatedPods: true}, time.Now().Add(20*time.Second))
		done <- outcome{res, err}
	}()

	var grace map[string]int64
	cluster.Eventually(t, 10*time.Second, func() error {
		var err error
		grace, err = deletionGrace(ctx, c, ns, slow.Name, quick.Name)
		return err
	})
	if g := grace[slow.Name]; g > 20 || g < 15 {
		t.Errorf("pod %s (300s of grace) was evicted with %ds of grace; want the 15-20s left until the deadline", slow.Name, g)
	}
	if g := grace[quick.Name]; g != 10 {
		t.Errorf("pod %s (10s of grace) was evicted with %ds of grace; want its own 10s, which end before the deadline", quick.Name, g)
	}

	for _, name := range []string{slow.Name, quick.Name} {
		if err := c.Clientset.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case got := <-done:
		if got.err != nil || got.res.Evicted != 2 || got.res.BlockedBy != "" || got.res.Terminating != 0 {
			t.Errorf("Drain = %+v, %v; want 2 evicted, nothing left", got.res, got.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Drain still running 10s after the pods were gone")
	}
}

// testGraceFloor: with 2s left, a pod with 300s of grace still gets
// MinGracePeriod. It then stays Terminating past the deadline, which the
// failed drain reports.
func testGraceFloor(t *testing.T, c *cluster.Cluster) {
	ctx := t.Context()
	ns := unboundNamespace(t, c, "floor")
	slow := runningPod(t, c, ns, "slow", "floor-a", 300)

	d := &drain.Drainer{Client: c.Clientset, Log: testr.New(t)}
	res, err := d.Drain(ctx, "floor-a", drain.Options{EvictUnreplicatedPods: true}, time.Now().Add(2*time.Second))
	if !errors.Is(err, drain.ErrTimeout) {
		t.Fatalf("Drain = %+v, %v; want ErrTimeout, the pod still terminating", res, err)
	}
	grace, getErr := deletionGrace(ctx, c, ns, slow.Name)
	if getErr != nil {
		t.Fatal(getErr)
	}
	if want := int64(drain.MinGracePeriod / time.Second); grace[slow.Name] != want {
		t.Errorf("pod %s was evicted with %ds of grace; want the %ds floor", slow.Name, grace[slow.Name], want)
	}
	if res.Evicted != 1 || res.Terminating != 1 {
		t.Errorf("result %+v: want 1 evicted and 1 terminating", res)
	}
	// The last look at the node may predate the eviction or follow it.
	if !strings.Contains(res.BlockedBy, "floor/slow (evicted, waiting for it to go)") &&
		!strings.Contains(res.BlockedBy, "floor/slow (still terminating)") {
		t.Errorf("BlockedBy = %q, want the terminating pod named", res.BlockedBy)
	}
	if !strings.Contains(err.Error(), res.BlockedBy) {
		t.Errorf("the error %q does not say what BlockedBy says, %q", err, res.BlockedBy)
	}
}

func unboundNamespace(t *testing.T, c *cluster.Cluster, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := c.Clientset.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

// runningPod creates a pod bound to node that reports Running, as its
// kubelet would: the API server evicts a Pending pod without asking its
// PodDisruptionBudgets, and gives an unbound one no grace at all.
func runningPod(t *testing.T, c *cluster.Cluster, ns, name, node string, graceSeconds int64) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app": name}},
		Spec: corev1.PodSpec{
			NodeName:                      node,
			TerminationGracePeriodSeconds: &graceSeconds,
			Containers:                    []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}},
		},
	}
	pod, err := c.Clientset.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodRunning
	pod, err = c.Clientset.CoreV1().Pods(ns).UpdateStatus(t.Context(), pod, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

// deletionGrace returns the named pods' metadata.deletionGracePeriodSeconds,
// or an error while one of them is not terminating.
func deletionGrace(ctx context.Context, c *cluster.Cluster, ns string, names ...string) (map[string]int64, error) {
	grace := map[string]int64{}
	for _, name := range names {
		pod, err := c.Clientset.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		if pod.DeletionTimestamp == nil || pod.DeletionGracePeriodSeconds == nil {
			return nil, fmt.Errorf("pod %s/%s is not terminating", ns, name)
		}
		grace[name] = *pod.DeletionGracePeriodSeconds
	}
	return grace, nil
}
