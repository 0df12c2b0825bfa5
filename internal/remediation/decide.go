package remediation

import (
	"fmt"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// Decide looks at every policy and every node as they are at now and returns
// what to do. It reads its inputs and never modifies them. The package doc
// lists the rules.
func Decide(now time.Time, policies []v1alpha1.RemediationPolicy, nodes []corev1.Node) Plan {
	d := newDecider(now, policies)
	views := d.observe(nodes)
	d.tripCircuits()
	for i := range views {
		d.plan.Nodes = append(d.plan.Nodes, d.decideNode(i, &views[i]))
	}
	for _, p := range d.policies {
		d.takeWithinBudget(p)
	}
	d.summarize()
	return d.plan
}

type decider struct {
	now      time.Time
	policies []*policy // by name
	claimers []*policy // the order in which policies claim free nodes
	byName   map[string]*policy
	pending  time.Time // earliest for: expiry
	plan     Plan
}

// nodeView is one node with what Decide needs to know about it.
type nodeView struct {
	node            *corev1.Node
	state           v1alpha1.NodeState // empty: not held
	holder          string
	evals           map[string]evaluation // by policy, for valid policies selecting the node
	humanUncordoned time.Time
}

// candidate is a free node a policy wants, waiting for the budget.
type candidate struct {
	index   int // into plan.Nodes
	node    *corev1.Node
	trigger Trigger
}

func newDecider(now time.Time, in []v1alpha1.RemediationPolicy) *decider {
	d := &decider{now: now, policies: compilePolicies(in), byName: map[string]*policy{}}
	for _, p := range d.policies {
		d.byName[p.name] = p
	}
	// Real policies claim before dry-run ones, so trying a policy out in
	// dry-run never keeps a real one from acting.
	d.claimers = append([]*policy{}, d.policies...)
	sort.SliceStable(d.claimers, func(i, j int) bool { return !d.claimers[i].dryRun && d.claimers[j].dryRun })
	return d
}

// observe evaluates every policy on every node and counts, per policy, the
// nodes it selects, that are triggered, and that it holds.
func (d *decider) observe(nodes []corev1.Node) []nodeView {
	views := make([]nodeView, 0, len(nodes))
	for i := range nodes {
		views = append(views, d.observeNode(&nodes[i]))
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
	if p := d.byName[v.holder]; p != nil && v.state != "" {
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
		if v.state == "" && !e.pendingUntil.IsZero() {
			d.pending = earliest(d.pending, e.pendingUntil)
		}
	}
	return v
}

func (v *nodeView) heldBy(p *policy) bool { return v.state != "" && v.holder == p.name }

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
		return d.decideHeld(v)
	}
	return d.claim(i, v)
}

// decideHeld moves a node the policy already holds along the state machine.
func (d *decider) decideHeld(v *nodeView) NodeDecision {
	n := v.node
	nd := NodeDecision{Node: n.Name, Policy: v.holder, State: v.state, Trigger: triggerFromAnnotations(n)}
	p := d.byName[v.holder]
	if p == nil {
		// The policy's settings are gone with it; the annotations say what
		// was ours, so undo exactly that.
		return d.release(nd, v, nil, true, fmt.Sprintf("policy %q no longer exists", v.holder))
	}
	nd.DryRun = p.dryRun
	e := v.evals[p.name]
	switch {
	case p.invalid != "":
		return hold(nd, "policy is invalid ("+p.invalid+"); the node stays as it is")
	case !p.selects(n):
		return d.release(nd, v, p, p.undo, "the policy no longer selects the node")
	case !e.matching:
		return d.release(nd, v, p, p.undo, "no condition of the policy holds any more")
	case humanUncordoned(n):
		return d.stop(nd, v, p, e)
	case v.state == v1alpha1.StateCordoned && p.drain && !p.circuitOpen:
		return d.startDrain(nd, v, p)
	}
	return d.holdInState(nd, v, p)
}

// humanUncordoned: nodewarden sets the cordon and cordoned-by in one patch
// and clears them in one patch, so a held node with cordoned-by that is
// schedulable was uncordoned by someone else.
func humanUncordoned(n *corev1.Node) bool {
	_, cordonRecorded := n.Annotations[v1alpha1.AnnotationCordonedBy]
	return cordonRecorded && !n.Spec.Unschedulable
}

func (d *decider) holdInState(nd NodeDecision, v *nodeView, p *policy) NodeDecision {
	switch v.state {
	case v1alpha1.StateCordoned:
		if p.circuitOpen {
			return hold(nd, "the circuit is open; the drain does not start")
		}
		return hold(nd, "drain is disabled; the node stays cordoned until it recovers")
	case v1alpha1.StateDraining:
		nd.DrainDeadline = d.drainDeadline(v.node, p)
		return hold(nd, "the drain is in progress")
	case v1alpha1.StateDrained:
		return hold(nd, "drained; waiting for the node to recover")
	case v1alpha1.StateDrainFailed:
		return hold(nd, "the drain failed; the node stays cordoned until it recovers")
	}
	return hold(nd, fmt.Sprintf("unknown state %q; the node stays as it is until it recovers", v.state))
}

func hold(nd NodeDecision, why string) NodeDecision {
	nd.Action, nd.Why = ActionHold, why
	return nd
}

// drainDeadline keeps the deadline of a drain that started before a restart.
func (d *decider) drainDeadline(n *corev1.Node, p *policy) time.Time {
	since := annotationTime(n, v1alpha1.AnnotationStateSince)
	if since.IsZero() {
		since = d.now
	}
	return since.Add(p.drainTimeout)
}

func (d *decider) startDrain(nd NodeDecision, v *nodeView, p *policy) NodeDecision {
	nd.Action = ActionStartDrain
	nd.Why = "the node is cordoned and its condition still holds"
	nd.Patch = StatePatch(v.node, v1alpha1.StateDraining, d.now)
	nd.DrainDeadline = d.now.Add(p.drainTimeout)
	d.nodeEvent(p, nd.Node, corev1.EventTypeNormal, ReasonDrainStarted,
		"policy %s: draining (timeout %s) because of %s", p.name, p.drainTimeout, describeTrigger(nd.Trigger))
	return nd
}

func (d *decider) release(nd NodeDecision, v *nodeView, p *policy, undo bool, why string) NodeDecision {
	nd.Action, nd.Why = ActionRelease, why
	nd.Patch = ReleasePatch(v.node, undo)
	if p != nil {
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
	p.released++
	d.nodeEvent(p, nd.Node, corev1.EventTypeWarning, ReasonStopped,
		"policy %s: someone uncordoned the node while it was %s; nodewarden lets go and takes it again only after a condition transitions",
		p.name, v.state)
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
			nd.Action = ActionDefer // until the budget says otherwise
			p.candidates = append(p.candidates, candidate{index: i, node: v.node, trigger: *t})
			return nd
		}
	}
	nd.Why = whyUntouched(v)
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

// takeWithinBudget takes the policy's candidates in deadline order while it
// has free slots, and defers the rest.
func (d *decider) takeWithinBudget(p *policy) {
	sort.SliceStable(p.candidates, func(i, j int) bool {
		a, b := p.candidates[i], p.candidates[j]
		if before(a.trigger, b.trigger) || before(b.trigger, a.trigger) {
			return before(a.trigger, b.trigger)
		}
		return a.node.Name < b.node.Name
	})
	free := p.maxConcurrent - p.held
	for i, c := range p.candidates {
		nd := &d.plan.Nodes[c.index]
		switch {
		case p.circuitOpen:
			// One policy Event on the transition says it all; an Event per
			// node per pass would flood a cluster-wide incident.
			nd.Why = fmt.Sprintf("the circuit is open: %d of %d selected nodes are triggered, maxUnhealthy allows %d", p.triggered, p.selected, p.maxUnhealthy)
			p.deferred++
		case i < free:
			d.take(p, c, nd)
		default:
			nd.Why = fmt.Sprintf("the policy already holds %d nodes, maxConcurrent allows %d", p.held+p.started, p.maxConcurrent)
			p.deferred++
			d.nodeEvent(p, nd.Node, corev1.EventTypeNormal, ReasonDeferred,
				"policy %s: %s; %s waits its turn", p.name, nd.Why, describeTrigger(&c.trigger))
		}
	}
}

func (d *decider) take(p *policy, c candidate, nd *NodeDecision) {
	nd.Action = ActionCordon
	nd.Why = "a condition holds and the budget allows it"
	nd.Patch = CordonPatch(c.node, p.spec, c.trigger, d.now)
	p.started++
	what := "cordoned"
	switch {
	case !p.cordon:
		what = "taken (cordon is false: tainted and annotated only)"
	case c.node.Spec.Unschedulable:
		what = "taken; it was already cordoned by someone else, so nodewarden will never uncordon it"
	}
	d.nodeEvent(p, nd.Node, corev1.EventTypeNormal, ReasonCordoned,
		"policy %s: %s because of %s", p.name, what, describeTrigger(&c.trigger))
}

// summarize fills in the policy statuses and the requeue time.
func (d *decider) summarize() {
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
		})
	}
	if d.pending.After(d.now) {
		d.plan.RequeueAfter = d.pending.Sub(d.now)
	}
}

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
