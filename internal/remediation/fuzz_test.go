package remediation

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// FuzzDecide builds a cluster from the fuzzer's bytes, then runs a few
// reconcile passes (applying the patches, letting drains finish, humans
// uncordon, conditions flip, nodes disappear) and checks the invariants
// after every pass.
func FuzzDecide(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add([]byte("a fairly long seed so that every choice gets a byte of its own, twice over"))
	f.Fuzz(func(t *testing.T, data []byte) { simulate(t, &bytes{data: data}) })
}

// TestDecideProperties runs the fuzz body over many pseudo-random clusters,
// so the invariants are checked by a plain `go test` too.
func TestDecideProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 3000; i++ {
		data := make([]byte, 200)
		for j := range data {
			data[j] = byte(rng.UintN(256))
		}
		t.Run(strconv.Itoa(i), func(t *testing.T) { simulate(t, &bytes{data: data}) })
	}
}

// simulate runs reconcile passes the way the controller does, against a
// world that moves: the API server's truth, an informer cache that lags it
// by up to two passes, the reconciler's record of its own writes over that
// cache, writes that fail with 409 when their resourceVersion is stale, and
// a drainer that reports how attempts end.
func simulate(t *testing.T, in *bytes) {
	policies := genPolicies(in)
	w := &world{truth: genNodes(in), reports: map[string]DrainReport{}, running: map[string]int{}}
	history := [][]corev1.Node{w.truth}
	var writes Writes
	now := t0
	seen := 0 // an informer cache lags, but never goes back
	for pass := 0; pass < 6; pass++ {
		seen = max(seen, len(history)-1-in.intn(3))
		cache := history[seen]
		view := writes.View(cache)
		plan := Decide(now, policies, view, Reports{Drains: w.reports})
		checkInvariants(t, policies, view, plan)
		checkHeldBack(t, now, policies, view, plan)
		checkHooks(t, now, policies, view, plan)
		checkDeterministic(t, now, policies, view, w.reports, plan)
		w.carryOut(t, plan, &writes)
		checkBudgets(t, w.truth, plan)
		w.perturb(t, in, now)
		history = append(history, w.truth)
		now = now.Add(time.Duration(in.intn(20)) * time.Minute)
	}
}

// world is what the API server and the drainer hold.
type world struct {
	truth   []corev1.Node
	rv      int
	reports map[string]DrainReport
	running map[string]int // node: attempt being drained
}

// write replaces the truth's node i with n under a new resourceVersion.
func (w *world) write(i int, n corev1.Node) corev1.Node {
	w.rv++
	n.ResourceVersion = strconv.Itoa(1000 + w.rv)
	w.truth = slices.Clone(w.truth)
	w.truth[i] = n
	return n
}

// carryOut sends every patch that is not a dry run as the reconciler does:
// with its resourceVersion precondition, recording what it wrote.
func (w *world) carryOut(t *testing.T, plan Plan, writes *Writes) {
	for _, d := range plan.Nodes {
		if d.CancelDrain {
			delete(w.running, d.Node)
			delete(w.reports, d.Node)
		}
		if d.DryRun {
			continue
		}
		if !d.Patch.IsEmpty() {
			i := slices.IndexFunc(w.truth, func(n corev1.Node) bool { return n.Name == d.Node })
			if i < 0 || w.truth[i].ResourceVersion != d.Patch.ResourceVersion {
				continue // 404 or 409: decided again next pass
			}
			written := w.write(i, apply(t, w.truth[i], d.Patch))
			writes.Record(d.Patch.ResourceVersion, &written)
			if d.Action == ActionRecord {
				delete(w.reports, d.Node)
			}
		}
		if d.Drain != nil {
			if _, reported := w.reports[d.Node]; !reported {
				w.running[d.Node] = d.Drain.Attempt
			}
		}
	}
}

// checkBudgets: a pass that took a node within the budget never leaves the
// policy holding more than maxConcurrent nodes, as the API server sees them,
// however stale the cache it decided on.
func checkBudgets(t *testing.T, truth []corev1.Node, plan Plan) {
	t.Helper()
	for _, s := range plan.Policies {
		tookWithin := false
		for _, d := range plan.Nodes {
			tookWithin = tookWithin || d.Policy == s.Name && !d.DryRun && !d.OverBudget && (d.Action == ActionCordon || d.Action == ActionHandover)
		}
		if !tookWithin {
			continue
		}
		held := 0
		for i := range truth {
			a := truth[i].Annotations
			if a[v1alpha1.AnnotationPolicy] == s.Name && usesSlot(v1alpha1.NodeState(a[v1alpha1.AnnotationState])) {
				held++
			}
		}
		if held > int(s.MaxConcurrent) {
			t.Errorf("policy %s holds %d nodes, maxConcurrent %d", s.Name, held, s.MaxConcurrent)
		}
	}
}

func checkInvariants(t *testing.T, policies []v1alpha1.RemediationPolicy, nodes []corev1.Node, plan Plan) {
	t.Helper()
	before := map[string]*corev1.Node{}
	for i := range nodes {
		before[nodes[i].Name] = &nodes[i]
	}
	if len(plan.Nodes) != len(nodes) {
		t.Fatalf("%d decisions for %d nodes", len(plan.Nodes), len(nodes))
	}
	started := map[string]int{}
	for _, d := range plan.Nodes {
		n := before[d.Node]
		state := v1alpha1.NodeState(n.Annotations[v1alpha1.AnnotationState])
		isHeld := state != ""
		switch d.Action {
		case ActionCordon:
			if !d.OverBudget {
				started[d.Policy]++
			} else if d.Trigger == nil || d.Trigger.Deadline.IsZero() {
				t.Errorf("%s: taken over budget without a deadline", d.Node)
			}
			if isHeld && (state != v1alpha1.StateWaiting || n.Annotations[v1alpha1.AnnotationPolicy] != d.Policy) {
				t.Errorf("%s: cordoned a node that is already held (%s)", d.Node, state)
			}
		case ActionHandover:
			if !d.OverBudget {
				started[d.Policy]++
			}
			if !usesSlot(state) || n.Annotations[v1alpha1.AnnotationPolicy] == d.Policy {
				t.Errorf("%s: handover of a node in state %q held by %q", d.Node, state, n.Annotations[v1alpha1.AnnotationPolicy])
			}
		case ActionWait:
			if isHeld {
				t.Errorf("%s: Wait on a node that is already held", d.Node)
			}
		case ActionStartDrain, ActionHold, ActionRelease, ActionStop, ActionRecord:
			if !isHeld {
				t.Errorf("%s: %s on a node that is not held", d.Node, d.Action)
			}
		}
		if u := d.Patch.Unschedulable; u != nil && !*u && n.Annotations[v1alpha1.AnnotationCordonedBy] != v1alpha1.CordonedByNodewarden {
			t.Errorf("%s: uncordons a node nodewarden did not cordon (%s)", d.Node, d.Action)
		}
		if u := d.Patch.Unschedulable; u != nil && *u && (d.Action != ActionCordon && d.Action != ActionHandover || n.Spec.Unschedulable) {
			t.Errorf("%s: sets unschedulable in %s", d.Node, d.Action)
		}
		checkTaints(t, n, d)
	}
	for _, s := range plan.Policies {
		held := 0
		for i := range nodes {
			if usesSlot(v1alpha1.NodeState(nodes[i].Annotations[v1alpha1.AnnotationState])) && nodes[i].Annotations[v1alpha1.AnnotationPolicy] == s.Name {
				held++
			}
		}
		if started[s.Name] > 0 && held+started[s.Name] > int(s.MaxConcurrent) {
			t.Errorf("policy %s: held %d + started %d > maxConcurrent %d", s.Name, held, started[s.Name], s.MaxConcurrent)
		}
		if s.CircuitOpen {
			for _, d := range plan.Nodes {
				if d.Policy == s.Name && (d.Action == ActionCordon || d.Action == ActionStartDrain || d.Action == ActionWait) {
					t.Errorf("policy %s: %s on %s while the circuit is open", s.Name, d.Action, d.Node)
				}
			}
		}
		if s.Invalid != "" && started[s.Name] > 0 {
			t.Errorf("invalid policy %s started remediation", s.Name)
		}
	}
	if plan.RequeueAfter < 0 {
		t.Errorf("RequeueAfter %v", plan.RequeueAfter)
	}
}

// checkTaints: a cordon only adds taints; anything else only removes the
// ones recorded as nodewarden's.
func checkTaints(t *testing.T, n *corev1.Node, d NodeDecision) {
	t.Helper()
	if !d.Patch.ReplaceTaints {
		return
	}
	after := map[string]bool{}
	for _, tn := range d.Patch.Taints {
		after[taintID(tn)] = true
	}
	ours := splitList(n.Annotations[v1alpha1.AnnotationAddedTaints])
	for _, tn := range n.Spec.Taints {
		if !after[taintID(tn)] && (d.Action == ActionCordon || !slices.Contains(ours, taintID(tn))) {
			t.Errorf("%s: %s removes taint %s that is not nodewarden's", d.Node, d.Action, taintID(tn))
		}
	}
}

// checkDeterministic: the cache lists objects in any order; the plan must not
// depend on it.
func checkDeterministic(t *testing.T, now time.Time, policies []v1alpha1.RemediationPolicy, nodes []corev1.Node, reports map[string]DrainReport, plan Plan) {
	t.Helper()
	rp := slices.Clone(policies)
	slices.Reverse(rp)
	rn := slices.Clone(nodes)
	slices.Reverse(rn)
	if diff := cmp.Diff(plan, Decide(now, rp, rn, Reports{Drains: reports})); diff != "" {
		t.Errorf("plan depends on input order (-forward +reversed):\n%s", diff)
	}
}

// perturb is the world moving between passes.
func (w *world) perturb(t *testing.T, in *bytes, now time.Time) {
	for node, attempt := range w.running {
		if in.intn(2) == 0 { // the drainer finished this attempt
			w.reports[node] = DrainReport{Attempt: attempt, Succeeded: in.intn(2) == 0, BlockedBy: "pod x/y: still terminating", Terminating: in.intn(2)}
			delete(w.running, node)
		}
	}
	var out []corev1.Node
	for i := range w.truth {
		n := *w.truth[i].DeepCopy()
		switch in.intn(15) {
		case 4: // someone opts the node out, or back in
			if excluded(&n) {
				delete(n.Labels, v1alpha1.LabelExclude)
			} else {
				excludedLabel(&n)
			}
			n = w.write(i, n)
		case 0: // deleted
			delete(w.running, n.Name)
			delete(w.reports, n.Name)
			continue
		case 1: // kubectl uncordon
			n.Spec.Unschedulable = false
			n = w.write(i, n)
		case 5: // a hook's owner adds its hook, or removes every hook
			if hs := append(hooks(&n, v1alpha1.PreDrainHookPrefix), hooks(&n, v1alpha1.PostDrainHookPrefix)...); len(hs) > 0 {
				for _, k := range hs {
					delete(n.Annotations, k)
				}
			} else {
				annotate(in.pick(v1alpha1.PreDrainHookPrefix, v1alpha1.PostDrainHookPrefix)+"backup", "example.com/backup")(&n)
			}
			n = w.write(i, n)
		case 2, 3: // a condition flips
			if len(n.Status.Conditions) > 0 {
				c := &n.Status.Conditions[in.intn(len(n.Status.Conditions))]
				c.Status = corev1.ConditionStatus(in.pick("True", "False", "Unknown"))
				c.LastTransitionTime.Time = now
				n = w.write(i, n)
			}
		}
		out = append(out, n)
	}
	w.truth = out
}

// fuzzWindows are windows whose openness checkHeldBack computes on its
// own: t0 is Monday 17:00 UTC and the passes span less than two hours.
var fuzzWindows = []struct {
	schedule string
	duration time.Duration
	weekday  time.Weekday // -1: daily
	hour     int
	minute   int
}{
	{"0 18 * * *", time.Hour, -1, 18, 0},          // opens an hour in
	{"30 17 * * *", 30 * time.Minute, -1, 17, 30}, // opens and closes within the passes
	{"0 16 * * MON", 2 * time.Hour, time.Monday, 16, 0},
	{"0 2 * * SAT", 4 * time.Hour, time.Saturday, 2, 0}, // never open here
}

// windowOpen is the oracle for fuzzWindows.
func windowOpen(p v1alpha1.RemediationPolicy, now time.Time) bool {
	if len(p.Spec.MaintenanceWindows) == 0 {
		return true
	}
	now = now.UTC()
	for _, mw := range p.Spec.MaintenanceWindows {
		for _, w := range fuzzWindows {
			if w.schedule != mw.Schedule {
				continue
			}
			for days := 0; days < 8; days++ {
				start := time.Date(now.Year(), now.Month(), now.Day()-days, w.hour, w.minute, 0, 0, time.UTC)
				if (w.weekday < 0 || start.Weekday() == w.weekday) && !now.Before(start) && now.Before(start.Add(w.duration)) {
					return true
				}
			}
		}
	}
	return false
}

// checkHeldBack: nothing starts (take, Waiting taint, handover, drain
// attempt, repair step) while the policy is paused, nor outside its
// windows unless the deadline rule applies (then with a WindowOverridden
// Event; never for a repair step); an excluded node is never acted on,
// and one held is released.
func checkHeldBack(t *testing.T, now time.Time, policies []v1alpha1.RemediationPolicy, nodes []corev1.Node, plan Plan) {
	t.Helper()
	byName := map[string]v1alpha1.RemediationPolicy{}
	for _, p := range policies {
		byName[p.Name] = p
	}
	overridden := map[string]bool{}
	for _, e := range plan.Events {
		if e.Reason == ReasonWindowOverridden {
			overridden[e.Node+"/"+e.Policy] = true
		}
	}
	for i, d := range plan.Nodes {
		n := &nodes[i]
		if excluded(n) {
			switch {
			case n.Annotations[v1alpha1.AnnotationState] != "" && d.Action != ActionRelease:
				t.Errorf("%s: excluded and held, but %s, not released", d.Node, d.Action)
			case n.Annotations[v1alpha1.AnnotationState] == "" && d.Action != ActionNone:
				t.Errorf("%s: excluded, but %s", d.Node, d.Action)
			}
		}
		switch d.Action {
		case ActionCordon, ActionWait, ActionHandover, ActionStartDrain, ActionRepair:
		default:
			continue
		}
		p, ok := byName[d.Policy]
		if !ok {
			t.Errorf("%s: %s for policy %q that does not exist", d.Node, d.Action, d.Policy)
			continue
		}
		if p.Spec.Paused {
			t.Errorf("%s: %s while policy %s is paused", d.Node, d.Action, p.Name)
		}
		if windowOpen(p, now) {
			continue
		}
		urgentBy := p.Spec.Drain.Timeout.Duration
		if sb := p.Spec.Drain.StartBefore; sb != nil {
			urgentBy += sb.Duration
		}
		switch {
		case d.Action == ActionRepair:
			t.Errorf("%s: repair step outside policy %s's windows", d.Node, p.Name)
		case d.Trigger == nil || d.Trigger.Deadline.IsZero() || now.Before(d.Trigger.Deadline.Add(-urgentBy)):
			t.Errorf("%s: %s outside policy %s's windows, deadline %v not within %s", d.Node, d.Action, p.Name, d.Trigger.deadline(), urgentBy)
		case !overridden[d.Node+"/"+p.Name]:
			t.Errorf("%s: %s outside policy %s's windows without a WindowOverridden Event", d.Node, d.Action, p.Name)
		}
	}
}

// checkHooks: no drain attempt starts while a pre-drain hook is on the
// node, and no first repair step while a post-drain hook is, unless
// drain.hookTimeout passed since the node's state-since (a HookTimedOut
// Event) or, for the drain, the trigger's deadline is drain.timeout away
// or closer (a HookOverridden Event).
func checkHooks(t *testing.T, now time.Time, policies []v1alpha1.RemediationPolicy, nodes []corev1.Node, plan Plan) {
	t.Helper()
	byName := map[string]v1alpha1.RemediationPolicy{}
	for _, p := range policies {
		byName[p.Name] = p
	}
	events := map[string]bool{}
	for _, e := range plan.Events {
		events[e.Node+"/"+e.Reason] = true
	}
	for i, d := range plan.Nodes {
		n := &nodes[i]
		prefix := v1alpha1.PreDrainHookPrefix
		switch {
		case d.Action == ActionStartDrain:
		case d.Action == ActionRepair && n.Annotations[v1alpha1.AnnotationState] == string(v1alpha1.StateDrained):
			prefix = v1alpha1.PostDrainHookPrefix
		default:
			continue
		}
		if len(hooks(n, prefix)) == 0 {
			continue
		}
		p := byName[d.Policy]
		timeout := defaultHookTimeout
		if h := p.Spec.Drain.HookTimeout; h != nil {
			timeout = h.Duration
		}
		since := annotationTime(n, v1alpha1.AnnotationStateSince)
		timedOut := timeout > 0 && !since.IsZero() && !now.Before(since.Add(timeout))
		urgent := prefix == v1alpha1.PreDrainHookPrefix && d.Trigger != nil && !d.Trigger.Deadline.IsZero() &&
			!now.Before(d.Trigger.Deadline.Add(-p.Spec.Drain.Timeout.Duration))
		switch {
		case timedOut && events[d.Node+"/"+ReasonHookTimedOut]:
		case urgent && events[d.Node+"/"+ReasonHookOverridden]:
		default:
			t.Errorf("%s: %s while hooks %v hold it (since %v, hookTimeout %s, deadline %v)", d.Node, d.Action, hooks(n, prefix), since, timeout, d.Trigger.deadline())
		}
	}
}

var conditionTypes = []string{reboot, "KernelDeadlock", "Ready"}

func genPolicies(in *bytes) []v1alpha1.RemediationPolicy {
	var out []v1alpha1.RemediationPolicy
	for i, name := range []string{"alpha", "beta", "gamma"}[:1+in.intn(3)] {
		p := rp(name)
		switch in.intn(3) {
		case 1:
			selector("pool", "a")(&p)
		case 2:
			selector("pool", "b")(&p)
		}
		p.Spec.Conditions = nil
		for range 1 + in.intn(2) {
			p.Spec.Conditions = append(p.Spec.Conditions, rule(
				in.pick(conditionTypes...),
				corev1.ConditionStatus(in.pick("True", "True", "Unknown", "False")),
				time.Duration(pick(in, 0, 0, 5, 10))*time.Minute))
		}
		p.Spec.MaxConcurrent = in.limit(1, "10%", "34%", "50%", "100%")
		p.Spec.MaxUnhealthy = in.limit(0, "0%", "30%", "50%", "100%")
		p.Spec.DryRun = in.intn(6) == 0
		p.Spec.Drain.Enabled = ptr(in.intn(4) != 0)
		p.Spec.UncordonOnRecovery = ptr(in.intn(4) != 0)
		if in.intn(5) == 0 {
			p.Spec.Cordon = ptr(false)
			p.Spec.Drain.Enabled = ptr(false)
		}
		if in.intn(2) == 0 {
			p.Spec.Taints = []corev1.Taint{{Key: "nodewarden.io/" + name, Effect: corev1.TaintEffectNoSchedule}, {Key: "shared", Effect: corev1.TaintEffectPreferNoSchedule}}
		}
		p.Spec.RecoverFor.Duration = time.Duration(pick(in, 0, 0, 5, 30)) * time.Minute
		if in.intn(3) == 0 {
			p.Spec.Drain.StartBefore = &metav1.Duration{Duration: time.Duration(pick(in, 1, 2, 10)) * time.Hour}
		}
		p.Spec.Drain.MaxAttempts = int32(pick(in, 0, 1, 3))
		if backoff := time.Duration(pick(in, 0, 1, 10)) * time.Minute; backoff > 0 {
			p.Spec.Drain.RetryBackoff = &metav1.Duration{Duration: backoff}
		}
		if in.intn(3) == 0 {
			p.Spec.Drain.ForceAfter = &metav1.Duration{Duration: time.Duration(pick(in, 5, 30)) * time.Minute}
		}
		p.Spec.Drain.OutOfServiceTaint = in.intn(3) == 0
		if in.intn(3) == 0 {
			p.Spec.Annotations = map[string]string{"example.com/by": name}
		}
		if in.intn(4) == 0 {
			circuitWasOpen(&p)
		}
		if in.intn(20) == 0 {
			p.Spec.MaxConcurrent = intstr.FromInt32(0) // invalid
		}
		p.Spec.Paused = in.intn(6) == 0
		for range in.intn(3) {
			w := pick(in, fuzzWindows...)
			p.Spec.MaintenanceWindows = append(p.Spec.MaintenanceWindows, mw(w.schedule, w.duration, "UTC"))
		}
		switch in.intn(3) {
		case 1:
			p.Spec.Drain.HookTimeout = &metav1.Duration{} // wait for ever
		case 2:
			p.Spec.Drain.HookTimeout = &metav1.Duration{Duration: 10 * time.Minute}
		}
		p.Generation = int64(i + 1)
		out = append(out, p)
	}
	return out
}

func genNodes(in *bytes) []corev1.Node {
	var out []corev1.Node
	for i := range in.intn(11) {
		n := node(fmt.Sprintf("n%02d", i))
		if pool := in.pick("", "a", "b"); pool != "" {
			label("pool", pool)(&n)
		}
		for _, typ := range conditionTypes {
			if in.intn(3) == 0 {
				continue
			}
			cond(typ, corev1.ConditionStatus(in.pick("True", "False", "Unknown")),
				time.Duration(pick(in, 0, 1, 7, 120))*time.Minute,
				in.pick("", "x, not before "+soon, "y, not before "+later))(&n)
		}
		if in.intn(3) == 0 {
			holder := in.pick("alpha", "beta", "gamma", "gone")
			held(holder, v1alpha1.NodeState(in.pick("Waiting", "Cordoned", "Draining", "Drained", "DrainFailed", "Weird")))(&n)
			if in.intn(3) == 0 {
				n.Annotations[v1alpha1.AnnotationDrainAttempts] = strconv.Itoa(in.intn(4))
				n.Annotations[v1alpha1.AnnotationDrainStarted] = formatTime(t0.Add(-time.Duration(in.intn(60)) * time.Minute))
			}
			switch in.intn(3) {
			case 0:
				delete(n.Annotations, v1alpha1.AnnotationCordonedBy)
			case 1:
				n.Annotations[v1alpha1.AnnotationCordonedBy] = v1alpha1.CordonedByOther
			}
			if in.intn(2) == 0 {
				taint("nodewarden.io/"+holder, corev1.TaintEffectNoSchedule)(&n)
				n.Annotations[v1alpha1.AnnotationAddedTaints] = "nodewarden.io/" + holder + ":NoSchedule"
			}
		}
		if in.intn(4) == 0 {
			n.Spec.Unschedulable = !n.Spec.Unschedulable
		}
		if in.intn(4) == 0 {
			taint("shared", corev1.TaintEffectPreferNoSchedule)(&n)
		}
		if in.intn(8) == 0 {
			excludedLabel(&n)
		}
		if in.intn(4) == 0 {
			annotate(v1alpha1.PreDrainHookPrefix+"backup", "example.com/backup")(&n)
		}
		if in.intn(4) == 0 {
			annotate(v1alpha1.PostDrainHookPrefix+"snapshot", "")(&n)
		}
		if in.intn(6) == 0 {
			annotate(v1alpha1.AnnotationHumanUncordoned, formatTime(t0.Add(-time.Duration(in.intn(200))*time.Minute)))(&n)
		}
		out = append(out, n)
	}
	return out
}

// bytes hands out the fuzzer's bytes as choices; once they run out every
// choice is the first option.
type bytes struct {
	data []byte
	pos  int
}

func (b *bytes) intn(n int) int {
	if b.pos >= len(b.data) || n <= 0 {
		return 0
	}
	b.pos++
	return int(b.data[b.pos-1]) % n
}

func pick[T any](b *bytes, options ...T) T { return options[b.intn(len(options))] }

func (b *bytes) pick(options ...string) string { return pick(b, options...) }

func (b *bytes) limit(minInt int, percents ...string) intstr.IntOrString {
	if b.intn(2) == 0 {
		return intstr.FromInt32(int32(minInt + b.intn(4)))
	}
	return intstr.FromString(b.pick(percents...))
}
