package npd

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/internal/agent/condition"
	"github.com/nodewarden/nodewarden/internal/agent/nodeevent"
)

// condState is a monitor's current view of one of its conditions.
type condState struct {
	def     *Condition
	status  corev1.ConditionStatus
	reason  string
	message string
	// since is when the status last changed: the log entry's time for log
	// monitors, the run's time for plugins.
	since time.Time
}

// conditions is a monitor's conditions, in file order.
type conditions []condState

func newConditions(c *Config, now time.Time) conditions {
	out := make(conditions, len(c.Conditions))
	for i := range c.Conditions {
		out[i] = condState{def: &c.Conditions[i]}
		out[i].reset(now)
	}
	return out
}

// reset sets the condition to its default: False, with the default reason and message.
func (s *condState) reset(now time.Time) {
	s.status = corev1.ConditionFalse
	s.reason = s.def.Reason
	s.message = s.def.Message
	s.since = now
}

func (cs conditions) get(t string) *condState {
	for i := range cs {
		if cs[i].def.Type == t {
			return &cs[i]
		}
	}
	return nil
}

func (cs conditions) wants() []condition.Want {
	out := make([]condition.Want, len(cs))
	for i, s := range cs {
		out[i] = condition.Want{Type: corev1.NodeConditionType(s.def.Type), Status: s.status, Reason: s.reason, Message: s.message}
	}
	return out
}

// problem is an Event a monitor reports, before it becomes a nodeevent.Event.
type problem struct {
	// kind tells a temporary rule's Event ("temporary") from a condition
	// change ("condition/<type>/<status>"); part of the Event's key.
	kind    string
	warning bool
	reason  string
	message string
	time    time.Time
	// episode, if set, replaces time and message in the key: one Event per
	// episode of a problem (custom plugins, which re-report every run).
	episode string
	// counts tells whether the problem counts in problem_counter: NPD
	// counts the Events of temporary rules and of conditions becoming True.
	counts bool
}

// conditionChange is NPD's Event for a condition that changed.
func conditionChange(s *condState, at time.Time) problem {
	return problem{
		kind:    fmt.Sprintf("condition/%s/%s", s.def.Type, s.status),
		warning: s.status == corev1.ConditionTrue,
		reason:  s.reason,
		message: fmt.Sprintf("Node condition %s is now: %s, reason: %s, message: %q", s.def.Type, s.status, s.reason, s.message),
		time:    at,
		counts:  s.status == corev1.ConditionTrue,
	}
}

// key is the problem's Event key: the same problem found again (after a
// restart, which replays the log) is the same Event, recorded once.
func (p problem) key(file string) string {
	var detail string
	if p.episode != "" {
		detail = p.episode
	} else {
		sum := sha256.Sum256([]byte(p.message))
		detail = p.time.UTC().Format(time.RFC3339Nano) + "/" + hex.EncodeToString(sum[:8])
	}
	return fmt.Sprintf("npd/%s/%s/%s/%s", file, p.kind, p.reason, detail)
}

func (p problem) event(file string) nodeevent.Event {
	typ := corev1.EventTypeNormal
	if p.warning {
		typ = corev1.EventTypeWarning
	}
	return nodeevent.Event{Key: p.key(file), Type: typ, Reason: p.reason, Message: p.message}
}

// logMonitor is NPD's system log monitor without its I/O: log entries in,
// conditions and Events out.
type logMonitor struct {
	cfg   *Config
	buf   *logBuffer
	conds conditions
}

func newLogMonitor(c *Config, now time.Time) *logMonitor {
	return &logMonitor{cfg: c, buf: newLogBuffer(c.BufferSize), conds: newConditions(c, now)}
}

// observe matches e against every rule, as NPD does, and returns the
// problems found and whether a condition changed.
func (m *logMonitor) observe(e logEntry) (found []problem, changed bool) {
	m.buf.push(e)
	setNow := map[string]bool{}
	for i := range m.cfg.Rules {
		r := &m.cfg.Rules[i]
		matched := m.buf.match(r.re)
		if matched == nil {
			continue
		}
		// NPD stamps a status with its first line's time.
		at := matched[0].Time
		msg := joinMessages(matched)
		if r.Type == Temporary {
			found = append(found, problem{kind: "temporary", warning: true, reason: r.Reason, message: msg, time: at, counts: true})
			continue
		}
		s := m.conds.get(r.Condition)
		setNow[r.Condition] = true
		// As NPD: a new status or reason is a change, and takes this
		// message; the same problem again keeps the first message.
		if s.status != corev1.ConditionTrue || s.reason != r.Reason {
			s.status, s.reason, s.message, s.since = corev1.ConditionTrue, r.Reason, msg, at
			found = append(found, conditionChange(s, at))
			changed = true
		}
	}
	// nodewarden's extension: a resolve pattern clears the condition.
	for i := range m.conds {
		s := &m.conds[i]
		if s.def.ResolvePattern == nil || s.status != corev1.ConditionTrue || setNow[s.def.Type] {
			continue
		}
		if matched := m.buf.match(s.def.ResolvePattern); matched != nil {
			s.reset(matched[0].Time)
			found = append(found, conditionChange(s, s.since))
			changed = true
		}
	}
	return found, changed
}

// expire clears the conditions whose resolveAfter has passed by now.
func (m *logMonitor) expire(now time.Time) (found []problem, changed bool) {
	for i := range m.conds {
		s := &m.conds[i]
		if s.def.ResolveAfter <= 0 || s.status != corev1.ConditionTrue {
			continue
		}
		if at := s.since.Add(s.def.ResolveAfter); !now.Before(at) {
			s.reset(at)
			found = append(found, conditionChange(s, at))
			changed = true
		}
	}
	return found, changed
}

// nextExpiry is when expire next has something to do; zero if never.
func (m *logMonitor) nextExpiry() time.Time {
	var next time.Time
	for _, s := range m.conds {
		if s.def.ResolveAfter <= 0 || s.status != corev1.ConditionTrue {
			continue
		}
		if at := s.since.Add(s.def.ResolveAfter); next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next
}
