// Package lease keeps the agent's heartbeat: a coordination.k8s.io Lease per
// node, renewed on a timer. A Lease is a few hundred bytes; renewing it costs
// far less than rewriting the Node (tens of KiB, watched by every controller)
// as node-problem-detector does on every sync.
package lease

import (
	"context"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/nodewarden/nodewarden/internal/agent/apiclient"
	"github.com/nodewarden/nodewarden/internal/agent/metrics"
)

// Name is the Lease of the agent on node.
func Name(node string) string { return "nodewarden-agent-" + node }

// Heartbeat renews the agent's Lease.
type Heartbeat struct {
	Client    *apiclient.Client
	Namespace string
	Node      string
	// Interval between renewals; Duration is what the Lease promises (a
	// watcher calls the agent dead when renewTime+Duration has passed).
	Interval, Duration time.Duration
	Log                logr.Logger
	Metrics            *metrics.Agent

	// last is the Lease as this Heartbeat last wrote it, so that a renewal
	// is one update instead of a get and an update; nil until the first
	// write and after a failed one, when the Lease is read again.
	last *coordinationv1.Lease
}

// Run renews the Lease now and every Interval until ctx ends. A failed
// renewal is retried sooner, but the Lease itself only says "alive".
func (h *Heartbeat) Run(ctx context.Context) {
	for {
		wait := h.Interval
		err := h.renew(ctx)
		if apierrors.IsForbidden(err) {
			// E.g. an agent dropped into node-problem-detector's DaemonSet,
			// whose RBAC has no Leases: everything else works.
			h.Log.Error(err, "not allowed to manage the heartbeat Lease; running without one", "lease", Name(h.Node), "namespace", h.Namespace)
			return
		}
		if err != nil {
			h.Log.Error(err, "renewing lease failed", "lease", Name(h.Node))
			wait = min(h.Interval, 5*time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (h *Heartbeat) renew(ctx context.Context) error {
	start := time.Now()
	lease, err := h.write(ctx, h.last)
	h.Metrics.ObserveAPI("renew_lease", start, err)
	if err != nil {
		// Changed or deleted by someone else, maybe: read it again next time.
		lease = nil
	}
	h.last = lease
	return err
}

// write creates the Lease or renews last, reading the Lease first when
// last is nil, and returns the Lease as written.
func (h *Heartbeat) write(ctx context.Context, last *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	now := metav1.NewMicroTime(time.Now())
	spec := coordinationv1.LeaseSpec{
		HolderIdentity:       ptr.To(h.Node),
		LeaseDurationSeconds: ptr.To(int32(h.Duration / time.Second)),
		RenewTime:            &now,
	}
	lease := last
	if lease == nil {
		var err error
		lease, err = h.Client.GetLease(ctx, h.Namespace, Name(h.Node))
		if apierrors.IsNotFound(err) {
			spec.AcquireTime = &now
			return h.Client.CreateLease(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{
					Name: Name(h.Node), Namespace: h.Namespace,
					Labels: map[string]string{"app.kubernetes.io/name": "nodewarden", "app.kubernetes.io/component": "agent"},
				},
				Spec: spec,
			})
		}
		if err != nil {
			return nil, err
		}
	}
	spec.AcquireTime = lease.Spec.AcquireTime
	lease.Spec = spec
	return h.Client.UpdateLease(ctx, lease)
}
