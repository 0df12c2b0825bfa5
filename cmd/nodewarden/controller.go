package main

import (
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/controllers"
	"github.com/nodewarden/nodewarden/internal/serveflags"
	"github.com/nodewarden/nodewarden/internal/version"
)

type controllerFlags struct {
	*serveflags.Flags
	leaderElect bool
	dryRun      bool
}

func newControllerCommand() *cobra.Command {
	f := &controllerFlags{}
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run once per cluster: cordon, drain and restore nodes per RemediationPolicy",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return runController(f)
		},
	}
	f.Flags = serveflags.Add(cmd.Flags(), ":8080", ":8081")
	cmd.Flags().BoolVar(&f.leaderElect, "leader-elect", false, "elect a leader through a Lease, so that replicas can run side by side")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "decide and report (logs, Events, policy status) but change no Node")
	return cmd
}

func runController(f *controllerFlags) error {
	log := f.Logger()
	ctrl.SetLogger(log)
	log.Info("starting", "version", version.String(), "dryRun", f.dryRun)

	restCfg, err := f.RESTConfig()
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsserver.Options{BindAddress: f.MetricsAddr},
		HealthProbeBindAddress:        f.HealthAddr,
		LeaderElection:                f.leaderElect,
		LeaderElectionID:              "nodewarden-controller",
		LeaderElectionNamespace:       f.Namespace,
		LeaderElectionReleaseOnCancel: true,
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			// Nodes are cached, but without what the decision never reads:
			// images and volumes are most of a Node's size.
			&corev1.Node{}: {Transform: slimNode},
		}},
		Client: client.Options{Cache: &client.CacheOptions{
			// Pods are never cached: the drainer lists one node's pods when it
			// needs them, so memory does not grow with the cluster's pod count.
			DisableFor: []client.Object{&corev1.Pod{}},
		}},
	})
	if err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	clientset, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	if err := controllers.Setup(mgr, controllers.Options{
		Clientset: clientset, Registerer: ctrlmetrics.Registry, DryRun: f.dryRun, Log: log,
	}); err != nil {
		return err
	}
	return mgr.Start(ctrl.SetupSignalHandler())
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
