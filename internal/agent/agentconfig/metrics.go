package agentconfig

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics tell whether the configuration file on disk is the one in force.
// A nil *Metrics records nothing.
type Metrics struct {
	reloadErrors         prometheus.Counter
	lastReloadSuccessful prometheus.Gauge
}

// NewMetrics creates the Watcher's metrics and registers them with reg:
//
//   - nodewarden_agent_config_reload_errors_total counts changes of the file
//     that were rejected (the previous configuration stayed in force);
//   - nodewarden_agent_config_last_reload_successful is 1 while the file on
//     disk is the configuration in force, 0 while it is rejected.
//
// The gauge starts at 1: an agent whose initial load fails does not start,
// and one that runs without a file has nothing to reload.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		reloadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nodewarden_agent_config_reload_errors_total",
			Help: "Changes of the agent configuration file that were rejected; the previous configuration stayed in force.",
		}),
		lastReloadSuccessful: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nodewarden_agent_config_last_reload_successful",
			Help: "1 if the agent configuration file on disk is the one in force, 0 if its last change was rejected.",
		}),
	}
	m.lastReloadSuccessful.Set(1)
	for _, c := range []prometheus.Collector{m.reloadErrors, m.lastReloadSuccessful} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) recordSuccess() {
	if m == nil {
		return
	}
	m.lastReloadSuccessful.Set(1)
}

func (m *Metrics) recordFailure() {
	if m == nil {
		return
	}
	m.reloadErrors.Inc()
	m.lastReloadSuccessful.Set(0)
}
