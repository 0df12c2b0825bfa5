package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewarden/nodewarden/test/cluster"
)

// agentNamespace is where the agent keeps its Lease (the binary's default).
const agentNamespace = "nodewarden-system"

// shared is the one control plane of this test binary: starting one takes
// seconds, and the benchmark framework calls each benchmark several times.
var shared struct {
	once sync.Once
	c    *cluster.Cluster
	err  error

	mu       sync.Mutex
	cleanups []func() // run before the cluster stops, newest first
}

func TestMain(m *testing.M) {
	code := m.Run()
	shared.mu.Lock()
	for i := len(shared.cleanups) - 1; i >= 0; i-- {
		shared.cleanups[i]()
	}
	shared.mu.Unlock()
	if shared.c != nil {
		shared.c.Stop()
	}
	os.Exit(code)
}

// onExit runs f when the test binary ends, before the control plane stops.
func onExit(f func()) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.cleanups = append(shared.cleanups, f)
}

// sharedCluster starts the level-1 control plane on first use.
func sharedCluster(tb testing.TB) *cluster.Cluster {
	tb.Helper()
	if testing.Short() {
		tb.Skip("starts a control plane; skipped with -short")
	}
	shared.once.Do(func() {
		shared.c, shared.err = cluster.New(cluster.Options{})
		if shared.err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := shared.c.Clientset.CoreV1().Namespaces().Create(ctx,
				&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: agentNamespace}}, metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				shared.err = err
			}
		}
	})
	if shared.err != nil {
		tb.Fatalf("start control plane: %v", shared.err)
	}
	return shared.c
}

// createNode creates a Node with kubelet's Ready condition, as a real one has.
func createNode(tb testing.TB, c *cluster.Cluster, name string) {
	tb.Helper()
	ctx := context.Background()
	n, err := c.Clientset.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	at := metav1.Now()
	n.Status.Conditions = []corev1.NodeCondition{{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status",
		LastHeartbeatTime: at, LastTransitionTime: at,
	}}
	if _, err := c.Clientset.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		tb.Fatal(err)
	}
}

// nodeCondition returns the Node's condition of type t, or an error saying what is there.
func nodeCondition(ctx context.Context, c *cluster.Cluster, node, t string) (corev1.NodeCondition, error) {
	n, err := c.Clientset.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return corev1.NodeCondition{}, err
	}
	if cond := findCondition(n, t); cond != nil {
		return *cond, nil
	}
	return corev1.NodeCondition{}, fmt.Errorf("node %s has no %s condition yet", node, t)
}

func findCondition(n *corev1.Node, t string) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if string(n.Status.Conditions[i].Type) == t {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// waitCondition polls until the Node's condition t has status (and reason, if not empty).
func waitCondition(tb testing.TB, c *cluster.Cluster, node, t string, status corev1.ConditionStatus, reason string, timeout time.Duration) {
	tb.Helper()
	cluster.Eventually(tb, timeout, func() error {
		cond, err := nodeCondition(context.Background(), c, node, t)
		if err != nil {
			return err
		}
		if cond.Status != status || (reason != "" && cond.Reason != reason) {
			return fmt.Errorf("node %s: %s=%s reason %s; want %s %s", node, t, cond.Status, cond.Reason, status, reason)
		}
		return nil
	})
}

var errTimeout = errors.New("timed out")
