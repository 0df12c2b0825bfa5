package metadata

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/agent/apiclient"
)

// NodeStateFromAPI returns a NodeStateFunc that reads the node's
// nodewarden.io/state annotation with one GET of the Node, which the agent
// may do (it may get and watch its own Node). The Azure provider calls it
// only while one of its scheduled events waits for an acknowledgement, so
// it costs nothing in the steady state and needs no second watch next to
// the condition writer's.
func NodeStateFromAPI(client *apiclient.Client, node string) NodeStateFunc {
	return func(ctx context.Context) (string, error) {
		n, err := client.GetNode(ctx, node, metav1.GetOptions{ResourceVersion: "0"}) // from the watch cache: cheap, and fresh enough
		if err != nil {
			return "", err
		}
		return n.Annotations[v1alpha1.AnnotationState], nil
	}
}
