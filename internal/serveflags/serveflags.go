// Package serveflags holds the flags both long-running commands take
// (SPEC §1): where the API server is, where to serve metrics and probes,
// nodewarden's own namespace, the client-side rate limit, and logging.
//
// It links neither cobra nor controller-runtime's manager, because the agent
// binary (cmd/nodewarden-agent) uses it too.
package serveflags

import (
	"flag"
	"fmt"
	"os"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// Off is the address value that turns an endpoint off.
const Off = "0"

// Flags are the parsed values.
type Flags struct {
	Kubeconfig  string
	MetricsAddr string
	HealthAddr  string
	Namespace   string
	QPS         float32
	Burst       int
	zap         *zap.Options
}

// Add defines the flags on fs with the command's default addresses.
func Add(fs *pflag.FlagSet, metricsAddr, healthAddr string) *Flags {
	f := &Flags{zap: &zap.Options{}}
	fs.StringVar(&f.Kubeconfig, "kubeconfig", "", "kubeconfig file; default $KUBECONFIG, else in-cluster")
	fs.StringVar(&f.MetricsAddr, "metrics-bind-address", metricsAddr, "address of the Prometheus /metrics endpoint; 0 turns it off")
	fs.StringVar(&f.HealthAddr, "health-probe-bind-address", healthAddr, "address of /healthz and /readyz; 0 turns them off")
	fs.StringVar(&f.Namespace, "namespace", EnvOr("POD_NAMESPACE", "nodewarden-system"), "namespace of nodewarden's own objects (Leases); default $POD_NAMESPACE")
	// client-go's default of 5 requests/s would cap cordons and evictions at
	// about five a second cluster-wide (measured: docs/performance.md).
	fs.Float32Var(&f.QPS, "kube-api-qps", 50, "client-side limit of requests per second to the API server (API Priority and Fairness still applies)")
	fs.IntVar(&f.Burst, "kube-api-burst", 100, "burst of requests allowed above --kube-api-qps")
	// controller-runtime's logging flags (--zap-log-level, --zap-encoder, ...),
	// so both commands log the same way.
	goFlags := flag.NewFlagSet("zap", flag.ContinueOnError)
	f.zap.BindFlags(goFlags)
	fs.AddGoFlagSet(goFlags)
	return f
}

// Logger is the logger the logging flags ask for.
func (f *Flags) Logger() logr.Logger { return zap.New(zap.UseFlagOptions(f.zap)) }

// RESTConfig follows the usual order: --kubeconfig, $KUBECONFIG, in-cluster.
func (f *Flags) RESTConfig() (*rest.Config, error) {
	path := f.Kubeconfig
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
	cfg.QPS, cfg.Burst = f.QPS, f.Burst
	return cfg, nil
}

// EnvOr is the environment variable name, or def when it is unset or empty.
func EnvOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
