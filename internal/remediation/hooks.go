package remediation

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// defaultHookTimeout mirrors the CRD default of drain.hookTimeout.
const defaultHookTimeout = 30 * time.Minute

// hooks are the node's annotation keys with prefix (its drain hooks), by
// name.
func hooks(n *corev1.Node, prefix string) []string {
	var out []string
	for k := range n.Annotations {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// describeHooks names the hooks and their owners (the annotation values).
func describeHooks(n *corev1.Node, keys []string) string {
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		if owner := n.Annotations[k]; owner != "" {
			parts = append(parts, k+" (owner "+owner+")")
			continue
		}
		parts = append(parts, k)
	}
	return strings.Join(parts, ", ")
}

// hooksHold says whether the node's drain hooks with prefix hold what
// (the drain attempt; the release, or the first repair step) now: while
// any is on the node, for up to drain.hookTimeout since the node reached
// its state (nodewarden.io/state-since), for ever with hookTimeout 0.
// With deadlineRule (pre-drain hooks) a trigger whose deadline is
// drain.timeout away or closer overrides them, as it overrides the
// maintenance windows. Call it last, just before the step starts: the
// HookTimedOut and HookOverridden Warnings say that it does start.
func (d *decider) hooksHold(nd NodeDecision, v *nodeView, p *policy, prefix, what string, deadlineRule bool) (NodeDecision, bool) {
	keys := hooks(v.node, prefix)
	if len(keys) == 0 {
		return nd, false
	}
	names := describeHooks(v.node, keys)
	if deadlineRule && nd.Trigger != nil {
		if at := p.urgentAt(*nd.Trigger); !at.IsZero() {
			if !d.now.Before(at) {
				d.nodeEvent(p, nd.Node, corev1.EventTypeWarning, ReasonHookOverridden,
					"policy %s: %s starts although hooks hold it (%s): %s is drain.timeout (%s) away or closer",
					p.name, what, names, describeTrigger(nd.Trigger), p.drainTimeout)
				return nd, false
			}
			d.wakeAt(at)
		}
	}
	since := annotationTime(v.node, v1alpha1.AnnotationStateSince)
	until := "until they are removed (drain.hookTimeout is 0)"
	if p.hookTimeout > 0 && !since.IsZero() {
		end := since.Add(p.hookTimeout)
		if !d.now.Before(end) {
			d.nodeEvent(p, nd.Node, corev1.EventTypeWarning, ReasonHookTimedOut,
				"policy %s: drain.hookTimeout (%s) has passed since %s and hooks still hold it (%s): %s starts anyway",
				p.name, p.hookTimeout, formatTime(since), names, what)
			return nd, false
		}
		d.wakeAt(end)
		until = "until they are removed, at most until " + formatTime(end) + " (drain.hookTimeout)"
	}
	p.noteDeferred(nd.Node, v1alpha1.DeferredHookHolding)
	if !p.wasHookHolding[nd.Node] {
		d.nodeEvent(p, nd.Node, corev1.EventTypeNormal, ReasonHookHolding,
			"policy %s: %s waits for hooks %s, %s", p.name, what, names, until)
	}
	return hold(nd, fmt.Sprintf("hooks hold %s: %s; it waits %s", what, names, until)), true
}
