package status

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/remediation"
)

// ReportsNote says what Explain cannot see.
const ReportsNote = "computed from the live policies and nodes with remediation.Decide and no drain or repair reports: " +
	"the progress of a drain or repair step a running controller has not yet written to the node is not seen"

// Explanation is why the controller does or does not act on a node now.
type Explanation struct {
	Node string    `json:"node"`
	Now  time.Time `json:"now"`
	// Action and Why are the node's remediation.NodeDecision.
	Action string `json:"action"`
	Why    string `json:"why"`
	State  string `json:"state,omitempty"`
	Policy string `json:"policy,omitempty"`
	DryRun bool   `json:"dryRun,omitempty"`
	// OverBudget: taken beyond maxConcurrent for its deadline.
	OverBudget bool         `json:"overBudget,omitempty"`
	Trigger    *TriggerInfo `json:"trigger,omitempty"`
	Deadline   *time.Time   `json:"deadline,omitempty"`
	TimeLeft   string       `json:"timeLeft,omitempty"`
	BlockedBy  []string     `json:"blockedBy,omitempty"`
	// HumanUncordoned is when someone uncordoned the node while it was
	// held (nodewarden.io/human-uncordoned).
	HumanUncordoned string `json:"humanUncordoned,omitempty"`
	// Policies are the facts of the policy that holds or wants the node,
	// else of every policy whose nodeSelector selects it.
	Policies []PolicyFacts `json:"policies"`
	Note     string        `json:"note"`
}

// PolicyFacts are what a policy's decision depends on, as Decide counted.
type PolicyFacts struct {
	Name    string `json:"name"`
	Invalid string `json:"invalid,omitempty"`
	DryRun  bool   `json:"dryRun,omitempty"`
	Paused  bool   `json:"paused,omitempty"`
	// BudgetUsed of BudgetAllowed (maxConcurrent) nodes held.
	BudgetUsed    int32 `json:"budgetUsed"`
	BudgetAllowed int32 `json:"budgetAllowed"`
	// Triggered of Selected nodes; the circuit opens above MaxUnhealthy.
	Selected     int32 `json:"selected"`
	Triggered    int32 `json:"triggered"`
	MaxUnhealthy int32 `json:"maxUnhealthy"`
	CircuitOpen  bool  `json:"circuitOpen"`
	// Windows is how many maintenance windows the policy has; WindowOpen
	// whether one is open now, else NextWindow is when the next opens.
	Windows    int        `json:"windows,omitempty"`
	WindowOpen bool       `json:"windowOpen,omitempty"`
	NextWindow *time.Time `json:"nextWindow,omitempty"`
	// Pending are the node's conditions that match a rule but have not
	// yet held for its for: duration.
	Pending []PendingCondition `json:"pending,omitempty"`
}

// PendingCondition is a condition waiting for its rule's for: duration.
type PendingCondition struct {
	Type      string    `json:"type"`
	Status    string    `json:"status"`
	Until     time.Time `json:"until"`
	Remaining string    `json:"remaining"`
}

// Explain runs Decide on the live objects and explains node's decision; ok
// is false when there is no such node.
func Explain(now time.Time, policies []v1alpha1.RemediationPolicy, nodes []corev1.Node, node string) (Explanation, bool) {
	var n *corev1.Node
	for i := range nodes {
		if nodes[i].Name == node {
			n = &nodes[i]
		}
	}
	if n == nil {
		return Explanation{}, false
	}
	plan := remediation.Decide(now, policies, nodes, remediation.Reports{})
	nd, ok := plan.Node(node)
	if !ok {
		return Explanation{}, false
	}
	row := nodeStatus(now, plan, nd, n)
	e := Explanation{
		Node: node, Now: now.UTC(), Action: string(nd.Action), Why: nd.Why,
		State: n.Annotations[v1alpha1.AnnotationState], Policy: row.Policy, DryRun: nd.DryRun,
		OverBudget: nd.OverBudget, Trigger: row.Trigger, Deadline: row.Deadline, TimeLeft: row.TimeLeft,
		BlockedBy:       row.BlockedBy,
		HumanUncordoned: n.Annotations[v1alpha1.AnnotationHumanUncordoned],
		Policies:        []PolicyFacts{},
		Note:            ReportsNote,
	}
	for i := range policies {
		p := &policies[i]
		if row.Policy != "" && p.Name != row.Policy {
			continue
		}
		if row.Policy == "" && !selects(p, n) {
			continue
		}
		ps, _ := policyStatus(plan, p.Name)
		f := PolicyFacts{
			Name: p.Name, Invalid: ps.Invalid, DryRun: p.Spec.DryRun, Paused: p.Spec.Paused,
			BudgetUsed: ps.Remediating, BudgetAllowed: ps.MaxConcurrent,
			Selected: ps.Selected, Triggered: ps.Triggered, MaxUnhealthy: ps.MaxUnhealthy, CircuitOpen: ps.CircuitOpen,
			Windows: len(p.Spec.MaintenanceWindows),
		}
		if f.Windows > 0 && ps.Invalid == "" {
			if ps.NextWindow.IsZero() {
				f.WindowOpen = true
			} else {
				next := ps.NextWindow.UTC()
				f.NextWindow = &next
			}
		}
		f.Pending = pending(now, p, n)
		e.Policies = append(e.Policies, f)
	}
	return e, true
}

// selects: the policy's nodeSelector matches the node, which does not opt
// out with nodewarden.io/exclude.
func selects(p *v1alpha1.RemediationPolicy, n *corev1.Node) bool {
	if n.Labels[v1alpha1.LabelExclude] == "true" {
		return false
	}
	if p.Spec.NodeSelector == nil {
		return true
	}
	s, err := metav1.LabelSelectorAsSelector(p.Spec.NodeSelector)
	return err == nil && s.Matches(labels.Set(n.Labels))
}

// pending lists the node's conditions that match a rule of p and have held
// for less than its for:.
func pending(now time.Time, p *v1alpha1.RemediationPolicy, n *corev1.Node) []PendingCondition {
	var out []PendingCondition
	for _, rule := range p.Spec.Conditions {
		want := rule.Status
		if want == "" {
			want = corev1.ConditionTrue
		}
		for _, c := range n.Status.Conditions {
			if c.Type != rule.Type || c.Status != want || rule.For.Duration <= 0 {
				continue
			}
			until := c.LastTransitionTime.Add(rule.For.Duration)
			if until.After(now) {
				out = append(out, PendingCondition{
					Type: string(c.Type), Status: string(c.Status), Until: until.UTC(),
					Remaining: until.Sub(now).Round(time.Second).String(),
				})
			}
		}
	}
	return out
}
