package draino

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// maxConditions is the CRD's limit on spec.conditions.
const maxConditions = 32

// parseCondition parses one Draino node condition argument:
//
//	Type                    Type=True,0s
//	Type=Status,Duration    e.g. KernelDeadlock=True,10m (upstream Draino)
//	Type=Status             Draino crashed on it; read as Type=Status,0s
//	Type=Duration           Draino crashed on it; read as Type=True,Duration
//	Type={"conditionStatus":"True","delay":"10m",...}  (Draino's DataDog fork)
//
// It returns the rule and the warnings about how it was read.
func parseCondition(arg string) (v1alpha1.ConditionRule, []string, error) {
	typ, rest, hasValue := strings.Cut(arg, "=")
	rule := v1alpha1.ConditionRule{Type: corev1.NodeConditionType(typ), Status: corev1.ConditionTrue}
	if typ == "" {
		return rule, nil, fmt.Errorf("condition %q: no condition type before '='; the form is Type, Type=Status or Type=Status,Duration", arg)
	}
	if errs := validation.IsQualifiedName(typ); len(errs) > 0 {
		return rule, nil, fmt.Errorf("condition %q: %q is not a valid condition type: %s", arg, typ, strings.Join(errs, "; "))
	}
	if !hasValue {
		return rule, nil, nil
	}
	if strings.HasPrefix(strings.TrimSpace(rest), "{") {
		return parseJSONCondition(arg, rule, rest)
	}

	var warnings []string
	statusText, durText, hasDur := strings.Cut(rest, ",")
	if !hasDur {
		if status, ok := parseStatus(statusText); ok {
			rule.Status = status
			warnings = append(warnings, fmt.Sprintf("condition %q: Draino needs Type=Status,Duration and crashed on this form; read as %s=%s,0s", arg, typ, status))
			return rule, warnings, nil
		}
		if d, err := time.ParseDuration(statusText); err == nil {
			if d < 0 {
				return rule, nil, fmt.Errorf("condition %q: negative duration %s", arg, statusText)
			}
			rule.For = metav1.Duration{Duration: d}
			warnings = append(warnings, fmt.Sprintf("condition %q: Draino needs Type=Status,Duration and crashed on this form; read as %s=True,%s", arg, typ, statusText))
			return rule, warnings, nil
		}
		return rule, nil, fmt.Errorf("condition %q: %q is neither a status (True, False, Unknown) nor a duration; the form is Type, Type=Status or Type=Status,Duration (e.g. KernelDeadlock=True,10m)", arg, statusText)
	}

	switch status, ok := parseStatus(statusText); {
	case statusText == "":
		warnings = append(warnings, fmt.Sprintf("condition %q: empty status (Draino never matched it); read as status True", arg))
	case !ok:
		return rule, nil, fmt.Errorf("condition %q: status %q is not True, False or Unknown", arg, statusText)
	default:
		if string(status) != statusText {
			warnings = append(warnings, fmt.Sprintf("condition %q: Draino compared the status %q exactly and so never matched it; read as %s", arg, statusText, status))
		}
		rule.Status = status
	}

	if durText == "" {
		warnings = append(warnings, fmt.Sprintf("condition %q: empty duration (Draino silently ignored this condition); read as 0s", arg))
		return rule, warnings, nil
	}
	d, err := time.ParseDuration(durText)
	if err != nil {
		return rule, nil, fmt.Errorf("condition %q: %q is not a duration such as 0s, 90s, 10m or 1h30m (Draino silently ignored this condition)", arg, durText)
	}
	if d < 0 {
		return rule, nil, fmt.Errorf("condition %q: negative duration %s", arg, durText)
	}
	rule.For = metav1.Duration{Duration: d}
	return rule, warnings, nil
}

// parseStatus accepts True, False and Unknown, in any case.
func parseStatus(s string) (corev1.ConditionStatus, bool) {
	for _, st := range []corev1.ConditionStatus{corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown} {
		if strings.EqualFold(s, string(st)) {
			return st, true
		}
	}
	return "", false
}

// forkCondition is the JSON form of a condition in Draino's DataDog fork.
type forkCondition struct {
	Type                   string   `json:"type"`
	Status                 string   `json:"conditionStatus"`
	Delay                  string   `json:"delay"`
	Priority               *int     `json:"priority"`
	ExpectedResolutionTime string   `json:"expectedResolutionTime"`
	RateLimitQPS           *float32 `json:"rateLimitQPS"`
	RateLimitBurst         *int     `json:"rateLimitBurst"`
}

func parseJSONCondition(arg string, rule v1alpha1.ConditionRule, raw string) (v1alpha1.ConditionRule, []string, error) {
	var fc forkCondition
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		return rule, nil, fmt.Errorf("condition %q: invalid JSON condition: %w", arg, err)
	}
	var warnings []string
	if fc.Status != "" {
		status, ok := parseStatus(fc.Status)
		if !ok {
			return rule, nil, fmt.Errorf("condition %q: conditionStatus %q is not True, False or Unknown", arg, fc.Status)
		}
		rule.Status = status
	}
	if fc.Delay != "" {
		d, err := time.ParseDuration(fc.Delay)
		if err != nil || d < 0 {
			return rule, nil, fmt.Errorf("condition %q: delay %q is not a duration such as 0s, 10m or 1h", arg, fc.Delay)
		}
		rule.For = metav1.Duration{Duration: d}
	}
	if fc.Priority != nil {
		warnings = append(warnings, fmt.Sprintf("condition %s: priority is not expressible: nodewarden takes the nodes with the earliest deadline (the \"not before\" time in the condition message) first, then the oldest trigger", rule.Type))
	}
	if fc.ExpectedResolutionTime != "" {
		warnings = append(warnings, fmt.Sprintf("condition %s: expectedResolutionTime is not supported (an SLO metric of the fork); nodewarden's metrics and policy status show how long nodes stay remediated", rule.Type))
	}
	if fc.RateLimitQPS != nil || fc.RateLimitBurst != nil {
		warnings = append(warnings, fmt.Sprintf("condition %s: rateLimitQPS/rateLimitBurst are not expressible: nodewarden paces remediation with maxConcurrent (nodes held at once), not a rate", rule.Type))
	}
	return rule, warnings, nil
}

// legacyConditions are condition types current kubelets never set.
var legacyConditions = map[corev1.NodeConditionType]string{
	"OutOfDisk": "current kubelets no longer report OutOfDisk (low disk space shows as DiskPressure), so this condition never holds on a current cluster; kept as given",
}

// mergeConditions drops repeated (type, status) rules, keeping the shortest
// for: (with "any of", it is the one that fires first).
func mergeConditions(in []v1alpha1.ConditionRule) ([]v1alpha1.ConditionRule, []string) {
	var out []v1alpha1.ConditionRule
	var warnings []string
	index := map[string]int{}
	for _, r := range in {
		key := string(r.Type) + "=" + string(r.Status)
		i, seen := index[key]
		if !seen {
			index[key] = len(out)
			out = append(out, r)
			continue
		}
		if r.For.Duration < out[i].For.Duration {
			out[i].For = r.For
		}
		warnings = append(warnings, fmt.Sprintf("condition %s is given more than once; kept once with the shortest duration, %s", key, out[i].For.Duration))
	}
	return out, warnings
}
