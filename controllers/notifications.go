package controllers

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/notify"
	"github.com/nodewarden/nodewarden/internal/remediation"
)

// Notifications is the Observer that turns steps into notifications, per
// the policy's spec.notifications. Observe only queues: the notifier's one
// worker sends, so a slow or dead receiver never delays a drain.
type Notifications struct {
	Notifier *notify.Notifier
	// Cluster names the cluster in every notification; empty: none.
	Cluster string
	Clock   clock.PassiveClock
}

// Observe implements Observer.
func (o *Notifications) Observe(e remediation.Event, _ *corev1.Node, policy *v1alpha1.RemediationPolicy) {
	if policy == nil {
		return // gone: nothing says where to send
	}
	now := o.Clock.Now()
	for _, rule := range policy.Spec.Notifications {
		if !wants(rule, e.Reason) {
			continue
		}
		o.Notifier.Enqueue(notify.Notification{
			Receiver: rule.Receiver, Cluster: o.Cluster,
			Node: e.Node, Policy: e.Policy, Reason: e.Reason, Type: e.Type, Message: e.Message, Time: now,
		})
	}
}

// wants says whether rule sends steps of this reason: those it lists, or
// when it lists none, all but Deferred (emitted on every pass while a node
// waits for a slot).
func wants(rule v1alpha1.NotificationRule, reason string) bool {
	if len(rule.Events) == 0 {
		return reason != remediation.ReasonDeferred
	}
	return slices.Contains(rule.Events, v1alpha1.NotificationEvent(reason))
}
