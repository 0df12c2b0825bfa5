package controllers_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/controllers"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// TestMaintenanceWindow runs the reconciler on a clock the test moves:
// outside the policy's window a triggered node is left alone (and says
// why), a node whose deadline comes before the window is cordoned anyway
// with a WindowOverridden Warning, and once the clock is inside the window
// the first node is cordoned too.
func TestMaintenanceWindow(t *testing.T) {
	c := cluster.Start(t) // no kubelets: this test cordons, it does not drain
	for _, n := range []string{"w1", "w2"} {
		if err := c.Client.Create(t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n, Labels: map[string]string{"pool": "web"}}}); err != nil {
			t.Fatal(err)
		}
	}
	// The reconciler's now is ahead of the real time the triggers are set
	// at, so that their lastTransitionTime is in its past. The window opens
	// an hour after it, daily.
	start := time.Now().UTC().Add(10 * time.Minute).Truncate(time.Second)
	opens := start.Add(time.Hour).Truncate(time.Minute)
	clock := testingclock.NewFakePassiveClock(start)
	startControllerOpts(t, c, controllers.Options{Clock: clock})

	setTrigger(t, c, "w1", corev1.ConditionTrue, start.Add(47*time.Hour))
	// drain.timeout (2m) before its deadline already: it cannot wait.
	setTrigger(t, c, "w2", corev1.ConditionTrue, start.Add(time.Minute))
	createPolicy(t, c, "windowed", func(rp *v1alpha1.RemediationPolicy) {
		rp.Spec.Drain.Enabled = ptr.To(false)
		rp.Spec.MaxConcurrent = intstr.FromInt32(2)
		rp.Spec.MaxUnhealthy = intstr.FromString("100%")
		rp.Spec.MaintenanceWindows = []v1alpha1.MaintenanceWindow{{
			Schedule: fmt.Sprintf("%d %d * * *", opens.Minute(), opens.Hour()),
			Duration: metav1.Duration{Duration: 30 * time.Minute},
			TimeZone: "UTC",
		}}
	})

	waitState(t, c, "w2", "Cordoned", time.Minute)
	overridden := waitEvent(t, c, "WindowOverridden", "w2")
	if overridden.Type != corev1.EventTypeWarning || !strings.Contains(overridden.Note, opens.Format(time.RFC3339)) {
		t.Errorf("WindowOverridden: %s %q, want a Warning naming the window at %s", overridden.Type, overridden.Note, opens.Format(time.RFC3339))
	}
	waitEvent(t, c, "OutsideMaintenanceWindow", "w1")
	cluster.Eventually(t, 30*time.Second, func() error {
		var rp v1alpha1.RemediationPolicy
		if err := c.Client.Get(t.Context(), types.NamespacedName{Name: "windowed"}, &rp); err != nil {
			return err
		}
		want := []v1alpha1.DeferredNode{{Name: "w1", Reason: v1alpha1.DeferredOutsideMaintenanceWindow}}
		if rp.Status.NextWindow == nil || !rp.Status.NextWindow.Time.Equal(opens) || fmt.Sprint(rp.Status.DeferredNodes) != fmt.Sprint(want) {
			return fmt.Errorf("status: nextWindow %v, deferredNodes %v; want %v and %v", rp.Status.NextWindow, rp.Status.DeferredNodes, opens, want)
		}
		return nil
	})
	if n := node(t, c, "w1"); n.Spec.Unschedulable || state(n) != "" {
		t.Fatalf("w1 was taken outside the window: unschedulable %v, state %q", n.Spec.Unschedulable, state(n))
	}

	// Into the window. The real reconciler would wake at the opening
	// (RequeueAfter); here the test nudges it after moving the clock.
	clock.SetTime(opens.Add(time.Minute))
	nudge(t, c, "windowed")
	waitState(t, c, "w1", "Cordoned", time.Minute)
	cluster.Eventually(t, 30*time.Second, func() error {
		var rp v1alpha1.RemediationPolicy
		if err := c.Client.Get(t.Context(), types.NamespacedName{Name: "windowed"}, &rp); err != nil {
			return err
		}
		if rp.Status.NextWindow != nil || len(rp.Status.DeferredNodes) != 0 {
			return fmt.Errorf("status inside the window: nextWindow %v, deferredNodes %v", rp.Status.NextWindow, rp.Status.DeferredNodes)
		}
		return nil
	})
}

// waitEvent waits for an Event with reason about the named object.
func waitEvent(t *testing.T, c *cluster.Cluster, reason, regarding string) (ev eventSummary) {
	t.Helper()
	cluster.Eventually(t, 30*time.Second, func() error {
		evs, err := c.Clientset.EventsV1().Events(metav1.NamespaceAll).List(t.Context(), metav1.ListOptions{FieldSelector: "reason=" + reason})
		if err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Regarding.Name == regarding {
				ev = eventSummary{Type: e.Type, Note: e.Note}
				return nil
			}
		}
		return fmt.Errorf("no %s event about %s yet", reason, regarding)
	})
	return ev
}

type eventSummary struct{ Type, Note string }

// nudge changes an annotation on the policy so the reconciler runs again.
func nudge(t *testing.T, c *cluster.Cluster, policy string) {
	t.Helper()
	rp := &v1alpha1.RemediationPolicy{ObjectMeta: metav1.ObjectMeta{Name: policy}}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{"example.com/nudge":%q}}}`, time.Now().Format(time.RFC3339Nano))
	if err := c.Client.Patch(t.Context(), rp, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
		t.Fatal(err)
	}
}

// TestPauseAndExclude: a paused policy takes nothing and says so; unpaused
// it takes the node; the exclude label releases it at once although its
// condition still holds.
func TestPauseAndExclude(t *testing.T) {
	c := cluster.Start(t)
	if err := c.Client.Create(t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "p1", Labels: map[string]string{"pool": "web"}}}); err != nil {
		t.Fatal(err)
	}
	startController(t, c)
	setTrigger(t, c, "p1", corev1.ConditionTrue, time.Now().Add(time.Minute)) // urgent: a pause still holds it
	createPolicy(t, c, "frozen", func(rp *v1alpha1.RemediationPolicy) {
		rp.Spec.Drain.Enabled = ptr.To(false)
		rp.Spec.MaxUnhealthy = intstr.FromString("100%")
		rp.Spec.Paused = true
	})
	cluster.Eventually(t, 30*time.Second, func() error {
		var rp v1alpha1.RemediationPolicy
		if err := c.Client.Get(t.Context(), types.NamespacedName{Name: "frozen"}, &rp); err != nil {
			return err
		}
		want := []v1alpha1.DeferredNode{{Name: "p1", Reason: v1alpha1.DeferredPaused}}
		ready := apimeta.FindStatusCondition(rp.Status.Conditions, v1alpha1.ConditionReady)
		if fmt.Sprint(rp.Status.DeferredNodes) != fmt.Sprint(want) || ready == nil || ready.Reason != "Paused" {
			return fmt.Errorf("status: deferredNodes %v, Ready %+v; want %v and reason Paused", rp.Status.DeferredNodes, ready, want)
		}
		return nil
	})
	if n := node(t, c, "p1"); n.Spec.Unschedulable || state(n) != "" {
		t.Fatalf("a paused policy took p1: unschedulable %v, state %q", n.Spec.Unschedulable, state(n))
	}

	unpause := []byte(`{"spec":{"paused":false}}`)
	if err := c.Client.Patch(t.Context(), &v1alpha1.RemediationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "frozen"}}, client.RawPatch(types.MergePatchType, unpause)); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, "p1", "Cordoned", time.Minute)

	label := []byte(`{"metadata":{"labels":{"` + v1alpha1.LabelExclude + `":"true"}}}`)
	if _, err := c.Clientset.CoreV1().Nodes().Patch(t.Context(), "p1", types.MergePatchType, label, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, "p1", "", time.Minute)
	if node(t, c, "p1").Spec.Unschedulable {
		t.Error("p1 released but still cordoned")
	}
}
