package nodehealth

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/internal/agent/healthcheck"
)

func res(status corev1.ConditionStatus, reason string) healthcheck.Result {
	return healthcheck.Result{Type: "KernelReady", Status: status, Reason: reason, Message: reason + " message"}
}

// Each row is one run's result and what is published after it.
func TestDamper(t *testing.T) {
	const T, F, U = corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown
	type step struct {
		in      healthcheck.Result
		publish string // "" nothing, else status/reason published
		event   bool
	}
	for _, tc := range []struct {
		name  string
		conf  int
		steps []step
	}{
		{"first run is published at once, even unhealthy", 2, []step{
			{res(F, "SoftLockup"), "False/SoftLockup", false},
		}},
		{"a change needs two runs in a row", 2, []step{
			{res(T, "ok"), "True/ok", false},
			{res(F, "InterfaceNotUp"), "", false},
			{res(F, "InterfaceNotUp"), "False/InterfaceNotUp", true},
			{res(F, "InterfaceNotUp"), "", false},
		}},
		{"a flap is absorbed", 2, []step{
			{res(T, "ok"), "True/ok", false},
			{res(F, "InterfaceNotUp"), "", false},
			{res(T, "ok"), "", false},
			{res(F, "InterfaceNotUp"), "", false},
			{res(T, "ok"), "", false},
		}},
		{"False then Unknown does not add up to a change to either", 3, []step{
			{res(T, "ok"), "True/ok", false},
			{res(F, "X"), "", false},
			{res(U, "HostStateUnreadable"), "", false},
			{res(F, "X"), "", false},
			{res(F, "X"), "", false},
			{res(F, "X"), "False/X", true},
		}},
		{"a new reason under the same status is published without waiting", 2, []step{
			{res(F, "AppBlocked"), "False/AppBlocked", false},
			{res(F, "SoftLockup"), "False/SoftLockup", false},
		}},
		{"one confirmation means no damping", 1, []step{
			{res(T, "ok"), "True/ok", false},
			{res(F, "X"), "False/X", true},
			{res(T, "ok"), "True/ok", true},
		}},
		{"a message change alone is not republished", 2, []step{
			{res(T, "ok"), "True/ok", false},
			{healthcheck.Result{Type: "KernelReady", Status: T, Reason: "ok", Message: "41% of PIDs"}, "", false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDamper(tc.conf)
			for i, s := range tc.steps {
				got := d.observe([]healthcheck.Result{s.in})
				var pub string
				var ev bool
				if len(got) > 1 {
					t.Fatalf("step %d: %d changes", i, len(got))
				}
				if len(got) == 1 {
					pub = string(got[0].result.Status) + "/" + got[0].result.Reason
					ev = got[0].statusChanged
				}
				if diff := cmp.Diff(s.publish, pub); diff != "" || ev != s.event {
					t.Fatalf("step %d: published %q (event %v), want %q (event %v)", i, pub, ev, s.publish, s.event)
				}
			}
		})
	}
}

// Property: whatever the sequence, a published status change is preceded
// by conf identical readings, and the published status is always one that
// was read.
func FuzzDamper(f *testing.F) {
	f.Add([]byte{0, 1, 1, 2, 1, 0, 0}, uint8(2))
	f.Fuzz(func(t *testing.T, seq []byte, conf uint8) {
		c := int(conf%4) + 1
		d := newDamper(c)
		statuses := []corev1.ConditionStatus{corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown}
		var read []corev1.ConditionStatus
		for i, b := range seq {
			st := statuses[int(b)%3]
			read = append(read, st)
			for _, ch := range d.observe([]healthcheck.Result{{Type: "T", Status: st, Reason: string(st)}}) {
				if ch.result.Status != st {
					t.Fatalf("step %d published %s, read %s", i, ch.result.Status, st)
				}
				if ch.statusChanged {
					if i+1 < c {
						t.Fatalf("step %d: change before %d readings", i, c)
					}
					for _, prev := range read[i+1-c:] {
						if prev != st {
							t.Fatalf("step %d: change to %s after %v", i, st, read[i+1-c:])
						}
					}
				}
			}
		}
	})
}
