package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/nodewarden/nodewarden/test/cluster"
)

func TestLevel1APIServer(t *testing.T) {
	c := cluster.Start(t)
	ctx := t.Context()

	v, err := c.Clientset.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != "v1.37.2" {
		t.Errorf("server version %q, want v1.37.2 (binaries must be version-stamped)", v.GitVersion)
	}
	if _, err := c.Clientset.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Errorf("default namespace: %v", err)
	}
	// The API server enforces validation: a Node with an invalid name is rejected.
	_, err = c.Clientset.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "Not_A_DNS_Name"}}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Errorf("invalid node name: got %v, want Invalid", err)
	}
}

func TestLevel2DeploymentPDBEviction(t *testing.T) {
	c := cluster.StartFull(t)
	ctx := t.Context()
	for _, n := range []string{"kw-a", "kw-b", "kw-c"} {
		if _, err := c.AddNode(ctx, n, cluster.NodeOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.k8s.io/pause:3.10"}}},
			},
		},
	}
	if _, err := c.Clientset.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 60*time.Second, func() error {
		d, err := c.Clientset.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.AvailableReplicas != 3 {
			return fmt.Errorf("deployment web: %d/3 available", d.Status.AvailableReplicas)
		}
		return nil
	})

	// Cordon the victim's node first, so the replacement lands elsewhere
	// (well before the eviction, so the scheduler has seen it).
	pods, err := c.Clientset.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	victim := pods.Items[0]
	before := map[string]bool{} // the victim's node may hold another of them
	for _, p := range pods.Items {
		before[p.Name] = true
	}
	cordon(t, c, victim.Spec.NodeName)

	// A PDB that allows no disruption: the disruption controller computes it,
	// and the API server refuses the eviction with 429.
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: ptr.To(intstr.FromInt32(0)),
			Selector:       &metav1.LabelSelector{MatchLabels: labels},
		},
	}
	if _, err := c.Clientset.PolicyV1().PodDisruptionBudgets("default").Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPDB(t, c, 3, 0)

	err = evict(ctx, c, victim)
	if !apierrors.IsTooManyRequests(err) {
		t.Fatalf("eviction against a PDB with no disruptions allowed: got %v, want 429 TooManyRequests", err)
	}

	// Allow one disruption.
	pdb, _ = c.Clientset.PolicyV1().PodDisruptionBudgets("default").Get(ctx, "web", metav1.GetOptions{})
	pdb.Spec.MaxUnavailable = ptr.To(intstr.FromInt32(1))
	if _, err := c.Clientset.PolicyV1().PodDisruptionBudgets("default").Update(ctx, pdb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPDB(t, c, 3, 1)
	if err := evict(ctx, c, victim); err != nil {
		t.Fatalf("eviction with one disruption allowed: %v", err)
	}
	cluster.Eventually(t, 60*time.Second, func() error {
		pods, err := c.Clientset.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return err
		}
		running := 0
		for _, p := range pods.Items {
			if p.Name == victim.Name {
				return fmt.Errorf("evicted pod %s still exists (phase %s)", p.Name, p.Status.Phase)
			}
			if !before[p.Name] && p.Spec.NodeName == victim.Spec.NodeName {
				return fmt.Errorf("replacement pod %s scheduled onto cordoned node %s", p.Name, p.Spec.NodeName)
			}
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		if running != 3 {
			return fmt.Errorf("%d/3 pods Running after the eviction", running)
		}
		return nil
	})
}

func waitPDB(t *testing.T, c *cluster.Cluster, healthy, allowed int32) {
	t.Helper()
	cluster.Eventually(t, 60*time.Second, func() error {
		pdb, err := c.Clientset.PolicyV1().PodDisruptionBudgets("default").Get(t.Context(), "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pdb.Status.ObservedGeneration != pdb.Generation || pdb.Status.CurrentHealthy != healthy || pdb.Status.DisruptionsAllowed != allowed {
			return fmt.Errorf("pdb web: generation %d observed %d, healthy %d, disruptionsAllowed %d; want healthy %d allowed %d",
				pdb.Generation, pdb.Status.ObservedGeneration, pdb.Status.CurrentHealthy, pdb.Status.DisruptionsAllowed, healthy, allowed)
		}
		return nil
	})
}

func evict(ctx context.Context, c *cluster.Cluster, pod corev1.Pod) error {
	return c.Clientset.PolicyV1().Evictions(pod.Namespace).Evict(ctx, &policyv1.Eviction{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace},
	})
}

func cordon(t *testing.T, c *cluster.Cluster, node string) {
	t.Helper()
	_, err := c.Clientset.CoreV1().Nodes().Patch(t.Context(), node, "application/strategic-merge-patch+json",
		[]byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(errors.Join(fmt.Errorf("cordon %s", node), err))
	}
}
