package drain_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/drain"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// testMultiplePDBs: two PDBs select the same pods, which the Eviction API
// refuses with a 500 however often it is asked. The drain fails at once,
// naming the pods and the cause, instead of retrying until its deadline.
func testMultiplePDBs(t *testing.T, s *scenario) {
	const node = "multi-a"
	s.addNodes(node)
	s.deployment("web", 2, nil)
	s.pdb("web", 1)
	s.pdbSelecting("web-too", "web", 1)
	s.cordon(node, v1alpha1.StateDraining)
	before := s.podsOn(node)

	type outcome struct {
		res drain.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := s.drainer().Drain(s.ctx, node, drain.Options{}, time.Now().Add(2*time.Minute))
		done <- outcome{res, err}
	}()
	var got outcome
	select {
	case got = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Drain still running after 15s; a pod that two PDBs select can never be evicted")
	}

	res, err := got.res, got.err
	if !errors.Is(err, drain.ErrBlocked) {
		t.Fatalf("Drain = %+v, %v; want ErrBlocked", res, err)
	}
	// Both pods are refused if both evictions were under way when the first
	// refusal came back; the drain need not try the second.
	if len(res.Blocked) == 0 {
		t.Errorf("Result.Blocked is empty")
	}
	for _, b := range res.Blocked {
		if !slices.Contains(names(before), b.Name) || !strings.Contains(b.Reason, "more than one PodDisruptionBudget") {
			t.Errorf("blocked %v, want one of %v for its PDBs", b, names(before))
		}
		if !strings.Contains(err.Error(), b.String()) || !strings.Contains(res.BlockedBy, b.String()) {
			t.Errorf("neither the error (%v) nor BlockedBy (%q) say %v", err, res.BlockedBy, b)
		}
	}
	if res.Evicted != 0 || res.Retries != 0 || res.Errors != 0 {
		t.Errorf("result %+v: want nothing evicted and nothing retried", res)
	}
	if after := uids(s.podsOn(node)); !slices.Equal(uids(before), after) {
		t.Errorf("pods on the node changed from %v to %v", uids(before), after)
	}
}

// testForce: Force deletes the pods that a PDB allowing no disruption keeps
// from eviction, and still never touches a protected pod. Without Force, the
// failed drain names the PDB's own reason.
func testForce(t *testing.T, s *scenario) {
	const node = "force-a"
	s.addNodes(node)
	s.deployment("web", 2, nil)
	s.pdb("web", 0)
	s.waitPDB("web", 2, 0)
	s.barePod("keep", map[string]string{"example.com/keep": "true"})
	s.waitRunningOn(node, 3)
	s.cordon(node, v1alpha1.StateDraining)
	web := slices.DeleteFunc(s.podsOn(node), func(p corev1.Pod) bool { return p.Name == "keep" })

	var deleted atomic.Int32
	d := s.drainer()
	d.OnDeleted = func(*corev1.Pod) { deleted.Add(1) }
	d.OnEvicted = func(p *corev1.Pod) { t.Errorf("pod %s evicted by a forced drain", p.Name) }
	opts := drain.Options{EvictUnreplicatedPods: true, ProtectedPodAnnotations: []string{"example.com/keep"}}
	force := opts
	force.Force = true

	t.Run("a protected pod still blocks", func(t *testing.T) {
		before := uids(s.podsOn(node))
		res, err := d.Drain(s.ctx, node, force, time.Now().Add(time.Minute))
		if !errors.Is(err, drain.ErrBlocked) {
			t.Fatalf("Drain = %+v, %v; want ErrBlocked", res, err)
		}
		if want := "force/keep (protected by annotation example.com/keep)"; res.BlockedBy != want {
			t.Errorf("BlockedBy = %q, want %q", res.BlockedBy, want)
		}
		if res.Deleted != 0 || deleted.Load() != 0 {
			t.Errorf("a blocked drain deleted %d pods", res.Deleted)
		}
		if after := uids(s.podsOn(node)); !slices.Equal(before, after) {
			t.Errorf("pods on the node changed from %v to %v", before, after)
		}
	})

	// The protected pod's owner takes it away: from now only the PDB stands
	// in the way.
	if err := s.c.Clientset.CoreV1().Pods(s.ns).Delete(s.ctx, "keep", metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 30*time.Second, func() error {
		if left := s.podsOn(node); len(left) != len(web) {
			return fmt.Errorf("pods on the node: %v, want only %v", names(left), names(web))
		}
		return nil
	})

	t.Run("without Force the PDB holds and is named", func(t *testing.T) {
		res, err := d.Drain(s.ctx, node, opts, time.Now().Add(3*time.Second))
		if !errors.Is(err, drain.ErrTimeout) {
			t.Fatalf("Drain = %+v, %v; want ErrTimeout", res, err)
		}
		for _, p := range web {
			want := fmt.Sprintf("force/%s (eviction refused: The disruption budget web needs 2 healthy pods and has 2 currently)", p.Name)
			if !strings.Contains(res.BlockedBy, want) {
				t.Errorf("BlockedBy = %q, want it to contain %q", res.BlockedBy, want)
			}
		}
		if res.Terminating != 0 {
			t.Errorf("Terminating = %d, want 0: nothing was evicted", res.Terminating)
		}
	})

	t.Run("Force deletes what the PDB protects", func(t *testing.T) {
		res, err := d.Drain(s.ctx, node, force, time.Now().Add(time.Minute))
		if err != nil {
			t.Fatalf("Drain: %v (result %+v)", err, res)
		}
		if res.Deleted != len(web) || res.Evicted != 0 || int(deleted.Load()) != len(web) {
			t.Errorf("result %+v, OnDeleted called %d times; want the %d web pods deleted, none evicted", res, deleted.Load(), len(web))
		}
		if left := s.podsOn(node); len(left) != 0 {
			t.Errorf("pods left on the node: %v", names(left))
		}
	})
}

// testDisruptionAnnotations: with a policy's defaults, pods annotated
// karpenter.sh/do-not-disrupt=true or
// cluster-autoscaler.kubernetes.io/safe-to-evict=false block the drain, which
// names them and the annotation, and evicts nothing (nor does Force delete
// them); with honorDisruptionAnnotations false they are evicted like any pod.
func testDisruptionAnnotations(t *testing.T, s *scenario) {
	const node = "dnd-a"
	s.addNodes(node)
	s.barePod("karpenter", map[string]string{"karpenter.sh/do-not-disrupt": "true"})
	s.barePod("autoscaler", map[string]string{"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"})
	s.barePod("plain", nil)
	s.waitRunningOn(node, 3)
	s.cordon(node, v1alpha1.StateDraining)
	d := s.drainer()

	honored := drain.OptionsFrom(v1alpha1.DrainSpec{EvictUnreplicatedPods: true})
	if !honored.HonorDisruptionAnnotations {
		t.Fatal("OptionsFrom: honorDisruptionAnnotations absent must default to true")
	}
	for _, force := range []bool{false, true} {
		t.Run(fmt.Sprintf("honored, force %v", force), func(t *testing.T) {
			opts := honored
			opts.Force = force
			before := uids(s.podsOn(node))
			res, err := d.Drain(s.ctx, node, opts, time.Now().Add(time.Minute))
			if !errors.Is(err, drain.ErrBlocked) {
				t.Fatalf("Drain = %+v, %v; want ErrBlocked", res, err)
			}
			for _, want := range []string{
				"dnd/karpenter (protected by annotation karpenter.sh/do-not-disrupt=true (honorDisruptionAnnotations is true))",
				"dnd/autoscaler (protected by annotation cluster-autoscaler.kubernetes.io/safe-to-evict=false (honorDisruptionAnnotations is true))",
			} {
				if !strings.Contains(res.BlockedBy, want) {
					t.Errorf("BlockedBy = %q, want it to contain %q", res.BlockedBy, want)
				}
			}
			if strings.Contains(res.BlockedBy, "plain") {
				t.Errorf("BlockedBy = %q names the unprotected pod", res.BlockedBy)
			}
			if res.Evicted != 0 || res.Deleted != 0 {
				t.Errorf("a blocked drain evicted %d and deleted %d pods", res.Evicted, res.Deleted)
			}
			if after := uids(s.podsOn(node)); !slices.Equal(before, after) {
				t.Errorf("pods on the node changed from %v to %v", before, after)
			}
		})
	}

	t.Run("honorDisruptionAnnotations false evicts them", func(t *testing.T) {
		opts := drain.OptionsFrom(v1alpha1.DrainSpec{EvictUnreplicatedPods: true, HonorDisruptionAnnotations: ptr.To(false)})
		res, err := d.Drain(s.ctx, node, opts, time.Now().Add(time.Minute))
		if err != nil {
			t.Fatalf("Drain: %v (result %+v)", err, res)
		}
		if res.Evicted != 3 {
			t.Errorf("Evicted = %d, want 3", res.Evicted)
		}
		if left := s.podsOn(node); len(left) != 0 {
			t.Errorf("pods left on the node: %v", names(left))
		}
	})
}
