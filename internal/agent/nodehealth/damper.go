package nodehealth

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/internal/agent/healthcheck"
)

// damper decides which results are published.
type damper struct {
	confirmations int
	state         map[string]*damped
}

type damped struct {
	published healthcheck.Result
	// pending is the status seen in the last runs that differs from the
	// published one, and in how many runs in a row.
	pending corev1.ConditionStatus
	seen    int
}

func newDamper(confirmations int) *damper {
	return &damper{confirmations: max(confirmations, 1), state: map[string]*damped{}}
}

// change is a published result and whether its status changed (an Event).
type change struct {
	result        healthcheck.Result
	statusChanged bool
	first         bool
}

// observe takes one run's results and returns those to publish now.
func (d *damper) observe(results []healthcheck.Result) []change {
	var out []change
	for _, r := range results {
		s, ok := d.state[r.Type]
		switch {
		case !ok:
			d.state[r.Type] = &damped{published: r}
			out = append(out, change{result: r, first: true})
		case r.Status == s.published.Status:
			s.pending, s.seen = "", 0
			if r.Reason != s.published.Reason {
				s.published = r
				out = append(out, change{result: r})
			}
		default:
			if r.Status == s.pending {
				s.seen++
			} else {
				s.pending, s.seen = r.Status, 1
			}
			if s.seen >= d.confirmations {
				s.published, s.pending, s.seen = r, "", 0
				out = append(out, change{result: r, statusChanged: true})
			}
		}
	}
	return out
}
