package main

import (
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/nodewarden/nodewarden/controllers"
	"github.com/nodewarden/nodewarden/internal/serveflags"
	"github.com/nodewarden/nodewarden/internal/version"
)

type controllerFlags struct {
	*serveflags.Flags
	leaderElect         bool
	dryRun              bool
	notificationsSecret string
	clusterName         string
	history             controllers.HistoryOptions
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
	cmd.Flags().StringVar(&f.notificationsSecret, "notifications-secret", "nodewarden-notifications",
		"the Secret in --namespace whose keys are the notification receivers policies name; empty sends no notifications")
	cmd.Flags().StringVar(&f.clusterName, "cluster-name", "", "name of this cluster in notifications; empty names none")
	cmd.Flags().IntVar(&f.history.MaxRecords, "history-max-records", 1000, "RemediationRecords kept at most, the oldest closed ones pruned first (open ones are never pruned); 0 records no history")
	cmd.Flags().DurationVar(&f.history.MaxAge, "history-max-age", 30*24*time.Hour, "how long a closed RemediationRecord is kept after its episode ended; 0 keeps them until --history-max-records prunes them")
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
	mgr, err := ctrl.NewManager(restCfg, controllers.ManagerOptions(ctrl.Options{
		Metrics:                       metricsserver.Options{BindAddress: f.MetricsAddr},
		HealthProbeBindAddress:        f.HealthAddr,
		LeaderElection:                f.leaderElect,
		LeaderElectionID:              "nodewarden-controller",
		LeaderElectionNamespace:       f.Namespace,
		LeaderElectionReleaseOnCancel: true,
	}))
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
		Namespace: f.Namespace, NotificationsSecret: f.notificationsSecret, ClusterName: f.clusterName,
		History: f.history,
	}); err != nil {
		return err
	}
	return mgr.Start(ctrl.SetupSignalHandler())
}
