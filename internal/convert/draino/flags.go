package draino

// flagDef is one Draino flag: how it parses and, unless the converter maps it
// in code (mapped), the line reported when it is given.
type flagDef struct {
	name string // without the leading --
	kind flagKind
	// mapped flags are converted by convert.go into policy fields (and their
	// own warnings where the behaviour differs).
	mapped bool
	// note is reported, prefixed by the flag, when the flag is given. For a
	// boolean flag it is reported only when the value differs from
	// boolDefault; otherwise the flag is reported as a no-op.
	note        string
	boolDefault bool
}

// Notes shared by several flags.
const (
	noteLeaderTimings = "not configurable: `nodewarden controller --leader-elect` elects a leader through a coordination.k8s.io Lease with controller-runtime's timings (15s lease, 10s renew deadline, 2s retry: Draino's defaults)"
	notePreprovision  = "not expressible: nodewarden has no step before the drain; Draino's DataDog fork asked its node group tooling for a new node (label node.datadoghq.com/replace=requested) before draining a node annotated node-lifecycle.datadoghq.com/provision-new-node-before-drain=true (every node with --preprovisioning-by-default) and waited for it. " +
		"Keep spare capacity another way, e.g. cluster-autoscaler's overprovisioning (low-priority placeholder pods); what nodewarden can do after the drain is spec.repair (docs/policy.md)"
	notePVC          = "not supported: nodewarden never deletes PersistentVolumes or PersistentVolumeClaims; pods with local volumes are evicted (or block the drain) like any other"
	noteGroupBudget  = "not expressible in one policy: nodewarden's budget (maxConcurrent) is per policy; write one RemediationPolicy per label/taint group, each with its own nodeSelector and maxConcurrent"
	noteCordonFilter = "not expressible: nodewarden decides whether to take a node from its conditions and labels only, never from the pods it runs; use protectedPodAnnotations to keep pods from being evicted (they block the drain; the node is still cordoned)"
	noteNotNeeded    = "not needed: nodewarden has no equivalent setting"
)

// flags lists every flag of upstream Draino (planetlabs/draino, kingpin) and
// of its DataDog fork (kingpin, later pflag), so that a command line of any
// version converts and only a truly unknown flag is an error. Flags are
// reported in this order, so that the output does not depend on map
// iteration.
var flags = []flagDef{
	// Node selection and conditions.
	{name: "node-label", kind: csvListFlag, mapped: true},
	{name: "node-label-expr", kind: valueFlag, mapped: true},
	{name: "node-conditions", kind: listFlag, mapped: true}, // the fork's flag form of the positional conditions

	// Modes.
	{name: "dry-run", kind: boolFlag, mapped: true},
	{name: "skip-drain", kind: boolFlag, mapped: true},

	// Drain.
	{name: "max-grace-period", kind: valueFlag, mapped: true},
	{name: "eviction-headroom", kind: valueFlag, mapped: true},
	{name: "drain-buffer", kind: valueFlag, mapped: true},
	{name: "evict-daemonset-pods", kind: boolFlag, mapped: true},
	{name: "evict-statefulset-pods", kind: boolFlag, mapped: true},
	{name: "evict-emptydir-pods", kind: boolFlag, mapped: true},
	{name: "evict-unreplicated-pods", kind: boolFlag, mapped: true},
	{name: "do-not-evict-pod-controlled-by", kind: csvListFlag, mapped: true},
	{name: "protected-pod-annotation", kind: listFlag, mapped: true},
	{name: "ignore-safe-to-evict-annotation", kind: boolFlag, mapped: true},
	{name: "allow-force-delete", kind: boolFlag, note: "not carried over: nodewarden deletes pods only with the opt-in drain.forceAfter (a duration after the first drain started, after which the pods left are deleted ignoring their PodDisruptionBudgets), " +
		"which also needs the optional RBAC of docs/security.md; set both by hand if you want that"},
	{name: "max-drain-attempts-before-fail", kind: valueFlag, mapped: true},
	{name: "retry-backoff-delay", kind: valueFlag, mapped: true},
	{name: "min-eviction-timeout", kind: valueFlag, note: "not expressible: drain.timeout bounds the whole drain and drain.gracePeriodSeconds caps each pod's grace period"},
	{name: "pod-warmup-delay-extension", kind: valueFlag, note: "not supported: nodewarden does not wait for replacement pods to warm up; PodDisruptionBudgets are what pace evictions"},
	{name: "opt-in-pod-annotation", kind: listFlag, note: "not supported: nodewarden has no per-pod opt-in; use drain.evictEmptyDirPods and drain.evictUnreplicatedPods"},
	{name: "short-lived-pod-annotation", kind: listFlag, note: "not supported: nodewarden does not wait for short-lived pods to finish; raise drain.timeout, or protect them with protectedPodAnnotations (they then block the drain)"},
	{name: "drain-group-labels", kind: valueFlag, note: noteGroupBudget},
	{name: "drain-rate-limit-qps", kind: valueFlag, note: "not expressible: nodewarden paces remediation with maxConcurrent (nodes held at once), not a rate"},
	{name: "drain-rate-limit-burst", kind: valueFlag, note: "not expressible: nodewarden paces remediation with maxConcurrent (nodes held at once), not a rate"},

	// Cordon filters (the fork).
	{name: "do-not-cordon-pod-controlled-by", kind: csvListFlag, note: noteCordonFilter},
	{name: "cordon-protected-pod-annotation", kind: listFlag, note: noteCordonFilter},
	{name: "cordon-emptydir-pods", kind: boolFlag, boolDefault: true, note: noteCordonFilter},

	// Budgets and circuit breakers.
	{name: "max-simultaneous-cordon", kind: csvListFlag, mapped: true},
	{name: "max-simultaneous-cordon-for-labels", kind: listFlag, note: noteGroupBudget},
	{name: "max-simultaneous-cordon-for-taints", kind: listFlag, note: noteGroupBudget},
	{name: "skip-cordon-limiter-node-annotation", kind: valueFlag, note: "not supported: nodewarden has no per-node bypass of maxConcurrent and maxUnhealthy; cover such nodes with a separate policy (its own nodeSelector and budget) instead"},
	{name: "max-notready-nodes", kind: csvListFlag, mapped: true},
	{name: "max-notready-nodes-period", kind: valueFlag, note: "not needed: maxUnhealthy is evaluated on every reconcile, not polled"},
	{name: "max-pending-pods", kind: csvListFlag, note: "not expressible: nodewarden's circuit breaker (maxUnhealthy) counts triggered nodes, not Pending pods; " +
		"PodDisruptionBudgets keep evictions from outrunning the capacity to reschedule"},
	{name: "max-pending-pods-period", kind: valueFlag, note: "not needed: nodewarden has no Pending-pods circuit breaker to poll"},

	// Node replacement, pre-provisioning and volumes (the fork).
	{name: "max-node-replacement-per-hour", kind: valueFlag, mapped: true},
	{name: "duration-before-replacement", kind: valueFlag, mapped: true},
	{name: "preprovisioning-timeout", kind: valueFlag, note: notePreprovision},
	{name: "preprovisioning-check-period", kind: valueFlag, note: notePreprovision},
	{name: "preprovisioning-by-default", kind: boolFlag, note: notePreprovision},
	{name: "storage-class-allows-pv-deletion", kind: csvListFlag, note: notePVC},
	{name: "pvc-management-by-default", kind: boolFlag, note: notePVC},

	// Identity and bookkeeping of a Draino deployment (the fork).
	{name: "config-name", kind: valueFlag, mapped: true},
	{name: "reset-config-labels", kind: boolFlag, note: "not needed: a one-off cleanup of the fork's scope labels; nodewarden keeps its state in nodewarden.io/* node annotations and removes them on release"},
	{name: "reset-config-annotations", kind: boolFlag, note: "not needed: a one-off cleanup of the fork's scope annotations; nodewarden keeps its state in nodewarden.io/* node annotations and removes them on release"},
	{name: "scope-analysis-period", kind: valueFlag, note: "not needed: the policy status (selectedNodes, triggeredNodes, remediatingNodes) is kept current on every reconcile"},
	{name: "group-runner-period", kind: valueFlag, note: "not needed: nodewarden reconciles on Node changes and requeues exactly when a for: duration runs out"},
	{name: "drain-buffer-configmap-name", kind: valueFlag, note: "not needed: nodewarden keeps every bit of remediation state on the Node objects, so a restart resumes without a ConfigMap"},
	{name: "no-legacy-node-handler", kind: boolFlag, note: noteNotNeeded},
	{name: "event-aggregation-period", kind: valueFlag, note: "not needed: nodewarden records one Event per step on the Node"},
	{name: "excluded-pod-per-node-estimation", kind: valueFlag, note: noteNotNeeded},
	{name: "log-events", kind: boolFlag, boolDefault: true, note: "not configurable: nodewarden always records Events and logs its decisions"},

	// The process: flags of `nodewarden controller`, not of a policy.
	{name: "debug", kind: boolFlag, note: "a flag of the process: use `nodewarden controller --zap-log-level=debug`"},
	{name: "klog-verbosity", kind: valueFlag, note: "a flag of the process: use `nodewarden controller --zap-log-level`"},
	{name: "listen", kind: valueFlag, note: "a flag of the process: Draino served /metrics and /healthz on one address; " +
		"use `nodewarden controller --metrics-bind-address` and `--health-probe-bind-address` (/healthz, /readyz)"},
	{name: "kubeconfig", kind: valueFlag, note: "a flag of the process: use `nodewarden controller --kubeconfig` (default $KUBECONFIG, else in-cluster)"},
	{name: "master", kind: valueFlag, note: "a flag of the process with no equivalent: put the API server address in a kubeconfig (`nodewarden controller --kubeconfig`), or run in-cluster"},
	{name: "namespace", kind: valueFlag, note: "a flag of the process: the leader election Lease lives in `nodewarden controller --namespace` " +
		"(default $POD_NAMESPACE, else nodewarden-system)"},
	{name: "leader-election-lease-duration", kind: valueFlag, note: noteLeaderTimings},
	{name: "leader-election-renew-deadline", kind: valueFlag, note: noteLeaderTimings},
	{name: "leader-election-retry-period", kind: valueFlag, note: noteLeaderTimings},
	{name: "leader-election-token-name", kind: valueFlag, note: "not configurable: the controller's leader election Lease is named nodewarden-controller " +
		"(enable it with `nodewarden controller --leader-elect`)"},
}

// flagTable is flags by name.
var flagTable = func() map[string]flagDef {
	m := make(map[string]flagDef, len(flags))
	for _, f := range flags {
		m[f.name] = f
	}
	return m
}()
