package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Node annotations. Every bit of per-node remediation state lives on the Node,
// never only in the controller's memory, so that a restart or a leader change
// resumes exactly where the previous controller stopped.
const (
	// AnnotationPrefix starts every annotation nodewarden writes on a Node;
	// a policy may not add annotations under it.
	AnnotationPrefix = "nodewarden.io/"
	// AnnotationState is the remediation state of a node held by a policy:
	// one of the NodeState values. Its presence means "held".
	AnnotationState = "nodewarden.io/state"
	// AnnotationPolicy names the RemediationPolicy that holds the node.
	AnnotationPolicy = "nodewarden.io/policy"
	// AnnotationTrigger is the condition that made the policy take the node,
	// as Type=Status, e.g. HostEventRebootAfter48=True.
	AnnotationTrigger = "nodewarden.io/trigger"
	// AnnotationStateSince is when the node entered its current state (RFC3339).
	// The drainer measures the drain timeout from it, so a resumed drain keeps
	// its original deadline.
	AnnotationStateSince = "nodewarden.io/state-since"
	// AnnotationTriggerSince is the lastTransitionTime (RFC3339) of the trigger
	// condition when the node was taken.
	AnnotationTriggerSince = "nodewarden.io/trigger-since"
	// AnnotationCordonedBy records who made the node unschedulable while
	// nodewarden holds it: CordonedByNodewarden (undone on release) or
	// CordonedByOther (the node was already cordoned; nodewarden never
	// uncordons it). Absent when the policy does not cordon.
	AnnotationCordonedBy = "nodewarden.io/cordoned-by"
	// AnnotationAddedTaints lists the taints nodewarden added, as
	// comma-separated key:effect pairs, so that exactly those are removed on
	// release even if the policy changed meanwhile, and a taint someone else
	// had already set is left alone.
	AnnotationAddedTaints = "nodewarden.io/added-taints"
	// AnnotationAddedAnnotations lists, comma-separated, the keys of the
	// policy's extra annotations that nodewarden set (and will remove).
	AnnotationAddedAnnotations = "nodewarden.io/added-annotations"
	// AnnotationHumanUncordoned is set when someone uncordoned a node while
	// nodewarden held it. Its value is the lastTransitionTime (RFC3339) of the
	// newest trigger condition at that moment: the node is not taken again
	// until a trigger condition transitions after that time.
	AnnotationHumanUncordoned = "nodewarden.io/human-uncordoned"
	// AnnotationDeadline is the trigger's deadline (RFC3339) when the node was
	// taken: the time the agent announced the disruption for ("not before").
	// A drain never runs past it.
	AnnotationDeadline = "nodewarden.io/deadline"
	// AnnotationDrainAttempts counts the drains started in this episode
	// (the current one included); a retry increments it.
	AnnotationDrainAttempts = "nodewarden.io/drain-attempts"
	// AnnotationDrainStarted is when the first drain of the episode started
	// (RFC3339); drain.forceAfter counts from it.
	AnnotationDrainStarted = "nodewarden.io/drain-started"
	// AnnotationDrainForced is when the drain.forceAfter escalation started
	// its (one) forced attempt (RFC3339).
	AnnotationDrainForced = "nodewarden.io/drain-forced"
	// AnnotationBlockedBy says, while the node is DrainFailed, what kept the
	// last drain from finishing (the pods and why: a PodDisruptionBudget,
	// pods terminating on a NotReady node, an unreplicated or protected pod).
	AnnotationBlockedBy = "nodewarden.io/blocked-by"
	// AnnotationOverBudget is set when the node was taken although the
	// policy's maxConcurrent was used up, because its deadline would have
	// passed while it waited; its value says so.
	AnnotationOverBudget = "nodewarden.io/over-budget"
	// AnnotationKeepOnRecovery is "true" when the policy that took the node
	// had uncordonOnRecovery: false, so the node is left as it is on release
	// even if that policy is gone by then.
	AnnotationKeepOnRecovery = "nodewarden.io/keep-on-recovery"
	// AnnotationOrphaned is set (to the time, RFC3339) when the policy that
	// holds the node was deleted or stopped selecting it while its trigger
	// condition still held: the node stays as it is until it recovers or
	// another policy takes it over.
	AnnotationOrphaned = "nodewarden.io/orphaned"
)

// LabelExclude on a Node, with the value "true", opts the node out of
// every RemediationPolicy: no policy selects it, takes it or counts it, and
// a node a policy holds when the label appears is released at once.
const LabelExclude = "nodewarden.io/exclude"

// TaintImpendingDisruption is the PreferNoSchedule taint a policy with
// drain.startBefore puts on a node whose deadline is further away than
// startBefore, so that new pods prefer other nodes while it keeps running
// what it has.
const TaintImpendingDisruption = "nodewarden.io/impending-disruption"

// Values of AnnotationCordonedBy.
const (
	CordonedByNodewarden = "nodewarden"
	CordonedByOther      = "other"
)

// NodeState is the value of the nodewarden.io/state annotation.
type NodeState string

const (
	// StateWaiting: the node's deadline is further away than the policy's
	// drain.startBefore; it carries the impending-disruption
	// PreferNoSchedule taint, is not cordoned, and uses no maxConcurrent slot.
	StateWaiting NodeState = "Waiting"
	// StateCordoned: the policy took the node (cordon, taints, annotations as
	// configured); no drain has started.
	StateCordoned NodeState = "Cordoned"
	// StateDraining: a drain is in progress (or must be resumed).
	StateDraining NodeState = "Draining"
	// StateDrained: every evictable pod is gone; the node stays cordoned
	// until it recovers.
	StateDrained NodeState = "Drained"
	// StateDrainFailed: the last drain timed out or was blocked; the node
	// stays cordoned, the drain is retried per drain.maxAttempts and
	// drain.retryBackoff, and nodewarden.io/blocked-by says why it failed.
	StateDrainFailed NodeState = "DrainFailed"
	// StateRepairing: the node was drained and did not recover; a step of
	// the policy's repair ladder has started (nodewarden.io/repair-step),
	// and nodewarden.io/repair-result says how it ended once it has.
	StateRepairing NodeState = "Repairing"
)

// Annotations of a node in state Repairing.
const (
	// AnnotationRepairStep is the repair step the node is on, as
	// "<index>:<action>", e.g. "1:DeleteNode" (index from 0 in the ladder).
	AnnotationRepairStep = "nodewarden.io/repair-step"
	// AnnotationRepairResult says how the step ended: "Succeeded" or
	// "Failed: <why>"; absent while it runs.
	AnnotationRepairResult = "nodewarden.io/repair-result"
	// AnnotationRepairLadder names the ladder the node climbs: "policy" or
	// "condition:<index>" (the rule whose repair overrides the policy's),
	// fixed when the first step starts.
	AnnotationRepairLadder = "nodewarden.io/repair-ladder"
)

// Drain hooks: annotations other controllers put on a Node to hold
// nodewarden at a point of the remediation, after Cluster API's
// pre-drain.delete.hook.machine.cluster.x-k8s.io/<name>: <owner>. The key
// is the prefix plus a name the owner chooses; the value names the owner.
// The owner removes its annotation when it is done.
const (
	// PreDrainHookPrefix: while a node carries an annotation with this
	// prefix, no drain attempt starts on it (up to drain.hookTimeout).
	PreDrainHookPrefix = "pre-drain.hook.nodewarden.io/"
	// PostDrainHookPrefix: while a drained node carries an annotation with
	// this prefix, it is neither released on recovery nor does its first
	// repair step start (up to drain.hookTimeout).
	PostDrainHookPrefix = "post-drain.hook.nodewarden.io/"
)

// RepairAction is one rung of a repair ladder.
// +kubebuilder:validation:Enum=Wait;DeleteNode;ClusterAPI;Webhook
type RepairAction string

const (
	// RepairWait does nothing: the node stays cordoned and empty (what
	// happens without a repair ladder). A Wait step only spaces the others.
	RepairWait RepairAction = "Wait"
	// RepairDeleteNode deletes the Node object, for a node lifecycle
	// controller (Karpenter, a cloud's, cluster-autoscaler) to replace the
	// instance. Refused while the node runs pods nodewarden did not evict
	// (anything but DaemonSet, mirror and finished pods).
	RepairDeleteNode RepairAction = "DeleteNode"
	// RepairClusterAPI asks Cluster API to remediate the node's Machine
	// (found from the Node's cluster.x-k8s.io/machine annotation): it sets
	// the Machine's cluster.x-k8s.io/remediate-machine annotation, which
	// Cluster API's MachineHealthCheck treats as unhealthy and remediates
	// (through the owner, or its external remediation template).
	RepairClusterAPI RepairAction = "ClusterAPI"
	// RepairWebhook POSTs a RepairRequest (docs/policy.md) to a URL.
	RepairWebhook RepairAction = "Webhook"
)

// Destructive reports whether the action changes the node's machine, so
// that spec.maxRepairsPerHour counts it.
func (a RepairAction) Destructive() bool { return a != RepairWait }

// Types of the conditions in RemediationPolicyStatus.
const (
	// ConditionReady is True when the policy is valid and being acted on.
	ConditionReady = "Ready"
	// ConditionCircuitOpen is True while more selected nodes are triggered
	// than maxUnhealthy allows, and the policy starts no remediation.
	ConditionCircuitOpen = "CircuitOpen"
)

// RemediationPolicySpec says which nodes to watch, which node conditions make
// a node need remediation, and what to do about it.
//
// +kubebuilder:validation:XValidation:rule="!(has(self.drain) && has(self.drain.enabled) && self.drain.enabled && has(self.cordon) && !self.cordon && !(has(self.taints) && self.taints.exists(t, t.effect == 'NoSchedule')))",message="drain.enabled needs cordon: true or a NoSchedule taint, otherwise evicted pods are scheduled straight back onto the node"
// +kubebuilder:validation:XValidation:rule="!(has(self.drain) && has(self.drain.evictDaemonSetPods) && self.drain.evictDaemonSetPods && (!has(self.cordon) || self.cordon))",message="drain.evictDaemonSetPods needs cordon: false and a NoSchedule taint: DaemonSet pods tolerate a cordon, so evicted ones come straight back and the drain never finishes",fieldPath=".drain.evictDaemonSetPods"
type RemediationPolicySpec struct {
	// nodeSelector selects the nodes this policy watches. Empty or absent
	// selects every node.
	// +optional
	NodeSelector *metav1.LabelSelector `json:"nodeSelector,omitempty"`

	// conditions make a node need remediation while ANY of them holds.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	// +required
	Conditions []ConditionRule `json:"conditions"`

	// cordon marks the node unschedulable while it is remediated. A node that
	// was already unschedulable is left so afterwards.
	// +kubebuilder:default=true
	// +optional
	Cordon *bool `json:"cordon,omitempty"`

	// taints are added to the node while it is remediated and removed
	// afterwards. A taint the node already had (same key and effect) is left
	// untouched. A key or value Kubernetes would refuse on a Node makes the
	// policy not Ready (the schema cannot check them without a length limit
	// on corev1.Taint).
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:XValidation:rule="self.effect in ['NoSchedule', 'PreferNoSchedule']",message="taint effect must be NoSchedule or PreferNoSchedule: a NoExecute taint makes the taint manager evict pods without asking their PodDisruptionBudgets; the drain evicts them safely",fieldPath=".effect"
	// +listType=atomic
	// +optional
	Taints []corev1.Taint `json:"taints,omitempty"`

	// annotations are set on the node while it is remediated and removed
	// afterwards. An annotation the node already has is left untouched. Keys
	// under nodewarden.io/ are reserved for nodewarden's own state.
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('nodewarden.io/'))",message="annotation keys under nodewarden.io/ are reserved for nodewarden's own state"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !format.qualifiedName().validate(k).hasValue())",message="annotation keys must be qualified names such as example.com/reason"
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`

	// drain says whether and how pods are evicted from the node once it is
	// cordoned.
	// +kubebuilder:default={}
	// +optional
	Drain DrainSpec `json:"drain,omitempty"`

	// uncordonOnRecovery undoes what nodewarden did (its cordon, taints and
	// annotations) once none of the conditions holds any more. When false,
	// nodewarden only forgets the node and leaves it as it is for a human.
	// +kubebuilder:default=true
	// +optional
	UncordonOnRecovery *bool `json:"uncordonOnRecovery,omitempty"`

	// maxConcurrent is how many nodes this policy may hold at once (from
	// cordon until release), as a number (at least 1) or a percentage of the
	// selected nodes (1%-100%, rounded down but never below one node).
	// +kubebuilder:default=1
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 1 : self.matches('^(100|[1-9][0-9]?)%$')",message="maxConcurrent must be a whole number of at least 1 or a percentage from 1% to 100%, such as 1 or 10%"
	// In Go, the zero IntOrString is "unset" (omitzero), so that a client
	// that leaves it out gets the default rather than 0.
	// +optional
	MaxConcurrent intstr.IntOrString `json:"maxConcurrent,omitzero"`

	// maxUnhealthy is a circuit breaker: when more selected nodes are
	// triggered than this, the policy starts no remediation at all (a bad
	// rule or a cluster-wide incident must not cordon the cluster). A number
	// or a percentage of the selected nodes (0%-100%, rounded down but never
	// below one node unless it is 0%).
	// +kubebuilder:default="50%"
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 0 : self.matches('^(100|[1-9]?[0-9])%$')",message="maxUnhealthy must be a whole number of at least 0 or a percentage from 0% to 100%, such as 3 or 50%"
	// In Go, the zero IntOrString is "unset" (omitzero) and gets the default;
	// write intstr.FromString("0%") for a breaker that opens on any trigger.
	// +optional
	MaxUnhealthy intstr.IntOrString `json:"maxUnhealthy,omitzero"`

	// recoverFor is how long none of the conditions may match before a held
	// node is released, so that a condition that flaps does not uncordon and
	// re-drain the node each time. Measured from the conditions'
	// lastTransitionTime. 0s releases at the first observation.
	// +kubebuilder:default="0s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+)$') && duration(self) >= duration('0s')",message="recoverFor must be a duration such as 0s, 5m or 1h"
	// +optional
	RecoverFor metav1.Duration `json:"recoverFor,omitempty"`

	// repair is what happens after the drain while the node does not
	// recover: a ladder of steps, each started when the node has not
	// recovered `after` the previous step (or the drain) ended. A rule of
	// conditions may carry its own. Absent: the node stays drained and
	// cordoned until it recovers.
	// +optional
	Repair *RepairSpec `json:"repair,omitempty"`

	// maxRepairsPerHour bounds the repair steps other than Wait (DeleteNode,
	// ClusterAPI, Webhook) this policy starts in any hour, over all its
	// nodes, on top of maxConcurrent. 0 stops every such step.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	// +optional
	MaxRepairsPerHour *int32 `json:"maxRepairsPerHour,omitempty"`

	// dryRun computes and reports every decision (logs, Events, status) but
	// writes nothing to nodes and evicts nothing.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`

	// paused: the policy starts nothing new (it takes no node, starts no
	// drain attempt and no repair step); drains already running finish, and
	// held nodes are still released when they recover or are uncordoned.
	// +optional
	Paused bool `json:"paused,omitempty"`

	// maintenanceWindows, when set, limit when the policy starts anything
	// (takes a node, starts a drain attempt or a repair step) to the times
	// one of them is open. Releases are never held back, and a node whose
	// deadline would pass before the next window is taken anyway, in time.
	// Absent or empty: any time.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	MaintenanceWindows []MaintenanceWindow `json:"maintenanceWindows,omitempty"`

	// notifications send this policy's steps (cordon, drain, repair,
	// release, circuit breaker) to receivers named in the controller's
	// notifications Secret. Best effort: a receiver never delays a drain.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	Notifications []NotificationRule `json:"notifications,omitempty"`
}

// MaintenanceWindow opens at every activation of a cron schedule and stays
// open for a duration.
type MaintenanceWindow struct {
	// schedule is when the window opens: a standard 5-field cron expression
	// (minute hour day-of-month month day-of-week, e.g. "0 2 * * SAT") or
	// @yearly, @monthly, @weekly, @daily, @hourly. Read in timeZone.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('@every') && !self.startsWith('TZ=') && !self.startsWith('CRON_TZ=')",message="schedule must be a 5-field cron expression such as 0 2 * * SAT (set the zone in timeZone; @every has no fixed start)"
	// +required
	Schedule string `json:"schedule"`

	// duration the window stays open after each activation: more than 0s,
	// at most 168h (a week).
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+)$') && duration(self) > duration('0s') && duration(self) <= duration('168h')",message="duration must be a positive duration of at most 168h, such as 4h"
	// +required
	Duration metav1.Duration `json:"duration"`

	// timeZone the schedule is read in: an IANA name such as Europe/Berlin.
	// +kubebuilder:default="UTC"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$')",message="timeZone must be an IANA time zone name such as UTC or Europe/Berlin"
	// +optional
	TimeZone string `json:"timeZone,omitempty"`
}

// RepairSpec is an escalation ladder: its steps run in order while the node
// stays unrecovered; a node that recovers on any step is released.
type RepairSpec struct {
	// steps in order.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +listType=atomic
	// +required
	Steps []RepairStep `json:"steps"`
}

// RepairStep is one rung of a repair ladder.
//
// +kubebuilder:validation:XValidation:rule="self.action == 'Webhook' ? has(self.webhook) : !has(self.webhook)",message="webhook must be set when action is Webhook, and only then",fieldPath=".webhook"
type RepairStep struct {
	// action: Wait, DeleteNode, ClusterAPI or Webhook.
	// +required
	Action RepairAction `json:"action"`

	// after is how long the node must stay unrecovered after the previous
	// step ended (for the first step: after the drain finished) before this
	// step starts.
	// +kubebuilder:default="0s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+)$') && duration(self) >= duration('0s')",message="after must be a duration such as 0s, 10m or 1h"
	// +optional
	After metav1.Duration `json:"after,omitempty"`

	// webhook is the call a Webhook step makes.
	// +optional
	Webhook *WebhookRepair `json:"webhook,omitempty"`
}

// WebhookRepair is an HTTP POST of a RepairRequest (docs/policy.md). A
// response other than 2xx, or none within timeout, is retried; the step
// fails when the retries are used up.
type WebhookRepair struct {
	// url to POST to, http:// or https://.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (self.startsWith('https://') || self.startsWith('http://'))",message="webhook.url must be an http:// or https:// URL"
	// +required
	URL string `json:"url"`

	// timeout of each request.
	// +kubebuilder:default="10s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+)$') && duration(self) > duration('0s') && duration(self) <= duration('5m')",message="webhook.timeout must be a positive duration of at most 5m, such as 10s"
	// +optional
	Timeout *metav1.Duration `json:"timeout,omitempty"`

	// retries after the first request (with a backoff from 1s, doubling).
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10
	// +optional
	Retries *int32 `json:"retries,omitempty"`
}

// ConditionRule matches one Node condition.
type ConditionRule struct {
	// type is the Node condition type, e.g. HostEventRebootAfter48 or
	// KernelDeadlock.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=316
	// +kubebuilder:validation:XValidation:rule="!format.qualifiedName().validate(self).hasValue()",message="condition type must be a name such as KernelDeadlock or example.com/Broken"
	// +required
	Type corev1.NodeConditionType `json:"type"`

	// status the condition must have: True, False or Unknown.
	// +kubebuilder:default="True"
	// +kubebuilder:validation:Enum=True;False;Unknown
	// +optional
	Status corev1.ConditionStatus `json:"status,omitempty"`

	// for is how long the condition must have had this status (measured from
	// its lastTransitionTime) before the node is acted on, e.g. 0s, 90s, 10m.
	// It delays taking a node, never releasing it.
	// +kubebuilder:default="0s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+)$') && duration(self) >= duration('0s')",message="for must be a duration such as 0s, 90s, 10m or 1h30m"
	// +optional
	For metav1.Duration `json:"for,omitempty"`

	// reasons, when set, limit the rule to a condition whose reason is one
	// of them: a reason exactly, or a pattern where * stands for any run of
	// characters (e.g. NvidiaXid*). Empty: any reason.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=128
	// +listType=set
	// +optional
	Reasons []string `json:"reasons,omitempty"`

	// repair replaces the policy's repair ladder for nodes this rule
	// triggered: the action per condition and reason (replace on a hardware
	// error, only wait on a flapping link).
	// +optional
	Repair *RepairSpec `json:"repair,omitempty"`
}

// DrainSpec says how a cordoned node is drained. Eviction goes through the
// Eviction API only, so PodDisruptionBudgets are honoured.
type DrainSpec struct {
	// enabled drains the node after cordoning it. When false the node is only
	// cordoned, tainted and annotated.
	// +kubebuilder:default=true
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// timeout bounds the whole drain, including retries blocked by
	// PodDisruptionBudgets. After it the node is marked DrainFailed and stays
	// cordoned.
	// +kubebuilder:default="15m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+)$') && duration(self) > duration('0s')",message="timeout must be a positive duration such as 15m or 1h"
	// +optional
	Timeout metav1.Duration `json:"timeout,omitempty"`

	// startBefore: a node whose trigger has a deadline further away than
	// this is not cordoned yet; it gets the PreferNoSchedule taint
	// nodewarden.io/impending-disruption at once (new pods prefer other
	// nodes) and is cordoned and drained only when the deadline is
	// startBefore away, keeping its capacity until then. Absent: act at once.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+)$') && duration(self) > duration('0s')",message="startBefore must be a positive duration such as 30m or 2h"
	// +optional
	StartBefore *metav1.Duration `json:"startBefore,omitempty"`

	// maxAttempts is how many times a drain is tried in one remediation
	// (the first try included) before the node stays DrainFailed for a
	// human (or the escalations below).
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +optional
	MaxAttempts int32 `json:"maxAttempts,omitempty"`

	// retryBackoff is the wait after the first failed drain; it doubles after
	// each further failure (capped at 1h) and never delays a retry past the
	// trigger's deadline.
	// +kubebuilder:default="1m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+)$') && duration(self) > duration('0s')",message="retryBackoff must be a positive duration such as 30s or 1m"
	// +optional
	// A pointer, so a Go client that leaves it out gets the default rather
	// than an invalid "0s".
	RetryBackoff *metav1.Duration `json:"retryBackoff,omitempty"`

	// forceAfter (opt-in, off when absent): once this long has passed since
	// the first drain of the remediation started and pods are still left, the
	// next try deletes them instead of evicting them, ignoring their
	// PodDisruptionBudgets. Use it only where losing availability is better
	// than a node that never empties (docs/policy.md, "Escalations").
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+)$') && duration(self) > duration('0s')",message="forceAfter must be a positive duration such as 30m or 2h"
	// +optional
	ForceAfter *metav1.Duration `json:"forceAfter,omitempty"`

	// outOfServiceTaint (opt-in): when a drain failed and the node is
	// NotReady (its kubelet gone, so evicted pods stay Terminating), add the
	// node.kubernetes.io/out-of-service=nodeshutdown:NoExecute taint
	// (Kubernetes' non-graceful node shutdown): its pods are deleted and
	// their volumes detached so they can start elsewhere. Only safe if the
	// node is really down (docs/policy.md, "Escalations").
	// +optional
	OutOfServiceTaint bool `json:"outOfServiceTaint,omitempty"`

	// gracePeriodSeconds caps each pod's termination grace period. Unset uses
	// each pod's own terminationGracePeriodSeconds. Either way a drain that
	// would otherwise run past the trigger's deadline shortens each pod's
	// grace period to fit (never below 5 seconds).
	// +kubebuilder:validation:Minimum=0
	// +optional
	GracePeriodSeconds *int64 `json:"gracePeriodSeconds,omitempty"`

	// evictDaemonSetPods also evicts pods owned by a DaemonSet (they are
	// normally left alone: the DaemonSet controller would recreate them).
	// It needs cordon: false and a NoSchedule taint the DaemonSet does not
	// tolerate: DaemonSet pods tolerate a cordon, so they would come straight
	// back and the drain could never finish.
	// +optional
	EvictDaemonSetPods bool `json:"evictDaemonSetPods,omitempty"`

	// evictEmptyDirPods evicts pods that use emptyDir volumes, whose data is
	// lost. When false such pods block the drain.
	// +kubebuilder:default=true
	// +optional
	EvictEmptyDirPods *bool `json:"evictEmptyDirPods,omitempty"`

	// evictUnreplicatedPods evicts pods with no controller (nothing recreates
	// them). When false such pods block the drain.
	// +optional
	EvictUnreplicatedPods bool `json:"evictUnreplicatedPods,omitempty"`

	// protectedPodAnnotations: a pod carrying any of these annotations is never
	// evicted. An entry is either a key (any value matches) or key=value.
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=320
	// +listType=set
	// +optional
	ProtectedPodAnnotations []string `json:"protectedPodAnnotations,omitempty"`

	// honorDisruptionAnnotations protects pods annotated
	// karpenter.sh/do-not-disrupt: "true" or
	// cluster-autoscaler.kubernetes.io/safe-to-evict: "false" as
	// protectedPodAnnotations does: they are never evicted and block the
	// drain. false evicts them like any other pod.
	// +kubebuilder:default=true
	// +optional
	HonorDisruptionAnnotations *bool `json:"honorDisruptionAnnotations,omitempty"`

	// hookTimeout bounds how long drain hooks (pre-drain.hook.nodewarden.io/*
	// and post-drain.hook.nodewarden.io/* annotations on the node) hold it,
	// counted from when the node reached the step they hold; after it
	// nodewarden proceeds anyway (a HookTimedOut Warning). "0" waits for the
	// hooks for ever.
	// +kubebuilder:default="30m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+)$')",message="hookTimeout must be a duration such as 30m or 2h, or 0 to wait for ever"
	// +optional
	// A pointer, so a Go client that leaves it out gets the default rather
	// than 0 (wait for ever).
	HookTimeout *metav1.Duration `json:"hookTimeout,omitempty"`
}

// RemediationPolicyStatus is what the controller last observed and did.
type RemediationPolicyStatus struct {
	// observedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// selectedNodes is the number of nodes the nodeSelector selects.
	// +optional
	SelectedNodes int32 `json:"selectedNodes"`

	// triggeredNodes is the number of selected nodes on which a condition
	// holds (including its for: duration).
	// +optional
	TriggeredNodes int32 `json:"triggeredNodes"`

	// remediatingNodes is the number of nodes this policy holds (Cordoned,
	// Draining, Drained, DrainFailed or Repairing; not Waiting). New nodes are taken
	// only while it is below maxConcurrent, except a node whose deadline
	// would pass while it waited (see overBudgetNodes).
	// +optional
	RemediatingNodes int32 `json:"remediatingNodes"`

	// stuckNodes are the nodes whose drain failed (state DrainFailed), with
	// what blocks them. At most 20 are listed, the longest stuck first.
	// +listType=atomic
	// +optional
	StuckNodes []StuckNode `json:"stuckNodes,omitempty"`

	// overBudgetNodes are the nodes held beyond maxConcurrent because their
	// deadline would have passed while they waited for a slot. At most 20
	// are listed.
	// +listType=atomic
	// +optional
	OverBudgetNodes []OverBudgetNode `json:"overBudgetNodes,omitempty"`

	// repairingNodes is the number of nodes in state Repairing.
	// +optional
	RepairingNodes int32 `json:"repairingNodes"`

	// recentRepairs are the repair steps other than Wait started in the last
	// hour, oldest first: what maxRepairsPerHour counts. Kept here because a
	// deleted node takes its own record with it.
	// +kubebuilder:validation:MaxItems=1000
	// +listType=atomic
	// +optional
	RecentRepairs []RepairRecord `json:"recentRepairs,omitempty"`

	// nextWindow is when the next maintenance window opens, while none is
	// open; absent while one is open or when the policy has none.
	// +optional
	NextWindow *metav1.Time `json:"nextWindow,omitempty"`

	// deferredNodes are the nodes whose next step (take, drain attempt,
	// repair step) the policy holds back for a reason other than its
	// budget: OutsideMaintenanceWindow, Paused or HookHolding. At most 100
	// are listed.
	// +kubebuilder:validation:MaxItems=100
	// +listType=atomic
	// +optional
	DeferredNodes []DeferredNode `json:"deferredNodes,omitempty"`

	// conditions: Ready (the policy is valid and acted on) and CircuitOpen
	// (maxUnhealthy is exceeded, nothing new is started).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// StuckNode is a node whose drain failed.
type StuckNode struct {
	// name of the Node.
	Name string `json:"name"`
	// since is when the last drain failed.
	Since metav1.Time `json:"since"`
	// attempts is how many drains were started.
	Attempts int32 `json:"attempts"`
	// blockedBy says what kept the drain from finishing.
	// +optional
	BlockedBy string `json:"blockedBy,omitempty"`
	// nextAttempt is when the drain is tried again; absent when no retry is left.
	// +optional
	NextAttempt *metav1.Time `json:"nextAttempt,omitempty"`
}

// DeferredNode is a node whose next step waits for a window or for the
// policy to be unpaused.
type DeferredNode struct {
	// name of the Node.
	Name string `json:"name"`
	// reason: OutsideMaintenanceWindow, Paused or HookHolding (a drain
	// hook holds it).
	Reason string `json:"reason"`
}

// Reasons of DeferredNode (also the Event reasons of
// OutsideMaintenanceWindow and HookHolding).
const (
	DeferredOutsideMaintenanceWindow = "OutsideMaintenanceWindow"
	DeferredPaused                   = "Paused"
	DeferredHookHolding              = "HookHolding"
)

// RepairRecord is one repair step started on a node.
type RepairRecord struct {
	// node is the Node's name.
	Node string `json:"node"`
	// action of the step.
	Action RepairAction `json:"action"`
	// started is when the step started.
	Started metav1.Time `json:"started"`
}

// OverBudgetNode is a node taken beyond maxConcurrent for its deadline.
type OverBudgetNode struct {
	// name of the Node.
	Name string `json:"name"`
	// deadline of its trigger.
	// +optional
	Deadline *metav1.Time `json:"deadline,omitempty"`
}

// RemediationPolicy turns Node conditions into cordon, drain and annotations,
// within budgets, and undoes them when the node recovers.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=rp
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Selected",type=integer,JSONPath=`.status.selectedNodes`
// +kubebuilder:printcolumn:name="Triggered",type=integer,JSONPath=`.status.triggeredNodes`
// +kubebuilder:printcolumn:name="Remediating",type=integer,JSONPath=`.status.remediatingNodes`
// +kubebuilder:printcolumn:name="Repairing",type=integer,JSONPath=`.status.repairingNodes`
// +kubebuilder:printcolumn:name="Circuit",type=string,JSONPath=`.status.conditions[?(@.type=="CircuitOpen")].status`,description="True while maxUnhealthy is exceeded and nothing new is started"
// +kubebuilder:printcolumn:name="Paused",type=boolean,JSONPath=`.spec.paused`,description="True while the policy starts nothing new"
// +kubebuilder:printcolumn:name="NextWindow",type=date,JSONPath=`.status.nextWindow`,priority=1,description="When the next maintenance window opens, while none is open"
// +kubebuilder:printcolumn:name="DryRun",type=boolean,JSONPath=`.spec.dryRun`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RemediationPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired behaviour.
	// +required
	Spec RemediationPolicySpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status RemediationPolicyStatus `json:"status,omitempty"`
}

// RemediationPolicyList is a list of RemediationPolicy.
//
// +kubebuilder:object:root=true
type RemediationPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RemediationPolicy `json:"items"`
}
