// Package agentcmd is the `nodewarden agent` command: its flags, logging,
// the /metrics, /healthz and /readyz endpoints, and the signal that stops it.
//
// Two executables run it: bin/nodewarden as the `agent` subcommand, and
// bin/nodewarden-agent, the same command without the controller and the
// converters linked in, which the DaemonSet runs to keep the agent's memory
// small (docs/architecture.md, "Two executables"). So this package must not
// import cobra, controller-runtime's manager or client-go's generated
// clientset; cmd/nodewarden-agent's test checks that.
package agentcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/agent"
	"github.com/nodewarden/nodewarden/internal/agent/agentconfig"
	"github.com/nodewarden/nodewarden/internal/agent/apiclient"
	"github.com/nodewarden/nodewarden/internal/agent/metrics"
	"github.com/nodewarden/nodewarden/internal/serveflags"
	"github.com/nodewarden/nodewarden/internal/version"
)

// Short is the one-line description of the command.
const Short = "Run on a node: read host events and keep the node's conditions true"

type flags struct {
	*serveflags.Flags
	nodeName     string
	configPath   string
	hostEventLog string
	npdConfigs   []string
	bootTime     string
	healthChecks bool
	criEndpoint  string
	journalPath  string
	version      bool
}

func newFlagSet(name string, out io.Writer) (*pflag.FlagSet, *flags) {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	// A bad flag is returned as an error (the caller prints it once); only
	// --help writes, through Usage.
	fs.SetOutput(io.Discard)
	f := &flags{Flags: serveflags.Add(fs, ":8080", ":8081")}
	fs.StringVar(&f.nodeName, "node-name", serveflags.EnvOr("NODE_NAME", ""), "the node this agent runs on; default $NODE_NAME")
	fs.StringVar(&f.configPath, "config", "", "AgentConfig file (re-read when it changes); default: built-in defaults")
	fs.StringVar(&f.hostEventLog, "host-event-log", v1alpha1.DefaultHostEventLogPath, "host event log to follow, overriding the config file; '' turns the source off")
	fs.StringSliceVar(&f.npdConfigs, "npd-config", nil, "node-problem-detector monitor configs (JSON), comma-separated")
	fs.BoolVar(&f.healthChecks, "health-checks", true, "false turns every built-in health check off, overriding the config file (for an agent that does not run on the node it reports, as in demos)")
	fs.StringVar(&f.criEndpoint, "container-runtime-endpoint", "", "turns the ContainerRuntimeReady check on, asking the runtime at this CRI socket (unix:///run/containerd/containerd.sock), overriding the config file")
	fs.StringVar(&f.journalPath, "journal-path", "", "systemd journal directory (/var/log/journal) read to count containerd and kubelet restarts, overriding the config file")
	fs.StringVar(&f.bootTime, "boot-time", "", "node boot time (RFC3339), overriding /proc/stat; for tests and demos")
	_ = fs.MarkHidden("boot-time")
	// nodewarden-agent has no `version` subcommand; `nodewarden version` does the same.
	fs.BoolVar(&f.version, "version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(out, "%s\n\nUsage:\n  %s [flags]\n\nFlags:\n%s", Short, name, fs.FlagUsages())
	}
	return fs, f
}

// Main runs the command with args (without the program name) and returns the
// process exit code. name is how the user called it, for the usage text.
func Main(name string, args []string) int {
	if err := Run(context.Background(), name, args, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		return 1
	}
	return 0
}

// Run parses args and runs the agent until ctx ends or the process gets
// SIGTERM or SIGINT. --help and --version print to out and return nil.
func Run(ctx context.Context, name string, args []string, out io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	fs, f := newFlagSet(name, out)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w (see %s --help)", err, name)
	}
	if f.version {
		fmt.Fprintln(out, version.String())
		return nil
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (see %s --help)", fs.Args(), name)
	}
	var bootTime time.Time
	if f.bootTime != "" {
		t, err := time.Parse(time.RFC3339, f.bootTime)
		if err != nil {
			return fmt.Errorf("--boot-time: %w", err)
		}
		bootTime = t
	}

	// Flags given on the command line win over the file, on every reload too.
	override := func(c *v1alpha1.AgentConfig) {
		if fs.Changed("host-event-log") {
			c.HostEventLog.Path = ptr.To(f.hostEventLog)
		}
		if fs.Changed("npd-config") {
			c.NPDConfigs = f.npdConfigs
		}
		if fs.Changed("container-runtime-endpoint") {
			c.HealthChecks.ContainerRuntime.Enabled = ptr.To(f.criEndpoint != "")
			if f.criEndpoint != "" {
				c.HealthChecks.ContainerRuntime.Endpoint = f.criEndpoint
			}
		}
		if fs.Changed("journal-path") {
			c.HealthChecks.ContainerRuntime.JournalPath = f.journalPath
		}
		if fs.Changed("health-checks") && !f.healthChecks {
			c.HealthChecks.Off()
		}
	}
	// A bad flag value is an error now, not a configuration that never loads.
	probe := agentconfig.Default()
	override(probe)
	if errs := probe.Validate(); len(errs) > 0 {
		return fmt.Errorf("flags: %w", errs.ToAggregate())
	}

	log := f.Logger()
	klog.SetLogger(log) // client-go's own messages (watch errors, ...) in the same format
	log.Info("starting", "version", version.String(), "node", f.nodeName)

	restCfg, err := f.RESTConfig()
	if err != nil {
		return err
	}
	client, err := apiclient.New(restCfg)
	if err != nil {
		return err
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var cfgMetrics *agentconfig.Metrics
	if f.configPath != "" {
		if cfgMetrics, err = agentconfig.NewMetrics(registry); err != nil {
			return err
		}
	}
	a, err := agent.New(agent.Options{
		NodeName: f.nodeName, Namespace: f.Namespace, Client: client,
		ConfigPath: f.configPath, ConfigMetrics: cfgMetrics,
		// Flags given on the command line win over the file, on every reload too.
		Override: override,
		BootTime: bootTime, Metrics: metrics.New(registry), Registerer: registry, Log: log,
	})
	if err != nil {
		return err
	}

	metricsMux := http.NewServeMux()
	metricsMux.Handle("GET /metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{Registry: registry}))
	probeMux := http.NewServeMux()
	probeMux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	probeMux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.Ready() {
			http.Error(w, "conditions not yet written to the Node", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var servers sync.WaitGroup
	for _, s := range []struct {
		what, addr string
		handler    http.Handler
	}{{"metrics", f.MetricsAddr, metricsMux}, {"probes", f.HealthAddr, probeMux}} {
		if s.addr == serveflags.Off {
			continue
		}
		l, err := net.Listen("tcp", s.addr)
		if err != nil {
			return fmt.Errorf("%s endpoint: %w", s.what, err)
		}
		log.Info("serving", "endpoint", s.what, "address", l.Addr().String())
		servers.Go(func() {
			if err := serve(ctx, l, s.handler, log); err != nil {
				cancel(fmt.Errorf("%s endpoint: %w", s.what, err))
			}
		})
	}
	a.Run(ctx) // until SIGTERM, or an endpoint failed
	cancel(nil)
	servers.Wait()
	log.Info("stopped")
	if cause := context.Cause(ctx); !errors.Is(cause, context.Canceled) {
		return cause
	}
	return nil
}

// serve serves l until ctx ends, then gives requests in flight a few
// seconds to finish.
func serve(ctx context.Context, l net.Listener, h http.Handler, log logr.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errs := make(chan error, 1)
	go func() { errs <- srv.Serve(l) }()
	select {
	case err := <-errs:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		log.Error(err, "stopping an HTTP endpoint")
	}
	return nil
}
