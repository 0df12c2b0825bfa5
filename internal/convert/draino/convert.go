// Package draino converts a Draino command line into the equivalent
// nodewarden RemediationPolicy (`nodewarden convert draino -- ARGS...`).
//
// It knows every flag of upstream Draino (planetlabs/draino) and of its
// DataDog fork. Each flag given is either converted into a policy field or
// reported in a warning that names it and says why (a flag of the process,
// not needed, or not expressible); nothing is dropped silently, and an
// unknown flag is an error. Where Draino and nodewarden behave differently
// with the converted settings (drain pacing, what blocks a drain, budgets),
// a warning says so too. docs/migrate-draino.md has the flag-by-flag table.
package draino

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// DefaultName is the name of the converted policy unless Options.Name or the
// fork's --config-name says otherwise.
const DefaultName = "draino"

// Draino's defaults (its last upstream release); older releases used
// --max-grace-period=8m and --eviction-headroom=30s.
const (
	drainoMaxGracePeriod   = time.Minute
	drainoEvictionHeadroom = 10 * time.Minute
	drainoDrainBuffer      = 10 * time.Minute
)

// safeToEvictFalse is the annotation Draino always protected pods with,
// unless --ignore-safe-to-evict-annotation.
const safeToEvictFalse = "cluster-autoscaler.kubernetes.io/safe-to-evict=false"

// UnconvertedSelectorKey is the label key of the placeholder requirement put
// in nodeSelector when --node-label-expr cannot be expressed as a label
// selector: no node carries it, so the policy selects nothing until a human
// writes the selector (rather than silently selecting every node).
const UnconvertedSelectorKey = "convert.nodewarden.io/unconverted-node-label-expr"

// Options tune the conversion.
type Options struct {
	// Name of the policy. Empty: the fork's --config-name if given, else
	// DefaultName.
	Name string
}

// Convert returns the RemediationPolicy equivalent to a Draino command line
// (Draino's arguments: flags and node conditions, optionally preceded by the
// program name), and one warning line per thing that could not be converted
// exactly. Each warning starts with the flag or condition it is about.
func Convert(args []string, opts Options) (*v1alpha1.RemediationPolicy, []string, error) {
	cl, err := parseCmdline(args)
	if err != nil {
		return nil, nil, err
	}
	c := &converter{cl: cl, warnings: slices.Clone(cl.warnings), policy: newPolicy()}
	for _, step := range []func() error{
		c.conditions,
		c.nodeSelector,
		c.modes,
		c.drain,
		c.protectedPods,
		c.maxConcurrent,
		c.maxUnhealthy,
		c.replacement,
		c.notes,
		func() error { return c.name(opts.Name) },
		c.validate,
	} {
		if err := step(); err != nil {
			return nil, nil, err
		}
	}
	return c.policy, c.warnings, nil
}

// newPolicy is a policy with every field set that the CRD would default, so
// that the printed YAML shows the complete behaviour, and with the drain
// settings that reproduce Draino's defaults.
func newPolicy() *v1alpha1.RemediationPolicy {
	return &v1alpha1.RemediationPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "RemediationPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: DefaultName},
		Spec: v1alpha1.RemediationPolicySpec{
			Cordon: ptr.To(true),
			Drain: v1alpha1.DrainSpec{
				Enabled:            ptr.To(true),
				Timeout:            metav1.Duration{Duration: drainoMaxGracePeriod + drainoEvictionHeadroom},
				GracePeriodSeconds: ptr.To(int64(drainoMaxGracePeriod.Seconds())),
				EvictEmptyDirPods:  ptr.To(false),
				MaxAttempts:        3,
				RetryBackoff:       &metav1.Duration{Duration: time.Minute},
				// The CRD's defaults, so the output is what the API server stores.
				HonorDisruptionAnnotations: ptr.To(true),
				HookTimeout:                &metav1.Duration{Duration: 30 * time.Minute},
			},
			UncordonOnRecovery: ptr.To(true),
			MaxConcurrent:      intstr.FromInt32(1),
			MaxUnhealthy:       intstr.FromString("50%"),
			MaxRepairsPerHour:  ptr.To(int32(1)),
		},
	}
}

type converter struct {
	cl       *cmdline
	policy   *v1alpha1.RemediationPolicy
	warnings []string
}

func (c *converter) warnf(format string, args ...any) {
	c.warnings = append(c.warnings, fmt.Sprintf(format, args...))
}

func (c *converter) spec() *v1alpha1.RemediationPolicySpec { return &c.policy.Spec }

func (c *converter) drainEnabled() bool { return !c.cl.boolean("skip-drain", false) }

// conditions: the positional arguments (and the fork's --node-conditions).
func (c *converter) conditions() error {
	args := append(slices.Clone(c.cl.positional), c.cl.values["node-conditions"]...)
	if len(args) == 0 {
		return fmt.Errorf("no node conditions: Draino takes them as arguments (Type, Type=Status or Type=Status,Duration), e.g. KernelDeadlock ReadonlyFilesystem=True,10m")
	}
	var rules []v1alpha1.ConditionRule
	for _, a := range args {
		r, warnings, err := parseCondition(a)
		if err != nil {
			return err
		}
		c.warnings = append(c.warnings, warnings...)
		rules = append(rules, r)
	}
	rules, warnings := mergeConditions(rules)
	c.warnings = append(c.warnings, warnings...)
	if len(rules) > maxConditions {
		return fmt.Errorf("%d node conditions: a RemediationPolicy takes at most %d; split them over several policies", len(rules), maxConditions)
	}
	for _, r := range rules {
		if why, ok := legacyConditions[r.Type]; ok {
			c.warnf("condition %s: %s", r.Type, why)
		}
	}
	c.spec().Conditions = rules
	return nil
}

// nodeSelector: --node-label (all of them) or --node-label-expr.
func (c *converter) nodeSelector() error {
	labels, expr := c.cl.values["node-label"], c.cl.last("node-label-expr")
	if len(labels) > 0 && c.cl.has("node-label-expr") {
		return fmt.Errorf("--node-label and --node-label-expr cannot both be set (Draino refused them together too)")
	}
	var reqs []metav1.LabelSelectorRequirement
	if len(labels) > 0 {
		seen := map[string]string{}
		for _, l := range labels {
			k, v, hasValue := strings.Cut(l, "=")
			if !hasValue {
				c.warnf("--node-label=%s: no value (Draino needs key=value: it refused or crashed on this form); read as: the node has label %s, whatever its value", l, k)
			}
			if prev, ok := seen[k]; ok {
				if prev != v {
					return fmt.Errorf("--node-label: label %q is given twice with different values (%q and %q); a node has only one", k, prev, v)
				}
				continue
			}
			seen[k] = v
			op := metav1.LabelSelectorOpIn
			var values []string
			if v == "" {
				// Draino turns key= into "'key' in metadata.labels".
				op = metav1.LabelSelectorOpExists
			} else {
				values = []string{v}
			}
			r, err := requirement(k, op, values)
			if err != nil {
				return fmt.Errorf("--node-label=%s: %w", l, err)
			}
			reqs = append(reqs, *r)
		}
	}
	if strings.TrimSpace(expr) != "" {
		r, err := selectorFromExpr(expr)
		if err != nil {
			c.warnf("--node-label-expr: not expressible as a label selector (%v); nodeSelector is a placeholder (%s) that selects no node: write the selector by hand, or one RemediationPolicy per branch of an ||. The expression was: %s", err, UnconvertedSelectorKey, expr)
			reqs = []metav1.LabelSelectorRequirement{{Key: UnconvertedSelectorKey, Operator: metav1.LabelSelectorOpExists}}
		} else {
			reqs = r
		}
	}
	c.spec().NodeSelector = buildSelector(reqs)
	return nil
}

// buildSelector puts single-value In requirements on keys that have no other
// requirement into matchLabels, the rest into matchExpressions. No
// requirement at all selects every node (nil selector).
func buildSelector(reqs []metav1.LabelSelectorRequirement) *metav1.LabelSelector {
	if len(reqs) == 0 {
		return nil
	}
	perKey := map[string]int{}
	for _, r := range reqs {
		perKey[r.Key]++
	}
	sel := &metav1.LabelSelector{}
	for _, r := range reqs {
		if r.Operator == metav1.LabelSelectorOpIn && len(r.Values) == 1 && perKey[r.Key] == 1 {
			if sel.MatchLabels == nil {
				sel.MatchLabels = map[string]string{}
			}
			sel.MatchLabels[r.Key] = r.Values[0]
			continue
		}
		sel.MatchExpressions = append(sel.MatchExpressions, r)
	}
	return sel
}

// modes: --dry-run and --skip-drain.
func (c *converter) modes() error {
	c.spec().DryRun = c.cl.boolean("dry-run", false)
	c.spec().Drain.Enabled = ptr.To(c.drainEnabled())
	return nil
}

// drain: grace period, timeout, and which pods are evicted.
func (c *converter) drain() error {
	d := &c.spec().Drain
	grace, err := c.duration("max-grace-period", drainoMaxGracePeriod)
	if err != nil {
		return err
	}
	headroom, err := c.duration("eviction-headroom", drainoEvictionHeadroom)
	if err != nil {
		return err
	}
	seconds := int64(grace / time.Second)
	if grace%time.Second != 0 {
		c.warnf("--max-grace-period=%s: Draino truncated it to whole seconds, so did the conversion (gracePeriodSeconds: %d)", c.cl.last("max-grace-period"), seconds)
	}
	d.GracePeriodSeconds = ptr.To(seconds)
	if grace+headroom <= 0 {
		return fmt.Errorf("--max-grace-period + --eviction-headroom is 0: every drain would time out at once; drain.timeout must be positive")
	}
	d.Timeout = metav1.Duration{Duration: grace + headroom}
	if c.drainEnabled() {
		c.warnf("drain.timeout: %s is Draino's deadline for a whole drain, --max-grace-period (%s) + --eviction-headroom (%s), and drain.gracePeriodSeconds: %d is --max-grace-period; nodewarden's own defaults are 15m and each pod's terminationGracePeriodSeconds",
			d.Timeout.Duration, describeSetting(c.cl, "max-grace-period", grace), describeSetting(c.cl, "eviction-headroom", headroom), seconds)
	}

	if err := c.retries(d); err != nil {
		return err
	}

	evictDaemonSet := c.cl.boolean("evict-daemonset-pods", false)
	evictStatefulSet := c.cl.boolean("evict-statefulset-pods", false)
	evictEmptyDir := c.cl.boolean("evict-emptydir-pods", false)
	evictUnreplicated := c.cl.boolean("evict-unreplicated-pods", false)
	if kinds, ok := c.cl.values["do-not-evict-pod-controlled-by"]; ok {
		for _, f := range []string{"evict-daemonset-pods", "evict-statefulset-pods", "evict-unreplicated-pods"} {
			if c.cl.has(f) {
				return fmt.Errorf("--do-not-evict-pod-controlled-by (Draino's DataDog fork) and --%s (upstream Draino) come from different Draino versions; use one or the other", f)
			}
		}
		evictDaemonSet, evictStatefulSet, evictUnreplicated = true, true, true
		for _, k := range kinds {
			switch normalizeKind(k) {
			case "":
				evictUnreplicated = false
			case "daemonset":
				evictDaemonSet = false
			case "statefulset":
				evictStatefulSet = false
			default:
				c.warnf("--do-not-evict-pod-controlled-by=%s: not expressible: nodewarden exempts pods by annotation, not by owner kind; annotate those pods and list the annotation in drain.protectedPodAnnotations (they then block the drain)", k)
			}
		}
	}
	// drain.evictDaemonSetPods stays false: Draino always cordoned, and the
	// API server refuses evictDaemonSetPods with a cordon.
	d.EvictEmptyDirPods = ptr.To(evictEmptyDir)
	d.EvictUnreplicatedPods = evictUnreplicated
	if !c.drainEnabled() {
		if evictDaemonSet && c.cl.has("evict-daemonset-pods") {
			c.warnf("--evict-daemonset-pods: not needed: --skip-drain turns draining off")
		}
		return nil
	}
	if evictDaemonSet {
		c.warnf("%s: not carried over: drain.evictDaemonSetPods stays false and DaemonSet pods stay on the node. DaemonSet pods tolerate the cordon, so each one evicted comes straight back: Draino restarted them and reported success, while nodewarden's drain would never finish, and the API server refuses drain.evictDaemonSetPods with cordon: true. To move them off, write a policy with cordon: false and a NoSchedule taint the DaemonSets do not tolerate",
			c.daemonSetSource())
	}
	if !evictStatefulSet {
		c.warnf("%s: Draino left StatefulSet pods on the node; nodewarden has no such exemption and evicts them like any replicated pod, honouring their PodDisruptionBudgets. To keep them, annotate them and list the annotation in drain.protectedPodAnnotations",
			c.exemptionSource("evict-statefulset-pods", "StatefulSet"))
	}
	if !evictEmptyDir {
		c.warnf("without --evict-emptydir-pods: drain.evictEmptyDirPods is false, so pods with emptyDir volumes are not evicted, as in Draino; but Draino evicted the other pods and reported success, while in nodewarden such a pod blocks the drain (DrainFailed, the node stays cordoned). Set it to true to evict them (their emptyDir data is lost)")
	}
	if !evictUnreplicated {
		c.warnf("%s: drain.evictUnreplicatedPods is false, so pods without a controller are not evicted, as in Draino; but Draino evicted the other pods and reported success, while in nodewarden such a pod blocks the drain (DrainFailed, the node stays cordoned)",
			c.exemptionSource("evict-unreplicated-pods", `""`))
	}
	return nil
}

// exemptionSource names what made Draino leave a kind of pod alone: the
// fork's --do-not-evict-pod-controlled-by, or the absence of an upstream
// --evict-* flag.
func (c *converter) exemptionSource(evictFlag, kind string) string {
	if c.cl.has("do-not-evict-pod-controlled-by") {
		return "--do-not-evict-pod-controlled-by=" + kind
	}
	return "without --" + evictFlag
}

// daemonSetSource names what made Draino evict DaemonSet pods: the upstream
// flag, or the fork's --do-not-evict-pod-controlled-by without DaemonSet.
func (c *converter) daemonSetSource() string {
	if c.cl.has("do-not-evict-pod-controlled-by") {
		return "--do-not-evict-pod-controlled-by without DaemonSet"
	}
	return "--evict-daemonset-pods"
}

// describeSetting says where a value came from, for warnings.
func describeSetting(cl *cmdline, flag string, v time.Duration) string {
	if cl.has(flag) {
		return v.String()
	}
	return v.String() + ", Draino's default"
}

// normalizeKind reduces kind[[.version].group] (StatefulSets, StatefulSet.apps,
// statefulset.v1.apps) to a lower-case singular kind.
func normalizeKind(s string) string {
	k, _, _ := strings.Cut(strings.TrimSpace(s), ".")
	return strings.TrimSuffix(strings.ToLower(k), "s")
}

// retries maps the DataDog fork's drain retries: --max-drain-attempts-before-fail
// to drain.maxAttempts, --retry-backoff-delay to drain.retryBackoff.
func (c *converter) retries(d *v1alpha1.DrainSpec) error {
	if c.cl.has("max-drain-attempts-before-fail") {
		v := c.cl.last("max-drain-attempts-before-fail")
		parsed, err := strconv.ParseInt(v, 10, 32)
		n := int(parsed)
		if err != nil || n < 0 {
			return fmt.Errorf("--max-drain-attempts-before-fail=%s: not a whole number", v)
		}
		// The fork's 0 meant "retry forever"; nodewarden always has a limit.
		switch clamped := min(max(n, 1), 100); {
		case n == 0:
			c.warnf("--max-drain-attempts-before-fail=0: Draino retried forever; drain.maxAttempts is at most 100, then the node stays DrainFailed (NodewardenNodeStuck fires) for a human")
			d.MaxAttempts = 100
		case clamped != n:
			c.warnf("--max-drain-attempts-before-fail=%d: drain.maxAttempts is at most 100", n)
			d.MaxAttempts = int32(clamped)
		default:
			d.MaxAttempts = int32(clamped)
		}
	}
	backoff, err := c.duration("retry-backoff-delay", time.Minute)
	if err != nil {
		return err
	}
	if backoff <= 0 {
		return fmt.Errorf("--retry-backoff-delay=%s: drain.retryBackoff must be positive", c.cl.last("retry-backoff-delay"))
	}
	if c.cl.has("retry-backoff-delay") {
		c.warnf("--retry-backoff-delay=%s: drain.retryBackoff waits that long after the first failed drain and doubles it after each further one (at most 1h); Draino waited the same delay every time", backoff)
	}
	d.RetryBackoff = &metav1.Duration{Duration: backoff}
	return nil
}

func (c *converter) duration(flag string, def time.Duration) (time.Duration, error) {
	if !c.cl.has(flag) {
		return def, nil
	}
	v := c.cl.last(flag)
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("--%s=%s: not a duration such as 30s, 1m or 1h30m", flag, v)
	}
	if d < 0 {
		return 0, fmt.Errorf("--%s=%s: negative duration", flag, v)
	}
	return d, nil
}

// protectedPods: --protected-pod-annotation, plus the safe-to-evict
// annotation Draino always honoured.
func (c *converter) protectedPods() error {
	var entries []string
	if !c.cl.boolean("ignore-safe-to-evict-annotation", false) {
		entries = append(entries, safeToEvictFalse)
	} else {
		// nodewarden protects safe-to-evict=false pods by default
		// (drain.honorDisruptionAnnotations): the flag turns that off.
		c.spec().Drain.HonorDisruptionAnnotations = ptr.To(false)
	}
	for _, e := range c.cl.values["protected-pod-annotation"] {
		key, _, _ := strings.Cut(e, "=")
		if errs := validation.IsQualifiedName(key); len(errs) > 0 {
			hint := ""
			if strings.Contains(e, ",") {
				hint = " (give the flag once per annotation)"
			}
			return fmt.Errorf("--protected-pod-annotation=%s: %q is not a valid annotation key%s: %s", e, key, hint, strings.Join(errs, "; "))
		}
		if len(e) > 320 {
			return fmt.Errorf("--protected-pod-annotation=%s: longer than the 320 characters a protectedPodAnnotations entry may have", e)
		}
		if !slices.Contains(entries, e) {
			entries = append(entries, e)
		}
	}
	if len(entries) > 32 {
		return fmt.Errorf("--protected-pod-annotation: %d entries; drain.protectedPodAnnotations takes at most 32", len(entries))
	}
	c.spec().Drain.ProtectedPodAnnotations = entries
	if !c.drainEnabled() || len(entries) == 0 {
		return nil
	}
	if entries[0] == safeToEvictFalse {
		c.warnf("drain.protectedPodAnnotations: %s is listed because Draino always protected pods carrying it (unless --ignore-safe-to-evict-annotation)", safeToEvictFalse)
	}
	c.warnf("drain.protectedPodAnnotations: a protected pod is never evicted, as in Draino; but Draino evicted the other pods and reported success, while in nodewarden a protected pod blocks the drain (DrainFailed, the node stays cordoned)")
	return nil
}

// budget parses Draino's (Value|Value%) limits. Several values were all
// enforced by Draino; the tightest of each kind is kept, and a number wins
// over a percentage (nodewarden takes one).
func (c *converter) budget(flag string) (intstr.IntOrString, bool, error) {
	values := c.cl.values[flag]
	if len(values) == 0 {
		return intstr.IntOrString{}, false, nil
	}
	num, pct := -1, -1
	for _, v := range values {
		v = strings.TrimSpace(v)
		n, err := strconv.Atoi(strings.TrimSuffix(v, "%"))
		if err != nil || n < 0 {
			return intstr.IntOrString{}, false, fmt.Errorf("--%s=%s: not a number or a percentage such as 3 or 10%%", flag, v)
		}
		if strings.HasSuffix(v, "%") {
			if n > 100 {
				return intstr.IntOrString{}, false, fmt.Errorf("--%s=%s: a percentage over 100%%", flag, v)
			}
			if pct < 0 || n < pct {
				pct = n
			}
		} else if num < 0 || n < num {
			num = n
		}
	}
	if len(values) > 1 {
		kept := fmt.Sprint(num)
		if num < 0 {
			kept = fmt.Sprintf("%d%%", pct)
		}
		if num >= 0 && pct >= 0 {
			c.warnf("--%s: Draino enforced %s together; nodewarden takes one limit, so %s is kept and %d%% is dropped (check it is the tighter one for this node pool)", flag, strings.Join(values, ", "), kept, pct)
		} else {
			c.warnf("--%s: given %d times (%s); the tightest, %s, is kept", flag, len(values), strings.Join(values, ", "), kept)
		}
	}
	if num >= 0 {
		return intstr.FromInt32(int32(min(num, 1<<30))), true, nil
	}
	return intstr.FromString(fmt.Sprintf("%d%%", pct)), true, nil
}

// maxConcurrent: --max-simultaneous-cordon.
func (c *converter) maxConcurrent() error {
	v, ok, err := c.budget("max-simultaneous-cordon")
	if err != nil {
		return err
	}
	if !ok {
		c.warnf("maxConcurrent: 1 (nodewarden's default; Draino without --max-simultaneous-cordon cordoned every matching node at once): the policy holds at most this many nodes, from cordon until the node recovers or is deleted. Raise it (a number or a percentage of the selected nodes) if nodes stay broken until the autoscaler removes them")
		return nil
	}
	if v.IntValue() == 0 && (v.Type == intstr.Int || v.StrVal == "0%") {
		c.warnf("--max-simultaneous-cordon=%s: Draino always let one node be cordoned, so this is maxConcurrent: 1", v.String())
		v = intstr.FromInt32(1)
	}
	c.spec().MaxConcurrent = v
	c.warnf("--max-simultaneous-cordon: maxConcurrent: %s; Draino counted every unschedulable node of the cluster (cordoned by anyone) against all nodes, nodewarden counts the nodes this policy holds against the nodes it selects", v.String())
	return nil
}

// maxUnhealthy: --max-notready-nodes, the closest thing Draino had to a
// circuit breaker.
func (c *converter) maxUnhealthy() error {
	v, ok, err := c.budget("max-notready-nodes")
	if err != nil {
		return err
	}
	if !ok {
		c.warnf("maxUnhealthy: 50%% (nodewarden's default) is a circuit breaker Draino did not have: while more than half of the selected nodes are triggered at once, the policy starts nothing new")
		return nil
	}
	if v.Type == intstr.Int && v.IntVal == 0 {
		// The zero IntOrString means "unset" (omitzero, defaulted to 50%):
		// 0% is the same limit, spelled so that it survives.
		v = intstr.FromString("0%")
	}
	c.spec().MaxUnhealthy = v
	c.warnf("--max-notready-nodes: maxUnhealthy: %s; Draino stopped when too many nodes of the cluster were NotReady, nodewarden stops when too many selected nodes have one of this policy's conditions (NotReady nodes count only if Ready=False or Ready=Unknown is one of them)", v.String())
	if v.StrVal == "0%" {
		c.warnf("--max-notready-nodes=%s: maxUnhealthy: %s opens the circuit as soon as one selected node is triggered, so this policy never acts; raise it", v.String(), v.String())
	}
	return nil
}

// notes reports every given flag that maps to no field, in table order, and
// the drain pacing difference.
func (c *converter) notes() error {
	if c.drainEnabled() {
		buffer, err := c.duration("drain-buffer", drainoDrainBuffer)
		if err != nil {
			return err
		}
		c.warnf("--drain-buffer (%s): not expressible: Draino cordoned at once but started at most one drain per %s, cluster-wide; nodewarden starts draining a node as soon as it takes it and paces with maxConcurrent (nodes held at once) and PodDisruptionBudgets",
			describeSetting(c.cl, "drain-buffer", buffer), buffer)
	} else if c.cl.has("drain-buffer") {
		c.warnf("--drain-buffer: not needed: --skip-drain turns draining off")
	}
	if c.cl.has("evict-statefulset-pods") && c.cl.boolean("evict-statefulset-pods", false) {
		c.warnf("--evict-statefulset-pods: nothing to convert: nodewarden evicts StatefulSet pods like any replicated pod")
	}
	if c.cl.has("config-name") && !c.cl.has("do-not-cordon-pod-controlled-by") {
		// --config-name is required by the fork, and only the fork has
		// cordon filters, which apply by default.
		c.warnf("--do-not-cordon-pod-controlled-by not given: Draino's DataDog fork (it needs --config-name) by default never cordoned a node running pods without a controller or of a StatefulSet; nodewarden takes such nodes like any other (%s)", noteCordonFilter)
	}
	for _, def := range flags {
		name := def.name
		if def.mapped || !c.cl.has(name) {
			continue
		}
		if def.kind == boolFlag && c.cl.boolean(name, def.boolDefault) == def.boolDefault {
			c.warnf("--%s=%t: Draino's default; nothing to convert", name, def.boolDefault)
			continue
		}
		c.warnf("--%s: %s", name, def.note)
	}
	return nil
}

// name: Options.Name, else --config-name, else DefaultName.
func (c *converter) name(name string) error {
	if name != "" {
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			return fmt.Errorf("policy name %q: %s", name, strings.Join(errs, "; "))
		}
		c.policy.Name = name
		if c.cl.has("config-name") {
			c.warnf("--config-name: not used: the policy is named %s", name)
		}
		return nil
	}
	if !c.cl.has("config-name") {
		return nil
	}
	cfg := c.cl.last("config-name")
	if errs := validation.IsDNS1123Subdomain(cfg); len(errs) > 0 {
		c.warnf("--config-name=%s: not a valid object name (%s); the policy is named %s", cfg, strings.Join(errs, "; "), DefaultName)
		return nil
	}
	c.policy.Name = cfg
	c.warnf("--config-name: used as the policy name, %s", cfg)
	return nil
}

// validate checks what the API server would reject, so that the printed
// policy applies as is.
func (c *converter) validate() error {
	if _, err := metav1.LabelSelectorAsSelector(c.spec().NodeSelector); err != nil {
		return fmt.Errorf("nodeSelector: %w", err)
	}
	for _, r := range c.spec().Conditions {
		if r.Status != corev1.ConditionTrue && r.Status != corev1.ConditionFalse && r.Status != corev1.ConditionUnknown {
			return fmt.Errorf("condition %s: status %q", r.Type, r.Status)
		}
	}
	return nil
}
