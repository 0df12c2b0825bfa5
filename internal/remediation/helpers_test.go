package remediation

import (
	"encoding/json"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// t0 is "now" in the tests; conditions are placed relative to it.
var t0 = time.Date(2024, 1, 8, 17, 0, 0, 0, time.UTC)

const reboot = "HostEventRebootAfter48"

type nodeOpt func(*corev1.Node)

func node(name string, opts ...nodeOpt) corev1.Node {
	n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: "7"}}
	for _, o := range opts {
		o(&n)
	}
	return n
}

func label(k, v string) nodeOpt {
	return func(n *corev1.Node) {
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels[k] = v
	}
}

func annotate(k, v string) nodeOpt {
	return func(n *corev1.Node) {
		if n.Annotations == nil {
			n.Annotations = map[string]string{}
		}
		n.Annotations[k] = v
	}
}

// cond sets a condition that transitioned ago before t0.
func cond(typ string, status corev1.ConditionStatus, ago time.Duration, message string) nodeOpt {
	return func(n *corev1.Node) {
		n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{
			Type:               corev1.NodeConditionType(typ),
			Status:             status,
			LastTransitionTime: metav1.NewTime(t0.Add(-ago)),
			Message:            message,
		})
	}
}

// rebootTrue is the agent's condition with an action time ("not before").
func rebootTrue(ago time.Duration, notBefore string) nodeOpt {
	msg := "SystemMaintenance.Reboot is Scheduled"
	if notBefore != "" {
		msg += ", not before " + notBefore
	}
	return cond(reboot, corev1.ConditionTrue, ago, msg)
}

func unschedulable(n *corev1.Node) { n.Spec.Unschedulable = true }

func taint(key string, effect corev1.TaintEffect) nodeOpt {
	return func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: key, Effect: effect})
	}
}

// held is a node that policy took (cordoned by nodewarden) for the reboot
// condition, in state s.
func held(policy string, s v1alpha1.NodeState) nodeOpt {
	return func(n *corev1.Node) {
		for _, o := range []nodeOpt{
			annotate(v1alpha1.AnnotationState, string(s)),
			annotate(v1alpha1.AnnotationPolicy, policy),
			annotate(v1alpha1.AnnotationTrigger, reboot+"=True"),
			annotate(v1alpha1.AnnotationStateSince, formatTime(t0.Add(-5*time.Minute))),
			annotate(v1alpha1.AnnotationCordonedBy, v1alpha1.CordonedByNodewarden),
			unschedulable,
		} {
			o(n)
		}
	}
}

type policyOpt func(*v1alpha1.RemediationPolicy)

// rp is what the API server stores for a minimal spec: CRD defaults
// applied, one rule on the reboot condition.
func rp(name string, opts ...policyOpt) v1alpha1.RemediationPolicy {
	p := v1alpha1.RemediationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1},
		Spec: v1alpha1.RemediationPolicySpec{
			Conditions: []v1alpha1.ConditionRule{{Type: reboot, Status: corev1.ConditionTrue}},
			Cordon:     ptr(true),
			Drain: v1alpha1.DrainSpec{
				Enabled:           ptr(true),
				Timeout:           metav1.Duration{Duration: 15 * time.Minute},
				EvictEmptyDirPods: ptr(true),
			},
			UncordonOnRecovery: ptr(true),
			MaxConcurrent:      intstr.FromInt32(1),
			MaxUnhealthy:       intstr.FromString("50%"),
		},
	}
	for _, o := range opts {
		o(&p)
	}
	return p
}

func rules(rs ...v1alpha1.ConditionRule) policyOpt {
	return func(p *v1alpha1.RemediationPolicy) { p.Spec.Conditions = rs }
}

func rule(typ string, status corev1.ConditionStatus, forDuration time.Duration) v1alpha1.ConditionRule {
	return v1alpha1.ConditionRule{Type: corev1.NodeConditionType(typ), Status: status, For: metav1.Duration{Duration: forDuration}}
}

func selector(k, v string) policyOpt {
	return func(p *v1alpha1.RemediationPolicy) {
		p.Spec.NodeSelector = &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}
	}
}

func maxConcurrent(v intstr.IntOrString) policyOpt {
	return func(p *v1alpha1.RemediationPolicy) { p.Spec.MaxConcurrent = v }
}

func maxUnhealthy(v intstr.IntOrString) policyOpt {
	return func(p *v1alpha1.RemediationPolicy) { p.Spec.MaxUnhealthy = v }
}

func dryRun(p *v1alpha1.RemediationPolicy) { p.Spec.DryRun = true }

func noDrain(p *v1alpha1.RemediationPolicy) { p.Spec.Drain.Enabled = ptr(false) }

func circuitWasOpen(p *v1alpha1.RemediationPolicy) {
	p.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionCircuitOpen, Status: metav1.ConditionTrue}}
}

func withTaints(ts ...corev1.Taint) policyOpt {
	return func(p *v1alpha1.RemediationPolicy) { p.Spec.Taints = ts }
}

func withAnnotations(kv ...string) policyOpt {
	return func(p *v1alpha1.RemediationPolicy) {
		p.Spec.Annotations = map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			p.Spec.Annotations[kv[i]] = kv[i+1]
		}
	}
}

// actions summarises a plan as "node: Action policy" lines, the shape most
// table tests compare.
func actions(p Plan) []string {
	var out []string
	for _, n := range p.Nodes {
		line := n.Node + ": " + string(n.Action)
		if n.Policy != "" {
			line += " " + n.Policy
		}
		if n.DryRun {
			line += " (dry run)"
		}
		out = append(out, line)
	}
	return out
}

// reasons lists the events as "object reason".
func reasons(p Plan) []string {
	var out []string
	for _, e := range p.Events {
		obj := "policy/" + e.Policy
		if e.Node != "" {
			obj = "node/" + e.Node
		}
		out = append(out, obj+" "+e.Reason)
	}
	return out
}

// apply sends a patch the way the API server would apply it, so the tests
// check the bytes the reconciler sends, not just the struct.
func apply(t testing.TB, n corev1.Node, p NodePatch) corev1.Node {
	t.Helper()
	if p.IsEmpty() {
		return n
	}
	if p.ResourceVersion != "" && p.ResourceVersion != n.ResourceVersion {
		t.Fatalf("patch for resourceVersion %q applied to %q", p.ResourceVersion, n.ResourceVersion)
	}
	original, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	body, err := p.MergePatch()
	if err != nil {
		t.Fatal(err)
	}
	patched, err := jsonpatch.MergePatch(original, body)
	if err != nil {
		t.Fatalf("merge patch %s: %v", body, err)
	}
	var out corev1.Node
	if err := json.Unmarshal(patched, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Annotations) == 0 {
		out.Annotations = nil
	}
	return out
}
