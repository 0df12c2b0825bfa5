package remediation

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// repairWindow is what maxRepairsPerHour counts over: an hour, and the
// second a start time loses when it is written down in whole seconds.
const repairWindow = time.Hour + time.Second

// defaultMaxRepairsPerHour mirrors the CRD default.
const defaultMaxRepairsPerHour = 1

// Values of v1alpha1.AnnotationRepairLadder.
const (
	ladderPolicy       = "policy"
	ladderRulePrefix   = "condition:"
	repairSucceeded    = "Succeeded"
	repairFailedPrefix = "Failed: "
)

// ladder is the repair ladder of a held node: the one fixed when its first
// step started (nodewarden.io/repair-ladder), else the repair of the first
// rule for the node's trigger whose reasons match the condition now, else
// the policy's. label names it for the annotation; nil when there is none.
func (p *policy) ladder(n *corev1.Node, t *Trigger) (ladder *v1alpha1.RepairSpec, label string) {
	rules := p.spec.Spec.Conditions
	if fixed, ok := n.Annotations[v1alpha1.AnnotationRepairLadder]; ok {
		if i, err := strconv.Atoi(strings.TrimPrefix(fixed, ladderRulePrefix)); err == nil && strings.HasPrefix(fixed, ladderRulePrefix) && i < len(rules) && rules[i].Repair != nil {
			return rules[i].Repair, fixed
		}
		return p.spec.Spec.Repair, ladderPolicy
	}
	if t != nil {
		if c := findCondition(n, t.Type); c != nil {
			for i, r := range rules {
				if r.Repair != nil && r.Type == t.Type && c.Status == ruleStatus(r) && reasonMatches(r.Reasons, c.Reason) {
					return r.Repair, ladderRulePrefix + strconv.Itoa(i)
				}
			}
		}
	}
	if p.spec.Spec.Repair == nil {
		return nil, ""
	}
	return p.spec.Spec.Repair, ladderPolicy
}

// reasonMatches: no patterns match any reason; otherwise one must match,
// exactly or with * standing for any run of characters.
func reasonMatches(patterns []string, reason string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if globMatch(p, reason) {
			return true
		}
	}
	return false
}

// globMatch matches s against a pattern whose only special character is *.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, part := range parts[1 : len(parts)-1] {
		i := strings.Index(s, part)
		if i < 0 {
			return false
		}
		s = s[i+len(part):]
	}
	return strings.HasSuffix(s, last)
}

// repairStep reads nodewarden.io/repair-step ("<index>:<action>").
func repairStep(n *corev1.Node) (int, bool) {
	index, _, ok := strings.Cut(n.Annotations[v1alpha1.AnnotationRepairStep], ":")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(index)
	return i, err == nil && i >= 0
}

// drained decides about a Drained node whose condition still matches: it
// waits, or climbs the first step of its repair ladder.
func (d *decider) drained(nd NodeDecision, v *nodeView, p *policy) NodeDecision {
	ladder, label := p.ladder(v.node, nd.Trigger)
	if ladder == nil || len(ladder.Steps) == 0 {
		return hold(nd, "drained; waiting for the node to recover")
	}
	return d.nextRepair(nd, v, p, ladder, label, 0, annotationTime(v.node, v1alpha1.AnnotationStateSince))
}

// repairing decides about a node on a step of its repair ladder: record how
// the step ended, keep it running, or climb to the next step.
func (d *decider) repairing(nd NodeDecision, v *nodeView, p *policy) NodeDecision {
	n := v.node
	ladder, label := p.ladder(n, nd.Trigger)
	i, ok := repairStep(n)
	if ladder == nil || !ok || i >= len(ladder.Steps) {
		return hold(nd, "the node's repair step is not in the policy's ladder any more (edited?); it stays as it is until it recovers")
	}
	since := annotationTime(n, v1alpha1.AnnotationStateSince)
	step := ladder.Steps[i]
	if _, ended := n.Annotations[v1alpha1.AnnotationRepairResult]; !ended {
		if r := v.repairReport; r != nil && r.Step == i && r.Started.Equal(since) {
			return d.recordRepair(nd, v, p, ladder, i, *r)
		}
		if p.dryRun {
			return hold(nd, "the policy is in dry run: the repair step is not carried out")
		}
		p.noteRepair(n.Name, step.Action, since)
		nd.Repair = d.repairOrder(n, nd.Trigger, i, since, step)
		return hold(nd, fmt.Sprintf("repair step %d (%s) is in progress", i+1, step.Action))
	}
	if i+1 < len(ladder.Steps) {
		return d.nextRepair(nd, v, p, ladder, label, i+1, since)
	}
	return hold(nd, "every repair step was taken and the node has not recovered; it stays cordoned for a human")
}

// nextRepair starts step i once the node has not recovered for the step's
// after since the previous step (or the drain) ended, within the circuit
// breaker and maxRepairsPerHour.
func (d *decider) nextRepair(nd NodeDecision, v *nodeView, p *policy, ladder *v1alpha1.RepairSpec, label string, i int, since time.Time) NodeDecision {
	step := ladder.Steps[i]
	if at := since.Add(step.After.Duration); d.now.Before(at) {
		d.wakeAt(at)
		return hold(nd, fmt.Sprintf("not recovered; repair step %d (%s) starts at %s", i+1, step.Action, formatTime(at)))
	}
	if p.circuitOpen {
		return hold(nd, "the circuit is open; no repair starts")
	}
	// No deadline rule here: the node is drained already, its deadline
	// is about the disruption, not the repair.
	if reason, _ := d.holdBack(p, nd.Node, nd.Trigger, false); reason != "" {
		return hold(nd, p.whyHeldBack(reason, fmt.Sprintf("repair step %d (%s)", i+1, step.Action)))
	}
	if step.Action.Destructive() && !p.dryRun {
		if p.maxRepairsPerHour == 0 {
			p.repairDeferred++
			return hold(nd, fmt.Sprintf("maxRepairsPerHour is 0: repair step %d (%s) does not start", i+1, step.Action))
		}
		if free := p.repairFreeAt(d.now); !free.IsZero() {
			d.wakeAt(free)
			p.repairDeferred++
			return hold(nd, fmt.Sprintf("maxRepairsPerHour (%d) is used up; repair step %d (%s) can start at %s", p.maxRepairsPerHour, i+1, step.Action, formatTime(free)))
		}
	}
	if i == 0 {
		// Post-drain hooks hold what follows the drain: the first step.
		if held, ok := d.hooksHold(nd, v, p, v1alpha1.PostDrainHookPrefix, fmt.Sprintf("repair step 1 (%s)", step.Action), false); ok {
			return held
		}
	}
	// The step is known by the time the annotation keeps (whole seconds),
	// so that every later pass, and the next leader, names it the same.
	started := d.now.UTC().Truncate(time.Second)
	if step.Action.Destructive() && !p.dryRun {
		p.noteRepair(nd.Node, step.Action, started)
	}
	nd.Action = ActionRepair
	nd.Why = fmt.Sprintf("drained and not recovered: repair step %d of %d (%s)", i+1, len(ladder.Steps), step.Action)
	nd.Patch = RepairPatch(v.node, i, step.Action, label, started)
	if step.Action.Destructive() {
		nd.Repair = d.repairOrder(v.node, nd.Trigger, i, started, step)
	}
	d.nodeEvent(p, nd.Node, corev1.EventTypeWarning, ReasonRepairStarted,
		"policy %s: the node has not recovered from %s: repair step %d of %d: %s", p.name, describeTrigger(nd.Trigger), i+1, len(ladder.Steps), step.Action)
	return nd
}

func (d *decider) recordRepair(nd NodeDecision, v *nodeView, p *policy, ladder *v1alpha1.RepairSpec, i int, r RepairReport) NodeDecision {
	nd.Action = ActionRecord
	nd.Patch = RepairResultPatch(v.node, r, d.now)
	step := ladder.Steps[i]
	next := "the next step comes if the node does not recover"
	if i+1 == len(ladder.Steps) {
		next = "it was the last step: the node stays cordoned until it recovers or a human steps in"
	}
	if r.Succeeded {
		nd.Why = fmt.Sprintf("repair step %d (%s) succeeded", i+1, step.Action)
		d.nodeEvent(p, nd.Node, corev1.EventTypeNormal, ReasonRepairSucceeded, "policy %s: repair step %d (%s) done: %s; %s", p.name, i+1, step.Action, r.Message, next)
		return nd
	}
	nd.Why = fmt.Sprintf("repair step %d (%s) failed: %s", i+1, step.Action, r.Message)
	d.nodeEvent(p, nd.Node, corev1.EventTypeWarning, ReasonRepairFailed, "policy %s: repair step %d (%s) failed: %s; %s", p.name, i+1, step.Action, r.Message, next)
	return nd
}

func (d *decider) repairOrder(n *corev1.Node, t *Trigger, i int, started time.Time, step v1alpha1.RepairStep) *RepairOrder {
	o := &RepairOrder{Step: i, Started: started, Action: step.Action, Webhook: step.Webhook}
	if t != nil {
		o.Trigger = *t
		if c := findCondition(n, t.Type); c != nil {
			o.Reason, o.Message = c.Reason, c.Message
		}
	}
	return o
}

// noteRepair adds a destructive step to what maxRepairsPerHour counts,
// once (a running step is noted again on every pass, so that a record lost
// with a failed status write comes back).
func (p *policy) noteRepair(node string, a v1alpha1.RepairAction, started time.Time) {
	if !a.Destructive() {
		return
	}
	for _, r := range p.repairs {
		if r.Node == node && r.Started.Unix() == started.Unix() {
			return
		}
	}
	p.repairs = append(p.repairs, v1alpha1.RepairRecord{Node: node, Action: a, Started: metav1.NewTime(started)})
}

// repairFreeAt is zero when another destructive step may start now, else
// when enough counted ones have left the window (maxRepairsPerHour > 0).
func (p *policy) repairFreeAt(now time.Time) time.Time {
	recent := p.recentRepairs(now)
	if len(recent) < p.maxRepairsPerHour {
		return time.Time{}
	}
	return recent[len(recent)-p.maxRepairsPerHour].Started.Add(repairWindow)
}

// recentRepairs are the noted steps started within the window, oldest first.
func (p *policy) recentRepairs(now time.Time) []v1alpha1.RepairRecord {
	var out []v1alpha1.RepairRecord
	for _, r := range p.repairs {
		if now.Sub(r.Started.Time) < repairWindow {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b v1alpha1.RepairRecord) int { return a.Started.Compare(b.Started.Time) })
	return out
}

// WithRecentRepairs returns the policies with the destructive repair steps
// the reconciler itself recorded (by policy name) added to their
// status.recentRepairs, for those its cache does not show yet: a deleted
// node takes its own record with it, so a lagging status must never let
// maxRepairsPerHour count a step twice as free. The input is not modified.
func WithRecentRepairs(policies []v1alpha1.RemediationPolicy, written map[string][]v1alpha1.RepairRecord) []v1alpha1.RemediationPolicy {
	if len(written) == 0 {
		return policies
	}
	out := slices.Clone(policies)
	for i := range out {
		extra := written[out[i].Name]
		if len(extra) == 0 {
			continue
		}
		merged := slices.Clone(out[i].Status.RecentRepairs)
		for _, r := range extra {
			// Compared in whole seconds, the precision the status keeps.
			if !slices.ContainsFunc(merged, func(m v1alpha1.RepairRecord) bool { return m.Node == r.Node && m.Started.Unix() == r.Started.Unix() }) {
				merged = append(merged, r)
			}
		}
		out[i].Status.RecentRepairs = merged
	}
	return out
}
