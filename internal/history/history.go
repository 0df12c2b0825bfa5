// Package history is the bookkeeping of RemediationRecords as pure functions:
// which record an Event of the controller opens, continues or closes, what it
// adds to it, what a record is named, and which records pruning deletes. The
// recorder in package controllers does the I/O around it.
//
// An episode is one node held by one policy: it starts when the policy takes
// the node (Waiting, Cordoned, or HandedOver to it) and ends when the node is
// Released (or Uncordoned on release), when a human uncordons it
// (RemediationStopped), when it is HandedOver to another policy, or when the
// Node is deleted (which no Event says: the recorder notices it).
package history

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/remediation"
)

// DefaultMaxSteps bounds the steps one record keeps.
const DefaultMaxSteps = 100

// OpKind is what an Event does to one record.
type OpKind int

const (
	// Append adds the step to the open record of (node, policy), creating
	// one if there is none.
	Append OpKind = iota + 1
	// Close adds the step to the open record and closes it with Outcome; a
	// close without an open record does nothing.
	Close
)

// Op is one change to the records of a node.
type Op struct {
	Kind    OpKind
	Policy  string
	Outcome v1alpha1.RecordOutcome
}

// Ops says what e does to the records of its node. node is the Node as the
// controller saw it when it decided (before its write): it names the policy
// that held the node when the Event has none (the policy was deleted) and
// the one a handover takes it from.
func Ops(e remediation.Event, node *corev1.Node) []Op {
	if e.Node == "" {
		return nil // a policy's own Event (CircuitOpen, CircuitClosed)
	}
	holder := ""
	if node != nil {
		holder = node.Annotations[v1alpha1.AnnotationPolicy]
	}
	policy := e.Policy
	if policy == "" {
		policy = holder
	}
	if policy == "" {
		return nil
	}
	switch e.Reason {
	case remediation.ReasonDeferred:
		return nil // not taken: no episode
	case remediation.ReasonReleased, remediation.ReasonUncordoned:
		return []Op{{Kind: Close, Policy: policy, Outcome: v1alpha1.OutcomeReleased}}
	case remediation.ReasonStopped:
		return []Op{{Kind: Close, Policy: policy, Outcome: v1alpha1.OutcomeHumanUncordoned}}
	case remediation.ReasonHandedOver:
		var ops []Op
		if holder != "" && holder != e.Policy {
			ops = append(ops, Op{Kind: Close, Policy: holder, Outcome: v1alpha1.OutcomeHandedOver})
		}
		return append(ops, Op{Kind: Append, Policy: e.Policy})
	}
	return []Op{{Kind: Append, Policy: policy}}
}

// StepOf is the step e records, carried out at at.
func StepOf(e remediation.Event, at time.Time) v1alpha1.RecordStep {
	return v1alpha1.RecordStep{Time: metav1.NewTime(at.UTC().Truncate(time.Second)), Reason: e.Reason, Type: e.Type, Message: e.Message}
}

// TriggerOf is the trigger of the episode e belongs to: the Event's own (a
// node being taken), else the one the node's annotations record for the
// policy holding it; the reason is the condition's on the node. Zero when
// neither says.
func TriggerOf(e remediation.Event, node *corev1.Node) v1alpha1.RecordTrigger {
	var t v1alpha1.RecordTrigger
	switch {
	case e.Trigger != nil:
		t.Type, t.Status = e.Trigger.Type, e.Trigger.Status
		if !e.Trigger.Deadline.IsZero() {
			d := metav1.NewTime(e.Trigger.Deadline)
			t.Deadline = &d
		}
	case node != nil && (e.Policy == "" || node.Annotations[v1alpha1.AnnotationPolicy] == e.Policy):
		typ, status, ok := strings.Cut(node.Annotations[v1alpha1.AnnotationTrigger], "=")
		if !ok {
			return t
		}
		t.Type, t.Status = corev1.NodeConditionType(typ), corev1.ConditionStatus(status)
		if d, err := time.Parse(time.RFC3339, node.Annotations[v1alpha1.AnnotationDeadline]); err == nil {
			md := metav1.NewTime(d)
			t.Deadline = &md
		}
	default:
		return t
	}
	if node != nil {
		for _, c := range node.Status.Conditions {
			if c.Type == t.Type {
				t.Reason = c.Reason
			}
		}
	}
	return t
}

// New is the record of an episode of node under policy whose first step is
// carried out at at.
func New(node, policy string, trigger v1alpha1.RecordTrigger, at time.Time) v1alpha1.RemediationRecordStatus {
	return v1alpha1.RemediationRecordStatus{
		Node: node, Policy: policy, Trigger: trigger,
		StartedAt: metav1.NewTime(at.UTC().Truncate(time.Second)),
		Outcome:   v1alpha1.OutcomeOpen,
	}
}

// Add adds a step to st, keeping at most maxSteps: beyond that the first
// maxSteps-1 and the newest are kept, and DroppedSteps counts the others.
// It fills in the trigger if st has none yet, adds the pods evicted and the
// repair steps that succeeded, and keeps what blocked the last failed drain.
func Add(st *v1alpha1.RemediationRecordStatus, step v1alpha1.RecordStep, e remediation.Event, trigger v1alpha1.RecordTrigger, maxSteps int) {
	if maxSteps < 1 {
		maxSteps = DefaultMaxSteps
	}
	if len(st.Steps) < maxSteps {
		st.Steps = append(st.Steps, step)
	} else {
		st.Steps = append(st.Steps[:maxSteps-1], step)
		st.DroppedSteps++
	}
	if st.Trigger.Type == "" {
		st.Trigger = trigger
	}
	st.PodsEvicted += int32(e.Evicted)
	if e.Reason == remediation.ReasonRepairSucceeded {
		st.RepairsSucceeded++
	}
	if e.BlockedBy != "" {
		st.BlockedBy = e.BlockedBy
	}
}

// End closes st at at with outcome; a release after a repair step that
// succeeded is Repaired.
func End(st *v1alpha1.RemediationRecordStatus, outcome v1alpha1.RecordOutcome, at time.Time) {
	if outcome == v1alpha1.OutcomeReleased && st.RepairsSucceeded > 0 {
		outcome = v1alpha1.OutcomeRepaired
	}
	end := metav1.NewTime(at.UTC().Truncate(time.Second))
	if end.Before(&st.StartedAt) {
		end = st.StartedAt
	}
	st.EndedAt, st.Outcome = &end, outcome
	st.Duration = end.Sub(st.StartedAt.Time).String()
}

// Labels are the labels of a record of st: the recorder finds open records
// by them.
func Labels(st v1alpha1.RemediationRecordStatus) map[string]string {
	return map[string]string{
		v1alpha1.LabelRecordNode:   LabelValue(st.Node),
		v1alpha1.LabelRecordPolicy: LabelValue(st.Policy),
		v1alpha1.LabelRecordOpen:   strconv.FormatBool(st.Outcome == v1alpha1.OutcomeOpen),
	}
}

// LabelValue is the value of the node or policy label for name: names
// longer than a label value allows are cut and end in a hash.
func LabelValue(name string) string { return shorten(name, 63) }

// Name is the record's name: <node>.<policy>.<unix start>, the same for the
// same episode whoever writes it, shortened with a hash to the 253
// characters a name may have.
func Name(node, policy string, started time.Time) string {
	return shorten(fmt.Sprintf("%s.%s.%d", node, policy, started.Unix()), 253)
}

func shorten(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	sum := fmt.Sprintf("%08x", h.Sum32())
	head := strings.TrimRight(s[:limit-len(sum)-1], ".-")
	return head + "-" + sum
}

// Prune returns the names of the records to delete: closed records that
// ended more than maxAge ago (maxAge 0: no age bound), then the closed ones
// that ended first until at most maxRecords remain (maxRecords 0: no count
// bound). Open records are never deleted, and count.
func Prune(records []v1alpha1.RemediationRecord, now time.Time, maxRecords int, maxAge time.Duration) []string {
	var closed []v1alpha1.RemediationRecord
	for _, r := range records {
		if r.Status.Outcome != v1alpha1.OutcomeOpen && r.Status.EndedAt != nil {
			closed = append(closed, r)
		}
	}
	slices.SortStableFunc(closed, func(a, b v1alpha1.RemediationRecord) int {
		if c := a.Status.EndedAt.Compare(b.Status.EndedAt.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	var out []string
	left := len(records)
	for _, r := range closed {
		tooOld := maxAge > 0 && now.Sub(r.Status.EndedAt.Time) > maxAge
		tooMany := maxRecords > 0 && left > maxRecords
		if !tooOld && !tooMany {
			break // the rest ended later: younger, and the count is kept
		}
		out = append(out, r.Name)
		left--
	}
	return out
}
