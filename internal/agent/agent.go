// Package agent is `nodewarden agent`: it reads signals on its own node and
// keeps that node's conditions true.
//
// The parts, each in its own package:
//
//	logfile.Follower ─lines─▶ hostevent.Parse ─▶ hostevent.Tracker ─conditions─▶ condition.Writer ─▶ nodes/status
//	                                                               └─new statuses─▶ nodeevent.Recorder ─▶ Events
//	nodehealth.Source (the built-in health checks: /proc, /sys, kmsg, CRI) ─conditions─▶ condition.Writer
//	lease.Heartbeat ─▶ Lease nodewarden-agent-<node>
//
// Sources only compute the desired state; the writer and the recorder own
// every API call and its retries, so an API outage loses nothing: the writer
// converges on the latest desired state when the API server is back.
package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/agent/agentconfig"
	"github.com/nodewarden/nodewarden/internal/agent/apiclient"
	"github.com/nodewarden/nodewarden/internal/agent/boottime"
	"github.com/nodewarden/nodewarden/internal/agent/condition"
	"github.com/nodewarden/nodewarden/internal/agent/lease"
	"github.com/nodewarden/nodewarden/internal/agent/metadata"
	"github.com/nodewarden/nodewarden/internal/agent/metrics"
	"github.com/nodewarden/nodewarden/internal/agent/nodeevent"
	"github.com/nodewarden/nodewarden/internal/agent/nodehealth"
	"github.com/nodewarden/nodewarden/internal/agent/npd"
	"github.com/nodewarden/nodewarden/internal/agent/source"
)

// Options are what the agent needs from its command line.
type Options struct {
	NodeName  string
	Namespace string // for the Lease
	Client    *apiclient.Client
	// ConfigPath is the AgentConfig file, watched and re-read when it
	// changes; empty means Config, or the defaults if Config is nil too.
	ConfigPath string
	// Config is used when there is no ConfigPath: defaults applied and valid.
	Config *v1alpha1.AgentConfig
	// Override applies command-line flags to every configuration read, so
	// flags win over the file on reloads too. May be nil.
	Override func(*v1alpha1.AgentConfig)
	// ConfigMetrics record reload failures; may be nil.
	ConfigMetrics *agentconfig.Metrics
	// BootTime of the node; zero means read it once from the config's procStatPath.
	BootTime time.Time
	Metrics  *metrics.Agent
	// Registerer receives the NPD-compatible metrics (problem_counter,
	// problem_gauge); nil means none.
	Registerer prometheus.Registerer
	Log        logr.Logger
}

// Agent runs the sources, the condition writer, the event recorder and the heartbeat.
type Agent struct {
	opts     Options
	config   *v1alpha1.AgentConfig // the one in force at start
	sources  []source.Source       // built from config
	watcher  *agentconfig.Watcher  // nil without ConfigPath
	reloads  chan *v1alpha1.AgentConfig
	writer   *condition.Writer
	recorder *nodeevent.Recorder
}

// New checks opts, loads the configuration and builds the agent. An invalid
// configuration file is an error here; on a reload it is reported instead.
func New(opts Options) (*Agent, error) {
	if opts.NodeName == "" {
		return nil, errors.New("node name is required (--node-name or $NODE_NAME)")
	}
	a := &Agent{
		opts:     opts,
		reloads:  make(chan *v1alpha1.AgentConfig, 1),
		writer:   condition.NewWriter(opts.Client, opts.NodeName, opts.Log, opts.Metrics),
		recorder: nodeevent.NewRecorder(opts.Client, opts.NodeName, opts.Log, opts.Metrics),
	}
	cfg := opts.Config
	if opts.ConfigPath != "" {
		w, err := agentconfig.NewWatcher(opts.ConfigPath, agentconfig.WatchOptions{
			OnChange:  func(c *v1alpha1.AgentConfig) { replaceLatest(a.reloads, a.override(c)) },
			OnInvalid: a.invalidConfig,
			Metrics:   opts.ConfigMetrics,
			Log:       opts.Log.WithName("config"),
		})
		if err != nil {
			return nil, err
		}
		a.watcher, cfg = w, w.Current()
	}
	if cfg == nil {
		cfg = agentconfig.Default()
	}
	a.config = a.override(cfg)
	if a.opts.BootTime.IsZero() {
		boot, err := boottime.Read(a.config.ProcStatPath)
		if err != nil {
			// Degraded, not broken: an event whose reboot already happened
			// stays True until its terminal line arrives.
			opts.Log.Error(err, "boot time unknown; conditions clear only on a terminal log line")
		}
		a.opts.BootTime = boot
	}
	srcs, err := newSources(a.config, a.opts)
	if err != nil {
		return nil, err
	}
	a.sources = srcs
	return a, nil
}

// Ready reports whether the Node has shown the agent's conditions at least once.
func (a *Agent) Ready() bool { return a.writer.Synced() }

func (a *Agent) override(c *v1alpha1.AgentConfig) *v1alpha1.AgentConfig {
	if a.opts.Override == nil {
		return c
	}
	c = c.DeepCopy()
	a.opts.Override(c)
	return c
}

// invalidConfig tells whoever looks at the Node that a changed configuration
// file did not load and the previous one stays in force.
func (a *Agent) invalidConfig(err error) {
	a.recorder.Record(nodeevent.Event{
		Key: "config-invalid/" + err.Error(), Type: corev1.EventTypeWarning, Reason: "InvalidAgentConfig",
		Message: "configuration not reloaded, the previous one stays in force: " + err.Error(),
	})
}

// replaceLatest puts c on a one-slot channel, replacing what is there: only
// the newest configuration matters.
func replaceLatest(ch chan *v1alpha1.AgentConfig, c *v1alpha1.AgentConfig) {
	for {
		select {
		case ch <- c:
			return
		default:
			select {
			case <-ch:
			default:
			}
		}
	}
}

// Run runs until ctx ends. Nothing stops it earlier: every failure is
// retried or keeps the last good state.
func (a *Agent) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	wg.Go(func() { a.writer.Run(ctx) })
	wg.Go(func() { a.recorder.Run(ctx) })
	hb := &lease.Heartbeat{
		Client: a.opts.Client, Namespace: a.opts.Namespace, Node: a.opts.NodeName,
		Interval: a.config.LeaseRenewInterval.Duration, Duration: a.config.LeaseDuration.Duration,
		Log: a.opts.Log.WithName("lease"), Metrics: a.opts.Metrics,
	}
	wg.Go(func() { hb.Run(ctx) })
	if a.watcher != nil {
		wg.Go(func() { _ = a.watcher.Run(ctx) })
	}

	srcs := a.sources
	for {
		srcCtx, stopSources := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); a.runSources(srcCtx, srcs) }()
		next := a.waitForChange(ctx)
		stopSources()
		<-done
		if next == nil {
			return
		}
		// Sources replay their logs on start, so state is rebuilt under the
		// new configuration; the writer only writes what actually changed.
		a.opts.Log.Info("configuration changed; restarting sources")
		srcs = next
	}
}

// waitForChange blocks until a usable new configuration arrives (its
// sources are returned), or ctx ends (nil).
func (a *Agent) waitForChange(ctx context.Context) []source.Source {
	for {
		select {
		case <-ctx.Done():
			return nil
		case next := <-a.reloads:
			// The file was valid on its own; it must also fit together
			// (no condition type claimed twice) before we switch to it.
			srcs, err := newSources(next, a.opts)
			if err != nil {
				a.opts.Log.Error(err, "new configuration not applied; keeping the running one")
				continue
			}
			return srcs
		}
	}
}

func (a *Agent) runSources(ctx context.Context, srcs []source.Source) {
	out := source.APISink{Writer: a.writer, Recorder: a.recorder}
	var wg sync.WaitGroup
	for _, s := range srcs {
		wg.Go(func() { s.Run(ctx, out) })
	}
	wg.Wait()
}

// sink is where sources publish: the writer and the recorder.
// newSources builds the enabled sources and checks that no condition type
// is claimed by two of them.
func newSources(cfg *v1alpha1.AgentConfig, opts Options) ([]source.Source, error) {
	var srcs []source.Source
	if *cfg.HostEventLog.Path != "" {
		s, err := newHostEventSource(cfg, opts)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, s)
	}
	// Cloud instance metadata (docs/cloud-metadata.md); nil when metadata.provider is none.
	md, err := metadata.New(cfg, metadata.Options{
		BootTime:     opts.BootTime,
		NodeState:    metadata.NodeStateFromAPI(opts.Client, opts.NodeName),
		Registerer:   opts.Registerer,
		AgentMetrics: opts.Metrics,
		Log:          opts.Log,
	})
	if err != nil {
		return nil, err
	}
	if md != nil {
		srcs = append(srcs, md)
	}
	npdSrcs, err := npd.NewSources(cfg.NPDConfigs, npd.Options{
		BootTime:     opts.BootTime,
		Registerer:   opts.Registerer,
		AgentMetrics: opts.Metrics,
		Log:          opts.Log,
	})
	if err != nil {
		return nil, err
	}
	srcs = append(srcs, npdSrcs...)
	if hc := nodehealth.New(nodehealth.Options{
		Config:   cfg.HealthChecks,
		BootTime: opts.BootTime,
		Pods: func(ctx context.Context) ([]metav1.PartialObjectMetadata, error) {
			return opts.Client.ListNodePodsMetadata(ctx, opts.NodeName)
		},
		Log: opts.Log.WithName("health-checks"),
	}); hc != nil {
		srcs = append(srcs, hc)
	}
	owner := map[string]string{}
	for _, s := range srcs {
		for _, t := range s.ConditionTypes() {
			if prev, ok := owner[t]; ok {
				return nil, fmt.Errorf("condition type %s is claimed by two sources: %s and %s", t, prev, s.Name())
			}
			owner[t] = s.Name()
		}
	}
	return srcs, nil
}
