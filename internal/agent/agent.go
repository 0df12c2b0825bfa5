// Package agent is `nodewarden agent`: it reads signals on its own node and
// keeps that node's conditions true.
//
// The parts, each in its own package:
//
//	logfile.Follower ─lines─▶ hostevent.Parse ─▶ hostevent.Tracker ─conditions─▶ condition.Writer ─▶ nodes/status
//	                                                               └─new statuses─▶ nodeevent.Recorder ─▶ Events
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
	"k8s.io/client-go/kubernetes"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/agent/condition"
	"github.com/nodewarden/nodewarden/internal/agent/lease"
	"github.com/nodewarden/nodewarden/internal/agent/metrics"
	"github.com/nodewarden/nodewarden/internal/agent/nodeevent"
	"github.com/nodewarden/nodewarden/internal/agent/source"
)

// Options are what the agent needs from its command line.
type Options struct {
	NodeName  string
	Namespace string // for the Lease
	Client    kubernetes.Interface
	// Config has its defaults applied and is valid.
	Config *v1alpha1.AgentConfig
	// Reloads delivers new valid configurations; nil if the file is not watched.
	Reloads <-chan *v1alpha1.AgentConfig
	// BootTime of the node; zero means read it from Config.ProcStatPath.
	BootTime time.Time
	Metrics  *metrics.Agent
	Log      logr.Logger
}

// Agent runs the sources, the condition writer, the event recorder and the heartbeat.
type Agent struct {
	opts     Options
	writer   *condition.Writer
	recorder *nodeevent.Recorder
}

// New checks opts and builds the agent.
func New(opts Options) (*Agent, error) {
	if opts.NodeName == "" {
		return nil, errors.New("node name is required (--node-name or $NODE_NAME)")
	}
	if opts.Config == nil {
		return nil, errors.New("config is required")
	}
	if _, err := newSources(opts.Config, opts); err != nil {
		return nil, err
	}
	return &Agent{
		opts:     opts,
		writer:   condition.NewWriter(opts.Client, opts.NodeName, opts.Log, opts.Metrics),
		recorder: nodeevent.NewRecorder(opts.Client, opts.NodeName, opts.Log, opts.Metrics),
	}, nil
}

// Ready reports whether the Node has shown the agent's conditions at least once.
func (a *Agent) Ready() bool { return a.writer.Synced() }

// Record reports e on the Node, e.g. a configuration that did not load.
func (a *Agent) Record(e nodeevent.Event) { a.recorder.Record(e) }

// Run runs until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	errs := make(chan error, 1)
	wg.Go(func() {
		if err := a.writer.Run(ctx); err != nil {
			errs <- fmt.Errorf("condition writer: %w", err)
		}
	})
	wg.Go(func() { a.recorder.Run(ctx) })
	hb := &lease.Heartbeat{
		Client: a.opts.Client, Namespace: a.opts.Namespace, Node: a.opts.NodeName,
		Interval: a.opts.Config.LeaseRenewInterval.Duration, Duration: a.opts.Config.LeaseDuration.Duration,
		Log: a.opts.Log.WithName("lease"), Metrics: a.opts.Metrics,
	}
	wg.Go(func() { hb.Run(ctx) })

	cfg := a.opts.Config
	for {
		srcCtx, stopSources := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); a.runSources(srcCtx, cfg) }()
		next, err := a.waitForChange(ctx, errs, cfg)
		stopSources()
		<-done
		if next == nil {
			return err
		}
		// Sources replay their logs on start, so state is rebuilt under the
		// new configuration; the writer only writes what actually changed.
		a.opts.Log.Info("configuration changed; restarting sources")
		cfg = next
	}
}

// waitForChange blocks until a usable new configuration arrives (returned),
// or the agent must stop (nil, and the error if any).
func (a *Agent) waitForChange(ctx context.Context, errs <-chan error, cur *v1alpha1.AgentConfig) (*v1alpha1.AgentConfig, error) {
	for {
		select {
		case <-ctx.Done():
			return nil, nil
		case err := <-errs:
			return nil, err
		case next := <-a.opts.Reloads:
			// The file was valid on its own; it must also fit together
			// (no condition type claimed twice) before we switch to it.
			if _, err := newSources(next, a.opts); err != nil {
				a.opts.Log.Error(err, "new configuration not applied; keeping the running one")
				continue
			}
			if next != cur {
				return next, nil
			}
		}
	}
}

func (a *Agent) runSources(ctx context.Context, cfg *v1alpha1.AgentConfig) {
	srcs, _ := newSources(cfg, a.opts) // checked before cfg was accepted
	out := sink{writer: a.writer, recorder: a.recorder}
	var wg sync.WaitGroup
	for _, s := range srcs {
		wg.Go(func() { s.Run(ctx, out) })
	}
	wg.Wait()
}

// sink is where sources publish: the writer and the recorder.
type sink struct {
	writer   *condition.Writer
	recorder *nodeevent.Recorder
}

func (s sink) SetConditions(wants ...condition.Want) { s.writer.Set(wants...) }
func (s sink) Record(e nodeevent.Event)              { s.recorder.Record(e) }

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
	if len(cfg.NPDConfigs) > 0 {
		return nil, errors.New("npdConfigs: node-problem-detector configs are not supported yet")
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
