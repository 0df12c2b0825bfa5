package npd

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodewarden/nodewarden/internal/agent/metrics"
	"github.com/nodewarden/nodewarden/internal/agent/source"
)

// Options are what the NPD sources need from the agent.
type Options struct {
	// BootTime of the node, for `delay` and for kmsg timestamps (which are
	// relative to boot); the agent reads it once. Zero means unknown.
	BootTime time.Time
	// Registerer gets NPD's problem_counter and problem_gauge (and
	// nodewarden's NPD counters); nil registers none. Registering is done
	// once per registerer, however many times NewSources is called.
	Registerer prometheus.Registerer
	// AgentMetrics counts lines read and unparsed, as for the host event log.
	AgentMetrics *metrics.Agent
	Log          logr.Logger

	// Location is the time zone of filelog timestamps without one, as NPD's
	// time.ParseInLocation(..., time.Local). Default time.Local.
	Location *time.Location
	// PollInterval is how often log files are checked without a
	// notification. Default 1s.
	PollInterval time.Duration
	// Now is the clock; default time.Now. For tests.
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.Location == nil {
		o.Location = time.Local
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// NewSources loads the NPD monitor configs at paths and returns one source
// per file. It starts nothing, so the agent may call it to check a
// configuration. An error names the file and the problem. Warnings about
// unsupported fields are logged when the source starts.
func NewSources(paths []string, opts Options) ([]source.Source, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	opts.defaults()
	m, err := MetricsFor(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("npd metrics: %w", err)
	}
	var srcs []source.Source
	for _, p := range paths {
		c, err := Load(p, LoadOptions{})
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, newSource(c, opts, m))
	}
	return srcs, nil
}

// newSource returns the source for one loaded config.
func newSource(c *Config, opts Options, m *Metrics) source.Source {
	base := baseSource{cfg: c, opts: opts, metrics: m, log: opts.Log.WithName("npd").WithValues("config", c.File)}
	switch c.Plugin {
	case PluginFilelog:
		return &logSource{baseSource: base, watch: filelogWatcher(c, opts, base.log)}
	case PluginKmsg:
		return &logSource{baseSource: base, watch: kmsgWatcher(c, opts, m, base.log)}
	case PluginJournald:
		return &logSource{baseSource: base, watch: journaldWatcher(c, opts, base.log)}
	default:
		return &pluginSource{baseSource: base}
	}
}

// baseSource is what every NPD source has.
type baseSource struct {
	cfg     *Config
	opts    Options
	metrics *Metrics
	log     logr.Logger
}

// Name is "npd <file>", as the agent names a source in its errors.
func (s *baseSource) Name() string { return "npd " + s.cfg.File }

func (s *baseSource) ConditionTypes() []string { return s.cfg.ConditionTypes() }

// Config is the loaded configuration.
func (s *baseSource) Config() *Config { return s.cfg }

func (s *baseSource) logWarnings() {
	for _, w := range s.cfg.Warnings {
		s.log.Info("warning: " + w)
	}
}

// bootTime is Options.BootTime; zero if unknown (the agent logged why).
func (s *baseSource) bootTime() time.Time { return s.opts.BootTime }

// record records found problems and counts them in NPD's metrics.
func (s *baseSource) record(out source.Sink, found []problem) {
	for _, p := range found {
		ev := p.event(s.cfg.File)
		out.Record(ev)
		if p.counts && s.cfg.MetricsReporting {
			s.metrics.countProblem(ev.Key, p.reason)
		}
	}
}

// publishGauges sets problem_gauge from the conditions, as NPD does.
func (s *baseSource) publishGauges(cs conditions) {
	if !s.cfg.MetricsReporting {
		return
	}
	for _, c := range cs {
		s.metrics.setGauge(c.def.Type, c.reason, c.status == "True")
	}
}

// watchFunc reads a log: it calls onEntry for every entry (replay tells
// whether the entry was there before the source started), onReplayDone once
// the entries already there have been read, and returns when ctx ends.
type watchFunc func(ctx context.Context, onEntry func(e logEntry, replay bool), onReplayDone func())

// logSource is a system log monitor: filelog, kmsg or journald.
type logSource struct {
	baseSource
	watch watchFunc
}

// Run declares the conditions at their defaults, replays what the log holds
// within `lookback`, publishes the resulting state, then follows the log.
//
// Entries that were in the log before the start count only if they are
// within `lookback` (and past `delay` after boot), as in NPD; entries that
// arrive later always count, whatever their timestamp. Events found during
// the replay are recorded (their keys make a restart's second recording a
// no-op); conditions are published only once the replay is over, so a
// restart never shows a condition flipping through its history.
func (s *logSource) Run(ctx context.Context, out source.Sink) {
	s.logWarnings()
	now := s.opts.Now()
	start := startTime(now, s.bootTime(), s.cfg.Lookback, s.cfg.Delay)
	s.log.Info("starting NPD log monitor", "plugin", s.cfg.Plugin, "logPath", s.cfg.LogPath,
		"conditions", s.cfg.ConditionTypes(), "rules", len(s.cfg.Rules), "since", start)
	s.metrics.initRules(s.cfg)

	var mu sync.Mutex
	mon := newLogMonitor(s.cfg, now)
	replayed := false
	publish := func() {
		out.SetConditions(mon.conds.wants()...)
		s.publishGauges(mon.conds)
	}
	wake := make(chan struct{}, 1)
	handle := func(found []problem, changed bool) {
		s.record(out, found)
		if changed && replayed {
			publish()
		}
		if changed {
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}
	onEntry := func(e logEntry, replay bool) {
		if replay && e.Time.Before(start) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		handle(mon.observe(e))
	}
	onReplayDone := func() {
		mu.Lock()
		defer mu.Unlock()
		replayed = true
		found, _ := mon.expire(s.opts.Now())
		s.record(out, found)
		publish()
		select {
		case wake <- struct{}{}:
		default:
		}
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	// The resolveAfter extension: clear conditions when their time is up.
	wg.Go(func() {
		timer := time.NewTimer(time.Hour)
		defer timer.Stop()
		for {
			mu.Lock()
			next := mon.nextExpiry()
			ready := replayed
			mu.Unlock()
			wait := time.Hour
			if ready && !next.IsZero() {
				wait = max(next.Sub(s.opts.Now()), 0)
			}
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-wake:
				continue
			case <-timer.C:
			}
			mu.Lock()
			if replayed {
				handle(mon.expire(s.opts.Now()))
			}
			mu.Unlock()
		}
	})
	s.watch(ctx, onEntry, onReplayDone)
}

// startTime is NPD's: entries before it are ignored on start. It is the
// later of boot+delay and now-lookback.
func startTime(now, boot time.Time, lookback, delay time.Duration) time.Time {
	start := now.Add(-lookback)
	if !boot.IsZero() {
		if b := boot.Add(delay); b.After(start) {
			start = b
		}
	}
	return start
}

// skipped tells whether line contains an entry of skipList.
func skipped(skipList []string, line string) bool {
	for _, s := range skipList {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}
