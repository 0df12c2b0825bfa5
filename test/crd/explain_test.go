package crd_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nodewarden/nodewarden/test/cluster"
)

// TestKubectlExplain runs the real kubectl against an API server with the
// CRD: `kubectl explain` is where users read the policy's fields, so each new
// field must be listed there with the description from
// api/v1alpha1/remediationpolicy_types.go.
func TestKubectlExplain(t *testing.T) {
	c := cluster.Start(t)
	for _, tc := range []struct {
		path string
		want []string // each in the output, whitespace-insensitive
		not  []string
	}{
		{
			path: "remediationpolicies.spec.drain",
			want: []string{
				"startBefore <string>", "gets the PreferNoSchedule taint nodewarden.io/impending-disruption at once",
				"maxAttempts <integer>", "(the first try included)",
				"retryBackoff <string>", "it doubles after each further failure (capped at 1h)",
				"forceAfter <string>", "deletes them instead of evicting them, ignoring their PodDisruptionBudgets",
				"outOfServiceTaint <boolean>", "node.kubernetes.io/out-of-service=nodeshutdown:NoExecute",
				"evictDaemonSetPods <boolean>", "It needs cordon: false and a NoSchedule taint",
			},
		},
		{
			path: "remediationpolicies.spec.recoverFor",
			want: []string{"recoverFor <string>", "is how long none of the conditions may match before a held node is released"},
		},
		{
			path: "remediationpolicies.status.stuckNodes",
			want: []string{
				"stuckNodes <[]Object>", "stuckNodes are the nodes whose drain failed (state DrainFailed)",
				"attempts <integer> -required-", "blockedBy <string>", "says what kept the drain from finishing",
				"name <string> -required-", "nextAttempt <string>", "since <string> -required-",
			},
			// The description is the field's own, not the one of its neighbour.
			not: []string{"CircuitOpen"},
		},
		{
			path: "remediationrecords.status",
			want: []string{
				"status is the episode as the controller observed it",
				"outcome <string> -required-", "is how the episode ended, or Open while it runs",
				"steps <[]Object>", "droppedSteps <integer>", "trigger <Object>", "podsEvicted <integer>",
			},
		},
	} {
		t.Run(tc.path, func(t *testing.T) {
			var out string
			// The API server publishes a new CRD's OpenAPI a moment after
			// the CRD is established.
			cluster.Eventually(t, 30*time.Second, func() error {
				var err error
				out, err = c.Kubectl(t, "explain", tc.path)
				return err
			})
			flat := strings.Join(strings.Fields(out), " ")
			for _, w := range tc.want {
				if !strings.Contains(flat, w) {
					t.Errorf("kubectl explain %s does not show %q:\n%s", tc.path, w, out)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(flat, w) {
					t.Errorf("kubectl explain %s shows %q:\n%s", tc.path, w, out)
				}
			}
		})
	}
}
