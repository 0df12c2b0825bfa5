package controllers_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/test/cluster"
)

func deleted(t *testing.T, c *cluster.Cluster, names ...string) []string {
	t.Helper()
	var gone []string
	for _, n := range names {
		if _, err := c.Clientset.CoreV1().Nodes().Get(t.Context(), n, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			gone = append(gone, n)
		} else if err != nil {
			t.Fatal(err)
		}
	}
	return gone
}

// DeleteNode deletes drained nodes, never an untriggered one, and a burst of
// three drained nodes gets one deletion at maxRepairsPerHour 1 — also after
// a controller restart, which reads the count back from the status.
func TestRepairDeleteNodeWithinRateLimit(t *testing.T) {
	c := cluster.StartFull(t)
	addNodes(t, c, "n1", "n2", "n3", "n4")
	createPolicy(t, c, "replace", func(rp *v1alpha1.RemediationPolicy) {
		rp.Spec.MaxConcurrent = intstr.FromInt32(3)
		rp.Spec.MaxUnhealthy = intstr.FromString("100%")
		rp.Spec.MaxRepairsPerHour = ptr.To[int32](1)
		rp.Spec.Repair = &v1alpha1.RepairSpec{Steps: []v1alpha1.RepairStep{{Action: v1alpha1.RepairDeleteNode}}}
	})
	stop := startController(t, c)
	for _, n := range []string{"n1", "n2", "n3"} {
		setTrigger(t, c, n, corev1.ConditionTrue, time.Now().Add(47*time.Hour))
	}
	var gone []string
	cluster.Eventually(t, time.Minute, func() error {
		if gone = deleted(t, c, "n1", "n2", "n3", "n4"); len(gone) != 1 {
			return fmt.Errorf("deleted nodes %v, want exactly one", gone)
		}
		return nil
	})
	if gone[0] == "n4" {
		t.Fatal("the untriggered node was deleted")
	}
	var rp v1alpha1.RemediationPolicy
	cluster.Eventually(t, 30*time.Second, func() error {
		if err := c.Client.Get(t.Context(), types.NamespacedName{Name: "replace"}, &rp); err != nil {
			return err
		}
		if len(rp.Status.RecentRepairs) != 1 || rp.Status.RecentRepairs[0].Node != gone[0] {
			return fmt.Errorf("status.recentRepairs %v, want %s's DeleteNode", rp.Status.RecentRepairs, gone[0])
		}
		return nil
	})
	// The others stay drained and cordoned, waiting for the hour.
	for _, n := range []string{"n1", "n2", "n3"} {
		if n != gone[0] {
			waitState(t, c, n, string(v1alpha1.StateDrained), time.Minute)
		}
	}
	stop()
	startController(t, c)
	// A restarted controller must not take the budget for fresh: for as
	// long as it takes to decide several times, still one node is gone.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if gone := deleted(t, c, "n1", "n2", "n3", "n4"); len(gone) != 1 {
			t.Fatalf("after a restart, deleted nodes %v: maxRepairsPerHour 1 exceeded", gone)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A ladder of Webhook then DeleteNode: the webhook fails once and then
// answers, the DeleteNode waits its after; a node that recovers on a Wait
// step is released and never deleted.
func TestRepairLadderEscalatesAndRecoveryReleases(t *testing.T) {
	var calls atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if calls.Add(1) == 1 {
			http.Error(w, "runbook busy", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(hook.Close)

	c := cluster.StartFull(t)
	addNodes(t, c, "n1", "n2", "n3", "n4")
	const after = 3 * time.Second
	createPolicy(t, c, "ladder", func(rp *v1alpha1.RemediationPolicy) {
		rp.Spec.MaxConcurrent = intstr.FromInt32(2)
		rp.Spec.MaxUnhealthy = intstr.FromString("100%")
		rp.Spec.MaxRepairsPerHour = ptr.To[int32](5)
		rp.Spec.Conditions = []v1alpha1.ConditionRule{
			{Type: trigger, Reasons: []string{"SystemMaintenanceReboot*"}, Repair: &v1alpha1.RepairSpec{Steps: []v1alpha1.RepairStep{
				{Action: v1alpha1.RepairWebhook, Webhook: &v1alpha1.WebhookRepair{URL: hook.URL, Timeout: &metav1.Duration{Duration: 2 * time.Second}, Retries: ptr.To[int32](2)}},
				{Action: v1alpha1.RepairDeleteNode, After: metav1.Duration{Duration: after}},
			}}},
			{Type: "KernelDeadlock"},
		}
		// Nodes whose rule has no ladder of its own: wait an hour first.
		rp.Spec.Repair = &v1alpha1.RepairSpec{Steps: []v1alpha1.RepairStep{{Action: v1alpha1.RepairWait}, {Action: v1alpha1.RepairDeleteNode, After: metav1.Duration{Duration: time.Hour}}}}
	})
	startController(t, c)
	setTrigger(t, c, "n1", corev1.ConditionTrue, time.Now().Add(47*time.Hour))

	var webhookDone time.Time
	cluster.Eventually(t, time.Minute, func() error {
		n := node(t, c, "n1")
		if n.Annotations[v1alpha1.AnnotationRepairStep] != "0:Webhook" || n.Annotations[v1alpha1.AnnotationRepairResult] != "Succeeded" {
			return fmt.Errorf("n1: %v", n.Annotations)
		}
		webhookDone, _ = time.Parse(time.RFC3339, n.Annotations[v1alpha1.AnnotationStateSince])
		return nil
	})
	if got := calls.Load(); got != 2 {
		t.Errorf("the webhook was called %d times, want 2 (one failure, one success)", got)
	}
	cluster.Eventually(t, time.Minute, func() error {
		if len(deleted(t, c, "n1")) != 1 {
			return fmt.Errorf("n1 not deleted yet")
		}
		return nil
	})
	if since := time.Since(webhookDone); since < after {
		t.Errorf("n1 deleted %s after the webhook step ended, before its after (%s)", since, after)
	}

	// n3's condition has a reason the rule does not list: not taken. n2's
	// KernelDeadlock rule has no ladder: the policy's, whose DeleteNode
	// waits an hour; n2 recovers on the Wait step and is released.
	setReason(t, c, "n3", trigger, "Other")
	setReason(t, c, "n2", "KernelDeadlock", "KernelHung")
	cluster.Eventually(t, time.Minute, func() error {
		n := node(t, c, "n2")
		if state(n) != string(v1alpha1.StateRepairing) || n.Annotations[v1alpha1.AnnotationRepairStep] != "0:Wait" || n.Annotations[v1alpha1.AnnotationRepairLadder] != "policy" {
			return fmt.Errorf("n2: %v", n.Annotations)
		}
		return nil
	})
	if s := state(node(t, c, "n3")); s != "" {
		t.Errorf("n3 taken (%s) for a reason the rule does not list", s)
	}
	now := metav1.Now()
	patch := fmt.Sprintf(`{"status":{"conditions":[{"type":"KernelDeadlock","status":"False","reason":"KernelHasNoDeadlock","message":"","lastTransitionTime":%q,"lastHeartbeatTime":%q}]}}`,
		now.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	if _, err := c.Clientset.CoreV1().Nodes().PatchStatus(t.Context(), "n2", []byte(patch)); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, time.Minute, func() error {
		n := node(t, c, "n2")
		if state(n) != "" || n.Spec.Unschedulable || n.Annotations[v1alpha1.AnnotationRepairStep] != "" {
			return fmt.Errorf("n2 after recovery: unschedulable %t, %v", n.Spec.Unschedulable, n.Annotations)
		}
		return nil
	})
}

// setReason plays an agent: condition typ True with reason.
func setReason(t *testing.T, c *cluster.Cluster, name, typ, reason string) {
	t.Helper()
	now := metav1.Now()
	patch := fmt.Sprintf(`{"status":{"conditions":[{"type":%q,"status":"True","reason":%q,"message":"seen","lastTransitionTime":%q,"lastHeartbeatTime":%q}]}}`,
		typ, reason, now.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	if _, err := c.Clientset.CoreV1().Nodes().PatchStatus(t.Context(), name, []byte(patch)); err != nil {
		t.Fatal(err)
	}
}
