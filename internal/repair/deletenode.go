// Package repair carries out the repair steps of a policy's ladder after a
// node was drained (docs/policy.md): DeleteNode, ClusterAPI and Webhook. Each
// is one function without state; controllers.Repairs runs them in the
// background and reports how they ended, and remediation.Decide decides
// everything else (when a step starts, what follows it, the budgets). A step
// is started again after a controller restart, so every action is safe to
// repeat: deleting a deleted Node, marking a marked Machine and resending a
// request with the same idempotency key change nothing more.
package repair

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/nodewarden/nodewarden/internal/drain"
)

// maxNamed is how many blocking pods an error names; a node can run a
// hundred, and the message ends up in an annotation and an Event.
const maxNamed = 5

// DeleteNode deletes node, for a node lifecycle controller (Karpenter, a
// cloud's, cluster-autoscaler) to replace the instance behind it.
//
// It refuses while the node still runs a pod that a drain would have evicted:
// anything but DaemonSet pods, mirror pods of static pods and finished pods
// (drain.Judge's Skip rules, with the default options, so that "drained"
// means the same here as in the drainer). A pod already terminating blocks
// too: deleting the Node now would leave the pod's termination to the pod
// garbage collector instead of its kubelet. The pods that may stay go with
// the Node: the garbage collector deletes pods bound to a Node that is gone.
//
// The delete has the node's UID as precondition, so a successor registered
// under the same name (a replaced instance that kept its hostname) is never
// deleted. The node already gone, or replaced by such a successor, is
// success: what the step asked for, this node gone, is the case.
func DeleteNode(ctx context.Context, c kubernetes.Interface, node *corev1.Node) error {
	current, err := c.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get node %s: %w", node.Name, err)
	}
	if current.UID != node.UID {
		// Checked before the pods: a successor's pods are listed under the
		// same spec.nodeName and would otherwise be blamed on this node.
		return nil
	}

	// The same listing as the drainer's: by spec.nodeName, never from a cache.
	pods, err := c.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", node.Name).String(),
	})
	if err != nil {
		return fmt.Errorf("list the pods of node %s: %w", node.Name, err)
	}
	if blocking := blockingPods(pods.Items); len(blocking) > 0 {
		return fmt.Errorf("node %s still runs %d pod(s) nodewarden did not evict, not deleting it: %s",
			node.Name, len(blocking), nameSome(blocking))
	}

	uid := node.UID
	err = c.CoreV1().Nodes().Delete(ctx, node.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	switch {
	case err == nil, apierrors.IsNotFound(err):
		return nil
	case apierrors.IsConflict(err):
		// The UID precondition failed between the Get and the Delete: a
		// successor took the name, and ours is gone.
		return nil
	}
	return fmt.Errorf("delete node %s: %w", node.Name, err)
}

// blockingPods names the pods that keep a node from being deleted.
func blockingPods(pods []corev1.Pod) []string {
	var out []string
	for i := range pods {
		pod := &pods[i]
		v := drain.Judge(pod, drain.Options{})
		if v.Action == drain.Skip {
			continue
		}
		name := pod.Namespace + "/" + pod.Name
		if pod.DeletionTimestamp != nil {
			name += " (terminating)"
		}
		out = append(out, name)
	}
	return out
}

func nameSome(names []string) string {
	if len(names) <= maxNamed {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:maxNamed], ", "), len(names)-maxNamed)
}
