// Package apiclient is the agent's Kubernetes client: the few calls it makes
// on its own Node, its Events and its Lease, over a REST client whose scheme
// holds core/v1 and coordination/v1 only.
//
// The agent runs on every node, so its memory is multiplied by the size of
// the cluster. client-go's generated clientset registers all of Kubernetes'
// API groups at start-up, and that alone costs the process more than the
// agent's whole budget (measured in docs/performance.md). Nothing the agent
// links may import it: not this package, not the agent's packages, not
// cmd/nodewarden-agent. cmd/nodewarden-agent's test keeps it that way.
package apiclient

import (
	"context"
	"fmt"
	goruntime "runtime"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/nodewarden/nodewarden/internal/version"
)

var (
	scheme         = runtime.NewScheme()
	codecs         = serializer.NewCodecFactory(scheme)
	parameterCodec = runtime.NewParameterCodec(scheme)
)

func init() {
	// Both register metav1's options and Status in their group-version too.
	if err := corev1.AddToScheme(scheme); err != nil {
		panic(err)
	}
	if err := coordinationv1.AddToScheme(scheme); err != nil {
		panic(err)
	}
}

// Client makes the agent's API calls. It is safe for concurrent use.
type Client struct {
	core         rest.Interface // /api/v1
	coordination rest.Interface // /apis/coordination.k8s.io/v1
}

// New returns a Client for cfg. The two REST clients share one HTTP client
// and one client-side rate limit (cfg.QPS, cfg.Burst).
func New(cfg *rest.Config) (*Client, error) {
	base := rest.CopyConfig(cfg)
	if base.UserAgent == "" {
		// What the API server's audit log and APF see: the agent, whichever
		// executable runs it.
		base.UserAgent = UserAgent()
	}
	if base.RateLimiter == nil && base.QPS > 0 {
		base.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(base.QPS, base.Burst)
	}
	base.NegotiatedSerializer = codecs.WithoutConversion()
	httpClient, err := rest.HTTPClientFor(base)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	restClient := func(apiPath string, gv *schema.GroupVersion) (rest.Interface, error) {
		c := rest.CopyConfig(base)
		c.APIPath, c.GroupVersion = apiPath, gv
		return rest.RESTClientForConfigAndClient(c, httpClient)
	}
	core, err := restClient("/api", &corev1.SchemeGroupVersion)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	coordination, err := restClient("/apis", &coordinationv1.SchemeGroupVersion)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &Client{core: core, coordination: coordination}, nil
}

// UserAgent is the agent's User-Agent header: nodewarden-agent/<version>
// (<os>/<arch>).
func UserAgent() string {
	return fmt.Sprintf("nodewarden-agent/%s (%s/%s)", version.Version, goruntime.GOOS, goruntime.GOARCH)
}

// GetNode reads a Node. ResourceVersion "0" in opts reads the API server's
// watch cache instead of etcd.
func (c *Client) GetNode(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Node, error) {
	node := &corev1.Node{}
	err := c.core.Get().Resource("nodes").Name(name).VersionedParams(&opts, parameterCodec).Do(ctx).Into(node)
	return node, err
}

// ListNodes lists Nodes; the agent always passes a field selector for its own.
func (c *Client) ListNodes(ctx context.Context, opts metav1.ListOptions) (*corev1.NodeList, error) {
	list := &corev1.NodeList{}
	err := c.core.Get().Resource("nodes").VersionedParams(&opts, parameterCodec).Timeout(timeout(opts)).Do(ctx).Into(list)
	return list, err
}

// WatchNodes watches Nodes.
func (c *Client) WatchNodes(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return c.core.Get().Resource("nodes").VersionedParams(&opts, parameterCodec).Timeout(timeout(opts)).Watch(ctx)
}

// timeout is the client-side timeout of a list or watch: the server-side
// one it asks for, or none.
func timeout(opts metav1.ListOptions) time.Duration {
	if opts.TimeoutSeconds == nil {
		return 0
	}
	return time.Duration(*opts.TimeoutSeconds) * time.Second
}

// PatchNodeStatus sends a strategic-merge patch to a Node's status.
func (c *Client) PatchNodeStatus(ctx context.Context, name string, patch []byte) error {
	return c.core.Patch(types.StrategicMergePatchType).Resource("nodes").Name(name).SubResource("status").
		Body(patch).Do(ctx).Error()
}

// CreateEvent creates a core/v1 Event in its namespace.
func (c *Client) CreateEvent(ctx context.Context, ev *corev1.Event) error {
	return c.core.Post().Namespace(ev.Namespace).Resource("events").Body(ev).Do(ctx).Error()
}

// GetLease reads a Lease.
func (c *Client) GetLease(ctx context.Context, namespace, name string) (*coordinationv1.Lease, error) {
	lease := &coordinationv1.Lease{}
	err := c.coordination.Get().Namespace(namespace).Resource("leases").Name(name).Do(ctx).Into(lease)
	return lease, err
}

// CreateLease creates a Lease in its namespace and returns it as created.
func (c *Client) CreateLease(ctx context.Context, lease *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	created := &coordinationv1.Lease{}
	err := c.coordination.Post().Namespace(lease.Namespace).Resource("leases").Body(lease).Do(ctx).Into(created)
	return created, err
}

// UpdateLease replaces a Lease, conditional on its resourceVersion, and
// returns it as updated.
func (c *Client) UpdateLease(ctx context.Context, lease *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	updated := &coordinationv1.Lease{}
	err := c.coordination.Put().Namespace(lease.Namespace).Resource("leases").Name(lease.Name).Body(lease).Do(ctx).Into(updated)
	return updated, err
}

// metadataListAccept asks the API server for a list's metadata only: a
// PartialObjectMetadataList, without the objects' spec and status.
const metadataListAccept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"

// ListNodePodsMetadata lists the metadata of the pods bound to node, in all
// namespaces: what the stuck-pod check needs (UID, deletionTimestamp), at a
// fraction of the pods' size in the agent's memory.
//
// It reads the API server's watch cache (resourceVersion "0"), as the
// kubelet does for the same field selector: every node asks this every
// check, and a list seconds stale judges "deleted minutes ago" all the same.
//
// PartialObjectMetadataList is not in the client's scheme, and needs not be:
// the JSON decoder fills an unregistered type it is handed as it is.
func (c *Client) ListNodePodsMetadata(ctx context.Context, node string) ([]metav1.PartialObjectMetadata, error) {
	opts := metav1.ListOptions{FieldSelector: "spec.nodeName=" + node, ResourceVersion: "0"}
	list := &metav1.PartialObjectMetadataList{}
	err := c.core.Get().Resource("pods").VersionedParams(&opts, parameterCodec).
		SetHeader("Accept", metadataListAccept).Do(ctx).Into(list)
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}
