package main

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/agent"
	"github.com/nodewarden/nodewarden/internal/agent/agentconfig"
	"github.com/nodewarden/nodewarden/internal/agent/metrics"
	"github.com/nodewarden/nodewarden/internal/version"
)

type agentFlags struct {
	*serveFlags
	nodeName     string
	configPath   string
	hostEventLog string
	npdConfigs   []string
	bootTime     string
}

func newAgentCommand() *cobra.Command {
	f := &agentFlags{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run on a node: read host events and keep the node's conditions true",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAgent(cmd, f)
		},
	}
	f.serveFlags = addServeFlags(cmd, ":8080", ":8081")
	cmd.Flags().StringVar(&f.nodeName, "node-name", envOr("NODE_NAME", ""), "the node this agent runs on; default $NODE_NAME")
	cmd.Flags().StringVar(&f.configPath, "config", "", "AgentConfig file (re-read when it changes); default: built-in defaults")
	cmd.Flags().StringVar(&f.hostEventLog, "host-event-log", v1alpha1.DefaultHostEventLogPath, "host event log to follow, overriding the config file; '' turns the source off")
	cmd.Flags().StringSliceVar(&f.npdConfigs, "npd-config", nil, "node-problem-detector monitor configs (JSON), comma-separated")
	cmd.Flags().StringVar(&f.bootTime, "boot-time", "", "node boot time (RFC3339), overriding /proc/stat; for tests and demos")
	_ = cmd.Flags().MarkHidden("boot-time")
	return cmd
}

func runAgent(cmd *cobra.Command, f *agentFlags) error {
	log := zap.New(zap.UseFlagOptions(f.zap))
	ctrl.SetLogger(log)
	log.Info("starting", "version", version.String(), "node", f.nodeName)

	var bootTime time.Time
	if f.bootTime != "" {
		t, err := time.Parse(time.RFC3339, f.bootTime)
		if err != nil {
			return fmt.Errorf("--boot-time: %w", err)
		}
		bootTime = t
	}
	restCfg, err := f.restConfig()
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		return err
	}
	var cfgMetrics *agentconfig.Metrics
	if f.configPath != "" {
		if cfgMetrics, err = agentconfig.NewMetrics(ctrlmetrics.Registry); err != nil {
			return err
		}
	}
	a, err := agent.New(agent.Options{
		NodeName: f.nodeName, Namespace: f.namespace, Client: client,
		ConfigPath: f.configPath, ConfigMetrics: cfgMetrics,
		// Flags given on the command line win over the file, on every reload too.
		Override: func(c *v1alpha1.AgentConfig) {
			if cmd.Flags().Changed("host-event-log") {
				c.HostEventLog.Path = ptr.To(f.hostEventLog)
			}
			if cmd.Flags().Changed("npd-config") {
				c.NPDConfigs = f.npdConfigs
			}
		},
		BootTime: bootTime, Metrics: metrics.New(ctrlmetrics.Registry), Registerer: ctrlmetrics.Registry, Log: log,
	})
	if err != nil {
		return err
	}

	mgr, err := manager.New(restCfg, manager.Options{
		Metrics:                f.metricsOptions(),
		HealthProbeBindAddress: f.healthAddr,
		Logger:                 log,
	})
	if err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", func(*http.Request) error { return nil }); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("synced", func(*http.Request) error {
		if !a.Ready() {
			return errors.New("conditions not yet written to the Node")
		}
		return nil
	}); err != nil {
		return err
	}
	if err := mgr.Add(manager.RunnableFunc(a.Run)); err != nil {
		return err
	}
	return mgr.Start(ctrl.SetupSignalHandler())
}
