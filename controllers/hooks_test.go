package controllers_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// TestPreDrainHook: a pre-drain hook another controller put on the node
// holds its drain (the node stays Cordoned, a HookHolding Event names the
// hook, status.deferredNodes lists it); once the hook's owner removes it,
// the drain starts and the node reaches Drained. Removing an annotation
// outside nodewarden.io/ must wake the reconciler.
func TestPreDrainHook(t *testing.T) {
	c := cluster.Start(t) // no kubelets: the node runs no pods, so its drain finishes at once
	const hook = v1alpha1.PreDrainHookPrefix + "backup"
	if err := c.Client.Create(t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:        "h1",
		Labels:      map[string]string{"pool": "web"},
		Annotations: map[string]string{hook: "example.com/backup-controller"},
	}}); err != nil {
		t.Fatal(err)
	}
	startController(t, c)
	setTrigger(t, c, "h1", corev1.ConditionTrue, time.Now().Add(47*time.Hour))
	createPolicy(t, c, "hooked", func(rp *v1alpha1.RemediationPolicy) {
		rp.Spec.MaxUnhealthy = intstr.FromString("100%")
		rp.Spec.Drain.HookTimeout = &metav1.Duration{Duration: time.Hour}
	})

	waitState(t, c, "h1", "Cordoned", time.Minute)
	holding := waitEvent(t, c, "HookHolding", "h1")
	if holding.Type != corev1.EventTypeNormal || !strings.Contains(holding.Note, hook) || !strings.Contains(holding.Note, "example.com/backup-controller") {
		t.Errorf("HookHolding: %s %q, want a Normal Event naming %s and its owner", holding.Type, holding.Note, hook)
	}
	cluster.Eventually(t, 30*time.Second, func() error {
		var rp v1alpha1.RemediationPolicy
		if err := c.Client.Get(t.Context(), types.NamespacedName{Name: "hooked"}, &rp); err != nil {
			return err
		}
		want := []v1alpha1.DeferredNode{{Name: "h1", Reason: v1alpha1.DeferredHookHolding}}
		if fmt.Sprint(rp.Status.DeferredNodes) != fmt.Sprint(want) {
			return fmt.Errorf("status.deferredNodes %v, want %v", rp.Status.DeferredNodes, want)
		}
		return nil
	})
	time.Sleep(2 * time.Second)
	if s := state(node(t, c, "h1")); s != "Cordoned" {
		t.Fatalf("state %q while the pre-drain hook is on the node, want Cordoned", s)
	}

	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:null}}}`, hook)
	if _, err := c.Clientset.CoreV1().Nodes().Patch(t.Context(), "h1", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, "h1", "Drained", time.Minute)
	cluster.Eventually(t, 30*time.Second, func() error {
		var rp v1alpha1.RemediationPolicy
		if err := c.Client.Get(t.Context(), types.NamespacedName{Name: "hooked"}, &rp); err != nil {
			return err
		}
		if len(rp.Status.DeferredNodes) != 0 {
			return fmt.Errorf("status.deferredNodes %v after the hook went", rp.Status.DeferredNodes)
		}
		return nil
	})
}
