package repair

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/nodewarden/nodewarden/test/cluster"
)

const testNamespace = "repair"

// TestDeleteNode runs DeleteNode against a level-2 cluster, where kwok runs
// the nodes' pods and the DaemonSet and Deployment controllers own them as
// on a real cluster: it deletes a drained node and a node with only pods a
// drain leaves, refuses a node with a pod a drain would evict, and never
// touches another node.
func TestDeleteNode(t *testing.T) {
	c := cluster.StartFull(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if _, err := c.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A node that runs a pod and is never the one deleted.
	if _, err := c.AddNode(ctx, "bystander", cluster.NodeOptions{}); err != nil {
		t.Fatal(err)
	}
	createDeployment(ctx, t, c, "bystander-web", "bystander")
	waitPods(ctx, t, c, "bystander", 1)

	for _, tc := range []struct {
		name string
		// setup puts pods on the node and returns how many to wait for.
		setup func(t *testing.T, node string) int
		// wantErr lists what the refusal must say; nil: the node is deleted.
		wantErr []string
	}{{
		name:  "drained",
		setup: func(*testing.T, string) int { return 0 },
	}, {
		name: "only-daemonset-pod",
		setup: func(t *testing.T, node string) int {
			createDaemonSet(ctx, t, c, node+"-agent", node)
			return 1
		},
	}, {
		name: "mirror-and-finished-pods",
		setup: func(t *testing.T, node string) int {
			createPod(ctx, t, c, node, node+"-static", map[string]string{corev1.MirrorPodAnnotationKey: "mirror"}, nil)
			// kwok must not make it Running again.
			p := createPod(ctx, t, c, node, node+"-job", map[string]string{cluster.KwokDisregardAnnotation: "true"}, nil)
			p.Status.Phase = corev1.PodSucceeded
			if _, err := c.Clientset.CoreV1().Pods(testNamespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			return 2
		},
	}, {
		name: "deployment-pod",
		setup: func(t *testing.T, node string) int {
			createDaemonSet(ctx, t, c, node+"-agent", node)
			createDeployment(ctx, t, c, node+"-web", node)
			return 2
		},
		wantErr: []string{"still runs 1 pod(s) nodewarden did not evict", testNamespace + "/deployment-pod-web-"},
	}, {
		name: "terminating-pod",
		setup: func(t *testing.T, node string) int {
			// The finalizer keeps it terminating as long as the test needs.
			createPod(ctx, t, c, node, node+"-leaving", map[string]string{cluster.KwokDisregardAnnotation: "true"}, []string{"nodewarden.test/hold"})
			if err := c.Clientset.CoreV1().Pods(testNamespace).Delete(ctx, node+"-leaving", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			return 1
		},
		wantErr: []string{testNamespace + "/terminating-pod-leaving (terminating)"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			node, err := c.AddNode(ctx, tc.name, cluster.NodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			waitPods(ctx, t, c, tc.name, tc.setup(t, tc.name))

			err = DeleteNode(ctx, c.Clientset, node)
			_, getErr := c.Clientset.CoreV1().Nodes().Get(ctx, tc.name, metav1.GetOptions{})
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("DeleteNode: %v, want the node deleted", err)
				}
				if !apierrors.IsNotFound(getErr) {
					t.Errorf("node %s after DeleteNode: %v, want NotFound", tc.name, getErr)
				}
				// Repeated after a restart: the node is gone, which is success.
				if err := DeleteNode(ctx, c.Clientset, node); err != nil {
					t.Errorf("DeleteNode again: %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("DeleteNode succeeded, want a refusal")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("DeleteNode: %q does not say %q", err, w)
				}
			}
			if getErr != nil {
				t.Errorf("the refused node %s: %v, want it still there", tc.name, getErr)
			}
		})
	}

	for _, name := range []string{"bystander", "deployment-pod", "terminating-pod"} {
		if _, err := c.Clientset.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("node %s: %v, want it untouched", name, err)
		}
	}
}

// TestDeleteNodeSparesSuccessor: a Node deleted and registered again under
// the same name (an instance replaced with its hostname) is a new node: the
// old one's DeleteNode succeeds without deleting it, whether the successor
// was there before DeleteNode looked or appeared between its check and its
// delete (the UID precondition, enforced by the API server).
func TestDeleteNodeSparesSuccessor(t *testing.T) {
	c := cluster.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// reborn deletes node and creates it again, returning the successor.
	reborn := func(t *testing.T, name string) *corev1.Node {
		if err := c.Clientset.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		n, err := c.Clientset.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, tc := range []struct {
		name string
		// successor makes the successor, before DeleteNode or during it.
		run func(t *testing.T, old *corev1.Node) (successor *corev1.Node, err error)
	}{{
		name: "before",
		run: func(t *testing.T, old *corev1.Node) (*corev1.Node, error) {
			successor := reborn(t, old.Name)
			return successor, DeleteNode(ctx, c.Clientset, old)
		},
	}, {
		name: "between-check-and-delete",
		run: func(t *testing.T, old *corev1.Node) (*corev1.Node, error) {
			var successor *corev1.Node
			hooked := &beforeNodeDelete{Interface: c.Clientset, hook: func() { successor = reborn(t, old.Name) }}
			err := DeleteNode(ctx, hooked, old)
			return successor, err
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			old, err := c.Clientset.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "reborn-" + tc.name}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			successor, err := tc.run(t, old)
			if err != nil {
				t.Fatalf("DeleteNode of the old node: %v, want nil (it is gone)", err)
			}
			if successor == nil {
				t.Fatal("the successor was never created: DeleteNode did not reach its delete")
			}
			got, err := c.Clientset.CoreV1().Nodes().Get(ctx, old.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("the successor: %v, want it still there", err)
			}
			if got.UID != successor.UID || got.UID == old.UID {
				t.Errorf("node %s has UID %s; old %s, successor %s", old.Name, got.UID, old.UID, successor.UID)
			}
		})
	}
}

// beforeNodeDelete runs hook just before a Node delete reaches the API
// server: the window between DeleteNode's check and its delete.
type beforeNodeDelete struct {
	kubernetes.Interface
	hook func()
}

func (b *beforeNodeDelete) CoreV1() typedcorev1.CoreV1Interface {
	return hookedCore{b.Interface.CoreV1(), b.hook}
}

type hookedCore struct {
	typedcorev1.CoreV1Interface
	hook func()
}

func (h hookedCore) Nodes() typedcorev1.NodeInterface {
	return hookedNodes{h.CoreV1Interface.Nodes(), h.hook}
}

type hookedNodes struct {
	typedcorev1.NodeInterface
	hook func()
}

func (h hookedNodes) Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	h.hook()
	return h.NodeInterface.Delete(ctx, name, opts)
}

func podSpecOn(node string) corev1.PodSpec {
	return corev1.PodSpec{
		NodeSelector: map[string]string{"kubernetes.io/hostname": node},
		Containers:   []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}},
	}
}

func createDeployment(ctx context.Context, t *testing.T, c *cluster.Cluster, name, node string) {
	t.Helper()
	labels := map[string]string{"app": name}
	one := int32(1)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNamespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpecOn(node)},
		},
	}
	if _, err := c.Clientset.AppsV1().Deployments(testNamespace).Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func createDaemonSet(ctx context.Context, t *testing.T, c *cluster.Cluster, name, node string) {
	t.Helper()
	labels := map[string]string{"app": name}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNamespace},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpecOn(node)},
		},
	}
	if _, err := c.Clientset.AppsV1().DaemonSets(testNamespace).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// createPod creates a pod bound to node, as the kubelet binds a static
// pod's mirror.
func createPod(ctx context.Context, t *testing.T, c *cluster.Cluster, node, name string, annotations map[string]string, finalizers []string) *corev1.Pod {
	t.Helper()
	spec := podSpecOn(node)
	spec.NodeName = node
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNamespace, Annotations: annotations, Finalizers: finalizers},
		Spec:       spec,
	}
	created, err := c.Clientset.CoreV1().Pods(testNamespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return created
}

// waitPods waits until node has want pods, each Running or finished (a
// pod the scheduler has not bound yet is not on the node for DeleteNode).
func waitPods(ctx context.Context, t *testing.T, c *cluster.Cluster, node string, want int) {
	t.Helper()
	cluster.Eventually(t, 60*time.Second, func() error {
		pods, err := c.Clientset.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node).String(),
		})
		if err != nil {
			return err
		}
		var states []string
		settled := 0
		for _, p := range pods.Items {
			states = append(states, p.Name+"="+string(p.Status.Phase))
			if p.Status.Phase != corev1.PodPending || p.DeletionTimestamp != nil || p.Annotations[cluster.KwokDisregardAnnotation] != "" {
				settled++
			}
		}
		if len(pods.Items) != want || settled != want {
			return fmt.Errorf("node %s: pods %v, want %d settled", node, states, want)
		}
		return nil
	})
}
