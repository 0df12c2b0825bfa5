package remediation

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// Decide looks at every policy and every node as they are at now, and at
// the drain attempts that ended but are not yet recorded on their nodes
// (drains, by node name; nil when there are none), and returns what to do.
// It reads its inputs and never modifies them. The package doc lists the
// rules.
func Decide(now time.Time, policies []v1alpha1.RemediationPolicy, nodes []corev1.Node, reports Reports) Plan {
	d := newDecider(now, policies)
	views := d.observe(nodes, reports)
	d.tripCircuits()
	for i := range views {
		d.plan.Nodes = append(d.plan.Nodes, d.decideNode(i, &views[i]))
	}
	for _, p := range d.policies {
		d.takeWithinBudget(p)
	}
	d.summarize(views)
	return d.plan
}

type decider struct {
	now      time.Time
	policies []*policy // by name
	claimers []*policy // the order in which policies claim free nodes
	byName   map[string]*policy
	wake     time.Time // earliest moment the answer changes with time alone
	plan     Plan
}

// nodeView is one node with what Decide needs to know about it.
type nodeView struct {
	node            *corev1.Node
	state           v1alpha1.NodeState // empty: not held
	holder          string
	evals           map[string]evaluation // by policy, for valid policies selecting the node
	humanUncordoned time.Time
	report          *DrainReport
	repairReport    *RepairReport
	// nextAttempt is when a DrainFailed node's drain is tried again (zero:
	// never), for the policy status.
	nextAttempt time.Time
}

// candidate is a node a policy wants, waiting for the budget: a free node, a
// Waiting node whose start time came, or a node another policy lets go of.
type candidate struct {
	index    int // into plan.Nodes
	node     *corev1.Node
	trigger  Trigger
	handover bool
	// windowOverridden: no window is open, but the deadline cannot wait
	// for the next one.
	windowOverridden bool
}

func newDecider(now time.Time, in []v1alpha1.RemediationPolicy) *decider {
	d := &decider{now: now, policies: compilePolicies(in), byName: map[string]*policy{}}
	for _, p := range d.policies {
		d.byName[p.name] = p
		if p.invalid == "" {
			p.windows = windowsAt(p.windowList, now)
			// The status's nextWindow changes at each edge, and what was
			// held back may start at the opening.
			d.wakeAt(p.windows.edge())
		}
	}
	// Real policies claim before dry-run ones, so trying a policy out in
	// dry-run never keeps a real one from acting.
	d.claimers = append([]*policy{}, d.policies...)
	sort.SliceStable(d.claimers, func(i, j int) bool { return !d.claimers[i].dryRun && d.claimers[j].dryRun })
	return d
}

// observe evaluates every policy on every node and counts, per policy, the
// nodes it selects, that are triggered, and that it holds.
func (d *decider) observe(nodes []corev1.Node, reports Reports) []nodeView {
	views := make([]nodeView, 0, len(nodes))
	for i := range nodes {
		v := d.observeNode(&nodes[i])
		if r, ok := reports.Drains[v.node.Name]; ok {
			v.report = &r
		}
		if r, ok := reports.Repairs[v.node.Name]; ok {
			v.repairReport = &r
		}
		views = append(views, v)
	}
	sort.Slice(views, func(i, j int) bool { return views[i].node.Name < views[j].node.Name })
	for _, p := range d.policies {
		p.resolveLimits()
	}
	return views
}

func (d *decider) observeNode(n *corev1.Node) nodeView {
	v := nodeView{
		node:            n,
		state:           v1alpha1.NodeState(n.Annotations[v1alpha1.AnnotationState]),
		holder:          n.Annotations[v1alpha1.AnnotationPolicy],
		evals:           map[string]evaluation{},
		humanUncordoned: annotationTime(n, v1alpha1.AnnotationHumanUncordoned),
	}
	if p := d.byName[v.holder]; p != nil && usesSlot(v.state) {
		p.held++
	}
	for _, p := range d.policies {
		if !p.selects(n) {
			continue
		}
		p.selected++
		if p.invalid != "" {
			continue
		}
		e := evaluate(d.now, p.spec.Spec.Conditions, n)
		v.evals[p.name] = e
		if v.heldBy(p) && e.matching || !v.heldBy(p) && e.holds() {
			p.triggered++
		}
		if v.state == "" {
			d.wakeAt(e.pendingUntil)
		}
	}
	return v
}

func (v *nodeView) heldBy(p *policy) bool { return v.state != "" && v.holder == p.name }

// wakeAt makes the plan requeue by t (zero: nothing to wait for).
func (d *decider) wakeAt(t time.Time) { d.wake = earliest(d.wake, t) }

// tripCircuits opens each policy's circuit breaker when too many of its nodes
// are triggered, and reports only the transitions so the Event fires once.
func (d *decider) tripCircuits() {
	for _, p := range d.policies {
		p.circuitOpen = p.invalid == "" && p.triggered > p.maxUnhealthy
		switch {
		case p.circuitOpen && !p.wasCircuitOpen:
			d.policyEvent(p, corev1.EventTypeWarning, ReasonCircuitOpen,
				"%d of %d selected nodes are triggered, more than maxUnhealthy allows (%d): no node is cordoned or drained until fewer are",
				p.triggered, p.selected, p.maxUnhealthy)
		case !p.circuitOpen && p.wasCircuitOpen:
			d.policyEvent(p, corev1.EventTypeNormal, ReasonCircuitClosed,
				"%d of %d selected nodes are triggered, within maxUnhealthy (%d): remediation resumes",
				p.triggered, p.selected, p.maxUnhealthy)
		}
	}
}

func (d *decider) decideNode(i int, v *nodeView) NodeDecision {
	if v.state != "" {
		return d.decideHeld(i, v)
	}
	return d.claim(i, v)
}

// decideHeld moves a node a policy already holds along the state machine.
func (d *decider) decideHeld(i int, v *nodeView) NodeDecision {
	n := v.node
	nd := NodeDecision{Node: n.Name, Policy: v.holder, State: v.state, Trigger: triggerFromAnnotations(n)}
	p := d.byName[v.holder]
	if p != nil {
		nd.DryRun = p.dryRun
	}
	e := v.evals[v.holder]
	switch {
	case excluded(n):
		// Before anything else, even an invalid policy: the label is a
		// human's explicit order to keep nodewarden off the node, so it
		// is released at once, not kept until it recovers as a node the
		// policy merely stopped selecting is.
		return d.releaseExcluded(nd, v, p)
	case p != nil && p.invalid != "":
		return hold(nd, "policy is invalid ("+p.invalid+"); the node stays as it is")
	case humanUncordoned(n):
		// Before any handover: whoever uncordoned it wants it in service.
		return d.stop(nd, v, p, e)
	case p == nil:
		return d.letGo(i, nd, v, nil, fmt.Sprintf("policy %q no longer exists", v.holder))
	case !p.selects(n):
		return d.letGo(i, nd, v, p, "the policy no longer selects the node")
	case !e.matching:
		return d.recovered(i, nd, v, p, e)
	}
	return d.advance(i, nd, v, p)
}

// advance takes a held node whose condition still matches one step along.
func (d *decider) advance(i int, nd NodeDecision, v *nodeView, p *policy) NodeDecision {
	switch v.state {
	case v1alpha1.StateWaiting:
		return d.waitOrStart(i, nd, v, p)
	case v1alpha1.StateCordoned:
		switch {
		case !p.drain:
			return hold(nd, "drain is disabled; the node stays cordoned until it recovers")
		case p.circuitOpen:
			return hold(nd, "the circuit is open; the drain does not start")
		}
		if held, ok := d.drainHeldBack(nd, p); ok {
			return held
		}
		if held, ok := d.preDrainHooksHold(nd, v, p); ok {
			return held
		}
		return d.startDrain(nd, v, p, 1, false, false, "the node is cordoned and its condition still holds")
	case v1alpha1.StateDraining:
		return d.draining(nd, v, p)
	case v1alpha1.StateDrained:
		return d.drained(nd, v, p)
	case v1alpha1.StateRepairing:
		return d.repairing(nd, v, p)
	case v1alpha1.StateDrainFailed:
		return d.retryOrEscalate(nd, v, p)
	}
	return hold(nd, fmt.Sprintf("unknown state %q; the node stays as it is until it recovers", v.state))
}

func hold(nd NodeDecision, why string) NodeDecision {
	nd.Action, nd.Why = ActionHold, why
	return nd
}

// humanUncordoned: nodewarden sets the cordon and cordoned-by in one patch
// and clears them in one patch, so a held node with cordoned-by that is
// schedulable was uncordoned by someone else.
func humanUncordoned(n *corev1.Node) bool {
	_, cordonRecorded := n.Annotations[v1alpha1.AnnotationCordonedBy]
	return cordonRecorded && !n.Spec.Unschedulable
}

// waitOrStart keeps a Waiting node waiting until its deadline is
// startBefore away, then makes it a candidate for a slot.
func (d *decider) waitOrStart(i int, nd NodeDecision, v *nodeView, p *policy) NodeDecision {
	t := nd.Trigger
	if start := p.startAt(t); start.After(d.now) {
		d.wakeAt(start)
		return hold(nd, "waiting until "+formatTime(start)+", drain.startBefore ahead of the deadline")
	}
	if t == nil {
		t = &Trigger{}
	}
	nd.Action, nd.Why = ActionDefer, "the deadline is drain.startBefore away"
	p.candidates = append(p.candidates, candidate{index: i, node: v.node, trigger: *t})
	return nd
}

// draining records a finished attempt, or keeps the attempt running, unless
// the policy no longer drains.
func (d *decider) draining(nd NodeDecision, v *nodeView, p *policy) NodeDecision {
	attempt := attempts(v.node)
	if r := v.report; r != nil && r.Attempt == attempt {
		return d.record(nd, v, p, *r)
	}
	switch {
	case p.dryRun:
		nd.CancelDrain = true
		return hold(nd, "the policy is in dry run: the drain is cancelled, the node stays cordoned")
	case !p.drain:
		nd.Action, nd.Why, nd.CancelDrain = ActionRecord, "drain is disabled: the drain is cancelled, the node stays cordoned", true
		nd.Patch = StatePatch(v.node, v1alpha1.StateCordoned, d.now)
		d.nodeEvent(p, nd.Node, corev1.EventTypeNormal, ReasonDrainCancelled, "policy %s: drain.enabled is false: the drain stops, the node stays cordoned", p.name)
		return nd
	}
	nd.Drain = d.drainOrder(v.node, p, annotationTime(v.node, v1alpha1.AnnotationStateSince), attempt)
	return hold(nd, "the drain is in progress")
}

// record writes how a drain attempt ended.
func (d *decider) record(nd NodeDecision, v *nodeView, p *policy, r DrainReport) NodeDecision {
	nd.Action = ActionRecord
	nd.Patch = RecordPatch(v.node, r, d.now)
	if r.Succeeded {
		nd.Why = "the drain finished"
		d.nodeEvent(p, nd.Node, corev1.EventTypeNormal, ReasonDrainSucceeded, "drained for policy %s: %d pods evicted", p.name, r.Evicted)
		d.lastEvent().Evicted = r.Evicted
		return nd
	}
	nd.Why = "the drain failed: " + r.BlockedBy
	blocked := r.BlockedBy
	if notReady(v.node) && r.Terminating > 0 {
		blocked += "; the node is NotReady, so its kubelet cannot finish terminating pods"
		nd.Patch.SetAnnotations[v1alpha1.AnnotationBlockedBy] = truncate(blocked, maxBlockedBy)
	}
	d.nodeEvent(p, nd.Node, corev1.EventTypeWarning, ReasonDrainFailed,
		"drain attempt %d of %d for policy %s failed, the node stays cordoned: %s; %s",
		r.Attempt, p.maxAttempts, p.name, blocked, d.nextStep(v, nd.Trigger, p, r.Attempt))
	d.lastEvent().BlockedBy = blocked
	return nd
}

// nextStep says what happens after a failed attempt, for the Event, and
// notes it for the policy status.
func (d *decider) nextStep(v *nodeView, t *Trigger, p *policy, attempt int) string {
	force := p.forceAt(v.node)
	if attempt < p.maxAttempts {
		retry := maxTime(p.retryAt(d.now, attempt, t), d.now)
		v.nextAttempt = earliest(retry, force)
		return "retry at " + formatTime(retry)
	}
	if !force.IsZero() {
		v.nextAttempt = maxTime(force, d.now)
		return "no retries left; drain.forceAfter deletes the remaining pods at " + formatTime(v.nextAttempt)
	}
	return "no retries left: a human must step in (see nodewarden.io/blocked-by)"
}

// retryOrEscalate decides about a node whose last drain failed: escalate
// (opt-in), retry after the backoff, or stay stuck.
func (d *decider) retryOrEscalate(nd NodeDecision, v *nodeView, p *policy) NodeDecision {
	n := v.node
	switch {
	case !p.drain || p.dryRun:
		return hold(nd, "the drain failed; the policy no longer drains")
	case p.circuitOpen:
		return hold(nd, "the drain failed; the circuit is open, so it is not retried")
	}
	attempt := attempts(n)
	if p.outOfService && notReady(n) && !hasTaint(n, corev1.TaintNodeOutOfService) {
		if held, ok := d.drainHeldBack(nd, p); ok {
			return held
		}
		if held, ok := d.preDrainHooksHold(nd, v, p); ok {
			return held
		}
		d.nodeEvent(p, nd.Node, corev1.EventTypeWarning, ReasonEscalated,
			"policy %s: the node is NotReady and its drain failed: tainting it %s (drain.outOfServiceTaint) so its pods are deleted and their volumes detached",
			p.name, corev1.TaintNodeOutOfService)
		return d.startDrain(nd, v, p, attempt+1, forced(n), true, "escalation: the node is NotReady, out-of-service taint")
	}
	force := p.forceAt(n)
	if !force.IsZero() {
		if !d.now.Before(force) {
			if held, ok := d.drainHeldBack(nd, p); ok {
				return held
			}
			if held, ok := d.preDrainHooksHold(nd, v, p); ok {
				return held
			}
			d.nodeEvent(p, nd.Node, corev1.EventTypeWarning, ReasonEscalated,
				"policy %s: drain.forceAfter (%s) has passed: deleting the remaining pods without asking their PodDisruptionBudgets", p.name, p.forceAfter)
			return d.startDrain(nd, v, p, attempt+1, true, false, "escalation: drain.forceAfter has passed")
		}
		d.wakeAt(force)
	}
	if attempt >= p.maxAttempts {
		v.nextAttempt = force
		return hold(nd, fmt.Sprintf("the drain failed %d times, no retries left", attempt))
	}
	retry := p.retryAt(annotationTime(n, v1alpha1.AnnotationStateSince), attempt, nd.Trigger)
	v.nextAttempt = earliest(retry, force)
	if retry.After(d.now) {
		d.wakeAt(retry)
		return hold(nd, "the drain failed; retry at "+formatTime(retry))
	}
	if held, ok := d.drainHeldBack(nd, p); ok {
		return held
	}
	if held, ok := d.preDrainHooksHold(nd, v, p); ok {
		return held
	}
	return d.startDrain(nd, v, p, attempt+1, forced(n), false, fmt.Sprintf("retry %d of %d", attempt+1, p.maxAttempts))
}

// preDrainHooksHold holds a drain attempt that would start now while
// pre-drain hooks are on the node (see hooksHold).
func (d *decider) preDrainHooksHold(nd NodeDecision, v *nodeView, p *policy) (NodeDecision, bool) {
	return d.hooksHold(nd, v, p, v1alpha1.PreDrainHookPrefix, "the drain attempt", true)
}

// drainHeldBack holds a node whose drain attempt would start now while the
// policy is paused or no window is open (unless its deadline cannot wait
// for the next window: then the attempt starts, with a WindowOverridden
// Event).
func (d *decider) drainHeldBack(nd NodeDecision, p *policy) (NodeDecision, bool) {
	reason, urgent := d.holdBack(p, nd.Node, nd.Trigger, true)
	if reason != "" {
		return hold(nd, p.whyHeldBack(reason, "the drain attempt")), true
	}
	if urgent {
		d.windowOverridden(p, nd.Node, nd.Trigger, "the drain starts")
	}
	return nd, false
}

func (d *decider) startDrain(nd NodeDecision, v *nodeView, p *policy, attempt int, force, outOfService bool, why string) NodeDecision {
	nd.Action, nd.Why = ActionStartDrain, why
	nd.Patch = StartDrainPatch(v.node, attempt, force, outOfService, d.now)
	nd.Drain = d.drainOrder(v.node, p, d.now, attempt)
	nd.Drain.Force = nd.Drain.Force || force
	d.nodeEvent(p, nd.Node, corev1.EventTypeNormal, ReasonDrainStarted,
		"policy %s: drain attempt %d of %d (until %s%s) because of %s",
		p.name, attempt, p.maxAttempts, formatTime(nd.Drain.Deadline), forceNote(nd.Drain.Force), describeTrigger(nd.Trigger))
	return nd
}

func forceNote(force bool) string {
	if force {
		return ", deleting pods instead of evicting them"
	}
	return ""
}

// drainOrder is the attempt that started at since: it ends drain.timeout
// later, but never after the trigger's deadline (when that is still ahead
// at the start), and an unforced attempt ends when drain.forceAfter comes.
func (d *decider) drainOrder(n *corev1.Node, p *policy, since time.Time, attempt int) *DrainOrder {
	if since.IsZero() {
		since = d.now
	}
	end := since.Add(p.drainTimeout)
	if dl := triggerFromAnnotations(n).deadline(); dl.After(since) && dl.Before(end) {
		end = dl
	}
	if force := p.forceAt(n); force.After(since) && force.Before(end) {
		end = force
	}
	return &DrainOrder{Attempt: attempt, Deadline: end, Force: forced(n)}
}

// attempts is the drain attempt a held node is on (1 for nodes drained
// before attempts were counted).
func attempts(n *corev1.Node) int {
	a, err := strconv.Atoi(n.Annotations[v1alpha1.AnnotationDrainAttempts])
	if err != nil || a < 1 {
		return 1
	}
	return a
}

func hasTaint(n *corev1.Node, key string) bool {
	for _, t := range n.Spec.Taints {
		if t.Key == key {
			return true
		}
	}
	return false
}

// recovered decides about a held node none of whose conditions matches:
// after recoverFor it is handed over to another policy that wants it, or
// released.
func (d *decider) recovered(i int, nd NodeDecision, v *nodeView, p *policy, e evaluation) NodeDecision {
	if r := v.report; r != nil && v.state == v1alpha1.StateDraining && r.Attempt == attempts(v.node) && p.recoverFor > 0 {
		return d.record(nd, v, p, *r)
	}
	if p.recoverFor > 0 && !e.clearSince.IsZero() {
		if until := e.clearSince.Add(p.recoverFor); d.now.Before(until) {
			d.wakeAt(until)
			nd = hold(nd, "no condition has matched since "+formatTime(e.clearSince)+"; released at "+formatTime(until)+" (recoverFor) unless one matches again")
			if v.state == v1alpha1.StateDraining {
				nd.Drain = d.drainOrder(v.node, p, annotationTime(v.node, v1alpha1.AnnotationStateSince), attempts(v.node))
			}
			return nd
		}
	}
	if v.state == v1alpha1.StateDrained {
		// Post-drain hooks hold the release (and a handover) of a drained
		// node that recovered; never a human's uncordon, the exclude
		// label, or a policy that is gone.
		if held, ok := d.hooksHold(nd, v, p, v1alpha1.PostDrainHookPrefix, "the release", false); ok {
			return held
		}
	}
	return d.handOverOrRelease(i, nd, v, p, p.undo, "no condition of the policy holds any more")
}

// letGo decides about a node whose policy is gone (p is nil) or no longer
// selects it. Another policy may take it over; while its trigger still
// holds it stays as it is (never back in service silently); once that
// clears it is released as its policy would have.
func (d *decider) letGo(i int, nd NodeDecision, v *nodeView, p *policy, why string) NodeDecision {
	undo := v.node.Annotations[v1alpha1.AnnotationKeepOnRecovery] != "true"
	if p != nil {
		undo = p.undo
	}
	if !triggerMatches(v.node, nd.Trigger) || v.state == v1alpha1.StateWaiting {
		return d.handOverOrRelease(i, nd, v, p, undo, why)
	}
	if offered := d.offer(i, nd, v, p); offered.Action == ActionHold {
		offered.Why = why + "; " + offered.Why
		return offered
	}
	nd.Action, nd.CancelDrain = ActionHold, true
	nd.Why = why + "; its trigger still holds, so it stays as it is until it recovers or another policy takes it"
	if _, marked := v.node.Annotations[v1alpha1.AnnotationOrphaned]; !marked {
		nd.Action = ActionRecord
		nd.Patch = OrphanPatch(v.node, d.now)
		d.nodeEvent(p, nd.Node, corev1.EventTypeWarning, ReasonOrphaned,
			"%s while %s still holds: the node stays %s until it recovers or another policy takes it over",
			why, describeTrigger(nd.Trigger), v.state)
	}
	return nd
}

// handOverOrRelease offers the node to the policy that would claim it now;
// without one it is released.
func (d *decider) handOverOrRelease(i int, nd NodeDecision, v *nodeView, p *policy, undo bool, why string) NodeDecision {
	if v.state != v1alpha1.StateWaiting {
		if nd = d.offer(i, nd, v, p); nd.Action == ActionHold {
			nd.Why = why + "; " + nd.Why
			return nd
		}
	}
	return d.release(nd, v, p, undo, why)
}

// offer makes a held node a handover candidate of the first other policy
// that would claim it. The node stays held (ActionHold) until that policy's
// budget lets it take it; ActionNone means no policy wants it.
func (d *decider) offer(i int, nd NodeDecision, v *nodeView, holder *policy) NodeDecision {
	for _, q := range d.claimers {
		e, ok := v.evals[q.name]
		if !ok || q == holder {
			continue
		}
		if t := e.eligible(v.humanUncordoned); t != nil {
			q.candidates = append(q.candidates, candidate{index: i, node: v.node, trigger: *t, handover: true})
			return hold(nd, "policy "+q.name+" takes it over when its budget allows")
		}
	}
	nd.Action = ActionNone
	return nd
}

// releaseExcluded lets go of a held node labelled nodewarden.io/exclude=true,
// undoing what nodewarden did as its policy would on recovery (or, with the
// policy gone, as the node's keep-on-recovery annotation says).
func (d *decider) releaseExcluded(nd NodeDecision, v *nodeView, p *policy) NodeDecision {
	undo := v.node.Annotations[v1alpha1.AnnotationKeepOnRecovery] != "true"
	if p != nil {
		undo = p.undo
	}
	return d.release(nd, v, p, undo, "the node is labelled "+v1alpha1.LabelExclude+"=true")
}

func (d *decider) release(nd NodeDecision, v *nodeView, p *policy, undo bool, why string) NodeDecision {
	nd.Action, nd.Why = ActionRelease, why
	nd.Patch = ReleasePatch(v.node, undo)
	nd.CancelDrain = true
	if p != nil && usesSlot(v.state) {
		p.released++
	}
	reason, what := ReasonReleased, "released"
	if u := nd.Patch.Unschedulable; u != nil && !*u {
		reason, what = ReasonUncordoned, "uncordoned"
	}
	if !undo {
		what += " (uncordonOnRecovery is false: cordon, taints and annotations are left as they are)"
	}
	d.nodeEvent(p, nd.Node, corev1.EventTypeNormal, reason, "policy %s: %s: %s", v.holder, why, what)
	return nd
}

func (d *decider) stop(nd NodeDecision, v *nodeView, p *policy, e evaluation) NodeDecision {
	// No condition time to wait for (conditions without lastTransitionTime):
	// wait for one that transitions after now.
	record := e.newest
	if record.IsZero() {
		record = d.now
	}
	nd.Action = ActionStop
	nd.Why = "someone uncordoned the node while the policy held it"
	nd.Patch = StopPatch(v.node, record)
	nd.CancelDrain = true
	if p != nil && usesSlot(v.state) {
		p.released++
	}
	d.nodeEvent(p, nd.Node, corev1.EventTypeWarning, ReasonStopped,
		"policy %s: someone uncordoned the node while it was %s; nodewarden lets go and takes it again only after a condition transitions",
		v.holder, v.state)
	return nd
}

// claim finds the policy that may take a free node. The node waits for that
// one policy even if it defers, so policies never fight over a node.
func (d *decider) claim(i int, v *nodeView) NodeDecision {
	nd := NodeDecision{Node: v.node.Name, Action: ActionNone}
	for _, p := range d.claimers {
		e, ok := v.evals[p.name]
		if !ok {
			continue
		}
		if t := e.eligible(v.humanUncordoned); t != nil {
			nd.Policy, nd.Trigger, nd.DryRun = p.name, t, p.dryRun
			if start := p.startAt(t); start.After(d.now) && !p.circuitOpen {
				// The Waiting taint is a take too.
				reason, urgent := d.holdBack(p, nd.Node, t, true)
				if reason != "" {
					nd.Action, nd.Why = ActionDefer, p.whyHeldBack(reason, "taking the node")
					p.deferred++
					return nd
				}
				if urgent {
					d.windowOverridden(p, nd.Node, t, "the node is taken")
				}
				return d.wait(nd, v, p, *t, start)
			}
			nd.Action = ActionDefer // until the budget says otherwise
			p.candidates = append(p.candidates, candidate{index: i, node: v.node, trigger: *t})
			return nd
		}
	}
	nd.Why = whyUntouched(v)
	return nd
}

// wait holds a node whose deadline is further away than startBefore: it
// keeps running its pods, new ones prefer other nodes.
func (d *decider) wait(nd NodeDecision, v *nodeView, p *policy, t Trigger, start time.Time) NodeDecision {
	nd.Action = ActionWait
	nd.Why = "the deadline is more than drain.startBefore away; cordon and drain start at " + formatTime(start)
	nd.Patch = WaitPatch(v.node, p.spec, t, d.now)
	d.wakeAt(start)
	d.nodeEvent(p, nd.Node, corev1.EventTypeNormal, ReasonWaiting,
		"policy %s: %s; tainted %s:PreferNoSchedule so new pods prefer other nodes; cordon and drain start at %s",
		p.name, describeTrigger(&t), v1alpha1.TaintImpendingDisruption, formatTime(start))
	d.lastEvent().Trigger = &t
	return nd
}

func whyUntouched(v *nodeView) string {
	if len(v.evals) == 0 {
		return "no valid policy selects the node"
	}
	var pending time.Time
	for _, e := range v.evals {
		if e.holds() {
			return "someone uncordoned the node while it was held; waiting for a condition to transition after " + formatTime(v.humanUncordoned)
		}
		pending = earliest(pending, e.pendingUntil)
	}
	if !pending.IsZero() {
		return "a condition has held for less than its for: duration, until " + formatTime(pending)
	}
	return "no condition holds"
}

// takeWithinBudget takes the policy's candidates while it has free slots:
// handovers first (the node is out of service already), then in deadline
// order. A candidate whose deadline is drain.timeout away or closer is taken
// even without a slot: waiting would let the deadline pass undrained.
func (d *decider) takeWithinBudget(p *policy) {
	sort.SliceStable(p.candidates, func(i, j int) bool {
		a, b := p.candidates[i], p.candidates[j]
		switch {
		case a.handover != b.handover:
			return a.handover
		case before(a.trigger, b.trigger) || before(b.trigger, a.trigger):
			return before(a.trigger, b.trigger)
		}
		return a.node.Name < b.node.Name
	})
	for _, c := range p.candidates {
		nd := &d.plan.Nodes[c.index]
		urgent := p.urgentAt(c.trigger)
		if p.circuitOpen {
			// One policy Event on the transition says it all; an Event per
			// node per pass would flood a cluster-wide incident.
			if !c.handover {
				nd.Why = fmt.Sprintf("the circuit is open: %d of %d selected nodes are triggered, maxUnhealthy allows %d", p.triggered, p.selected, p.maxUnhealthy)
				p.deferred++
			}
			continue
		}
		// The pause and the windows come before the budget: a node they
		// hold back must not take a slot.
		heldBack, overridden := d.holdBack(p, nd.Node, &c.trigger, true)
		if heldBack != "" {
			if !c.handover {
				nd.Why = p.whyHeldBack(heldBack, "taking the node")
				p.deferred++
			}
			continue
		}
		c.windowOverridden = overridden
		switch {
		case p.held+p.started < p.maxConcurrent:
			d.take(p, c, nd, "")
		case !urgent.IsZero() && !d.now.Before(urgent):
			d.take(p, c, nd, fmt.Sprintf("taken beyond maxConcurrent (%d): the deadline %s is less than drain.timeout (%s) away",
				p.maxConcurrent, formatTime(c.trigger.Deadline), p.drainTimeout))
		case c.handover:
			// The holder keeps it meanwhile: a release would put it back
			// in service for a pass, only to be cordoned again.
		default:
			d.wakeAt(urgent)
			nd.Why = fmt.Sprintf("the policy already holds %d nodes, maxConcurrent allows %d", p.held+p.started, p.maxConcurrent)
			p.deferred++
			d.nodeEvent(p, nd.Node, corev1.EventTypeNormal, ReasonDeferred,
				"policy %s: %s; %s waits its turn", p.name, nd.Why, describeTrigger(&c.trigger))
		}
	}
}

func (d *decider) take(p *policy, c candidate, nd *NodeDecision, overBudget string) {
	p.started++
	if c.windowOverridden {
		d.windowOverridden(p, nd.Node, &c.trigger, "the node is taken")
	}
	if c.handover {
		if old := d.byName[nd.Policy]; old != nil {
			old.released++
		}
		from := nd.Policy
		nd.Action, nd.Policy, nd.DryRun = ActionHandover, p.name, p.dryRun
		nd.Trigger = &c.trigger
		nd.Why = "handed over from policy " + from
		nd.Patch = HandoverPatch(c.node, p.spec, c.trigger, d.now)
		nd.CancelDrain = true
		d.nodeEvent(p, nd.Node, corev1.EventTypeNormal, ReasonHandedOver,
			"policy %s takes the node over from policy %s because of %s; it stays cordoned", p.name, from, describeTrigger(&c.trigger))
		d.lastEvent().Trigger = &c.trigger
		return
	}
	nd.Action = ActionCordon
	nd.Why = "a condition holds and the budget allows it"
	nd.Patch = CordonPatch(c.node, p.spec, c.trigger, d.now, overBudget)
	what := "cordoned"
	switch {
	case !p.cordon:
		what = "taken (cordon is false: tainted and annotated only)"
	case c.node.Spec.Unschedulable:
		what = "taken; it was already cordoned by someone else, so nodewarden will never uncordon it"
	}
	if overBudget != "" {
		nd.OverBudget, nd.Why = true, overBudget
		d.nodeEvent(p, nd.Node, corev1.EventTypeWarning, ReasonBudgetYielded, "policy %s: %s", p.name, overBudget)
	}
	d.nodeEvent(p, nd.Node, corev1.EventTypeNormal, ReasonCordoned,
		"policy %s: %s because of %s", p.name, what, describeTrigger(&c.trigger))
	d.lastEvent().Trigger = &c.trigger
}

// summarize fills in the policy statuses and the requeue time.
func (d *decider) summarize(views []nodeView) {
	for _, p := range d.policies {
		d.plan.Policies = append(d.plan.Policies, PolicyStatus{
			Name:          p.name,
			Invalid:       p.invalid,
			DryRun:        p.dryRun,
			Selected:      int32(p.selected),
			Triggered:     int32(p.triggered),
			Remediating:   int32(p.held - p.released + p.started),
			Deferred:      int32(p.deferred),
			MaxConcurrent: int32(p.maxConcurrent),
			MaxUnhealthy:  int32(p.maxUnhealthy),
			CircuitOpen:   p.circuitOpen,
			Paused:        p.paused,
			NextWindow:    p.windows.nextOpen,
			DeferredNodes: deferredList(p.deferredNodes),
			Stuck:         d.stuck(p, views),
			OverBudget:    d.overBudget(p, views),
			Repairing:     d.repairingCount(p, views),
			RecentRepairs: p.recentRepairs(d.now),
		})
	}
	if d.wake.After(d.now) {
		d.plan.RequeueAfter = d.wake.Sub(d.now)
	}
}

// deferredList is the status's deferredNodes: by name, one entry per node,
// at most maxDeferredListed.
func deferredList(in []v1alpha1.DeferredNode) []v1alpha1.DeferredNode {
	out := slices.Clone(in)
	slices.SortStableFunc(out, func(a, b v1alpha1.DeferredNode) int { return strings.Compare(a.Name, b.Name) })
	out = slices.CompactFunc(out, func(a, b v1alpha1.DeferredNode) bool { return a.Name == b.Name })
	return out[:min(len(out), maxDeferredListed)]
}

// maxDeferredListed is the schema's bound on status.deferredNodes.
const maxDeferredListed = 100

func describeTrigger(t *Trigger) string {
	if t == nil {
		return "an unrecorded condition"
	}
	s := t.String()
	if !t.Since.IsZero() {
		s += " since " + formatTime(t.Since)
	}
	if !t.Deadline.IsZero() {
		s += ", not before " + formatTime(t.Deadline)
	}
	return s
}

func (d *decider) nodeEvent(p *policy, node, typ, reason, format string, args ...any) {
	ev := Event{Node: node, Type: typ, Reason: reason, Message: fmt.Sprintf(format, args...)}
	if p != nil {
		ev.Policy = p.name
		ev.Message = dryRunPrefix(p) + ev.Message
	}
	d.plan.Events = append(d.plan.Events, ev)
}

// lastEvent is the Event just added, to fill in its structured fields.
func (d *decider) lastEvent() *Event { return &d.plan.Events[len(d.plan.Events)-1] }

func (d *decider) policyEvent(p *policy, typ, reason, format string, args ...any) {
	d.plan.Events = append(d.plan.Events, Event{
		Policy: p.name, Type: typ, Reason: reason,
		Message: dryRunPrefix(p) + fmt.Sprintf(format, args...),
	})
}

func dryRunPrefix(p *policy) string {
	if p.dryRun {
		return "dry run: "
	}
	return ""
}
