// Package status is what `kubectl nodewarden` shows: the nodes nodewarden
// holds or wants (Status), the remediation records (History), and why the
// controller does or does not act on one node (Explain). It only reads and
// renders: the decision is remediation.Decide's, run on the live objects, so
// the plugin never disagrees with the controller about the rules (it may
// lag a running controller's drain and repair progress, which only the
// controller's memory holds until written to the node).
//
// Every function takes now, so that the output is a function of its inputs.
package status

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/remediation"
)

// Blocked-by values for a node the policy wants but does not take now.
const (
	BlockedBudget  = "budget"
	BlockedCircuit = "circuit"
	BlockedWindow  = "window"
	BlockedPaused  = "paused"
)

// StateTriggered is shown for a node a policy wants but does not hold yet.
const StateTriggered = "Triggered"

// NodeStatus is one row of `kubectl nodewarden status`.
type NodeStatus struct {
	Node   string `json:"node"`
	State  string `json:"state"`
	Policy string `json:"policy,omitempty"`
	// Action is what the controller would do now (remediation.Decide).
	Action  string       `json:"action"`
	Trigger *TriggerInfo `json:"trigger,omitempty"`
	// Deadline is the trigger's "not before" time, if it has one.
	Deadline *time.Time `json:"deadline,omitempty"`
	// TimeLeft until Deadline (negative when it passed), e.g. "47h59m0s".
	TimeLeft string `json:"timeLeft,omitempty"`
	// BlockedBy: what keeps the node from its next step: the failed
	// drain's nodewarden.io/blocked-by, or budget, circuit, window, paused.
	BlockedBy []string `json:"blockedBy,omitempty"`
}

// TriggerInfo is the condition that makes a policy act on a node.
type TriggerInfo struct {
	Type   string `json:"type"`
	Status string `json:"status,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func (t *TriggerInfo) String() string {
	if t == nil {
		return ""
	}
	s := t.Type
	if t.Status != "" {
		s += "=" + t.Status
	}
	if t.Reason != "" {
		s += "/" + t.Reason
	}
	return s
}

// Status lists every node with a triggered condition or a nodewarden state,
// by deadline (none last), then name.
func Status(now time.Time, policies []v1alpha1.RemediationPolicy, nodes []corev1.Node) []NodeStatus {
	plan := remediation.Decide(now, policies, nodes, remediation.Reports{})
	byName := map[string]*corev1.Node{}
	for i := range nodes {
		byName[nodes[i].Name] = &nodes[i]
	}
	rows := []NodeStatus{}
	for _, nd := range plan.Nodes {
		n := byName[nd.Node]
		state := n.Annotations[v1alpha1.AnnotationState]
		if nd.Trigger == nil && state == "" {
			continue
		}
		rows = append(rows, nodeStatus(now, plan, nd, n))
	}
	slices.SortStableFunc(rows, func(a, b NodeStatus) int {
		switch {
		case a.Deadline == nil && b.Deadline != nil:
			return 1
		case a.Deadline != nil && b.Deadline == nil:
			return -1
		case a.Deadline != nil && !a.Deadline.Equal(*b.Deadline):
			return a.Deadline.Compare(*b.Deadline)
		}
		return strings.Compare(a.Node, b.Node)
	})
	return rows
}

func nodeStatus(now time.Time, plan remediation.Plan, nd remediation.NodeDecision, n *corev1.Node) NodeStatus {
	r := NodeStatus{Node: nd.Node, State: string(nd.State), Policy: nd.Policy, Action: string(nd.Action)}
	if r.State == "" {
		r.State = n.Annotations[v1alpha1.AnnotationState]
	}
	if r.State == "" {
		r.State = StateTriggered
	}
	if r.Policy == "" {
		r.Policy = n.Annotations[v1alpha1.AnnotationPolicy]
	}
	r.Trigger = triggerOf(nd, n)
	if d := deadlineOf(nd, n); !d.IsZero() {
		d = d.UTC()
		r.Deadline = &d
		r.TimeLeft = d.Sub(now).Round(time.Second).String()
	}
	if b := n.Annotations[v1alpha1.AnnotationBlockedBy]; b != "" {
		r.BlockedBy = append(r.BlockedBy, b)
	}
	if why := heldBack(plan, nd); why != "" {
		r.BlockedBy = append(r.BlockedBy, why)
	}
	return r
}

// triggerOf is the decision's trigger, else the node's trigger annotation,
// with the condition's current reason.
func triggerOf(nd remediation.NodeDecision, n *corev1.Node) *TriggerInfo {
	var t TriggerInfo
	switch {
	case nd.Trigger != nil:
		t.Type, t.Status = string(nd.Trigger.Type), string(nd.Trigger.Status)
	case n.Annotations[v1alpha1.AnnotationTrigger] != "":
		typ, status, _ := strings.Cut(n.Annotations[v1alpha1.AnnotationTrigger], "=")
		t.Type, t.Status = typ, status
	default:
		return nil
	}
	for _, c := range n.Status.Conditions {
		if string(c.Type) == t.Type {
			if string(c.Status) == t.Status {
				t.Reason = c.Reason
			}
			break
		}
	}
	return &t
}

func deadlineOf(nd remediation.NodeDecision, n *corev1.Node) time.Time {
	if nd.Trigger != nil && !nd.Trigger.Deadline.IsZero() {
		return nd.Trigger.Deadline
	}
	if s := n.Annotations[v1alpha1.AnnotationDeadline]; s != "" {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// heldBack says why Decide defers the node, from what it counted for the
// policy: a window or the pause (its deferred nodes), else the circuit or
// the budget.
func heldBack(plan remediation.Plan, nd remediation.NodeDecision) string {
	ps, ok := policyStatus(plan, nd.Policy)
	if !ok {
		return ""
	}
	for _, d := range ps.DeferredNodes {
		if d.Name == nd.Node {
			switch d.Reason {
			case v1alpha1.DeferredOutsideMaintenanceWindow:
				return BlockedWindow
			case v1alpha1.DeferredPaused:
				return BlockedPaused
			}
			return d.Reason
		}
	}
	if nd.Action != remediation.ActionDefer {
		return ""
	}
	if ps.CircuitOpen {
		return BlockedCircuit
	}
	if ps.Paused {
		return BlockedPaused
	}
	return BlockedBudget
}

func policyStatus(plan remediation.Plan, name string) (remediation.PolicyStatus, bool) {
	for _, p := range plan.Policies {
		if p.Name == name {
			return p, true
		}
	}
	return remediation.PolicyStatus{}, false
}

// HumanDuration renders d for people: the two largest units, e.g. 47h59m,
// 3m20s, 45s; a negative d is "-" and the same.
func HumanDuration(d time.Duration) string {
	if d < 0 {
		return "-" + HumanDuration(-d)
	}
	d = d.Round(time.Second)
	switch {
	case d >= 48*time.Hour:
		days := d / (24 * time.Hour)
		return fmt.Sprintf("%dd%dh", days, (d-days*24*time.Hour)/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%dm", d/time.Hour, (d%time.Hour)/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%ds", d/time.Minute, (d%time.Minute)/time.Second)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}
