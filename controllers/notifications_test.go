package controllers

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/remediation"
)

func TestWants(t *testing.T) {
	all := v1alpha1.NotificationRule{Receiver: "r"}
	some := v1alpha1.NotificationRule{Receiver: "r", Events: []v1alpha1.NotificationEvent{"DrainFailed", "Deferred"}}
	for _, tc := range []struct {
		rule   v1alpha1.NotificationRule
		reason string
		want   bool
	}{
		{all, remediation.ReasonCordoned, true},
		{all, remediation.ReasonCircuitOpen, true},
		{all, remediation.ReasonDeferred, false},
		{some, remediation.ReasonDrainFailed, true},
		{some, remediation.ReasonDeferred, true},
		{some, remediation.ReasonCordoned, false},
	} {
		if got := wants(tc.rule, tc.reason); got != tc.want {
			t.Errorf("wants(%v, %s) = %v, want %v", tc.rule.Events, tc.reason, got, tc.want)
		}
	}
}

// Every reason a policy may list is one the controller emits, and the
// other way round (but Recovering, which nothing emits).
func TestNotificationEventsAreReasons(t *testing.T) {
	reasons := []string{
		remediation.ReasonWaiting, remediation.ReasonCordoned, remediation.ReasonBudgetYielded, remediation.ReasonHandedOver,
		remediation.ReasonOrphaned, remediation.ReasonDrainCancelled, remediation.ReasonEscalated, remediation.ReasonDrainStarted,
		remediation.ReasonDrainSucceeded, remediation.ReasonDrainFailed, remediation.ReasonUncordoned, remediation.ReasonReleased,
		remediation.ReasonStopped, remediation.ReasonDeferred, remediation.ReasonCircuitOpen, remediation.ReasonCircuitClosed,
		remediation.ReasonRepairStarted, remediation.ReasonRepairSucceeded, remediation.ReasonRepairFailed,
	}
	enum := notificationEventEnum(t)
	for _, r := range reasons {
		if !enum[r] {
			t.Errorf("reason %s is missing from NotificationEvent's enum", r)
		}
		delete(enum, r)
	}
	for r := range enum {
		t.Errorf("NotificationEvent's enum has %s, which no Event carries", r)
	}
}

// notificationEventEnum reads NotificationEvent's enum marker, which the CRD is generated from.
func notificationEventEnum(t *testing.T) map[string]bool {
	t.Helper()
	src, err := os.ReadFile("../api/v1alpha1/notifications_types.go")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^// \+kubebuilder:validation:Enum=(.*)\ntype NotificationEvent string`).FindSubmatch(src)
	if m == nil {
		t.Fatal("no enum marker on NotificationEvent")
	}
	out := map[string]bool{}
	for _, r := range strings.Split(string(m[1]), ";") {
		out[r] = true
	}
	return out
}
