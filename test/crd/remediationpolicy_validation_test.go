// Package crd_test checks that the API server, with nodewarden's CRD
// installed, accepts good RemediationPolicies with their defaults and rejects
// bad ones with a message a user can act on.
package crd_test

import (
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrlclient "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/test/cluster"
)

func create(t *testing.T, c *cluster.Cluster, doc string) error {
	t.Helper()
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
		t.Fatal(err)
	}
	return c.Client.Create(t.Context(), obj)
}

func TestRemediationPolicyDefaults(t *testing.T) {
	c := cluster.Start(t)
	err := create(t, c, `
apiVersion: nodewarden.io/v1alpha1
kind: RemediationPolicy
metadata: {name: minimal}
spec:
  conditions:
  - type: HostEventRebootAfter48
`)
	if err != nil {
		t.Fatal(err)
	}
	var rp v1alpha1.RemediationPolicy
	if err := c.Client.Get(t.Context(), clientKey("minimal"), &rp); err != nil {
		t.Fatal(err)
	}
	s := rp.Spec
	checks := map[string]bool{
		"conditions[0].status=True": s.Conditions[0].Status == "True",
		"conditions[0].for=0s":      s.Conditions[0].For.Duration == 0,
		"cordon=true":               s.Cordon != nil && *s.Cordon,
		"drain.enabled=true":        s.Drain.Enabled != nil && *s.Drain.Enabled,
		"drain.timeout=15m":         s.Drain.Timeout.Duration == 15*time.Minute,
		"drain.evictEmptyDirPods":   s.Drain.EvictEmptyDirPods != nil && *s.Drain.EvictEmptyDirPods,
		"uncordonOnRecovery=true":   s.UncordonOnRecovery != nil && *s.UncordonOnRecovery,
		"maxConcurrent=1":           s.MaxConcurrent.String() == "1",
		"maxUnhealthy=50%":          s.MaxUnhealthy.String() == "50%",
		"dryRun=false":              !s.DryRun,
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("default %s not applied: %+v", what, s)
		}
	}
}

func TestRemediationPolicyValidation(t *testing.T) {
	c := cluster.Start(t)
	cases := []struct {
		name, spec, wantMessage string
	}{
		{"no conditions", `conditions: []`, "spec.conditions"},
		{"conditions missing", `cordon: true`, "spec.conditions: Required value"},
		{"bad duration", `conditions: [{type: KernelDeadlock, for: 1d}]`, "for must be a duration such as 0s, 90s, 10m or 1h30m"},
		{"negative duration", `conditions: [{type: KernelDeadlock, for: -5m}]`, "for must be a duration"},
		{"bad drain timeout", `{conditions: [{type: KernelDeadlock}], drain: {timeout: soon}}`, "timeout must be a positive duration"},
		{"zero drain timeout", `{conditions: [{type: KernelDeadlock}], drain: {timeout: 0s}}`, "timeout must be a positive duration"},
		{"bad status", `conditions: [{type: KernelDeadlock, status: Maybe}]`, `Unsupported value: "Maybe"`},
		{"percent over 100", `{conditions: [{type: KernelDeadlock}], maxConcurrent: 150%}`, "maxConcurrent must be a whole number of at least 1 or a percentage from 1% to 100%"},
		{"maxUnhealthy over 100", `{conditions: [{type: KernelDeadlock}], maxUnhealthy: 101%}`, "maxUnhealthy must be a whole number of at least 0 or a percentage from 0% to 100%"},
		{"maxConcurrent zero", `{conditions: [{type: KernelDeadlock}], maxConcurrent: 0}`, "maxConcurrent must be a whole number of at least 1"},
		{"unknown taint effect", `{conditions: [{type: KernelDeadlock}], taints: [{key: example.com/broken, effect: Sometimes}]}`, "taint effect must be one of NoSchedule, PreferNoSchedule or NoExecute"},
		{"reserved annotation", `{conditions: [{type: KernelDeadlock}], annotations: {nodewarden.io/state: x}}`, "annotation keys under nodewarden.io/ are reserved"},
		{"bad condition type", `conditions: [{type: "not a type!"}]`, "condition type must be a name such as KernelDeadlock"},
		{"drain without cordon", `{conditions: [{type: KernelDeadlock}], cordon: false}`, "drain.enabled needs cordon: true"},
		{"negative grace period", `{conditions: [{type: KernelDeadlock}], drain: {gracePeriodSeconds: -1}}`, "gracePeriodSeconds"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := "apiVersion: nodewarden.io/v1alpha1\nkind: RemediationPolicy\nmetadata: {name: bad-" + string(rune('a'+i)) + "}\nspec:\n  " +
				strings.ReplaceAll(tc.spec, "\n", "\n  ")
			if strings.HasPrefix(tc.spec, "{") {
				doc = "apiVersion: nodewarden.io/v1alpha1\nkind: RemediationPolicy\nmetadata: {name: bad-" + string(rune('a'+i)) + "}\nspec: " + tc.spec
			}
			err := create(t, c, doc)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("got %v, want the API server to reject it as Invalid", err)
			}
			if !strings.Contains(err.Error(), tc.wantMessage) {
				t.Errorf("message %q does not say %q", err.Error(), tc.wantMessage)
			}
		})
	}
}

func clientKey(name string) ctrlclient.ObjectKey { return ctrlclient.ObjectKey{Name: name} }
