package condition

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/nodewarden/nodewarden/internal/agent/apiclient"
	"github.com/nodewarden/nodewarden/internal/agent/metrics"
)

// Want is a condition as a source sees it; the writer adds the timestamps.
type Want struct {
	Type    corev1.NodeConditionType
	Status  corev1.ConditionStatus
	Reason  string
	Message string
}

// Writer keeps the agent's conditions on its Node equal to the desired ones.
// It watches only its own Node, and retries with backoff until the API server
// accepts the patch: whatever was set while the API was unreachable is
// written when it comes back, because the writer always converges on the
// latest desired state rather than replaying a queue of changes.
type Writer struct {
	client   *apiclient.Client
	nodeName string
	log      logr.Logger
	metrics  *metrics.Agent
	clock    clock.PassiveClock

	mu      sync.Mutex
	desired map[corev1.NodeConditionType]Desired

	wake   chan struct{}
	synced atomic.Bool
}

// NewWriter returns a writer for node. Nothing is written until Set is called.
func NewWriter(client *apiclient.Client, node string, log logr.Logger, m *metrics.Agent) *Writer {
	return &Writer{
		client:   client,
		nodeName: node,
		log:      log.WithName("condition-writer"),
		metrics:  m,
		clock:    clock.RealClock{},
		desired:  map[corev1.NodeConditionType]Desired{},
		wake:     make(chan struct{}, 1),
	}
}

// Set makes wants the desired state of their condition types; other types
// keep theirs.
func (w *Writer) Set(wants ...Want) {
	now := w.clock.Now()
	w.mu.Lock()
	for _, want := range wants {
		prev, ok := w.desired[want.Type]
		if ok && prev.Status == want.Status && prev.Reason == want.Reason && prev.Message == want.Message {
			continue
		}
		w.desired[want.Type] = Desired{Type: want.Type, Status: want.Status, Reason: want.Reason, Message: want.Message, Since: now}
	}
	w.mu.Unlock()
	w.poke()
}

// Synced reports whether the Node has shown the desired state at least once:
// the agent's readiness.
func (w *Writer) Synced() bool { return w.synced.Load() }

func (w *Writer) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *Writer) snapshot() []Desired {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Desired, 0, len(w.desired))
	for _, d := range w.desired {
		out = append(out, d)
	}
	return out
}

// pollInterval is how often the Node is read when it cannot be watched.
const pollInterval = 10 * time.Second

// Run watches the Node, or reads it every pollInterval where it may not
// watch, and writes until ctx ends. Failures are retried, never returned.
func (w *Writer) Run(ctx context.Context) {
	if w.watchForbidden(ctx) {
		// node-problem-detector's ClusterRole grants only get on nodes; an
		// agent dropped into NPD's DaemonSet still works, reading its Node
		// on a timer instead of watching it.
		w.log.Info("not allowed to watch nodes; reading the Node every "+pollInterval.String()+" instead", "node", w.nodeName)
		tick := time.NewTicker(pollInterval)
		defer tick.Stop()
		w.loop(ctx, tick.C, func(ctx context.Context) (*corev1.Node, error) {
			return w.client.GetNode(ctx, w.nodeName, metav1.GetOptions{})
		})
		return
	}
	// A change by anyone (kubelet, a human removing our condition) wakes the
	// writer, so the Node converges back to the desired state.
	store, informer := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: w.ownNode(),
		ObjectType:    &corev1.Node{},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { w.poke() },
			UpdateFunc: func(any, any) { w.poke() },
		},
	})
	go informer.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return
	}
	w.loop(ctx, nil, func(context.Context) (*corev1.Node, error) {
		obj, exists, err := store.GetByKey(w.nodeName)
		if !exists || err != nil {
			return nil, err // no Node yet: the informer wakes us when it appears
		}
		return obj.(*corev1.Node), nil
	})
}

// loop reads the Node with get and writes it on every wake, every tick and
// every retry, until ctx ends. A failure is retried with backoff, so what
// was set during an outage is written when the API server is back.
func (w *Writer) loop(ctx context.Context, tick <-chan time.Time, get func(context.Context) (*corev1.Node, error)) {
	var delay time.Duration // before the next retry; 0 after a success
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-tick:
		case <-retry:
		}
		retry = nil
		node, err := get(ctx)
		if node == nil && err == nil {
			continue
		}
		if err == nil {
			err = w.sync(ctx, node)
		}
		if err != nil && ctx.Err() == nil {
			// Doubling from 200ms to 30s, as the event recorder does: fast
			// recovery from a blip, no hammering of an API server that is down.
			delay = min(max(2*delay, 200*time.Millisecond), 30*time.Second)
			w.log.Error(err, "writing node conditions failed; retrying", "node", w.nodeName, "retryIn", delay)
			retry = time.After(delay)
			continue
		}
		delay = 0
	}
}

// ownNode lists and watches the agent's Node and nothing else.
func (w *Writer) ownNode() *cache.ListWatch {
	selector := fields.OneTermEqualSelector("metadata.name", w.nodeName).String()
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = selector
			return w.client.ListNodes(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = selector
			return w.client.WatchNodes(ctx, opts)
		},
	}
}

// watchForbidden asks the API server whether the agent may list its Node.
// Any answer other than Forbidden (including no answer) means watch.
func (w *Writer) watchForbidden(ctx context.Context) bool {
	_, err := w.client.ListNodes(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", w.nodeName).String(),
	})
	return apierrors.IsForbidden(err)
}

func (w *Writer) sync(ctx context.Context, node *corev1.Node) error {
	body, changed := Patch(node.Status.Conditions, w.snapshot())
	if body == nil {
		w.synced.Store(true)
		return nil
	}
	start := time.Now()
	err := w.client.PatchNodeStatus(ctx, w.nodeName, body)
	w.metrics.ObserveAPI("patch_node_status", start, err)
	if err != nil {
		return err
	}
	for _, c := range changed {
		if cur := find(node.Status.Conditions, c.Type); cur == nil || cur.Status != c.Status {
			w.metrics.Transition(string(c.Type), string(c.Status))
			w.log.Info("condition changed", "node", w.nodeName, "type", c.Type, "status", c.Status, "reason", c.Reason, "message", c.Message)
		}
	}
	w.synced.Store(true)
	return nil
}
