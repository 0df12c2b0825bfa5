package remediation

import (
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// NodePatch is one write to a Node, computed from the Node as it was seen.
// The reconciler sends MergePatch() as a JSON merge patch; it never reads,
// modifies and updates the Node itself.
type NodePatch struct {
	// ResourceVersion of the Node the patch was computed from. It is sent as
	// a precondition: if the Node changed meanwhile (a stale cache, a human
	// uncordoning it) the API server answers 409 Conflict and the node is
	// decided again, instead of a decision based on the old Node being
	// applied to the new one.
	ResourceVersion string
	// SetAnnotations are added or overwritten.
	SetAnnotations map[string]string
	// RemoveAnnotations are deleted (sorted).
	RemoveAnnotations []string
	// Unschedulable, when set, is the new spec.unschedulable.
	Unschedulable *bool
	// ReplaceTaints says spec.taints becomes Taints. Node taints have no
	// merge key, so the list is replaced whole; the ResourceVersion
	// precondition keeps a concurrent taint change from being lost.
	ReplaceTaints bool
	Taints        []corev1.Taint
}

// IsEmpty reports that the patch changes nothing.
func (p NodePatch) IsEmpty() bool {
	return len(p.SetAnnotations) == 0 && len(p.RemoveAnnotations) == 0 && p.Unschedulable == nil && !p.ReplaceTaints
}

// MergePatch is the JSON merge patch (application/merge-patch+json) body.
func (p NodePatch) MergePatch() ([]byte, error) {
	metadata := map[string]any{}
	if p.ResourceVersion != "" {
		metadata["resourceVersion"] = p.ResourceVersion
	}
	if len(p.SetAnnotations)+len(p.RemoveAnnotations) > 0 {
		annotations := map[string]any{}
		for k, v := range p.SetAnnotations {
			annotations[k] = v
		}
		for _, k := range p.RemoveAnnotations {
			annotations[k] = nil // merge patch: null deletes
		}
		metadata["annotations"] = annotations
	}
	spec := map[string]any{}
	if p.Unschedulable != nil {
		spec["unschedulable"] = *p.Unschedulable
	}
	if p.ReplaceTaints {
		spec["taints"] = p.Taints // nil becomes null: no taints left
	}
	body := map[string]any{"metadata": metadata}
	if len(spec) > 0 {
		body["spec"] = spec
	}
	return json.Marshal(body)
}

// stateAnnotations are what "held" consists of; releasing removes them all.
var stateAnnotations = []string{
	v1alpha1.AnnotationState,
	v1alpha1.AnnotationPolicy,
	v1alpha1.AnnotationTrigger,
	v1alpha1.AnnotationStateSince,
	v1alpha1.AnnotationTriggerSince,
	v1alpha1.AnnotationCordonedBy,
	v1alpha1.AnnotationAddedTaints,
	v1alpha1.AnnotationAddedAnnotations,
	v1alpha1.AnnotationDeadline,
	v1alpha1.AnnotationDrainAttempts,
	v1alpha1.AnnotationDrainStarted,
	v1alpha1.AnnotationDrainForced,
	v1alpha1.AnnotationBlockedBy,
	v1alpha1.AnnotationOverBudget,
	v1alpha1.AnnotationKeepOnRecovery,
	v1alpha1.AnnotationOrphaned,
	v1alpha1.AnnotationRepairStep,
	v1alpha1.AnnotationRepairResult,
	v1alpha1.AnnotationRepairLadder,
}

// drainAnnotations describe the drain attempts of one remediation; a
// handover starts the new policy's count afresh.
var drainAnnotations = []string{
	v1alpha1.AnnotationDrainAttempts,
	v1alpha1.AnnotationDrainStarted,
	v1alpha1.AnnotationDrainForced,
	v1alpha1.AnnotationBlockedBy,
}

// maxBlockedBy keeps the blocked-by annotation readable in `kubectl describe
// node` and far from the 256 KiB annotation limit.
const maxBlockedBy = 1000

// takePatch records that rp holds the node for t: the annotations every
// held state has.
func takePatch(n *corev1.Node, rp *v1alpha1.RemediationPolicy, t Trigger, s v1alpha1.NodeState, now time.Time) NodePatch {
	p := newPatch(n)
	p.set(v1alpha1.AnnotationState, string(s))
	p.set(v1alpha1.AnnotationPolicy, rp.Name)
	p.set(v1alpha1.AnnotationTrigger, t.String())
	p.set(v1alpha1.AnnotationStateSince, formatTime(now))
	if !t.Since.IsZero() {
		p.set(v1alpha1.AnnotationTriggerSince, formatTime(t.Since))
	}
	if !t.Deadline.IsZero() {
		p.set(v1alpha1.AnnotationDeadline, formatTime(t.Deadline))
	}
	if !boolOr(rp.Spec.UncordonOnRecovery, true) {
		p.set(v1alpha1.AnnotationKeepOnRecovery, "true")
	} else {
		p.removeIfPresent(n, v1alpha1.AnnotationKeepOnRecovery)
	}
	p.removeIfPresent(n, v1alpha1.AnnotationHumanUncordoned)
	return p
}

// CordonPatch takes the node for the policy: state Cordoned, the trigger,
// the cordon (remembering whether someone else had cordoned it first), and
// the policy's taints and annotations that the node does not already have
// (those it has are not ours to remove later). The node may be free or
// Waiting. overBudget, when not empty, records why it was taken beyond
// maxConcurrent.
func CordonPatch(n *corev1.Node, rp *v1alpha1.RemediationPolicy, t Trigger, now time.Time, overBudget string) NodePatch {
	p := takePatch(n, rp, t, v1alpha1.StateCordoned, now)
	if overBudget != "" {
		p.set(v1alpha1.AnnotationOverBudget, overBudget)
	}
	if boolOr(rp.Spec.Cordon, true) {
		p.cordon(n)
	}
	p.addTaints(n, rp.Spec.Taints)
	p.addAnnotations(n, rp.Spec.Annotations)
	return p
}

// WaitPatch holds a node whose deadline is further away than
// drain.startBefore: state Waiting and the PreferNoSchedule taint, no cordon.
func WaitPatch(n *corev1.Node, rp *v1alpha1.RemediationPolicy, t Trigger, now time.Time) NodePatch {
	p := takePatch(n, rp, t, v1alpha1.StateWaiting, now)
	p.addTaints(n, []corev1.Taint{{Key: v1alpha1.TaintImpendingDisruption, Value: rp.Name, Effect: corev1.TaintEffectPreferNoSchedule}})
	return p
}

// HandoverPatch gives a held node to rp without letting go of it: the cordon
// stays, rp's taints and annotations are added, and a drain that was running
// or failed for the previous policy starts afresh under rp's settings.
func HandoverPatch(n *corev1.Node, rp *v1alpha1.RemediationPolicy, t Trigger, now time.Time) NodePatch {
	state := v1alpha1.NodeState(n.Annotations[v1alpha1.AnnotationState])
	if state != v1alpha1.StateDrained {
		state = v1alpha1.StateCordoned
	}
	p := takePatch(n, rp, t, state, now)
	for _, k := range append([]string{v1alpha1.AnnotationOrphaned, v1alpha1.AnnotationOverBudget}, drainAnnotations...) {
		p.removeIfPresent(n, k)
	}
	if boolOr(rp.Spec.Cordon, true) && !n.Spec.Unschedulable {
		p.cordon(n)
	}
	p.addTaints(n, rp.Spec.Taints)
	p.addAnnotations(n, rp.Spec.Annotations)
	sort.Strings(p.RemoveAnnotations)
	return p
}

// StatePatch moves a held node to another state.
func StatePatch(n *corev1.Node, s v1alpha1.NodeState, now time.Time) NodePatch {
	p := newPatch(n)
	p.set(v1alpha1.AnnotationState, string(s))
	p.set(v1alpha1.AnnotationStateSince, formatTime(now))
	return p
}

// StartDrainPatch moves a held node to Draining for the given attempt; a
// forced attempt is recorded so it is made once. outOfService adds the
// node.kubernetes.io/out-of-service taint (recorded as ours).
func StartDrainPatch(n *corev1.Node, attempt int, force, outOfService bool, now time.Time) NodePatch {
	p := StatePatch(n, v1alpha1.StateDraining, now)
	p.set(v1alpha1.AnnotationDrainAttempts, strconv.Itoa(attempt))
	if _, ok := n.Annotations[v1alpha1.AnnotationDrainStarted]; !ok {
		p.set(v1alpha1.AnnotationDrainStarted, formatTime(now))
	}
	if force {
		if _, ok := n.Annotations[v1alpha1.AnnotationDrainForced]; !ok {
			p.set(v1alpha1.AnnotationDrainForced, formatTime(now))
		}
	}
	if outOfService {
		p.addTaints(n, []corev1.Taint{{Key: corev1.TaintNodeOutOfService, Value: "nodeshutdown", Effect: corev1.TaintEffectNoExecute}})
	}
	p.removeIfPresent(n, v1alpha1.AnnotationBlockedBy)
	return p
}

// RecordPatch writes how a drain attempt ended: Drained, or DrainFailed
// with what blocked it.
func RecordPatch(n *corev1.Node, r DrainReport, now time.Time) NodePatch {
	if r.Succeeded {
		p := StatePatch(n, v1alpha1.StateDrained, now)
		p.removeIfPresent(n, v1alpha1.AnnotationBlockedBy)
		return p
	}
	p := StatePatch(n, v1alpha1.StateDrainFailed, now)
	p.set(v1alpha1.AnnotationBlockedBy, truncate(r.BlockedBy, maxBlockedBy))
	return p
}

// RepairPatch starts step i of the repair ladder named label: state
// Repairing since now. A Wait step ends as it starts.
func RepairPatch(n *corev1.Node, i int, a v1alpha1.RepairAction, label string, now time.Time) NodePatch {
	p := StatePatch(n, v1alpha1.StateRepairing, now)
	p.set(v1alpha1.AnnotationRepairStep, strconv.Itoa(i)+":"+string(a))
	p.set(v1alpha1.AnnotationRepairLadder, label)
	if a.Destructive() {
		p.removeIfPresent(n, v1alpha1.AnnotationRepairResult)
	} else {
		p.set(v1alpha1.AnnotationRepairResult, repairSucceeded)
	}
	return p
}

// RepairResultPatch records how a repair step ended; the next step's after
// counts from now.
func RepairResultPatch(n *corev1.Node, r RepairReport, now time.Time) NodePatch {
	p := StatePatch(n, v1alpha1.StateRepairing, now)
	result := repairSucceeded
	if !r.Succeeded {
		result = repairFailedPrefix + r.Message
	}
	p.set(v1alpha1.AnnotationRepairResult, truncate(result, maxBlockedBy))
	return p
}

// OrphanPatch marks a node whose policy let go of it while its trigger still
// holds; a drain the policy was running stops, so the node is Cordoned again.
func OrphanPatch(n *corev1.Node, now time.Time) NodePatch {
	p := newPatch(n)
	if n.Annotations[v1alpha1.AnnotationState] == string(v1alpha1.StateDraining) {
		p = StatePatch(n, v1alpha1.StateCordoned, now)
	}
	p.set(v1alpha1.AnnotationOrphaned, formatTime(now))
	return p
}

// ReleasePatch forgets the node. With undo it also removes what nodewarden
// added: its own cordon (never someone else's), its taints, its annotations.
func ReleasePatch(n *corev1.Node, undo bool) NodePatch {
	p := newPatch(n)
	for _, k := range stateAnnotations {
		p.removeIfPresent(n, k)
	}
	if undo {
		p.undo(n)
	}
	sort.Strings(p.RemoveAnnotations)
	return p
}

func (p *NodePatch) undo(n *corev1.Node) {
	if n.Annotations[v1alpha1.AnnotationCordonedBy] == v1alpha1.CordonedByNodewarden && n.Spec.Unschedulable {
		p.Unschedulable = ptr(false)
	}
	p.removeTaints(n, splitList(n.Annotations[v1alpha1.AnnotationAddedTaints]))
	for _, k := range splitList(n.Annotations[v1alpha1.AnnotationAddedAnnotations]) {
		p.removeIfPresent(n, k)
	}
}

// StopPatch forgets a node a human uncordoned: like a release with undo (the
// human wants the node back in service, so our taints go too), plus the
// record that keeps every policy off the node until a condition transitions
// after lastTransition.
func StopPatch(n *corev1.Node, lastTransition time.Time) NodePatch {
	p := ReleasePatch(n, true)
	p.Unschedulable = nil // the human decided; never touch it
	p.set(v1alpha1.AnnotationHumanUncordoned, formatTime(lastTransition))
	return p
}

func newPatch(n *corev1.Node) NodePatch {
	return NodePatch{ResourceVersion: n.ResourceVersion}
}

func (p *NodePatch) set(k, v string) {
	if p.SetAnnotations == nil {
		p.SetAnnotations = map[string]string{}
	}
	p.SetAnnotations[k] = v
}

func (p *NodePatch) removeIfPresent(n *corev1.Node, k string) {
	if _, ok := n.Annotations[k]; ok {
		p.RemoveAnnotations = append(p.RemoveAnnotations, k)
	}
}

func (p *NodePatch) cordon(n *corev1.Node) {
	if n.Spec.Unschedulable {
		p.set(v1alpha1.AnnotationCordonedBy, v1alpha1.CordonedByOther)
		return
	}
	p.set(v1alpha1.AnnotationCordonedBy, v1alpha1.CordonedByNodewarden)
	p.Unschedulable = ptr(true)
}

func (p *NodePatch) addTaints(n *corev1.Node, want []corev1.Taint) {
	have := map[string]bool{}
	for _, t := range n.Spec.Taints {
		have[taintID(t)] = true
	}
	var added []corev1.Taint
	var ids []string
	for _, t := range want {
		if have[taintID(t)] {
			continue
		}
		have[taintID(t)] = true
		added = append(added, corev1.Taint{Key: t.Key, Value: t.Value, Effect: t.Effect})
		ids = append(ids, taintID(t))
	}
	if len(added) == 0 {
		return
	}
	p.ReplaceTaints = true
	base := n.Spec.Taints
	if p.Taints != nil {
		base = p.Taints // a second addTaints in the same patch
	}
	p.Taints = append(append([]corev1.Taint{}, base...), added...)
	p.set(v1alpha1.AnnotationAddedTaints, strings.Join(p.merged(n, v1alpha1.AnnotationAddedTaints, ids), ","))
}

// merged is the recorded list under key (as this patch leaves it, else as
// the node has it) with ids appended, so a second policy's additions never
// make nodewarden forget the first's.
func (p *NodePatch) merged(n *corev1.Node, key string, ids []string) []string {
	recorded, ok := p.SetAnnotations[key]
	if !ok {
		recorded = n.Annotations[key]
	}
	out := splitList(recorded)
	for _, id := range ids {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

func (p *NodePatch) removeTaints(n *corev1.Node, ids []string) {
	ours := map[string]bool{}
	for _, id := range ids {
		ours[id] = true
	}
	var kept []corev1.Taint
	for _, t := range n.Spec.Taints {
		if !ours[taintID(t)] {
			kept = append(kept, t)
		}
	}
	if len(kept) == len(n.Spec.Taints) {
		return
	}
	p.ReplaceTaints = true
	p.Taints = kept
}

func (p *NodePatch) addAnnotations(n *corev1.Node, want map[string]string) {
	var keys []string
	for k, v := range want {
		if _, ok := n.Annotations[k]; ok {
			continue
		}
		p.set(k, v)
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return
	}
	sort.Strings(keys)
	p.set(v1alpha1.AnnotationAddedAnnotations, strings.Join(p.merged(n, v1alpha1.AnnotationAddedAnnotations, keys), ","))
}

// taintID is how the API server tells taints apart: key and effect.
func taintID(t corev1.Taint) string { return t.Key + ":" + string(t.Effect) }

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func ptr[T any](v T) *T { return &v }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n-3], "") + "..."
}
