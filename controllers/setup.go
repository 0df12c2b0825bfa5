package controllers

import (
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
)

// Options are what the remediation controller needs besides its manager.
type Options struct {
	// Clientset lists a node's pods and evicts them: pods are never cached.
	Clientset kubernetes.Interface
	// Registerer receives the controller's metrics.
	Registerer prometheus.Registerer
	// DryRun: decide and report, change no Node.
	DryRun bool
	Log    logr.Logger
}

// Setup builds the remediation controller as `nodewarden controller` runs it
// (reconciler, background drains, Events, metrics) and adds it to mgr. The
// binary and the tests wire it through here, so they run the same thing.
func Setup(mgr ctrl.Manager, opts Options) error {
	recorder := mgr.GetEventRecorder("nodewarden-controller")
	metrics := NewMetrics(opts.Registerer)
	r := &RemediationReconciler{
		Client:   mgr.GetClient(),
		Drains:   NewDrains(opts.Clientset, recorder, metrics, opts.Log),
		Recorder: recorder,
		Metrics:  metrics,
		DryRun:   opts.DryRun,
		Clock:    clock.RealClock{},
		Log:      opts.Log.WithName("remediation"),
	}
	return r.SetupWithManager(mgr)
}
