package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// serveFlags are the flags both long-running commands take (SPEC §1).
type serveFlags struct {
	kubeconfig  string
	metricsAddr string
	healthAddr  string
	namespace   string
	qps         float32
	burst       int
	zap         *zap.Options
}

func addServeFlags(cmd *cobra.Command, metricsAddr, healthAddr string) *serveFlags {
	f := &serveFlags{}
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file; default $KUBECONFIG, else in-cluster")
	cmd.Flags().StringVar(&f.metricsAddr, "metrics-bind-address", metricsAddr, "address of the Prometheus /metrics endpoint; 0 turns it off")
	cmd.Flags().StringVar(&f.healthAddr, "health-probe-bind-address", healthAddr, "address of /healthz and /readyz; 0 turns them off")
	cmd.Flags().StringVar(&f.namespace, "namespace", envOr("POD_NAMESPACE", "nodewarden-system"), "namespace of nodewarden's own objects (Leases); default $POD_NAMESPACE")
	// client-go's default of 5 requests/s would cap cordons and evictions at
	// about five a second cluster-wide (measured: docs/performance.md).
	cmd.Flags().Float32Var(&f.qps, "kube-api-qps", 50, "client-side limit of requests per second to the API server (API Priority and Fairness still applies)")
	cmd.Flags().IntVar(&f.burst, "kube-api-burst", 100, "burst of requests allowed above --kube-api-qps")
	f.zap = zapFlags(cmd)
	return f
}

// restConfig follows the usual order: --kubeconfig, $KUBECONFIG, in-cluster.
func (f *serveFlags) restConfig() (*rest.Config, error) {
	path := f.kubeconfig
	if path == "" {
		path = os.Getenv("KUBECONFIG")
	}
	var cfg *rest.Config
	var err error
	if path != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", path)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("no Kubernetes client configuration (use --kubeconfig): %w", err)
	}
	cfg.QPS, cfg.Burst = f.qps, f.burst
	return cfg, nil
}

func (f *serveFlags) metricsOptions() metricsserver.Options {
	return metricsserver.Options{BindAddress: f.metricsAddr}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
