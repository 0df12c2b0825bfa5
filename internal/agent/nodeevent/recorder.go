// Package nodeevent records Kubernetes Events on the agent's Node.
//
// Each Event has a name derived from what it reports (its key), and is
// created once: AlreadyExists means it was recorded before, by this process
// or by the agent before a restart. That makes "exactly one Event per new
// host event status" hold across restarts without any local state. Events
// that cannot be created while the API server is unreachable wait in a
// bounded queue and are retried with backoff.
package nodeevent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodewarden/nodewarden/internal/agent/apiclient"
	"github.com/nodewarden/nodewarden/internal/agent/metrics"
)

// Namespace is where Node events go, as kubelet's do; `kubectl describe
// node` finds them there.
const Namespace = metav1.NamespaceDefault

// Component is the Event source shown by kubectl.
const Component = "nodewarden-agent"

// queueLimit bounds memory during a long API outage; the oldest Events go first.
const queueLimit = 1000

// Event is one thing to report on the Node.
type Event struct {
	// Key identifies the Event: the same key is recorded only once.
	Key     string
	Type    string // corev1.EventTypeNormal or corev1.EventTypeWarning
	Reason  string
	Message string
}

// Recorder creates Events on one Node.
type Recorder struct {
	client   *apiclient.Client
	nodeName string
	log      logr.Logger
	metrics  *metrics.Agent

	mu    sync.Mutex
	queue []Event
	wake  chan struct{}
}

// NewRecorder returns a recorder for node; call Run to deliver.
func NewRecorder(client *apiclient.Client, node string, log logr.Logger, m *metrics.Agent) *Recorder {
	return &Recorder{client: client, nodeName: node, log: log.WithName("events"), metrics: m, wake: make(chan struct{}, 1)}
}

// Record queues e for creation. It never blocks.
func (r *Recorder) Record(e Event) {
	r.mu.Lock()
	if len(r.queue) >= queueLimit {
		r.queue = r.queue[1:]
		r.metrics.EventDropped()
	}
	r.queue = append(r.queue, e)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run delivers queued Events until ctx ends.
func (r *Recorder) Run(ctx context.Context) {
	delay := time.Duration(0)
	for {
		var retry <-chan time.Time
		if delay > 0 {
			retry = time.After(delay)
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-retry:
		}
		if err := r.flush(ctx); err != nil {
			delay = min(max(2*delay, 200*time.Millisecond), 30*time.Second)
			r.log.Error(err, "recording event failed; retrying", "retryIn", delay)
			continue
		}
		delay = 0
	}
}

func (r *Recorder) flush(ctx context.Context) error {
	for {
		r.mu.Lock()
		if len(r.queue) == 0 {
			r.mu.Unlock()
			return nil
		}
		e := r.queue[0]
		r.mu.Unlock()
		if err := r.create(ctx, e); err != nil {
			return err
		}
		r.mu.Lock()
		if len(r.queue) > 0 && r.queue[0].Key == e.Key {
			r.queue = r.queue[1:]
		}
		r.mu.Unlock()
	}
}

func (r *Recorder) create(ctx context.Context, e Event) error {
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: Name(r.nodeName, e.Key), Namespace: Namespace},
		// UID = node name, as kubelet does: `kubectl describe node` looks for
		// events by the node's UID and by its name in the UID field.
		InvolvedObject: corev1.ObjectReference{
			Kind: "Node", Name: r.nodeName, UID: types.UID(r.nodeName), APIVersion: "v1",
		},
		Type:                e.Type,
		Reason:              e.Reason,
		Message:             e.Message,
		Source:              corev1.EventSource{Component: Component, Host: r.nodeName},
		ReportingController: "nodewarden.io/agent",
		ReportingInstance:   Component + "-" + r.nodeName,
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
	}
	start := time.Now()
	err := r.client.CreateEvent(ctx, ev)
	if apierrors.IsAlreadyExists(err) {
		err = nil
	}
	r.metrics.ObserveAPI("create_event", start, err)
	return err
}

// Name is the Event's object name for key on node: stable, so a second
// create of the same key is refused by the API server.
func Name(node, key string) string {
	sum := sha256.Sum256([]byte(key))
	return fmt.Sprintf("%s.nw-%s", node, hex.EncodeToString(sum[:8]))
}
