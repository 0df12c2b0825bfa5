package remediation

import (
	"encoding/json"
	"sort"
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
}

// CordonPatch takes the node for the policy: state Cordoned, the trigger,
// the cordon (remembering whether someone else had cordoned it first), and
// the policy's taints and annotations that the node does not already have
// (those it has are not ours to remove later).
func CordonPatch(n *corev1.Node, rp *v1alpha1.RemediationPolicy, t Trigger, now time.Time) NodePatch {
	p := newPatch(n)
	p.set(v1alpha1.AnnotationState, string(v1alpha1.StateCordoned))
	p.set(v1alpha1.AnnotationPolicy, rp.Name)
	p.set(v1alpha1.AnnotationTrigger, t.String())
	p.set(v1alpha1.AnnotationStateSince, formatTime(now))
	if !t.Since.IsZero() {
		p.set(v1alpha1.AnnotationTriggerSince, formatTime(t.Since))
	}
	p.removeIfPresent(n, v1alpha1.AnnotationHumanUncordoned)
	if boolOr(rp.Spec.Cordon, true) {
		p.cordon(n)
	}
	p.addTaints(n, rp.Spec.Taints)
	p.addAnnotations(n, rp.Spec.Annotations)
	return p
}

// StatePatch moves a held node to another state (Draining, Drained,
// DrainFailed). The drainer uses it too.
func StatePatch(n *corev1.Node, s v1alpha1.NodeState, now time.Time) NodePatch {
	p := newPatch(n)
	p.set(v1alpha1.AnnotationState, string(s))
	p.set(v1alpha1.AnnotationStateSince, formatTime(now))
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
	p.Taints = append(append([]corev1.Taint{}, n.Spec.Taints...), added...)
	p.set(v1alpha1.AnnotationAddedTaints, strings.Join(ids, ","))
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
	p.set(v1alpha1.AnnotationAddedAnnotations, strings.Join(keys, ","))
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
