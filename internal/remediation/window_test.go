package remediation

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

func mw(schedule string, d time.Duration, zone string) v1alpha1.MaintenanceWindow {
	return v1alpha1.MaintenanceWindow{Schedule: schedule, Duration: metav1.Duration{Duration: d}, TimeZone: zone}
}

func withWindows(ws ...v1alpha1.MaintenanceWindow) policyOpt {
	return func(p *v1alpha1.RemediationPolicy) { p.Spec.MaintenanceWindows = ws }
}

func paused(p *v1alpha1.RemediationPolicy) { p.Spec.Paused = true }

func excludedLabel(n *corev1.Node) { label(v1alpha1.LabelExclude, "true")(n) }

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestWindowAt(t *testing.T) {
	tests := []struct {
		name         string
		w            v1alpha1.MaintenanceWindow
		at           string
		open         bool
		opens, close string // RFC3339; "" for zero
	}{
		{"before the first activation of the week", mw("0 2 * * SAT", 4*time.Hour, ""), "2024-01-08T17:00:00Z", false, "2024-01-13T02:00:00Z", ""},
		{"at the activation: open", mw("0 2 * * SAT", 4*time.Hour, ""), "2024-01-13T02:00:00Z", true, "", "2024-01-13T06:00:00Z"},
		{"inside", mw("0 2 * * SAT", 4*time.Hour, "UTC"), "2024-01-13T05:59:59Z", true, "", "2024-01-13T06:00:00Z"},
		{"at the end: closed", mw("0 2 * * SAT", 4*time.Hour, ""), "2024-01-13T06:00:00Z", false, "2024-01-20T02:00:00Z", ""},
		// 02:00 in Berlin is 01:00 UTC in winter and 00:00 UTC in summer.
		{"a zone, winter", mw("0 2 * * SAT", 4*time.Hour, "Europe/Berlin"), "2024-01-13T00:30:00Z", false, "2024-01-13T01:00:00Z", ""},
		{"a zone, winter, inside", mw("0 2 * * SAT", 4*time.Hour, "Europe/Berlin"), "2024-01-13T04:30:00Z", true, "", "2024-01-13T05:00:00Z"},
		{"a zone, summer", mw("0 2 * * SAT", 4*time.Hour, "Europe/Berlin"), "2024-07-13T03:30:00Z", true, "", "2024-07-13T04:00:00Z"},
		// Activations whose durations overlap: open until the last one's ends.
		{"overlapping activations", mw("0 * * * *", 90*time.Minute, ""), "2024-01-08T17:10:00Z", true, "", "2024-01-08T18:30:00Z"},
		{"a window that spans midnight", mw("0 22 * * *", 4*time.Hour, ""), "2024-01-09T01:00:00Z", true, "", "2024-01-09T02:00:00Z"},
		// A time the clocks skip does not come that day; one they repeat
		// comes at both, so the window lasts an hour longer.
		{"a skipped time (spring forward)", mw("30 2 * * *", time.Hour, "Europe/Berlin"), "2024-03-31T01:15:00Z", false, "2024-04-01T00:30:00Z", ""},
		{"a repeated time (fall back)", mw("30 2 * * *", time.Hour, "Europe/Berlin"), "2024-10-27T01:15:00Z", true, "", "2024-10-27T01:30:00Z"},
		{"a repeated time, again", mw("30 2 * * *", time.Hour, "Europe/Berlin"), "2024-10-27T01:45:00Z", true, "", "2024-10-27T02:30:00Z"},
		{"a whole week", mw("@weekly", 168*time.Hour, ""), "2024-01-10T12:00:00Z", true, "", "2024-01-14T00:00:00Z"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, problem := compileWindow("w", tc.w)
			if problem != "" {
				t.Fatal(problem)
			}
			open, opens, closes := w.at(utc(tc.at))
			if open != tc.open || !sameTime(opens, tc.opens) || !sameTime(closes, tc.close) {
				t.Errorf("at %s: open %v, opens %v, closes %v; want %v, %q, %q", tc.at, open, opens, closes, tc.open, tc.opens, tc.close)
			}
		})
	}
}

func sameTime(t time.Time, want string) bool {
	if want == "" {
		return t.IsZero()
	}
	return t.Equal(utc(want))
}

func TestWindowSpecProblems(t *testing.T) {
	for _, tc := range []struct {
		w    v1alpha1.MaintenanceWindow
		want string // "" for valid
	}{
		{mw("0 2 * * SAT", 4*time.Hour, "Europe/Berlin"), ""},
		{mw("@daily", time.Hour, ""), ""},
		{mw("0 2 * *", 4*time.Hour, ""), "spec.maintenanceWindows[0].schedule \"0 2 * *\": "},
		{mw("0 25 * * *", 4*time.Hour, ""), "spec.maintenanceWindows[0].schedule \"0 25 * * *\": "},
		{mw("0 0 30 2 *", time.Hour, ""), "spec.maintenanceWindows[0].schedule \"0 0 30 2 *\": never comes"},
		{mw("0 0 29 2 *", time.Hour, ""), ""},
		{mw("@every 1h", time.Hour, ""), "spec.maintenanceWindows[0].schedule \"@every 1h\": use a 5-field cron expression"},
		{mw("CRON_TZ=Europe/Berlin 0 2 * * *", time.Hour, ""), "spec.maintenanceWindows[0].schedule \"CRON_TZ=Europe/Berlin 0 2 * * *\": use a 5-field"},
		{mw("0 2 * * *", 0, ""), "spec.maintenanceWindows[0].duration 0s: must be more than 0s and at most 168h"},
		{mw("0 2 * * *", 169*time.Hour, ""), "spec.maintenanceWindows[0].duration 169h0m0s: must be more than 0s and at most 168h"},
		{mw("0 2 * * *", time.Hour, "Mars/Olympus"), "spec.maintenanceWindows[0].timeZone \"Mars/Olympus\": not a known IANA time zone"},
		{mw("0 2 * * *", time.Hour, "Local"), "spec.maintenanceWindows[0].timeZone \"Local\": not a known IANA time zone"},
	} {
		spec := rp("p", withWindows(tc.w)).Spec
		got := SpecProblem(&spec)
		if tc.want == "" && got != "" || !strings.HasPrefix(got, tc.want) {
			t.Errorf("%+v: SpecProblem = %q, want prefix %q", tc.w, got, tc.want)
		}
	}
	spec := rp("p", withWindows(mw("0 2 * * *", time.Hour, ""), mw("0 3 * * *", time.Hour, "Nowhere"))).Spec
	if got := SpecProblem(&spec); !strings.HasPrefix(got, "spec.maintenanceWindows[1].timeZone") {
		t.Errorf("the second window's problem names it: %q", got)
	}
}

const (
	// t0 is Monday 17:00 UTC.
	closedWindow = "0 2 * * SAT"  // Saturday 02:00-06:00
	openWindow   = "0 16 * * MON" // Monday 16:00-18:00: open at t0
	in10m        = "2024-01-08T17:10:00Z"
)

var nextSaturday = utc("2024-01-13T02:00:00Z")

func TestDecideWindowsPauseExclude(t *testing.T) {
	closed := withWindows(mw(closedWindow, 4*time.Hour, ""))
	open := withWindows(mw(closedWindow, 4*time.Hour, ""), mw(openWindow, 2*time.Hour, ""))
	ladder := func(p *v1alpha1.RemediationPolicy) {
		p.Spec.Repair = &v1alpha1.RepairSpec{Steps: []v1alpha1.RepairStep{{Action: v1alpha1.RepairWait}}}
	}
	drainFailed := []nodeOpt{rebootTrue(time.Hour, ""), held("p", v1alpha1.StateDrainFailed), annotate(v1alpha1.AnnotationDrainAttempts, "1")}
	tests := []struct {
		name     string
		policies []v1alpha1.RemediationPolicy
		nodes    []corev1.Node
		want     []string
		events   []string
		requeue  time.Duration
		check    func(t *testing.T, p Plan)
	}{
		{
			name:     "window closed: a free node is deferred until the next window",
			policies: []v1alpha1.RemediationPolicy{rp("p", closed)},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, later))},
			want:     []string{"a: Defer p"},
			events:   []string{"node/a OutsideMaintenanceWindow"},
			// later (Wednesday) comes before the window: the deadline rule
			// takes the node drain.timeout before it.
			requeue: utc(later).Add(-15 * time.Minute).Sub(t0),
			check: func(t *testing.T, p Plan) {
				want := []v1alpha1.DeferredNode{{Name: "a", Reason: v1alpha1.DeferredOutsideMaintenanceWindow}}
				if diff := cmp.Diff(want, p.Policies[0].DeferredNodes); diff != "" {
					t.Errorf("deferredNodes (-want +got):\n%s", diff)
				}
				if !p.Policies[0].NextWindow.Equal(nextSaturday) {
					t.Errorf("NextWindow = %v, want %v", p.Policies[0].NextWindow, nextSaturday)
				}
				if d, _ := p.Node("a"); !strings.Contains(d.Why, "no maintenance window is open") {
					t.Errorf("why: %q", d.Why)
				}
			},
		},
		{
			name:     "window closed, no deadline: requeued at the opening",
			policies: []v1alpha1.RemediationPolicy{rp("p", closed)},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""))},
			want:     []string{"a: Defer p"},
			requeue:  nextSaturday.Sub(t0),
		},
		{
			name: "the OutsideMaintenanceWindow Event fires once per node",
			policies: []v1alpha1.RemediationPolicy{rp("p", closed, maxUnhealthy(intstr.FromString("100%")), func(p *v1alpha1.RemediationPolicy) {
				p.Status.DeferredNodes = []v1alpha1.DeferredNode{{Name: "a", Reason: v1alpha1.DeferredOutsideMaintenanceWindow}}
			})},
			nodes:   []corev1.Node{node("a", rebootTrue(time.Hour, "")), node("b", rebootTrue(time.Hour, ""))},
			want:    []string{"a: Defer p", "b: Defer p"},
			events:  []string{"node/b OutsideMaintenanceWindow"},
			requeue: nextSaturday.Sub(t0),
		},
		{
			name:     "window open: cordoned; requeued at its end",
			policies: []v1alpha1.RemediationPolicy{rp("p", open)},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""))},
			want:     []string{"a: Cordon p"},
			events:   []string{"node/a Cordoned"},
			requeue:  time.Hour,
			check: func(t *testing.T, p Plan) {
				if !p.Policies[0].NextWindow.IsZero() || len(p.Policies[0].DeferredNodes) != 0 {
					t.Errorf("status while open: next %v, deferred %v", p.Policies[0].NextWindow, p.Policies[0].DeferredNodes)
				}
			},
		},
		{
			name:     "window open: the budget still holds",
			policies: []v1alpha1.RemediationPolicy{rp("p", open, maxUnhealthy(intstr.FromString("100%")))},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, "")), node("b", rebootTrue(2*time.Hour, ""))},
			want:     []string{"a: Defer p", "b: Cordon p"},
			events:   []string{"node/b Cordoned", "node/a Deferred"},
			requeue:  time.Hour,
		},
		{
			name:     "deadline before the next window, drain.timeout away: taken anyway, with a Warning",
			policies: []v1alpha1.RemediationPolicy{rp("p", closed)},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, in10m))},
			want:     []string{"a: Cordon p"},
			events:   []string{"node/a WindowOverridden", "node/a Cordoned"},
			requeue:  nextSaturday.Sub(t0),
			check: func(t *testing.T, p Plan) {
				if !strings.Contains(p.Events[0].Message, "2024-01-13T02:00:00Z") || p.Events[0].Type != corev1.EventTypeWarning {
					t.Errorf("WindowOverridden must be a Warning naming the next window: %+v", p.Events[0])
				}
			},
		},
		{
			name:     "deadline rule and budget: over budget, both Warnings",
			policies: []v1alpha1.RemediationPolicy{rp("p", closed, maxUnhealthy(intstr.FromString("100%")))},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, in10m)), node("b", held("p", v1alpha1.StateDrained), rebootTrue(time.Hour, ""))},
			want:     []string{"a: Cordon p", "b: Hold p"},
			events:   []string{"node/a WindowOverridden", "node/a BudgetYielded", "node/a Cordoned"},
			requeue:  nextSaturday.Sub(t0),
		},
		{
			name: "deadline rule with startBefore: the Waiting taint comes timeout+startBefore ahead",
			policies: []v1alpha1.RemediationPolicy{rp("p", closed, func(p *v1alpha1.RemediationPolicy) {
				p.Spec.Drain.StartBefore = &metav1.Duration{Duration: 8*time.Hour + 50*time.Minute}
			})},
			nodes:   []corev1.Node{node("a", rebootTrue(time.Hour, soon))}, // soon - startBefore = 17:10
			want:    []string{"a: Wait p"},
			events:  []string{"node/a WindowOverridden", "node/a WaitingForDeadline"},
			requeue: 10 * time.Minute,
		},
		{
			// Its start is startBefore ahead of the deadline, so the deadline
			// rule (timeout + startBefore) always applies by then.
			name: "window closed: a Waiting node whose start came is cordoned anyway",
			policies: []v1alpha1.RemediationPolicy{rp("p", closed, func(p *v1alpha1.RemediationPolicy) {
				p.Spec.Drain.StartBefore = &metav1.Duration{Duration: 10 * time.Hour}
			})},
			nodes: []corev1.Node{node("a", rebootTrue(time.Hour, soon), held("p", v1alpha1.StateWaiting), func(n *corev1.Node) {
				n.Spec.Unschedulable = false
				delete(n.Annotations, v1alpha1.AnnotationCordonedBy)
			})},
			want:    []string{"a: Cordon p"},
			events:  []string{"node/a WindowOverridden", "node/a Cordoned"},
			requeue: nextSaturday.Sub(t0),
		},
		{
			name:     "window closed: a cordoned node's drain does not start",
			policies: []v1alpha1.RemediationPolicy{rp("p", closed)},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""), held("p", v1alpha1.StateCordoned))},
			want:     []string{"a: Hold p"},
			events:   []string{"node/a OutsideMaintenanceWindow"},
			requeue:  nextSaturday.Sub(t0),
		},
		{
			name:     "window closed: a drain whose deadline cannot wait starts",
			policies: []v1alpha1.RemediationPolicy{rp("p", closed)},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, in10m), held("p", v1alpha1.StateCordoned))},
			want:     []string{"a: StartDrain p"},
			events:   []string{"node/a WindowOverridden", "node/a DrainStarted"},
			requeue:  nextSaturday.Sub(t0),
		},
		{
			name:     "window closed: a running drain keeps running",
			policies: []v1alpha1.RemediationPolicy{rp("p", closed)},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""), held("p", v1alpha1.StateDraining))},
			want:     []string{"a: Hold p"},
			events:   []string{},
			requeue:  nextSaturday.Sub(t0),
			check:    wantDrain("a"),
		},
		{
			name:     "window closed: no drain retry",
			policies: []v1alpha1.RemediationPolicy{rp("p", closed)},
			nodes:    []corev1.Node{node("a", drainFailed...)},
			want:     []string{"a: Hold p"},
			requeue:  nextSaturday.Sub(t0),
		},
		{
			name:     "window closed: no repair step",
			policies: []v1alpha1.RemediationPolicy{rp("p", closed, ladder)},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""), held("p", v1alpha1.StateDrained))},
			want:     []string{"a: Hold p"},
			requeue:  nextSaturday.Sub(t0),
		},
		{
			name:     "window open: the repair step starts",
			policies: []v1alpha1.RemediationPolicy{rp("p", open, ladder)},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""), held("p", v1alpha1.StateDrained))},
			want:     []string{"a: Repair p"},
			requeue:  time.Hour,
		},
		{
			name:     "window closed: recovery releases",
			policies: []v1alpha1.RemediationPolicy{rp("p", closed)},
			nodes:    []corev1.Node{node("a", cond(reboot, corev1.ConditionFalse, time.Minute, ""), held("p", v1alpha1.StateDrained))},
			want:     []string{"a: Release p"},
			events:   []string{"node/a Uncordoned"},
			requeue:  nextSaturday.Sub(t0),
		},
		{
			name:     "window closed: a human uncordon is handled",
			policies: []v1alpha1.RemediationPolicy{rp("p", closed)},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""), held("p", v1alpha1.StateDrained), func(n *corev1.Node) { n.Spec.Unschedulable = false })},
			want:     []string{"a: Stop p"},
			requeue:  nextSaturday.Sub(t0),
		},
		{
			name:     "window closed: a finished drain is recorded",
			policies: []v1alpha1.RemediationPolicy{rp("p", closed)},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""), held("p", v1alpha1.StateDraining))},
			want:     []string{"a: Record p"},
			requeue:  nextSaturday.Sub(t0),
		},
		{
			name:     "paused: no take, and no Event per node",
			policies: []v1alpha1.RemediationPolicy{rp("p", paused)},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, in10m))},
			want:     []string{"a: Defer p"},
			events:   []string{},
			check: func(t *testing.T, p Plan) {
				want := []v1alpha1.DeferredNode{{Name: "a", Reason: v1alpha1.DeferredPaused}}
				if diff := cmp.Diff(want, p.Policies[0].DeferredNodes); diff != "" || !p.Policies[0].Paused {
					t.Errorf("paused %v, deferredNodes (-want +got):\n%s", p.Policies[0].Paused, diff)
				}
			},
		},
		{
			name:     "paused beats an open window",
			policies: []v1alpha1.RemediationPolicy{rp("p", paused, open)},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""))},
			want:     []string{"a: Defer p"},
			requeue:  time.Hour,
		},
		{
			name:     "paused: no Waiting taint",
			policies: []v1alpha1.RemediationPolicy{rp("p", paused, func(p *v1alpha1.RemediationPolicy) { p.Spec.Drain.StartBefore = &metav1.Duration{Duration: time.Hour} })},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, later))},
			want:     []string{"a: Defer p"},
		},
		{
			name:     "paused: no drain starts",
			policies: []v1alpha1.RemediationPolicy{rp("p", paused)},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, in10m), held("p", v1alpha1.StateCordoned))},
			want:     []string{"a: Hold p"},
		},
		{
			name:     "paused: a running drain keeps running",
			policies: []v1alpha1.RemediationPolicy{rp("p", paused)},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""), held("p", v1alpha1.StateDraining))},
			want:     []string{"a: Hold p"},
			check:    wantDrain("a"),
		},
		{
			name:     "paused: no drain retry, no repair step",
			policies: []v1alpha1.RemediationPolicy{rp("p", paused, ladder, maxConcurrent(intstr.FromInt32(2)), maxUnhealthy(intstr.FromInt32(2)))},
			nodes:    []corev1.Node{node("a", drainFailed...), node("b", rebootTrue(time.Hour, ""), held("p", v1alpha1.StateDrained))},
			want:     []string{"a: Hold p", "b: Hold p"},
		},
		{
			name:     "paused: release still happens",
			policies: []v1alpha1.RemediationPolicy{rp("p", paused)},
			nodes:    []corev1.Node{node("a", cond(reboot, corev1.ConditionFalse, time.Minute, ""), held("p", v1alpha1.StateCordoned))},
			want:     []string{"a: Release p"},
			events:   []string{"node/a Uncordoned"},
		},
		{
			name:     "excluded: never taken, not counted",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""), excludedLabel)},
			want:     []string{"a: None"},
			events:   []string{},
			check: func(t *testing.T, p Plan) {
				if s := p.Policies[0]; s.Selected != 0 || s.Triggered != 0 {
					t.Errorf("an excluded node is counted: %d selected, %d triggered", s.Selected, s.Triggered)
				}
			},
		},
		{
			name:     "excluded while held, trigger still holding: released at once",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""), held("p", v1alpha1.StateDraining), excludedLabel)},
			want:     []string{"a: Release p"},
			events:   []string{"node/a Uncordoned"},
			check: func(t *testing.T, p Plan) {
				if d := p.Nodes[0]; !d.CancelDrain || d.Patch.Unschedulable == nil || *d.Patch.Unschedulable {
					t.Errorf("release of an excluded node: %+v", d)
				}
			},
		},
		{
			name:     "excluded while held by a policy that keeps nodes on recovery: left cordoned",
			policies: []v1alpha1.RemediationPolicy{rp("p", func(p *v1alpha1.RemediationPolicy) { p.Spec.UncordonOnRecovery = ptr(false) })},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""), held("p", v1alpha1.StateCordoned), excludedLabel)},
			want:     []string{"a: Release p"},
			events:   []string{"node/a Released"},
		},
		{
			name:     "excluded while held by an invalid or a gone policy: released",
			policies: []v1alpha1.RemediationPolicy{rp("p", maxConcurrent(intstr.FromInt32(0)))},
			nodes: []corev1.Node{
				node("a", rebootTrue(time.Hour, ""), held("p", v1alpha1.StateCordoned), excludedLabel),
				node("b", rebootTrue(time.Hour, ""), held("gone", v1alpha1.StateCordoned), excludedLabel),
			},
			want: []string{"a: Release p", "b: Release gone"},
		},
		{
			name:     "the label must say true",
			policies: []v1alpha1.RemediationPolicy{rp("p")},
			nodes:    []corev1.Node{node("a", rebootTrue(time.Hour, ""), label(v1alpha1.LabelExclude, "false"))},
			want:     []string{"a: Cordon p"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reports := Reports{}
			if strings.Contains(tc.name, "finished drain") {
				reports.Drains = map[string]DrainReport{"a": {Attempt: 1, Succeeded: true}}
			}
			plan := Decide(t0, tc.policies, tc.nodes, reports)
			if diff := cmp.Diff(tc.want, actions(plan)); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
			if tc.events != nil {
				if diff := cmp.Diff(tc.events, reasons(plan), cmpEmpty); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}
			}
			if plan.RequeueAfter != tc.requeue {
				t.Errorf("RequeueAfter = %v, want %v", plan.RequeueAfter, tc.requeue)
			}
			if tc.check != nil {
				tc.check(t, plan)
			}
		})
	}
}

func wantDrain(node string) func(t *testing.T, p Plan) {
	return func(t *testing.T, p Plan) {
		t.Helper()
		if d, _ := p.Node(node); d.Drain == nil || d.CancelDrain {
			t.Errorf("%s: the running drain must go on: drain %+v, cancel %v", node, d.Drain, d.CancelDrain)
		}
	}
}

// TestWindowLifecycle walks a node through a closed window, the opening,
// and the drain within the window.
func TestWindowLifecycle(t *testing.T) {
	c := &cluster{t: t, policies: []v1alpha1.RemediationPolicy{rp("p", withWindows(mw("0 18 * * *", 2*time.Hour, "Europe/Berlin")))}, // 17:00-19:00 UTC in winter
		nodes: []corev1.Node{node("a", rebootTrue(time.Hour, ""))}, reports: map[string]DrainReport{}}
	now := t0.Add(-30 * time.Minute)
	plan := c.pass(now)
	c.want(plan, "a: Defer p")
	if plan.RequeueAfter != 30*time.Minute {
		t.Errorf("requeue %v, want the opening in 30m", plan.RequeueAfter)
	}
	c.want(c.pass(t0), "a: Cordon p")
	c.want(c.pass(t0), "a: StartDrain p")
	// The window closes while the drain runs: it finishes, and is recorded.
	c.reports["a"] = DrainReport{Attempt: 1, Succeeded: true}
	c.want(c.pass(t0.Add(3*time.Hour)), "a: Record p")
	c.node("a").Status.Conditions[0].Status = corev1.ConditionFalse
	c.want(c.pass(t0.Add(4*time.Hour)), "a: Release p")
}

func TestStatusShowsPauseAndNextWindow(t *testing.T) {
	p := rp("p", paused, withWindows(mw(closedWindow, 4*time.Hour, "")))
	plan := Decide(t0, []v1alpha1.RemediationPolicy{p}, []corev1.Node{node("a", rebootTrue(time.Hour, ""))}, Reports{})
	s := Status(&p, plan.Policies[0], t0)
	if s.NextWindow == nil || !s.NextWindow.Time.Equal(nextSaturday) {
		t.Errorf("nextWindow = %v, want %v", s.NextWindow, nextSaturday)
	}
	if diff := cmp.Diff([]v1alpha1.DeferredNode{{Name: "a", Reason: v1alpha1.DeferredPaused}}, s.DeferredNodes); diff != "" {
		t.Errorf("deferredNodes (-want +got):\n%s", diff)
	}
	for _, c := range s.Conditions {
		if c.Type == v1alpha1.ConditionReady && (c.Reason != ReasonPaused || c.Status != metav1.ConditionTrue) {
			t.Errorf("Ready = %s/%s, want True/Paused", c.Status, c.Reason)
		}
	}
}
