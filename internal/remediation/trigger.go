package remediation

import (
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/deadline"
)

// evaluation is how one policy's conditions stand on one node.
type evaluation struct {
	// holding lists the conditions that hold (status and for:), best first:
	// the one a policy acts on and orders its queue by.
	holding []Trigger
	// matching: some condition has a rule's status, however briefly. It keeps
	// a held node held, so a condition that flaps within its for: does not
	// release and re-cordon the node.
	matching bool
	// newest is the latest lastTransitionTime among the matching conditions.
	newest time.Time
	// pendingUntil is the earliest moment a for: runs out; zero if none runs.
	pendingUntil time.Time
	// clearSince is, when nothing matches, the latest lastTransitionTime of
	// the rules' conditions: when the node last stopped matching, as far as
	// the conditions tell (zero when none of them is on the node).
	clearSince time.Time
}

func (e evaluation) holds() bool { return len(e.holding) > 0 }

// evaluate checks the rules (any-of) against the node's conditions.
func evaluate(now time.Time, rules []v1alpha1.ConditionRule, n *corev1.Node) evaluation {
	var e evaluation
	for _, r := range rules {
		c := findCondition(n, r.Type)
		if c == nil {
			continue
		}
		if c.Status != ruleStatus(r) || !reasonMatches(r.Reasons, c.Reason) {
			if c.LastTransitionTime.After(e.clearSince) {
				e.clearSince = c.LastTransitionTime.Time
			}
			continue
		}
		since := c.LastTransitionTime.Time
		e.matching = true
		if since.After(e.newest) {
			e.newest = since
		}
		// A condition without lastTransitionTime has held for as long as we
		// can tell: treating it as brand new would make for: wait forever.
		if end := since.Add(r.For.Duration); !since.IsZero() && now.Before(end) {
			e.pendingUntil = earliest(e.pendingUntil, end)
			continue
		}
		e.holding = append(e.holding, Trigger{
			Type:     c.Type,
			Status:   c.Status,
			Since:    since,
			Deadline: deadlineOf(c.Message),
		})
	}
	// Stable, so that among equals the rule listed first wins.
	sort.SliceStable(e.holding, func(i, j int) bool { return before(e.holding[i], e.holding[j]) })
	return e
}

// eligible is the trigger a policy may act on: the best holding one that
// transitioned after a human's uncordon, if there was one.
func (e evaluation) eligible(humanUncordoned time.Time) *Trigger {
	for i := range e.holding {
		if humanUncordoned.IsZero() || e.holding[i].Since.After(humanUncordoned) {
			t := e.holding[i]
			return &t
		}
	}
	return nil
}

// before orders triggers: earliest deadline first, those without a deadline
// last, then the oldest.
func before(a, b Trigger) bool {
	switch {
	case a.Deadline.IsZero() != b.Deadline.IsZero():
		return !a.Deadline.IsZero()
	case !a.Deadline.Equal(b.Deadline):
		return a.Deadline.Before(b.Deadline)
	default:
		return a.Since.Before(b.Since)
	}
}

// deadlineOf is the deadline announced at the end of a condition message
// (the deadline package's format), or zero.
func deadlineOf(message string) time.Time {
	t, _ := deadline.Parse(message)
	return t
}

func ruleStatus(r v1alpha1.ConditionRule) corev1.ConditionStatus {
	if r.Status == "" {
		return corev1.ConditionTrue
	}
	return r.Status
}

func findCondition(n *corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == t {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// triggerFromAnnotations recovers the trigger a held node was taken for.
func triggerFromAnnotations(n *corev1.Node) *Trigger {
	value, ok := n.Annotations[v1alpha1.AnnotationTrigger]
	if !ok {
		return nil
	}
	typ, status, _ := strings.Cut(value, "=")
	t := &Trigger{
		Type:   corev1.NodeConditionType(typ),
		Status: corev1.ConditionStatus(status),
		Since:  annotationTime(n, v1alpha1.AnnotationTriggerSince),
	}
	// The condition's current message wins: a maintenance the cloud moved
	// moves the deadline too. The annotation keeps it once the condition is
	// gone.
	if c := findCondition(n, t.Type); c != nil {
		t.Deadline = deadlineOf(c.Message)
	}
	if t.Deadline.IsZero() {
		t.Deadline = annotationTime(n, v1alpha1.AnnotationDeadline)
	}
	return t
}

// notReady: the kubelet says it is not ready, or has stopped saying anything
// (Unknown): evicted pods on such a node stay Terminating.
func notReady(n *corev1.Node) bool {
	c := findCondition(n, corev1.NodeReady)
	return c != nil && c.Status != corev1.ConditionTrue
}

// triggerMatches: the condition a held node was taken for still has the
// status it was taken for.
func triggerMatches(n *corev1.Node, t *Trigger) bool {
	if t == nil {
		return false
	}
	c := findCondition(n, t.Type)
	return c != nil && c.Status == t.Status
}

// annotationTime reads an RFC3339 annotation; missing or unreadable is zero.
func annotationTime(n *corev1.Node, key string) time.Time {
	t, err := time.Parse(time.RFC3339, n.Annotations[key])
	if err != nil {
		return time.Time{}
	}
	return t
}

// deadline of a trigger that may be nil.
func (t *Trigger) deadline() time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Deadline
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// earliest of two times, where zero means "none".
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
