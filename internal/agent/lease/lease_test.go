package lease

import (
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/nodewarden/nodewarden/test/cluster"
)

// requestLog records the method of every request to the API server.
type requestLog struct {
	mu      sync.Mutex
	methods []string
}

func (l *requestLog) RoundTrip(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		l.mu.Lock()
		l.methods = append(l.methods, r.Method)
		l.mu.Unlock()
		return rt.RoundTrip(r)
	})
}

// take returns the methods since the last take.
func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.methods
	l.methods = nil
	return m
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A renewal is one update; the Lease is read again only after a failed
// write, so one deleted or changed by someone else is recreated or renewed.
func TestHeartbeatRenewsWithOneUpdate(t *testing.T) {
	c := cluster.Start(t)
	ctx := t.Context()
	const ns, node = "default", "lease-node"
	var requests requestLog
	cfg := rest.CopyConfig(c.Config)
	cfg.WrapTransport = requests.RoundTrip
	h := &Heartbeat{
		Client: cluster.AgentClient(t, cfg), Namespace: ns, Node: node,
		Interval: time.Minute, Duration: 4 * time.Minute, Log: testr.New(t),
	}
	leases := c.Clientset.CoordinationV1().Leases(ns)

	renew := func(want ...string) {
		t.Helper()
		if err := h.renew(ctx); err != nil {
			t.Fatalf("renew: %v", err)
		}
		if got := requests.take(); !slices.Equal(got, want) {
			t.Fatalf("requests %v, want %v", got, want)
		}
	}
	renew("GET", "POST")
	first, err := leases.Get(ctx, Name(node), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if first.Spec.AcquireTime == nil || *first.Spec.HolderIdentity != node || *first.Spec.LeaseDurationSeconds != 240 {
		t.Fatalf("created Lease spec %+v", first.Spec)
	}
	renew("PUT")
	renew("PUT")
	renewed, err := leases.Get(ctx, Name(node), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !renewed.Spec.AcquireTime.Equal(first.Spec.AcquireTime) || !renewed.Spec.RenewTime.After(first.Spec.RenewTime.Time) {
		t.Errorf("renewed Lease spec %+v, want the acquire time kept and a later renew time than %+v", renewed.Spec, first.Spec)
	}

	// Changed by someone else: the update conflicts, the next renewal reads it.
	renewed.Labels["changed"] = "yes"
	if _, err := leases.Update(ctx, renewed, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := h.renew(ctx); !apierrors.IsConflict(err) {
		t.Fatalf("renew after a change: %v, want a conflict", err)
	}
	requests.take()
	renew("GET", "PUT")

	// Deleted: the update fails, the next renewal creates it again.
	if err := leases.Delete(ctx, Name(node), metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := h.renew(ctx); err == nil {
		t.Fatal("renew after a delete: updated a Lease that is gone")
	}
	requests.take()
	renew("GET", "POST")
}
