package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the controller's Prometheus collectors (docs/operations.md lists them).
type Metrics struct {
	Nodes          *prometheus.GaugeVec     // policy, state
	Actions        *prometheus.CounterVec   // action, result
	EvictionRetry  prometheus.Counter       //
	DrainDuration  *prometheus.HistogramVec // result
	CircuitOpen    *prometheus.GaugeVec     // policy
	TriggeredNodes *prometheus.GaugeVec     // policy
	StuckNodes     *prometheus.GaugeVec     // policy
	Repairs        *prometheus.CounterVec   // policy, action, result
	Notifications  *prometheus.CounterVec   // receiver, result
	History        *prometheus.CounterVec   // result
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Nodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nodewarden_controller_nodes",
			Help: "Nodes held by a policy, by nodewarden.io/state.",
		}, []string{"policy", "state"}),
		Actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodewarden_controller_actions_total",
			Help: "Actions on nodes (Wait, Cordon, StartDrain, Drained, DrainFailed, Handover, Release, Stop, ...), by result (success, conflict, error, dry_run).",
		}, []string{"action", "result"}),
		EvictionRetry: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nodewarden_controller_eviction_retries_total",
			Help: "Evictions retried, mostly because a PodDisruptionBudget answered 429.",
		}),
		DrainDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "nodewarden_controller_drain_duration_seconds",
			Help:    "Time from a drain's start to Drained or DrainFailed.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12), // 1 s .. ~34 min
		}, []string{"result"}),
		CircuitOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nodewarden_controller_circuit_open",
			Help: "1 while a policy's maxUnhealthy circuit breaker is open.",
		}, []string{"policy"}),
		TriggeredNodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nodewarden_controller_triggered_nodes",
			Help: "Selected nodes whose trigger condition holds, by policy.",
		}, []string{"policy"}),
		StuckNodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nodewarden_controller_stuck_nodes",
			Help: "Nodes a policy holds whose drain failed (state DrainFailed, retrying or waiting for a human); nodewarden.io/blocked-by on each says why.",
		}, []string{"policy"}),
		Repairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodewarden_controller_repairs_total",
			Help: "Repair steps that ended (DeleteNode, ClusterAPI, Webhook), by policy, action and result (success, failure); a step cancelled before it ended is not counted.",
		}, []string{"policy", "action", "result"}),
		Notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodewarden_controller_notifications_total",
			Help: "Notifications of policies' steps, by receiver and result: sent, failed (retries used up, or a receiver the Secret lacks), dropped (the queue was full).",
		}, []string{"receiver", "result"}),
		History: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodewarden_controller_history_writes_total",
			Help: "Writes of RemediationRecords (a step, a prune, a sweep), by result (success, error: given up after retries, dropped: the queue was full).",
		}, []string{"result"}),
	}
	reg.MustRegister(m.Nodes, m.Actions, m.EvictionRetry, m.DrainDuration, m.CircuitOpen, m.TriggeredNodes, m.StuckNodes, m.Repairs, m.Notifications, m.History)
	return m
}
