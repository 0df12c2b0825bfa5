package remediation

import (
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// window is a compiled spec.maintenanceWindows entry.
type window struct {
	schedule cron.Schedule
	duration time.Duration
	loc      *time.Location
}

// maxWindowSteps bounds the walk over activations in the last duration (a
// per-minute schedule over 168h is 10080 of them).
const maxWindowSteps = 20000

// compileWindow parses a window; the string names the field that is wrong.
func compileWindow(field string, w v1alpha1.MaintenanceWindow) (window, string) {
	// ParseStandard would also take "@every 1h" (no fixed start, so no
	// "last activation") and a CRON_TZ= prefix (the zone is timeZone's).
	switch s := strings.TrimSpace(w.Schedule); {
	case s == "":
		return window{}, field + ".schedule is empty"
	case strings.HasPrefix(s, "@every"), strings.HasPrefix(s, "TZ="), strings.HasPrefix(s, "CRON_TZ="):
		return window{}, fmt.Sprintf("%s.schedule %q: use a 5-field cron expression such as \"0 2 * * SAT\" and set the zone in timeZone", field, w.Schedule)
	}
	sched, err := cron.ParseStandard(w.Schedule)
	if err != nil {
		return window{}, fmt.Sprintf("%s.schedule %q: %v", field, w.Schedule, err)
	}
	// Next gives up (zero) after five years without an activation.
	if sched.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return window{}, fmt.Sprintf("%s.schedule %q: never comes (such as February 30)", field, w.Schedule)
	}
	if w.Duration.Duration <= 0 || w.Duration.Duration > 7*24*time.Hour {
		return window{}, fmt.Sprintf("%s.duration %s: must be more than 0s and at most 168h", field, w.Duration.Duration)
	}
	zone := w.TimeZone
	if zone == "" {
		zone = "UTC"
	}
	// "Local" would be the controller's own zone, which no policy author
	// can know.
	loc, err := time.LoadLocation(zone)
	if err != nil || zone == "Local" {
		return window{}, fmt.Sprintf("%s.timeZone %q: not a known IANA time zone", field, w.TimeZone)
	}
	return window{schedule: sched, duration: w.Duration.Duration, loc: loc}, ""
}

// windowsProblem checks spec.maintenanceWindows as SpecProblem reports it.
func windowsProblem(ws []v1alpha1.MaintenanceWindow) string {
	for i, w := range ws {
		if _, problem := compileWindow(fmt.Sprintf("spec.maintenanceWindows[%d]", i), w); problem != "" {
			return problem
		}
	}
	return ""
}

// at says whether the window is open at t: whether it was activated in
// (t-duration, t]. If so, closes is when the last such activation's
// duration ends; otherwise opens is its next activation after t.
func (w window) at(t time.Time) (open bool, opens, closes time.Time) {
	t = t.In(w.loc)
	// Next(x) is the first activation after x, so stepping from t-duration
	// visits exactly the activations that still cover t.
	a := w.schedule.Next(t.Add(-w.duration))
	if a.IsZero() || a.After(t) {
		return false, w.schedule.Next(t), time.Time{}
	}
	for range maxWindowSteps {
		n := w.schedule.Next(a)
		if n.IsZero() || n.After(t) {
			break
		}
		a = n
	}
	return true, time.Time{}, a.Add(w.duration)
}

// windows is what a policy's maintenance windows say at one moment.
type windows struct {
	configured bool
	open       bool
	// nextOpen is when the next window opens (while none is open);
	// closes is when the open ones close (the latest of them).
	nextOpen, closes time.Time
}

func windowsAt(ws []window, now time.Time) windows {
	out := windows{configured: len(ws) > 0}
	for _, w := range ws {
		open, opens, closes := w.at(now)
		if open {
			out.open = true
			out.closes = maxTime(out.closes, closes)
			continue
		}
		out.nextOpen = earliest(out.nextOpen, opens)
	}
	if !out.configured {
		out.open = true
	}
	if out.open {
		out.nextOpen = time.Time{}
	}
	return out
}

// edge is the next moment the windows open or close (zero: never).
func (w windows) edge() time.Time {
	if w.open {
		return w.closes
	}
	return w.nextOpen
}

// holdBack says whether p must not start a voluntary step (take, drain
// attempt, repair step) on node for trigger t now: reason is
// DeferredPaused or DeferredOutsideMaintenanceWindow, "" when it may.
// urgent says the deadline rule lets the step through outside the window
// (deadlineRule: the step is one the rule applies to). It notes the node
// in the policy's deferred list, emits OutsideMaintenanceWindow once per
// node, and wakes the plan when the answer changes.
func (d *decider) holdBack(p *policy, node string, t *Trigger, deadlineRule bool) (reason string, urgent bool) {
	switch {
	case p.paused:
		p.noteDeferred(node, v1alpha1.DeferredPaused)
		return v1alpha1.DeferredPaused, false
	case p.windows.open:
		return "", false
	}
	if deadlineRule {
		if at := p.windowUrgentAt(t); !at.IsZero() {
			if !d.now.Before(at) {
				return "", true
			}
			if at.Before(p.windows.nextOpen) {
				d.wakeAt(at)
			}
		}
	}
	d.wakeAt(p.windows.nextOpen)
	p.noteDeferred(node, v1alpha1.DeferredOutsideMaintenanceWindow)
	if !p.wasOutsideWindow[node] {
		d.nodeEvent(p, node, corev1.EventTypeNormal, v1alpha1.DeferredOutsideMaintenanceWindow,
			"policy %s: no maintenance window is open; the node waits for the next one, at %s", p.name, formatTime(p.windows.nextOpen))
	}
	return v1alpha1.DeferredOutsideMaintenanceWindow, false
}

// windowUrgentAt is when a node triggered by t is taken (and drained)
// outside the windows: drain.timeout plus drain.startBefore before its
// deadline, as the budget rule does; zero without a deadline.
func (p *policy) windowUrgentAt(t *Trigger) time.Time {
	dl := t.deadline()
	if dl.IsZero() {
		return time.Time{}
	}
	return dl.Add(-p.drainTimeout - p.startBefore)
}

// windowOverridden emits the Warning that a step starts outside the
// windows because of the node's deadline.
func (d *decider) windowOverridden(p *policy, node string, t *Trigger, what string) {
	d.nodeEvent(p, node, corev1.EventTypeWarning, ReasonWindowOverridden,
		"policy %s: %s outside the maintenance windows: %s would pass before the next window opens at %s",
		p.name, what, describeTrigger(t), formatTime(p.windows.nextOpen))
}

// whyHeldBack is the sentence for a step a policy holds back.
func (p *policy) whyHeldBack(reason, what string) string {
	if reason == v1alpha1.DeferredPaused {
		return "the policy is paused: " + what + " does not start"
	}
	return "no maintenance window is open: " + what + " starts at " + formatTime(p.windows.nextOpen)
}

func (p *policy) noteDeferred(node, reason string) {
	p.deferredNodes = append(p.deferredNodes, v1alpha1.DeferredNode{Name: node, Reason: reason})
}
