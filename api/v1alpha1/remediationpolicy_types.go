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
)

// Values of AnnotationCordonedBy.
const (
	CordonedByNodewarden = "nodewarden"
	CordonedByOther      = "other"
)

// NodeState is the value of the nodewarden.io/state annotation.
type NodeState string

const (
	// StateCordoned: the policy took the node (cordon, taints, annotations as
	// configured); no drain has started.
	StateCordoned NodeState = "Cordoned"
	// StateDraining: a drain is in progress (or must be resumed).
	StateDraining NodeState = "Draining"
	// StateDrained: every evictable pod is gone; the node stays cordoned
	// until it recovers.
	StateDrained NodeState = "Drained"
	// StateDrainFailed: the drain timed out; the node stays cordoned until it
	// recovers or a human steps in.
	StateDrainFailed NodeState = "DrainFailed"
)

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
// +kubebuilder:validation:XValidation:rule="!(has(self.drain) && has(self.drain.enabled) && self.drain.enabled && has(self.cordon) && !self.cordon && !(has(self.taints) && self.taints.exists(t, t.effect == 'NoSchedule' || t.effect == 'NoExecute')))",message="drain.enabled needs cordon: true or a NoSchedule/NoExecute taint, otherwise evicted pods are scheduled straight back onto the node"
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
	// +kubebuilder:validation:items:XValidation:rule="self.effect in ['NoSchedule', 'PreferNoSchedule', 'NoExecute']",message="taint effect must be one of NoSchedule, PreferNoSchedule or NoExecute",fieldPath=".effect"
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

	// dryRun computes and reports every decision (logs, Events, status) but
	// writes nothing to nodes and evicts nothing.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`
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

	// gracePeriodSeconds caps each pod's termination grace period. Unset uses
	// each pod's own terminationGracePeriodSeconds.
	// +kubebuilder:validation:Minimum=0
	// +optional
	GracePeriodSeconds *int64 `json:"gracePeriodSeconds,omitempty"`

	// evictDaemonSetPods also evicts pods owned by a DaemonSet (they are
	// normally left alone: the DaemonSet controller would recreate them).
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
	// Draining, Drained or DrainFailed). New nodes are taken only while it is below maxConcurrent.
	// +optional
	RemediatingNodes int32 `json:"remediatingNodes"`

	// conditions: Ready (the policy is valid and acted on) and CircuitOpen
	// (maxUnhealthy is exceeded, nothing new is started).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
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
// +kubebuilder:printcolumn:name="Circuit",type=string,JSONPath=`.status.conditions[?(@.type=="CircuitOpen")].status`,description="True while maxUnhealthy is exceeded and nothing new is started"
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
