package status

import (
	"slices"
	"strings"
	"time"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// Episode is one RemediationRecord, as `kubectl nodewarden history` shows it.
type Episode struct {
	Record  string       `json:"record"`
	Node    string       `json:"node"`
	Policy  string       `json:"policy"`
	Trigger *TriggerInfo `json:"trigger,omitempty"`
	Outcome string       `json:"outcome"`
	Started time.Time    `json:"started"`
	Ended   *time.Time   `json:"ended,omitempty"`
	// Duration of the episode, or for how long it has run while Open.
	Duration     string `json:"duration"`
	PodsEvicted  int32  `json:"podsEvicted,omitempty"`
	BlockedBy    string `json:"blockedBy,omitempty"`
	StepCount    int    `json:"stepCount"`
	DroppedSteps int32  `json:"droppedSteps,omitempty"`
	Steps        []Step `json:"steps,omitempty"`
}

// Step is one step of an episode.
type Step struct {
	Time    time.Time `json:"time"`
	Reason  string    `json:"reason"`
	Type    string    `json:"type,omitempty"`
	Message string    `json:"message,omitempty"`
}

// History lists the records (of node, unless it is empty), newest first.
// Steps are filled in for the newest withSteps episodes (all when it is
// negative).
func History(now time.Time, records []v1alpha1.RemediationRecord, node string, withSteps int) []Episode {
	out := []Episode{}
	for _, r := range records {
		s := r.Status
		if node != "" && s.Node != node {
			continue
		}
		e := Episode{
			Record: r.Name, Node: s.Node, Policy: s.Policy, Outcome: string(s.Outcome),
			Started: s.StartedAt.UTC(), PodsEvicted: s.PodsEvicted, BlockedBy: s.BlockedBy,
			StepCount: len(s.Steps), DroppedSteps: s.DroppedSteps,
		}
		if s.Trigger.Type != "" {
			e.Trigger = &TriggerInfo{Type: string(s.Trigger.Type), Status: string(s.Trigger.Status), Reason: s.Trigger.Reason}
		}
		switch {
		case s.EndedAt != nil:
			ended := s.EndedAt.UTC()
			e.Ended = &ended
			e.Duration = s.Duration
			if e.Duration == "" {
				e.Duration = ended.Sub(e.Started).Round(time.Second).String()
			}
		case !e.Started.IsZero():
			e.Duration = now.Sub(e.Started).Round(time.Second).String()
		}
		for _, st := range s.Steps {
			e.Steps = append(e.Steps, Step{Time: st.Time.UTC(), Reason: st.Reason, Type: st.Type, Message: st.Message})
		}
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b Episode) int {
		if c := b.Started.Compare(a.Started); c != 0 {
			return c
		}
		return strings.Compare(a.Record, b.Record)
	})
	for i := range out {
		if withSteps >= 0 && i >= withSteps {
			out[i].Steps = nil
		}
	}
	return out
}
