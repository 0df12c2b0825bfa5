package cluster_test

import (
	"bytes"
	"fmt"
	"os/exec"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/nodewarden/nodewarden/internal/agent/runtimestatus"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// TestLevel3RealNode: a pod on the real node runs its container (pulled from
// the local registry), as a non-root user, reports an IP from the CNI bridge,
// and the API server reaches the kubelet for its logs; kwok's nodes stay
// kwok's.
func TestLevel3RealNode(t *testing.T) {
	c := cluster.StartWith(t, cluster.Options{RealNode: true})
	ctx := t.Context()
	node := c.RealNode
	if _, err := c.AddNode(ctx, "kw-a", cluster.NodeOptions{}); err != nil {
		t.Fatal(err)
	}

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "sleeper", Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:                      node.Name,
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			SecurityContext:               &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532)},
			Containers:                    []corev1.Container{{Name: "sleep", Image: node.PauseImage}},
		},
	}
	// The ServiceAccount admission plugin rejects pods until the
	// controller-manager has created the namespace's default ServiceAccount.
	cluster.Eventually(t, time.Minute, func() error {
		_, err := c.Clientset.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
		return err
	})
	cluster.Eventually(t, 2*time.Minute, func() error {
		p, err := c.Clientset.CoreV1().Pods("default").Get(ctx, "sleeper", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
			return fmt.Errorf("pod phase %s, IP %q, conditions %v; see %s/kubelet.log", p.Status.Phase, p.Status.PodIP, p.Status.ContainerStatuses, node.LogDir)
		}
		return nil
	})

	// The agent's CRI query against a real containerd: here rather than in
	// internal/agent/runtimestatus, so that it costs no real node of its own.
	t.Run("runtimestatus", func(t *testing.T) {
		p, err := c.Clientset.CoreV1().Pods("default").Get(ctx, "sleeper", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		snap, err := runtimestatus.Query(ctx, node.CRIEndpoint(), 10*time.Second)
		if err != nil {
			t.Fatalf("Query %s: %v", node.CRIEndpoint(), err)
		}
		ready := false
		for _, cond := range snap.Conditions {
			if cond.Type == "RuntimeReady" {
				ready = cond.Status
			}
		}
		if !ready {
			t.Errorf("containerd's conditions %+v, want RuntimeReady true", snap.Conditions)
		}
		if n := snap.RunningPods[string(p.UID)]; n != 1 {
			t.Errorf("running containers of pod %s (UID %s): %d, want 1 (running pods %v)", p.Name, p.UID, n, snap.RunningPods)
		}
	})

	kubectl := exec.CommandContext(ctx, cluster.BinDir()+"/kubectl", "--kubeconfig", c.Kubeconfig, "logs", "-n", "default", "sleeper")
	var stderr bytes.Buffer
	kubectl.Stderr = &stderr
	if err := kubectl.Run(); err != nil {
		t.Errorf("kubectl logs through the kubelet: %v: %s", err, stderr.String())
	}

	kw, err := c.Clientset.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := kw.Annotations[cluster.KwokNodeAnnotation]; ok {
		t.Errorf("the real node carries kwok's annotation")
	}
	var internal string
	for _, a := range kw.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			internal = a.Address
		}
	}
	if internal != node.IP {
		t.Errorf("InternalIP %q, want %q", internal, node.IP)
	}
}
