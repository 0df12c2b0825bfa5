package npd

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodewarden/nodewarden/internal/agent/metrics"
)

// Metrics are node-problem-detector's problem metrics, under NPD's names and
// labels so that existing alerts and dashboards keep working, plus
// nodewarden's own counters for the NPD monitors. A nil *Metrics records
// nothing.
type Metrics struct {
	// ProblemCounter is NPD's problem_counter{reason}: problems detected
	// (an Event of a temporary rule, or a condition becoming True).
	ProblemCounter *prometheus.CounterVec
	// ProblemGauge is NPD's problem_gauge{type,reason}: 1 while condition
	// type is True with reason; for each type at most one reason is 1.
	ProblemGauge *prometheus.GaugeVec
	// KmsgLost counts kernel log records overwritten before they were read.
	KmsgLost *prometheus.CounterVec
	// PluginRuns counts custom plugin runs by config file and result
	// (ok, problem, unknown, timeout).
	PluginRuns *prometheus.CounterVec

	mu sync.Mutex
	// reasonOf is the reason problem_gauge last showed for each type.
	reasonOf map[string]string
	// counted holds the keys of problems already counted: a monitor
	// restarted by a configuration reload replays its log, and what it
	// finds again must not count twice.
	counted map[string]struct{}
}

// maxCounted bounds the memory of counted problem keys.
const maxCounted = 10000

var (
	registryMu sync.Mutex
	registered = map[prometheus.Registerer]*Metrics{}
)

// MetricsFor returns the Metrics registered with reg, registering them on
// first use; nil reg gives nil. Sources are rebuilt on every configuration
// reload, so this may be called many times with the same registerer.
func MetricsFor(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, nil
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if m, ok := registered[reg]; ok {
		return m, nil
	}
	m := newMetrics()
	var err error
	if m.ProblemCounter, err = metrics.Register(reg, m.ProblemCounter); err != nil {
		return nil, err
	}
	if m.ProblemGauge, err = metrics.Register(reg, m.ProblemGauge); err != nil {
		return nil, err
	}
	if m.KmsgLost, err = metrics.Register(reg, m.KmsgLost); err != nil {
		return nil, err
	}
	if m.PluginRuns, err = metrics.Register(reg, m.PluginRuns); err != nil {
		return nil, err
	}
	registered[reg] = m
	return m, nil
}

func newMetrics() *Metrics {
	return &Metrics{
		ProblemCounter: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "problem_counter",
			Help: "Number of times a specific type of problem have occurred (node-problem-detector's metric).",
		}, []string{"reason"}),
		ProblemGauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "problem_gauge",
			Help: "Whether a specific type of problem is affecting the node or not (node-problem-detector's metric).",
		}, []string{"type", "reason"}),
		KmsgLost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodewarden_agent_npd_kmsg_records_lost_total",
			Help: "Kernel log records overwritten in the ring buffer before an NPD kmsg monitor read them.",
		}, []string{"config"}),
		PluginRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodewarden_agent_npd_plugin_runs_total",
			Help: "Custom plugin runs of NPD custom-plugin-monitor configs, by result (ok, problem, unknown, timeout).",
		}, []string{"config", "result"}),
		reasonOf: map[string]string{},
		counted:  map[string]struct{}{},
	}
}

// initRules sets NPD's initial values: every rule's reason at 0 in
// problem_counter, every permanent rule's (condition, reason) at 0 in
// problem_gauge.
func (m *Metrics) initRules(c *Config) {
	if m == nil || !c.MetricsReporting {
		return
	}
	for _, r := range c.Rules {
		if r.Type == Permanent {
			m.setGauge(r.Condition, r.Reason, false)
		}
		m.ProblemCounter.WithLabelValues(r.Reason).Add(0)
	}
}

// countProblem counts one problem with reason, once per key.
func (m *Metrics) countProblem(key, reason string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	_, seen := m.counted[key]
	if !seen {
		if len(m.counted) >= maxCounted {
			clear(m.counted)
		}
		m.counted[key] = struct{}{}
	}
	m.mu.Unlock()
	if !seen {
		m.ProblemCounter.WithLabelValues(reason).Inc()
	}
}

// setGauge is NPD's SetProblemGauge: the last reason shown for the type goes
// to 0, then (type, reason) is set.
func (m *Metrics) setGauge(typ, reason string, active bool) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if last, ok := m.reasonOf[typ]; ok {
		m.ProblemGauge.WithLabelValues(typ, last).Set(0)
	}
	m.reasonOf[typ] = reason
	v := 0.0
	if active {
		v = 1
	}
	m.ProblemGauge.WithLabelValues(typ, reason).Set(v)
}

func (m *Metrics) kmsgLost(config string, n uint64) {
	if m == nil {
		return
	}
	m.KmsgLost.WithLabelValues(config).Add(float64(n))
}

func (m *Metrics) pluginRun(config, result string) {
	if m == nil {
		return
	}
	m.PluginRuns.WithLabelValues(config, result).Inc()
}
