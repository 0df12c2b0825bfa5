package drain

import (
	"context"
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/remediation"
)

// Outcome is the node state a finished Drain leads to: Drained when drainErr
// is nil, DrainFailed when the drain timed out or was blocked. ok is false
// when the drain was only interrupted: the node stays Draining, and whoever
// holds it next resumes the drain.
func Outcome(drainErr error) (state v1alpha1.NodeState, ok bool) {
	switch {
	case drainErr == nil:
		return v1alpha1.StateDrained, true
	case errors.Is(drainErr, ErrTimeout), errors.Is(drainErr, ErrBlocked):
		return v1alpha1.StateDrainFailed, true
	default:
		return "", false
	}
}

// Finish records the Outcome of a drain on the node with
// remediation.StatePatch, and returns the Node as written. It writes nothing
// (and returns nil) for an interrupted drain, or when the node is no longer
// Draining: a release or a human's uncordon meanwhile wins over the drain's
// result. The patch carries the Node's resourceVersion, so a concurrent
// change makes it read the Node again instead of overwriting that change.
func (d *Drainer) Finish(ctx context.Context, nodeName string, drainErr error) (*corev1.Node, error) {
	state, ok := Outcome(drainErr)
	if !ok {
		return nil, nil
	}
	var wrote *corev1.Node
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := d.Client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if node.Annotations[v1alpha1.AnnotationState] != string(v1alpha1.StateDraining) {
			return nil
		}
		body, err := remediation.StatePatch(node, state, time.Now()).MergePatch()
		if err != nil {
			return err
		}
		wrote, err = d.Client.CoreV1().Nodes().Patch(ctx, nodeName, types.MergePatchType, body, metav1.PatchOptions{})
		return err
	})
	return wrote, err
}
