package controllers

import (
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/notify"
)

// ManagerOptions completes o (addresses, leader election, logger: the
// caller's) with what the controller relies on: a scheme of Kubernetes' and
// nodewarden's types, Nodes cached without what the decision never reads,
// and Pods never cached. The binary and the tests start their manager
// through here, so they cache the same things.
func ManagerOptions(o ctrl.Options) ctrl.Options {
	o.Scheme = runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(o.Scheme))
	utilruntime.Must(v1alpha1.AddToScheme(o.Scheme))
	o.Cache.ByObject = map[client.Object]cache.ByObject{
		// Images and volumes are most of a Node's size.
		&corev1.Node{}: {Transform: slimNode},
	}
	// The drainer lists one node's pods when it needs them, so memory does
	// not grow with the cluster's pod count.
	o.Client.Cache = &client.CacheOptions{DisableFor: []client.Object{&corev1.Pod{}}}
	return o
}

// slimNode drops the parts of a Node the controller never reads before it is cached.
func slimNode(obj any) (any, error) {
	if n, ok := obj.(*corev1.Node); ok {
		n.ManagedFields = nil
		n.Status.Images = nil
		n.Status.VolumesAttached = nil
		n.Status.VolumesInUse = nil
	}
	return obj, nil
}

// Options are what the remediation controller needs besides its manager.
type Options struct {
	// Clientset lists a node's pods and evicts them: pods are never cached.
	Clientset kubernetes.Interface
	// Registerer receives the controller's metrics.
	Registerer prometheus.Registerer
	// DryRun: decide and report, change no Node.
	DryRun bool
	Log    logr.Logger
	// Clock is the reconciler's "now" (for:, deadlines, maintenance
	// windows); nil is the real clock. Tests set it.
	Clock clock.PassiveClock
	// Namespace is the controller's own (where the notifications Secret is).
	Namespace string
	// NotificationsSecret names the Secret of notification receivers;
	// empty sends no notifications.
	NotificationsSecret string
	// ClusterName, when set, is named in every notification.
	ClusterName string
	// Notify tunes the notifier (queue size, attempts, backoff, timeout);
	// its Receivers, Results and Log are set here.
	Notify notify.Options
	// History bounds the RemediationRecords; its zero value records none.
	History HistoryOptions
}

// notificationsSecretTTL is how long a read of the notifications Secret is
// used before it is read again.
const notificationsSecretTTL = 30 * time.Second

// Setup builds the remediation controller as `nodewarden controller` runs it
// (reconciler, background drains and repair steps, Events, metrics, history)
// and adds it to mgr. The
// binary and the tests wire it through here, so they run the same thing.
func Setup(mgr ctrl.Manager, opts Options) error {
	recorder := mgr.GetEventRecorder("nodewarden-controller")
	metrics := NewMetrics(opts.Registerer)
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	r := &RemediationReconciler{
		Client:   mgr.GetClient(),
		Drains:   NewDrains(opts.Clientset, metrics, opts.Log),
		Repairs:  NewRepairs(opts.Clientset, mgr.GetClient(), nil, metrics, opts.Log),
		Recorder: recorder,
		Metrics:  metrics,
		DryRun:   opts.DryRun,
		Clock:    opts.Clock,
		Log:      opts.Log.WithName("remediation"),
	}
	if opts.NotificationsSecret != "" {
		no := opts.Notify
		no.Receivers = &notify.SecretReceivers{
			Client: opts.Clientset, Namespace: opts.Namespace, Name: opts.NotificationsSecret, TTL: notificationsSecretTTL,
		}
		no.Results = metrics.Notifications
		no.Log = opts.Log.WithName("notify")
		notifier := notify.New(no)
		if err := mgr.Add(notifier); err != nil {
			return err
		}
		r.Observers = append(r.Observers, &Notifications{Notifier: notifier, Cluster: opts.ClusterName, Clock: r.Clock})
	}
	if opts.History.MaxRecords > 0 {
		h := NewHistory(mgr.GetClient(), mgr.GetAPIReader(), opts.History, opts.DryRun, metrics, opts.Log.WithName("history"))
		if err := mgr.Add(h); err != nil {
			return err
		}
		r.Observers = append(r.Observers, h)
	}
	return r.SetupWithManager(mgr)
}
