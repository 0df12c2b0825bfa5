package controllers

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/remediation"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// startRepairs runs a Repairs against c until the test ends.
func startRepairs(t *testing.T, c *cluster.Cluster) (*Repairs, *Metrics, func()) {
	t.Helper()
	m := NewMetrics(prometheus.NewRegistry())
	r := NewRepairs(c.Clientset, c.Client, nil, m, testr.New(t))
	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = r.Start(ctx); close(stopped) }()
	stopAndWait := func() { stop(); <-stopped }
	t.Cleanup(stopAndWait)
	return r, m, stopAndWait
}

// waitReport waits for node's step to end (Done wakes the reconciler the
// same way) and returns its report.
func waitReport(t *testing.T, r *Repairs, node string) remediation.RepairReport {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case e := <-r.Done():
			if e.Object.GetName() != node {
				continue
			}
			rep, ok := r.Reports()[node]
			if !ok {
				t.Fatalf("Done delivered node %s, but it has no report", node)
			}
			return rep
		case <-timeout:
			t.Fatalf("node %s: no repair step ended within a minute; reports %v", node, r.Reports())
		}
	}
}

func repairsCount(t *testing.T, m *Metrics, policy string, action v1alpha1.RepairAction, result string) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Repairs.WithLabelValues(policy, string(action), result).Write(&out); err != nil {
		t.Fatal(err)
	}
	return out.GetCounter().GetValue()
}

// hook is a webhook receiver that counts requests and answers with status,
// or, when hold is set, holds each request until its client gives up.
type hook struct {
	*httptest.Server
	mu       sync.Mutex
	keys     []string
	received chan struct{}
}

func newHook(t *testing.T, status int, hold bool) *hook {
	t.Helper()
	h := &hook{received: make(chan struct{}, 10)}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		// Read to the end: only then does the server notice a client that
		// hangs up, and cancel the request's context.
		_, _ = io.Copy(io.Discard, req.Body)
		h.mu.Lock()
		h.keys = append(h.keys, req.Header.Get("Idempotency-Key"))
		h.mu.Unlock()
		h.received <- struct{}{}
		if hold {
			<-req.Context().Done() // the step was cancelled
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hook) requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.keys...)
}

// TestRepairs runs each kind of step through Repairs against a real API
// server, and checks what the reconciler relies on: one report per ended
// step, under the step's identity, kept until recorded; a metric per
// outcome; nothing reported for a step that was cancelled or superseded.
func TestRepairs(t *testing.T) {
	c := cluster.Start(t) // level 1: the steps here need Nodes and Pods, not kubelets
	ctx := t.Context()
	started := time.Date(2026, 11, 24, 17, 0, 0, 0, time.UTC)
	newNode := func(t *testing.T, name string) *corev1.Node {
		t.Helper()
		n, err := c.Clientset.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	nodeExists := func(t *testing.T, name string) bool {
		t.Helper()
		_, err := c.Clientset.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Fatal(err)
		}
		return err == nil
	}
	accepting, refusing := newHook(t, http.StatusNoContent, false), newHook(t, http.StatusInternalServerError, false)

	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, node *corev1.Node)
		order remediation.RepairOrder
		// want is the report's outcome and what its message says.
		succeeded   bool
		message     string
		nodeRemains bool
	}{{
		name:    "delete-drained",
		order:   remediation.RepairOrder{Step: 1, Started: started, Action: v1alpha1.RepairDeleteNode},
		message: "deleted", succeeded: true,
	}, {
		name: "delete-busy",
		setup: func(t *testing.T, node *corev1.Node) {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "lonely", Namespace: "default"},
				Spec:       corev1.PodSpec{NodeName: node.Name, Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
			}
			if _, err := c.Clientset.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		},
		order:   remediation.RepairOrder{Step: 0, Started: started, Action: v1alpha1.RepairDeleteNode},
		message: "default/lonely", nodeRemains: true,
	}, {
		name:    "clusterapi-unannotated",
		order:   remediation.RepairOrder{Step: 0, Started: started, Action: v1alpha1.RepairClusterAPI},
		message: "has no Cluster API Machine", nodeRemains: true,
	}, {
		name: "webhook-accepted",
		order: remediation.RepairOrder{Step: 2, Started: started, Action: v1alpha1.RepairWebhook,
			Webhook: &v1alpha1.WebhookRepair{URL: accepting.URL}},
		message: "idempotency key webhook-accepted/2/2026-11-24T17:00:00Z", succeeded: true, nodeRemains: true,
	}, {
		name: "webhook-refused",
		order: remediation.RepairOrder{Step: 0, Started: started, Action: v1alpha1.RepairWebhook,
			Webhook: &v1alpha1.WebhookRepair{URL: refusing.URL, Retries: ptr.To[int32](0)}},
		message: "answered 500 Internal Server Error", nodeRemains: true,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r, m, _ := startRepairs(t, c)
			node := newNode(t, tc.name)
			if tc.setup != nil {
				tc.setup(t, node)
			}
			r.Ensure(node, "p", tc.order)
			rep := waitReport(t, r, tc.name)
			if rep.Step != tc.order.Step || !rep.Started.Equal(tc.order.Started) {
				t.Errorf("report of step %d started %s, want step %d started %s", rep.Step, rep.Started, tc.order.Step, tc.order.Started)
			}
			if rep.Succeeded != tc.succeeded || !strings.Contains(rep.Message, tc.message) {
				t.Errorf("report: succeeded %v, %q; want %v, saying %q", rep.Succeeded, rep.Message, tc.succeeded, tc.message)
			}
			if got := nodeExists(t, tc.name); got != tc.nodeRemains {
				t.Errorf("node exists: %v, want %v", got, tc.nodeRemains)
			}
			result := "failure"
			if tc.succeeded {
				result = "success"
			}
			if got := repairsCount(t, m, "p", tc.order.Action, result); got != 1 {
				t.Errorf("nodewarden_controller_repairs_total{policy=p,action=%s,result=%s} = %v, want 1", tc.order.Action, result, got)
			}

			// The report waits for the reconciler; ensuring the same step
			// meanwhile (every pass does) starts nothing.
			r.Ensure(node, "p", tc.order)
			if r.jobs.isRunning(tc.name) {
				t.Error("the step was started again while its report waited")
			}
			r.Recorded(tc.name)
			if _, ok := r.Reports()[tc.name]; ok {
				t.Error("Recorded kept the report")
			}
		})
	}
	if got := accepting.requests(); len(got) != 1 || got[0] != "webhook-accepted/2/2026-11-24T17:00:00Z" {
		t.Errorf("the accepting webhook got requests %v, want exactly one", got)
	}

	t.Run("cancelled", func(t *testing.T) {
		r, m, stop := startRepairs(t, c)
		held := newHook(t, http.StatusOK, true)
		node := newNode(t, "cancelled")
		order := remediation.RepairOrder{Step: 0, Started: started, Action: v1alpha1.RepairWebhook, Webhook: &v1alpha1.WebhookRepair{URL: held.URL}}
		r.Ensure(node, "p", order)
		<-held.received
		r.Cancel("cancelled")
		stop() // waits for every step to end
		if rep, ok := r.Reports()["cancelled"]; ok {
			t.Errorf("a cancelled step reported %+v", rep)
		}
		for _, result := range []string{"success", "failure"} {
			if got := repairsCount(t, m, "p", v1alpha1.RepairWebhook, result); got != 0 {
				t.Errorf("a cancelled step counted as %s", result)
			}
		}
	})

	t.Run("superseded", func(t *testing.T) {
		r, _, _ := startRepairs(t, c)
		held := newHook(t, http.StatusOK, true)
		node := newNode(t, "superseded")
		first := remediation.RepairOrder{Step: 0, Started: started, Action: v1alpha1.RepairWebhook, Webhook: &v1alpha1.WebhookRepair{URL: held.URL}}
		r.Ensure(node, "p", first)
		<-held.received
		// Decide moved on (the node was released and taken again): the
		// new ladder's first step replaces the old one's.
		second := remediation.RepairOrder{Step: 0, Started: started.Add(time.Hour), Action: v1alpha1.RepairWebhook,
			Webhook: &v1alpha1.WebhookRepair{URL: accepting.URL}}
		r.Ensure(node, "p", second)
		rep := waitReport(t, r, "superseded")
		if !rep.Started.Equal(second.Started) || !rep.Succeeded {
			t.Errorf("report %+v, want the second step's success", rep)
		}
	})

	t.Run("node deleted", func(t *testing.T) {
		r, _, _ := startRepairs(t, c)
		node := newNode(t, "gone")
		r.Ensure(node, "p", remediation.RepairOrder{Step: 0, Started: started, Action: v1alpha1.RepairWebhook,
			Webhook: &v1alpha1.WebhookRepair{URL: accepting.URL}})
		waitReport(t, r, "gone")
		r.Retain(func(string) bool { return false })
		if len(r.Reports()) != 0 {
			t.Errorf("reports of deleted nodes kept: %v", r.Reports())
		}
	})
}
