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
	// ActionWait: the trigger's deadline is further away than the policy's
	// drain.startBefore: taint the node PreferNoSchedule and hold it in
	// state Waiting, without a maxConcurrent slot.
	ActionWait Action = "Wait"
	// ActionRecord: a drain attempt ended: record Drained or DrainFailed.
	ActionRecord Action = "Record"
	// ActionHandover: the policy holding the node let go of it while
	// another policy's condition holds: the other policy takes it as it is,
	// without an uncordon in between.
	ActionHandover Action = "Handover"
	// ActionRepair: the node was drained and has not recovered: start the
	// next step of its repair ladder (state Repairing).
	ActionRepair Action = "Repair"
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
	// Drain, when set, is the drain that must be running on the node: the
	// reconciler starts it unless it runs already (after a restart or a
	// leader change it resumes here with the deadline it had).
	Drain *DrainOrder
	// CancelDrain: stop the node's drain if one is running (the node was
	// released, handed over, or its policy no longer drains).
	CancelDrain bool
	// OverBudget: the node is taken beyond maxConcurrent because its
	// deadline would pass while it waited for a slot.
	OverBudget bool
	// Repair, when set, is the repair step that must be carried out on the
	// node: the reconciler starts it unless it runs already or has ended
	// (after a restart it is started again: a step must be safe to repeat).
	Repair *RepairOrder
}

// RepairOrder is a repair step as the policy wants it carried out.
type RepairOrder struct {
	// Step is the step's index in its ladder; Started when it started.
	// Node, Step and Started identify it (a webhook's idempotency key).
	Step    int
	Started time.Time
	Action  v1alpha1.RepairAction
	Webhook *v1alpha1.WebhookRepair
	// Trigger is the condition that made the policy take the node, with
	// its current reason and message.
	Trigger Trigger
	Reason  string
	Message string
}

// RepairReport is how a repair step ended, as the repairer reports it.
type RepairReport struct {
	Step      int
	Started   time.Time
	Succeeded bool
	// Message says what was done, or why it failed.
	Message string
}

// Reports are the outcomes of the work the reconciler carried out (drain
// attempts, repair steps) that are not yet recorded on their nodes, by node
// name.
type Reports struct {
	Drains  map[string]DrainReport
	Repairs map[string]RepairReport
}

// DrainOrder is one drain attempt as the policy wants it run.
type DrainOrder struct {
	// Attempt numbers the attempts of one remediation from 1; the drainer
	// reports under it, so a report is never taken for another attempt's.
	Attempt int
	// Deadline is when the attempt gives up: drain.timeout after it
	// started, but never past the trigger's deadline (or, before the
	// escalation, past drain.forceAfter).
	Deadline time.Time
	// Force deletes the pods instead of evicting them (drain.forceAfter).
	Force bool
}

// DrainReport is how a drain attempt ended, as the drainer reports it. The
// reconciler hands Decide the reports it has not yet recorded on the nodes.
type DrainReport struct {
	Attempt   int
	Succeeded bool
	Evicted   int
	// BlockedBy says what kept a failed drain from finishing.
	BlockedBy string
	// Terminating counts the pods still terminating when it gave up.
	Terminating int
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
	// Stuck are the nodes in DrainFailed, the longest stuck first.
	Stuck []v1alpha1.StuckNode
	// OverBudget are the nodes held beyond maxConcurrent for their deadline.
	OverBudget []v1alpha1.OverBudgetNode
	// Repairing counts the nodes in state Repairing once the plan is
	// carried out.
	Repairing int32
	// RecentRepairs are the destructive repair steps started in the last
	// hour, including those this plan starts, oldest first; the reconciler
	// writes them to the status before it starts a step.
	RecentRepairs []v1alpha1.RepairRecord
	// Paused mirrors spec.paused.
	Paused bool
	// NextWindow is when the next maintenance window opens while none is
	// open; zero otherwise.
	NextWindow time.Time
	// DeferredNodes are the nodes held back by a window, the pause or
	// drain hooks.
	DeferredNodes []v1alpha1.DeferredNode
}

// Event is a Kubernetes Event to emit. It is about the Node when Node is set
// (with Policy as the related object), else about the Policy.
type Event struct {
	Node    string
	Policy  string
	Type    string // corev1.EventTypeNormal or corev1.EventTypeWarning
	Reason  string
	Message string

	// What the message says, for observers that keep it (history): the
	// trigger of a node being taken (Waiting, Cordoned, HandedOver), the
	// pods a finished drain evicted, what blocked a failed one.
	Trigger   *Trigger
	Evicted   int
	BlockedBy string
}

// Event reasons.
const (
	ReasonWaiting         = "WaitingForDeadline"
	ReasonCordoned        = "Cordoned"
	ReasonBudgetYielded   = "BudgetYielded"
	ReasonHandedOver      = "HandedOver"
	ReasonOrphaned        = "Orphaned"
	ReasonDrainCancelled  = "DrainCancelled"
	ReasonRecovering      = "Recovering"
	ReasonEscalated       = "DrainEscalated"
	ReasonDrainStarted    = "DrainStarted"
	ReasonDrainSucceeded  = "DrainSucceeded"
	ReasonDrainFailed     = "DrainFailed"
	ReasonUncordoned      = "Uncordoned"
	ReasonReleased        = "Released"
	ReasonStopped         = "RemediationStopped"
	ReasonDeferred        = "Deferred"
	ReasonCircuitOpen     = "CircuitOpen"
	ReasonCircuitClosed   = "CircuitClosed"
	ReasonRepairStarted   = "RepairStarted"
	ReasonRepairSucceeded = "RepairSucceeded"
	ReasonRepairFailed    = "RepairFailed"
	// ReasonOutsideWindow: a node waits for the policy's next maintenance
	// window (once per node while it waits).
	ReasonOutsideWindow = v1alpha1.DeferredOutsideMaintenanceWindow
	// ReasonWindowOverridden: a node is taken or drained outside the
	// maintenance windows because its deadline would pass before the next.
	ReasonWindowOverridden = "WindowOverridden"
	// ReasonHookHolding: drain hooks (pre-drain.hook.nodewarden.io/*,
	// post-drain.hook.nodewarden.io/*) hold a node's next step (once per
	// node while they hold it).
	ReasonHookHolding = v1alpha1.DeferredHookHolding
	// ReasonHookTimedOut: drain.hookTimeout passed; the step starts
	// although hooks are still on the node.
	ReasonHookTimedOut = "HookTimedOut"
	// ReasonHookOverridden: a drain starts although pre-drain hooks are on
	// the node, because the trigger's deadline is drain.timeout away or
	// closer.
	ReasonHookOverridden = "HookOverridden"
)
