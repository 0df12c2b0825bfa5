package remediation

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// Plan is everything Decide concluded. The reconciler sends each Patch (unless
// DryRun), then emits the matching Events, writes the policy statuses, and
// requeues after RequeueAfter.
type Plan struct {
	// Nodes has one decision per input node, sorted by node name.
	Nodes []NodeDecision
	// Policies has one status per input policy, sorted by policy name.
	Policies []PolicyStatus
	// Events to emit. An event about a node belongs to that node's decision:
	// emit it only once its Patch succeeded.
	Events []Event
	// RequeueAfter is when Decide's answer changes with time alone (a for:
	// duration runs out); zero when nothing time-based is pending.
	RequeueAfter time.Duration
}

// Node returns the decision for the named node.
func (p Plan) Node(name string) (NodeDecision, bool) {
	for _, n := range p.Nodes {
		if n.Node == name {
			return n, true
		}
	}
	return NodeDecision{}, false
}

// Action is what to do with one node now.
type Action string

const (
	// ActionNone: nothing to do (not selected, nothing holds, or suppressed
	// after a human uncordon).
	ActionNone Action = "None"
	// ActionCordon: take the node: cordon, taint, annotate; state Cordoned.
	ActionCordon Action = "Cordon"
	// ActionStartDrain: the node is Cordoned and its condition still holds:
	// mark it Draining and hand it to the drainer.
	ActionStartDrain Action = "StartDrain"
	// ActionHold: keep the node as it is. In state Draining the reconciler
	// makes sure a drain is running (it resumes one after a restart).
	ActionHold Action = "Hold"
	// ActionRelease: the node recovered, or its policy is gone or no longer
	// selects it: undo (per uncordonOnRecovery) and forget it.
	ActionRelease Action = "Release"
	// ActionStop: someone uncordoned the node while it was held: forget it
	// and leave it alone until a condition transitions again.
	ActionStop Action = "Stop"
	// ActionDefer: the node would be taken, but the budget or the circuit
	// breaker says not now.
	ActionDefer Action = "Defer"
)

// NodeDecision is what to do with one node, and why.
type NodeDecision struct {
	Node string
	// Policy holds the node or wants it; empty when none does.
	Policy string
	Action Action
	// State is the node's current state; empty when not held.
	State v1alpha1.NodeState
	// Trigger is the condition that holds (for Cordon and Defer) or that
	// made the policy take the node (for held nodes, from its annotation).
	Trigger *Trigger
	// Why explains the decision in a sentence, for logs.
	Why string
	// DryRun: the policy is in dry-run; report, never write.
	DryRun bool
	// Patch is the write that carries out Action; empty when there is none.
	Patch NodePatch
	// DrainDeadline is when a drain that is starting or running must give up
	// (state-since + drain.timeout), so a resumed drain keeps its deadline.
	DrainDeadline time.Time
}

// Trigger is a node condition that made a policy act.
type Trigger struct {
	Type   corev1.NodeConditionType
	Status corev1.ConditionStatus
	// Since is the condition's lastTransitionTime.
	Since time.Time
	// Deadline is the "not before" time at the end of the condition's
	// message; zero when it has none.
	Deadline time.Time
}

// String is the value of the nodewarden.io/trigger annotation.
func (t Trigger) String() string { return fmt.Sprintf("%s=%s", t.Type, t.Status) }

// PolicyStatus is what Decide counted for one policy.
type PolicyStatus struct {
	Name string
	// Invalid says why the policy cannot be acted on; empty when it is valid.
	Invalid string
	DryRun  bool
	// Selected, Triggered and Remediating are the status counts. Remediating
	// is what the policy holds once the plan is carried out.
	Selected, Triggered, Remediating int32
	// Deferred counts nodes the policy wants but did not take now.
	Deferred int32
	// MaxConcurrent and MaxUnhealthy are the limits resolved against
	// Selected.
	MaxConcurrent, MaxUnhealthy int32
	CircuitOpen                 bool
}

// Event is a Kubernetes Event to emit. It is about the Node when Node is set
// (with Policy as the related object), else about the Policy.
type Event struct {
	Node    string
	Policy  string
	Type    string // corev1.EventTypeNormal or corev1.EventTypeWarning
	Reason  string
	Message string
}

// Event reasons. DrainSucceeded and DrainFailed are emitted by the drainer.
const (
	ReasonCordoned       = "Cordoned"
	ReasonDrainStarted   = "DrainStarted"
	ReasonDrainSucceeded = "DrainSucceeded"
	ReasonDrainFailed    = "DrainFailed"
	ReasonUncordoned     = "Uncordoned"
	ReasonReleased       = "Released"
	ReasonStopped        = "RemediationStopped"
	ReasonDeferred       = "Deferred"
	ReasonCircuitOpen    = "CircuitOpen"
	ReasonCircuitClosed  = "CircuitClosed"
)
