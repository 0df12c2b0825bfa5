package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Labels of a RemediationRecord: the controller finds a node's open record
// by them (after a restart too), and people select records with them.
const (
	// LabelRecordNode is the Node the record is about.
	LabelRecordNode = "nodewarden.io/node"
	// LabelRecordPolicy is the RemediationPolicy that held the node.
	LabelRecordPolicy = "nodewarden.io/policy"
	// LabelRecordOpen is "true" while the episode runs, "false" once it ended.
	LabelRecordOpen = "nodewarden.io/open"
)

// RecordOutcome is how a remediation episode ended.
// +kubebuilder:validation:Enum=Open;Released;Repaired;HumanUncordoned;HandedOver;NodeDeleted
type RecordOutcome string

const (
	// OutcomeOpen: the episode is still running.
	OutcomeOpen RecordOutcome = "Open"
	// OutcomeReleased: the node recovered (or its policy let go of it) and
	// was released without a repair step having succeeded.
	OutcomeReleased RecordOutcome = "Released"
	// OutcomeRepaired: the node was released after a repair step succeeded.
	OutcomeRepaired RecordOutcome = "Repaired"
	// OutcomeHumanUncordoned: someone uncordoned the node while it was
	// held; nodewarden let go of it.
	OutcomeHumanUncordoned RecordOutcome = "HumanUncordoned"
	// OutcomeHandedOver: another policy took the node over as it was; its
	// own record continues the story.
	OutcomeHandedOver RecordOutcome = "HandedOver"
	// OutcomeNodeDeleted: the Node object went away while held (a
	// DeleteNode repair step, or someone else).
	OutcomeNodeDeleted RecordOutcome = "NodeDeleted"
)

// RecordTrigger is the node condition that made the policy take the node.
type RecordTrigger struct {
	// type of the condition.
	Type corev1.NodeConditionType `json:"type"`
	// status the condition had.
	// +optional
	Status corev1.ConditionStatus `json:"status,omitempty"`
	// reason of the condition when the node was taken.
	// +optional
	Reason string `json:"reason,omitempty"`
	// deadline is the "not before" time the condition announced, if any.
	// +optional
	Deadline *metav1.Time `json:"deadline,omitempty"`
}

// RecordStep is one step the controller carried out, as its Event said.
type RecordStep struct {
	// time the step was carried out.
	Time metav1.Time `json:"time"`
	// reason of the Event (Cordoned, DrainStarted, DrainSucceeded, ...).
	Reason string `json:"reason"`
	// type of the Event: Normal or Warning.
	// +optional
	Type string `json:"type,omitempty"`
	// message of the Event.
	// +optional
	Message string `json:"message,omitempty"`
}

// RemediationRecordStatus is the story of one remediation episode. It is all
// observed, written by the controller only, so it lives in status (there is
// no spec: nobody asks for anything through a record).
type RemediationRecordStatus struct {
	// node is the Node's name.
	Node string `json:"node"`
	// policy is the RemediationPolicy that held the node.
	Policy string `json:"policy"`
	// trigger is the condition that made the policy take the node.
	// +optional
	Trigger RecordTrigger `json:"trigger,omitempty"`
	// startedAt is when the episode's first step was carried out.
	StartedAt metav1.Time `json:"startedAt"`
	// endedAt is when it ended; absent while it runs.
	// +optional
	EndedAt *metav1.Time `json:"endedAt,omitempty"`
	// duration from startedAt to endedAt (e.g. 1h2m3s); absent while it runs.
	// +optional
	Duration string `json:"duration,omitempty"`
	// outcome is how the episode ended, or Open while it runs.
	Outcome RecordOutcome `json:"outcome"`
	// podsEvicted is how many pods the drains of the episode evicted.
	// +optional
	PodsEvicted int32 `json:"podsEvicted,omitempty"`
	// repairsSucceeded counts the repair steps that succeeded.
	// +optional
	RepairsSucceeded int32 `json:"repairsSucceeded,omitempty"`
	// blockedBy is what kept the last failed drain from finishing.
	// +optional
	BlockedBy string `json:"blockedBy,omitempty"`
	// steps are the steps carried out, oldest first; at most a bounded
	// number (the first ones and the last one are kept).
	// +optional
	// +listType=atomic
	Steps []RecordStep `json:"steps,omitempty"`
	// droppedSteps counts the steps not kept in steps because of the bound.
	// +optional
	DroppedSteps int32 `json:"droppedSteps,omitempty"`
}

// RemediationRecord is the durable history of one remediation episode of
// one node under one policy: from the node being taken to its release, a
// human uncordon, a handover or its deletion. The controller writes it;
// Events expire after an hour, records stay within the configured bounds
// (--history-max-records, --history-max-age).
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=nwrec,categories=nodewarden
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.node`
// +kubebuilder:printcolumn:name="Policy",type=string,JSONPath=`.status.policy`
// +kubebuilder:printcolumn:name="Trigger",type=string,JSONPath=`.status.trigger.type`
// +kubebuilder:printcolumn:name="Outcome",type=string,JSONPath=`.status.outcome`
// +kubebuilder:printcolumn:name="Started",type=date,JSONPath=`.status.startedAt`
// +kubebuilder:printcolumn:name="Duration",type=string,JSONPath=`.status.duration`
// +kubebuilder:printcolumn:name="Evicted",type=integer,JSONPath=`.status.podsEvicted`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RemediationRecord struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// status is the episode as the controller observed it.
	// +optional
	Status RemediationRecordStatus `json:"status,omitempty"`
}

// RemediationRecordList is a list of RemediationRecord.
//
// +kubebuilder:object:root=true
type RemediationRecordList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RemediationRecord `json:"items"`
}
