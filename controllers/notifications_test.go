package controllers

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/notify"
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
		remediation.ReasonHookHolding, remediation.ReasonHookTimedOut, remediation.ReasonHookOverridden,
		remediation.ReasonOutsideWindow, remediation.ReasonWindowOverridden,
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

// Observe queues one notification per matching rule, for node steps and
// for a policy's own (no node); a gone policy sends nothing.
func TestNotificationsObserve(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p notify.WebhookPayload
		_ = json.NewDecoder(r.Body).Decode(&p)
		mu.Lock()
		got = append(got, r.URL.Path+" "+p.Reason+" node="+p.Node+" cluster="+p.Cluster)
		mu.Unlock()
	}))
	defer srv.Close()
	n := notify.New(notify.Options{Receivers: notify.StaticReceivers{
		"all":   {Type: notify.TypeWebhook, URL: srv.URL + "/all"},
		"pager": {Type: notify.TypeWebhook, URL: srv.URL + "/pager"},
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = n.Start(ctx) }()
	o := &Notifications{Notifier: n, Cluster: "prod", Clock: clocktesting.NewFakePassiveClock(time.Now())}
	rp := &v1alpha1.RemediationPolicy{Spec: v1alpha1.RemediationPolicySpec{Notifications: []v1alpha1.NotificationRule{
		{Receiver: "all"},
		{Receiver: "pager", Events: []v1alpha1.NotificationEvent{"CircuitOpen"}},
	}}}
	node := &corev1.Node{}
	o.Observe(remediation.Event{Node: "n1", Policy: "p", Reason: remediation.ReasonCordoned, Type: "Normal"}, node, rp)
	o.Observe(remediation.Event{Node: "n2", Policy: "p", Reason: remediation.ReasonDeferred, Type: "Normal"}, node, rp)
	o.Observe(remediation.Event{Node: "n3", Policy: "gone", Reason: remediation.ReasonReleased, Type: "Normal"}, node, nil)
	o.Observe(remediation.Event{Policy: "p", Reason: remediation.ReasonCircuitOpen, Type: "Warning"}, nil, rp)
	want := []string{
		"/all Cordoned node=n1 cluster=prod",
		"/all CircuitOpen node= cluster=prod",
		"/pager CircuitOpen node= cluster=prod",
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		done := len(got) >= len(want)
		mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // room for one too many
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("receivers got %q, want %q", got, want)
	}
}
