// Package metrics holds the collectors every part of the agent shares
// (lines read, host events, condition transitions, API requests), and
// Register, for the collectors of parts rebuilt on every reload. A part with
// metrics of its own keeps them next to its code: agentconfig (reloads), npd
// (NPD's problem_* metrics), metadata (endpoint polls). docs/operations.md
// lists them all.
package metrics

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Agent is every collector of the agent. A nil *Agent is valid and records nothing,
// so components can be tested without a registry.
type Agent struct {
	LinesRead            *prometheus.CounterVec   // source
	LinesUnparsed        *prometheus.CounterVec   // source, reason
	HostEvents           *prometheus.CounterVec   // type, status
	ConditionTransitions *prometheus.CounterVec   // type, status
	APIRequestDuration   *prometheus.HistogramVec // operation
	APIErrors            *prometheus.CounterVec   // operation
	EventsDropped        prometheus.Counter
}

// New creates the collectors and registers them with reg.
func New(reg prometheus.Registerer) *Agent {
	m := &Agent{
		LinesRead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodewarden_agent_lines_read_total",
			Help: "Lines read from a log source.",
		}, []string{"source"}),
		LinesUnparsed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodewarden_agent_lines_unparsed_total",
			Help: "Lines that were not events, by why (not_event, bad_time, unknown_status, too_long, ...).",
		}, []string{"source", "reason"}),
		HostEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodewarden_agent_host_events_total",
			Help: "Host event observations, by event type and status (each new type/status/action time once).",
		}, []string{"type", "status"}),
		ConditionTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodewarden_agent_condition_transitions_total",
			Help: "Node condition status changes written by the agent.",
		}, []string{"type", "status"}),
		APIRequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "nodewarden_agent_api_request_duration_seconds",
			Help:    "Latency of the agent's writes to the API server, by operation.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"operation"}),
		APIErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodewarden_agent_api_errors_total",
			Help: "Failed API requests, by operation; each is retried with backoff.",
		}, []string{"operation"}),
		EventsDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nodewarden_agent_events_dropped_total",
			Help: "Kubernetes Events dropped because the retry queue was full during an API outage.",
		}),
	}
	reg.MustRegister(m.LinesRead, m.LinesUnparsed, m.HostEvents, m.ConditionTransitions,
		m.APIRequestDuration, m.APIErrors, m.EventsDropped)
	return m
}

// ObserveAPI records one API request's latency and, if it failed, the error.
func (m *Agent) ObserveAPI(operation string, start time.Time, err error) {
	if m == nil {
		return
	}
	m.APIRequestDuration.WithLabelValues(operation).Observe(time.Since(start).Seconds())
	if err != nil {
		m.APIErrors.WithLabelValues(operation).Inc()
	}
}

// Transition records a condition status change.
func (m *Agent) Transition(conditionType, status string) {
	if m == nil {
		return
	}
	m.ConditionTransitions.WithLabelValues(conditionType, status).Inc()
}

// LineRead counts a line read from source.
func (m *Agent) LineRead(source string) {
	if m == nil {
		return
	}
	m.LinesRead.WithLabelValues(source).Inc()
}

// LineUnparsed counts a line of source that was not an event, by reason.
func (m *Agent) LineUnparsed(source, reason string) {
	if m == nil {
		return
	}
	m.LinesUnparsed.WithLabelValues(source, reason).Inc()
}

// HostEvent counts a new host event observation.
func (m *Agent) HostEvent(eventType, status string) {
	if m == nil {
		return
	}
	m.HostEvents.WithLabelValues(eventType, status).Inc()
}

// EventDropped counts a Kubernetes Event dropped from the full retry queue.
func (m *Agent) EventDropped() {
	if m == nil {
		return
	}
	m.EventsDropped.Inc()
}

// Register registers c with reg, or returns the equal collector registered
// before: sources are rebuilt on every configuration reload and must neither
// fail on nor duplicate their own collectors.
func Register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			return existing, nil
		}
	}
	return c, err
}
