package metadata

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodewarden/nodewarden/internal/agent/metrics"
)

// Metrics are the metadata source's collectors. A nil *Metrics records
// nothing.
type Metrics struct {
	// Errors counts failed reads by provider, endpoint and reason (timeout,
	// unreachable, http_503, bad_response, token, ...). Each failure keeps
	// the last known state.
	Errors *prometheus.CounterVec
	// Polls counts successful reads by provider and endpoint.
	Polls *prometheus.CounterVec
	// LastSuccess is the Unix time of the last successful read, for an
	// alert on an endpoint that has been failing for too long.
	LastSuccess *prometheus.GaugeVec
	// Acknowledgements counts scheduled events approved early (Azure
	// StartRequests) by provider.
	Acknowledgements *prometheus.CounterVec
}

// MetricsFor returns the Metrics registered with reg, registering them on
// first use. Sources are rebuilt on every configuration reload, so it may be
// called many times with the same registerer: metrics.Register hands back
// the collectors registered before. A nil reg gives collectors that are
// registered nowhere (for tests).
func MetricsFor(reg prometheus.Registerer) (*Metrics, error) {
	m := newMetrics()
	if reg == nil {
		return m, nil
	}
	var err error
	if m.Errors, err = metrics.Register(reg, m.Errors); err != nil {
		return nil, err
	}
	if m.Polls, err = metrics.Register(reg, m.Polls); err != nil {
		return nil, err
	}
	if m.LastSuccess, err = metrics.Register(reg, m.LastSuccess); err != nil {
		return nil, err
	}
	if m.Acknowledgements, err = metrics.Register(reg, m.Acknowledgements); err != nil {
		return nil, err
	}
	return m, nil
}

func newMetrics() *Metrics {
	return &Metrics{
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodewarden_agent_metadata_errors_total",
			Help: "Failed reads of a cloud instance-metadata endpoint, by reason; the last known state is kept.",
		}, []string{"provider", "endpoint", "reason"}),
		Polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodewarden_agent_metadata_polls_total",
			Help: "Successful reads of a cloud instance-metadata endpoint.",
		}, []string{"provider", "endpoint"}),
		LastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nodewarden_agent_metadata_last_success_timestamp_seconds",
			Help: "Unix time of the last successful read of a cloud instance-metadata endpoint.",
		}, []string{"provider", "endpoint"}),
		Acknowledgements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodewarden_agent_metadata_acknowledgements_total",
			Help: "Scheduled events approved to start early because the node was drained (Azure StartRequests).",
		}, []string{"provider"}),
	}
}

func (m *Metrics) failed(provider, endpoint, reason string) {
	if m == nil {
		return
	}
	m.Errors.WithLabelValues(provider, endpoint, reason).Inc()
}

func (m *Metrics) succeeded(provider, endpoint string, now time.Time) {
	if m == nil {
		return
	}
	m.Polls.WithLabelValues(provider, endpoint).Inc()
	m.LastSuccess.WithLabelValues(provider, endpoint).Set(float64(now.UnixNano()) / 1e9)
}

func (m *Metrics) acknowledged(provider string, n int) {
	if m == nil {
		return
	}
	m.Acknowledgements.WithLabelValues(provider).Add(float64(n))
}
