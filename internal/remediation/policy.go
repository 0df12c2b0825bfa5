package remediation

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// defaultDrainTimeout mirrors the CRD default, for objects built in Go that
// never went through the API server's defaulting.
const (
	defaultDrainTimeout = 15 * time.Minute
	defaultMaxAttempts  = 3
	defaultRetryBackoff = time.Minute
	// maxRetryBackoff caps the doubling: a stuck node is looked at again at
	// least hourly while it has attempts left.
	maxRetryBackoff = time.Hour
)

// policy is a RemediationPolicy with its defaults resolved and its selector
// parsed, plus what Decide counts for it along the way.
type policy struct {
	spec     *v1alpha1.RemediationPolicy
	name     string
	selector labels.Selector
	invalid  string

	cordon, drain, undo, dryRun bool
	drainTimeout                time.Duration
	wasCircuitOpen              bool
	recoverFor                  time.Duration
	// startBefore and forceAfter are zero when absent (act at once, never force).
	startBefore, forceAfter time.Duration
	maxAttempts             int
	retryBackoff            time.Duration
	outOfService            bool
	// hookTimeout: how long drain hooks hold a node; 0 for ever.
	hookTimeout time.Duration

	selected, triggered, held, released int
	maxConcurrent, maxUnhealthy         int
	circuitOpen                         bool
	candidates                          []candidate
	started, deferred                   int

	// repairs are the destructive repair steps counted against
	// maxRepairsPerHour: the status's, and those noted while deciding.
	repairs           []v1alpha1.RepairRecord
	maxRepairsPerHour int
	repairDeferred    int

	// paused and the maintenance windows hold back what starts (takes,
	// drain attempts, repair steps); windows is what they say at now.
	paused        bool
	windowList    []window
	windows       windows
	deferredNodes []v1alpha1.DeferredNode
	// wasOutsideWindow: the nodes the last status listed as waiting for a
	// window, so their Event fires once.
	wasOutsideWindow map[string]bool
	// wasHookHolding: the nodes the last status listed as held by drain
	// hooks, so their HookHolding Event fires once.
	wasHookHolding map[string]bool
}

// compilePolicies returns the policies sorted by name, so that every later
// loop is deterministic whatever order the cache listed them in.
func compilePolicies(in []v1alpha1.RemediationPolicy) []*policy {
	out := make([]*policy, 0, len(in))
	for i := range in {
		out = append(out, compilePolicy(&in[i]))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func compilePolicy(rp *v1alpha1.RemediationPolicy) *policy {
	p := &policy{
		spec:           rp,
		name:           rp.Name,
		cordon:         boolOr(rp.Spec.Cordon, true),
		drain:          boolOr(rp.Spec.Drain.Enabled, true),
		undo:           boolOr(rp.Spec.UncordonOnRecovery, true),
		dryRun:         rp.Spec.DryRun,
		drainTimeout:   rp.Spec.Drain.Timeout.Duration,
		wasCircuitOpen: meta.IsStatusConditionTrue(rp.Status.Conditions, v1alpha1.ConditionCircuitOpen),
	}
	if p.drainTimeout <= 0 {
		p.drainTimeout = defaultDrainTimeout
	}
	p.recoverFor = max(rp.Spec.RecoverFor.Duration, 0)
	p.startBefore = durationOr(rp.Spec.Drain.StartBefore, 0)
	p.forceAfter = durationOr(rp.Spec.Drain.ForceAfter, 0)
	p.maxAttempts = int(rp.Spec.Drain.MaxAttempts)
	if p.maxAttempts <= 0 {
		p.maxAttempts = defaultMaxAttempts
	}
	p.retryBackoff = durationOr(rp.Spec.Drain.RetryBackoff, defaultRetryBackoff)
	p.outOfService = rp.Spec.Drain.OutOfServiceTaint
	p.paused = rp.Spec.Paused
	p.hookTimeout = defaultHookTimeout
	if h := rp.Spec.Drain.HookTimeout; h != nil {
		p.hookTimeout = max(h.Duration, 0) // 0: hooks hold for ever
	}
	p.wasOutsideWindow = map[string]bool{}
	p.wasHookHolding = map[string]bool{}
	for _, n := range rp.Status.DeferredNodes {
		switch n.Reason {
		case v1alpha1.DeferredOutsideMaintenanceWindow:
			p.wasOutsideWindow[n.Name] = true
		case v1alpha1.DeferredHookHolding:
			p.wasHookHolding[n.Name] = true
		}
	}
	p.repairs = slices.Clone(rp.Status.RecentRepairs)
	p.maxRepairsPerHour = defaultMaxRepairsPerHour
	if m := rp.Spec.MaxRepairsPerHour; m != nil && *m >= 0 {
		p.maxRepairsPerHour = int(*m)
	}
	sel, err := metav1.LabelSelectorAsSelector(rp.Spec.NodeSelector)
	if err != nil {
		p.invalid = fmt.Sprintf("invalid nodeSelector: %v", err)
		return p
	}
	if rp.Spec.NodeSelector == nil {
		sel = labels.Everything()
	}
	p.selector = sel
	p.invalid = SpecProblem(&rp.Spec)
	if p.invalid == "" {
		for _, w := range rp.Spec.MaintenanceWindows {
			cw, _ := compileWindow("", w)
			p.windowList = append(p.windowList, cw)
		}
	}
	return p
}

// SpecProblem catches what the CRD schema cannot (or what a policy built
// without the API server skipped): such a policy freezes instead of acting on
// a guess.
func SpecProblem(s *v1alpha1.RemediationPolicySpec) string {
	if len(s.Conditions) == 0 {
		return "conditions is empty"
	}
	if problem := limitProblem("maxConcurrent", s.MaxConcurrent, 1); problem != "" {
		return problem
	}
	if problem := limitProblem("maxUnhealthy", s.MaxUnhealthy, 0); problem != "" {
		return problem
	}
	for k := range s.Annotations {
		if strings.HasPrefix(k, v1alpha1.AnnotationPrefix) {
			return fmt.Sprintf("annotation %q: keys under %s are reserved", k, v1alpha1.AnnotationPrefix)
		}
	}
	for _, t := range s.Taints {
		if problem := taintProblem(t); problem != "" {
			return problem
		}
	}
	if s.Drain.EvictDaemonSetPods && boolOr(s.Cordon, true) {
		return "drain.evictDaemonSetPods with a cordon can never finish: DaemonSet pods tolerate the cordon and come straight back"
	}
	if problem := windowsProblem(s.MaintenanceWindows); problem != "" {
		return problem
	}
	if problem := repairProblem("repair", s.Repair); problem != "" {
		return problem
	}
	for i, r := range s.Conditions {
		if problem := repairProblem(fmt.Sprintf("conditions[%d].repair", i), r.Repair); problem != "" {
			return problem
		}
	}
	return ""
}

// repairProblem checks a ladder as the CRD schema does.
func repairProblem(field string, r *v1alpha1.RepairSpec) string {
	if r == nil {
		return ""
	}
	if len(r.Steps) == 0 {
		return field + ".steps is empty"
	}
	for i, st := range r.Steps {
		switch st.Action {
		case v1alpha1.RepairWait, v1alpha1.RepairDeleteNode, v1alpha1.RepairClusterAPI, v1alpha1.RepairWebhook:
		default:
			return fmt.Sprintf("%s.steps[%d].action %q is not Wait, DeleteNode, ClusterAPI or Webhook", field, i, st.Action)
		}
		if (st.Action == v1alpha1.RepairWebhook) != (st.Webhook != nil) {
			return fmt.Sprintf("%s.steps[%d].webhook must be set when action is Webhook, and only then", field, i)
		}
		if st.After.Duration < 0 {
			return fmt.Sprintf("%s.steps[%d].after is negative", field, i)
		}
	}
	return ""
}

// limitProblem accepts a whole number >= min, or a percentage from min% to
// 100%.
func limitProblem(field string, v intstr.IntOrString, min int) string {
	if v.Type == intstr.Int {
		if int(v.IntVal) < min {
			return fmt.Sprintf("%s must be at least %d", field, min)
		}
		return ""
	}
	pct, err := strconv.Atoi(strings.TrimSuffix(v.StrVal, "%"))
	if err != nil || !strings.HasSuffix(v.StrVal, "%") || pct < min || pct > 100 {
		return fmt.Sprintf("%s must be a whole number or a percentage from %d%% to 100%%, not %q", field, min, v.StrVal)
	}
	return ""
}

// taintProblem checks what the CRD only checks for the effect: a bad key or
// value would otherwise surface as a failed Node patch in the middle of a
// remediation.
func taintProblem(t corev1.Taint) string {
	if errs := validation.IsQualifiedName(t.Key); len(errs) > 0 {
		return fmt.Sprintf("invalid taint key %q: %s", t.Key, strings.Join(errs, "; "))
	}
	if errs := validation.IsValidLabelValue(t.Value); len(errs) > 0 {
		return fmt.Sprintf("invalid taint value %q: %s", t.Value, strings.Join(errs, "; "))
	}
	switch t.Effect {
	case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule:
		return ""
	case corev1.TaintEffectNoExecute:
		// The taint manager would evict every pod without asking its
		// PodDisruptionBudget: the drain is what evicts, safely.
		return fmt.Sprintf("taint %q: effect NoExecute bypasses PodDisruptionBudgets; use NoSchedule and let the drain evict", t.Key)
	}
	return fmt.Sprintf("invalid taint effect %q", t.Effect)
}

// resolveLimits turns maxConcurrent and maxUnhealthy into node counts once
// the selected nodes are known.
func (p *policy) resolveLimits() {
	if p.invalid != "" {
		return
	}
	p.maxConcurrent, _ = scaledLimit(p.spec.Spec.MaxConcurrent, p.selected)
	p.maxUnhealthy, _ = scaledLimit(p.spec.Spec.MaxUnhealthy, p.selected)
}

// scaledLimit resolves an int or a percentage of total. A percentage rounds
// down, except that a non-zero percentage always allows one node: "10%" of a
// five-node pool should still remediate, not stall forever.
func scaledLimit(v intstr.IntOrString, total int) (int, error) {
	n, err := intstr.GetScaledValueFromIntOrPercent(&v, total, false)
	if err != nil {
		return 0, err
	}
	if v.Type == intstr.String && n == 0 && percentAboveZero(v.StrVal) {
		return 1, nil
	}
	return n, nil
}

func percentAboveZero(s string) bool {
	return strings.TrimLeft(strings.TrimSuffix(s, "%"), "0") != ""
}

// selects: the policy's nodeSelector matches the node, and the node is not
// opted out of every policy (nodewarden.io/exclude=true).
func (p *policy) selects(n *corev1.Node) bool {
	return p.selector != nil && !excluded(n) && p.selector.Matches(labels.Set(n.Labels))
}

// excluded: the node carries nodewarden.io/exclude=true.
func excluded(n *corev1.Node) bool { return n.Labels[v1alpha1.LabelExclude] == "true" }

func durationOr(d *metav1.Duration, def time.Duration) time.Duration {
	if d == nil || d.Duration <= 0 {
		return def
	}
	return d.Duration
}

// usesSlot: every held state but Waiting counts against maxConcurrent, the
// node being out of service (cordoned) or about to be.
func usesSlot(s v1alpha1.NodeState) bool { return s != "" && s != v1alpha1.StateWaiting }

// retryAt is when a drain that failed at failedAt, after attempts tries,
// is tried again: retryBackoff doubled per earlier failure, capped, and
// never later than the deadline of t, the trigger the drain is for.
func (p *policy) retryAt(failedAt time.Time, attempts int, t *Trigger) time.Time {
	backoff := p.retryBackoff
	for i := 1; i < attempts && backoff < maxRetryBackoff; i++ {
		backoff *= 2
	}
	retry := failedAt.Add(min(backoff, maxRetryBackoff))
	if dl := t.deadline(); !dl.IsZero() && dl.Before(retry) {
		return dl
	}
	return retry
}

// startAt is when a node triggered by t is cordoned: drain.startBefore
// ahead of its deadline; zero (at once) without either.
func (p *policy) startAt(t *Trigger) time.Time {
	if p.startBefore == 0 || t.deadline().IsZero() {
		return time.Time{}
	}
	return t.Deadline.Add(-p.startBefore)
}

// urgentAt is when a node triggered by t must be taken whatever the budget,
// to have drain.timeout before its deadline; zero without a deadline.
func (p *policy) urgentAt(t Trigger) time.Time {
	if t.Deadline.IsZero() {
		return time.Time{}
	}
	return t.Deadline.Add(-p.drainTimeout)
}

// forceAt is when drain.forceAfter escalates the node's drain; zero when the
// policy does not force, no drain started yet, or the one forced attempt
// was made.
func (p *policy) forceAt(n *corev1.Node) time.Time {
	started := annotationTime(n, v1alpha1.AnnotationDrainStarted)
	if p.forceAfter == 0 || started.IsZero() || forced(n) {
		return time.Time{}
	}
	return started.Add(p.forceAfter)
}

// forced: the node's drain made its forced attempt; later ones force too.
func forced(n *corev1.Node) bool { return n.Annotations[v1alpha1.AnnotationDrainForced] != "" }

func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}
