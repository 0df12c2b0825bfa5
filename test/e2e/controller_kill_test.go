package e2e_test

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// TestControllerKilledMidDrain kills the leading controller with -9 while a
// PDB holds its drain, starts another, and checks that the new leader
// resumes the drain from the Node's state and finishes it once the PDB
// allows, never taking the app below its budget. It has a cluster of its
// own: it kills the cluster's controller.
func TestControllerKilledMidDrain(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addNodes(t, "kill", "kill-1", "kill-2", "kill-3")
	web := e.deployApp(t, "kill", "kill", 6, 0) // the PDB allows no disruption: the drain must wait
	lowest := web.watchAvailability(t)
	first := e.startController(t, "controller-1")
	e.createPolicy(t, "kill", "kill", nil)
	var leader string
	cluster.Eventually(t, time.Minute, func() error {
		if leader = e.leaseHolder(t); leader == "" {
			return fmt.Errorf("no controller holds the leader Lease yet")
		}
		return nil
	})

	e.hostEvent(t, "kill-1", rebootEvent, "Scheduled", time.Now().Add(47*time.Hour))
	draining := e.waitState(t, "kill-1", "Draining", time.Minute)
	since := draining.Annotations[v1alpha1.AnnotationStateSince]
	before := web.podsOn(t, "kill-1")
	if before == 0 {
		t.Fatal("no pods on kill-1 to drain; the test would prove nothing")
	}

	first.Kill()
	second := e.startController(t, "controller-2")
	// The new process takes over once the dead leader's Lease expires.
	cluster.Eventually(t, time.Minute, func() error {
		if second.Exited() {
			t.Fatalf("controller-2 exited: %v", second.Err())
		}
		if h := e.leaseHolder(t); h == leader || h == "" {
			return fmt.Errorf("leader Lease still held by %q", h)
		}
		return nil
	})
	n := e.node(t, "kill-1")
	if state(n) != "Draining" || n.Annotations[v1alpha1.AnnotationStateSince] != since {
		t.Errorf("after the takeover kill-1 is %q since %s, want still Draining since %s (resumed, not restarted)",
			state(n), n.Annotations[v1alpha1.AnnotationStateSince], since)
	}
	if got := web.podsOn(t, "kill-1"); got != before {
		t.Fatalf("pods evicted from kill-1 despite a PDB allowing none: %d -> %d", before, got)
	}
	if low := lowest(); low != web.replicas {
		t.Fatalf("PDB maxUnavailable=0 violated: available fell to %d of %d", low, web.replicas)
	}

	// One disruption at a time is allowed now: the new leader finishes the drain.
	web.setMaxUnavailable(t, 1)
	e.waitState(t, "kill-1", "Drained", 2*time.Minute)
	if got := web.podsOn(t, "kill-1"); got != 0 {
		t.Errorf("kill-1 Drained with %d pods left", got)
	}
	web.waitAvailable(t, time.Minute)
	if low := lowest(); low < web.replicas-1 {
		t.Errorf("PDB maxUnavailable=1 violated: available fell to %d of %d", low, web.replicas)
	}
	for _, other := range []string{"kill-2", "kill-3"} {
		if n := e.node(t, other); n.Spec.Unschedulable || state(n) != "" {
			t.Errorf("untriggered %s touched: unschedulable %v, state %q", other, n.Spec.Unschedulable, state(n))
		}
	}
	var succeeded int
	for _, ev := range e.events(t, "kill-1") {
		if ev.Reason == "DrainSucceeded" && ev.Type == corev1.EventTypeNormal {
			succeeded++
		}
	}
	if succeeded != 1 {
		t.Errorf("%d DrainSucceeded events on kill-1, want 1", succeeded)
	}
}
