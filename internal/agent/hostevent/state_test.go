package hostevent

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// TestReplayFixture is the end state the fixtures README promises after
// replaying the whole log on a node that booted at 2024-01-11T02:05:00Z.
func TestReplayFixture(t *testing.T) {
	tr := NewTracker(DefaultMapping())
	rejected := map[string]int{}
	var warnings []string
	for _, line := range fixtureLines(t) {
		e, err := Parse(line)
		var perr *ParseError
		if errors.As(err, &perr) {
			rejected[perr.Reason()]++
			continue
		}
		if err != nil {
			t.Fatalf("Parse(%q): %v", line, err)
		}
		if tr.Observe(e) && tr.Unmapped(e) {
			warnings = append(warnings, e.Reason())
		}
	}

	if diff := cmp.Diff(map[string]int{"not_event": 2}, rejected); diff != "" {
		t.Errorf("rejected lines by reason (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"InstanceFailureRebootExecuted", "SystemFailureRebootExecuting"}, warnings); diff != "" {
		t.Errorf("Warning Events for unmapped events (-want +got):\n%s", diff)
	}

	want := []Condition{
		{
			Type:    "HostEventDelete",
			Status:  corev1.ConditionFalse,
			Reason:  "NoHostEvent",
			Message: "no host event seen",
		},
		{
			Type:      "HostEventRebootAfter48",
			Status:    corev1.ConditionTrue,
			Reason:    "SystemMaintenanceRebootAndIsolateErrorDiskScheduled",
			Message:   "SystemMaintenance.RebootAndIsolateErrorDisk is Scheduled, not before 2024-01-13T03:30:00Z",
			NotBefore: utc("2024-01-13T03:30:00Z"),
		},
		{
			Type:    "HostEventRedeploy",
			Status:  corev1.ConditionFalse,
			Reason:  "SystemMaintenanceRedeployCanceled",
			Message: "SystemMaintenance.Redeploy scheduled for 2024-01-10T20:00:00Z was Canceled (logged 2024-01-10 19:59:59 host time)",
		},
		{
			Type:      "HostEventStop",
			Status:    corev1.ConditionTrue,
			Reason:    "InstanceExpirationStopScheduled",
			Message:   "InstanceExpiration.Stop is Scheduled, not before 2024-01-15T00:00:00Z",
			NotBefore: utc("2024-01-15T00:00:00Z"),
		},
	}
	if diff := cmp.Diff(want, tr.Conditions(utc("2024-01-11T02:05:00Z"))); diff != "" {
		t.Errorf("conditions after replay (-want +got):\n%s", diff)
	}
}

// ev builds an event line's worth of data for the state tests.
func ev(typ string, status Status, action string, logged string) Event {
	return Event{Type: typ, Status: status, ActionTime: utc(action), LoggedAt: hostTime(logged)}
}

const (
	reboot    = "SystemMaintenance.Reboot"
	isolate   = "SystemMaintenance.RebootAndIsolateErrorDisk"
	instReset = "InstanceFailure.Reboot"
)

func TestObserveIsNew(t *testing.T) {
	tests := []struct {
		name    string
		events  []Event
		wantNew []bool
	}{
		{
			name: "repeats are not new",
			events: []Event{
				ev(reboot, StatusInquiring, "2024-01-11T02:00:00Z", "2024-01-09 02:00:03"),
				ev(reboot, StatusInquiring, "2024-01-11T02:00:00Z", "2024-01-09 02:01:03"),
				ev(reboot, StatusScheduled, "2024-01-11T02:00:00Z", "2024-01-09 06:12:44"),
				ev(reboot, StatusScheduled, "2024-01-11T02:00:00Z", "2024-01-09 06:13:44"),
			},
			wantNew: []bool{true, false, true, false},
		},
		{
			name: "a status seen before stays old after the event moved on",
			events: []Event{
				ev(reboot, StatusScheduled, "2024-01-11T02:00:00Z", "2024-01-09 06:12:44"),
				ev(reboot, StatusExecuting, "2024-01-11T02:00:00Z", "2024-01-11 02:00:05"),
				ev(reboot, StatusScheduled, "2024-01-11T02:00:00Z", "2024-01-11 02:01:05"),
			},
			wantNew: []bool{true, true, false},
		},
		{
			name: "a new action time is a new event",
			events: []Event{
				ev(reboot, StatusScheduled, "2024-01-11T02:00:00Z", "2024-01-09 06:12:44"),
				ev(reboot, StatusScheduled, "2024-01-12T02:00:00Z", "2024-01-09 06:13:44"),
			},
			wantNew: []bool{true, true},
		},
		{
			name: "same instant in another zone is the same event",
			events: []Event{
				ev(reboot, StatusScheduled, "2024-01-11T02:00:00Z", "2024-01-09 06:12:44"),
				ev(reboot, StatusScheduled, "2024-01-11T10:00:00+08:00", "2024-01-09 06:13:44"),
			},
			wantNew: []bool{true, false},
		},
		{
			name: "unmapped events are tracked too",
			events: []Event{
				ev(instReset, StatusExecuted, "2023-12-27T11:49:28Z", "2024-01-08 17:02:01"),
				ev(instReset, StatusExecuted, "2023-12-27T11:49:28Z", "2024-01-08 17:03:01"),
			},
			wantNew: []bool{true, false},
		},
		{
			name:    "unknown status is ignored",
			events:  []Event{ev(reboot, "Postponed", "2024-01-11T02:00:00Z", "2024-01-09 06:12:44")},
			wantNew: []bool{false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker(DefaultMapping())
			var got []bool
			for _, e := range tt.events {
				got = append(got, tr.Observe(e))
			}
			if diff := cmp.Diff(tt.wantNew, got); diff != "" {
				t.Errorf("Observe results (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConditions(t *testing.T) {
	noBoot := time.Time{}
	tests := []struct {
		name     string
		events   []Event
		bootTime time.Time
		want     Condition // the HostEventRebootAfter48 condition
	}{
		{
			name: "never seen",
			want: Condition{Status: corev1.ConditionFalse, Reason: "NoHostEvent", Message: "no host event seen"},
		},
		{
			name:   "unmapped events do not count",
			events: []Event{ev(instReset, StatusExecuting, "2024-01-11T02:00:00Z", "2024-01-09 06:12:44")},
			want:   Condition{Status: corev1.ConditionFalse, Reason: "NoHostEvent", Message: "no host event seen"},
		},
		{
			name: "latest line wins",
			events: []Event{
				ev(reboot, StatusInquiring, "2024-01-11T02:00:00Z", "2024-01-09 02:00:03"),
				ev(reboot, StatusScheduled, "2024-01-11T02:00:00Z", "2024-01-09 06:12:44"),
				ev(reboot, StatusExecuting, "2024-01-11T02:00:00Z", "2024-01-11 02:00:05"),
			},
			want: Condition{
				Status:    corev1.ConditionTrue,
				Reason:    "SystemMaintenanceRebootExecuting",
				Message:   "SystemMaintenance.Reboot is Executing, not before 2024-01-11T02:00:00Z",
				NotBefore: utc("2024-01-11T02:00:00Z"),
			},
		},
		{
			name: "log order wins over logged time",
			events: []Event{
				ev(reboot, StatusCanceled, "2024-01-11T02:00:00Z", "2024-01-10 00:00:00"),
				ev(reboot, StatusScheduled, "2024-01-11T02:00:00Z", "2024-01-09 00:00:00"),
			},
			want: Condition{
				Status:    corev1.ConditionTrue,
				Reason:    "SystemMaintenanceRebootScheduled",
				Message:   "SystemMaintenance.Reboot is Scheduled, not before 2024-01-11T02:00:00Z",
				NotBefore: utc("2024-01-11T02:00:00Z"),
			},
		},
		{
			name: "terminal after active",
			events: []Event{
				ev(reboot, StatusScheduled, "2024-01-11T02:00:00Z", "2024-01-09 06:12:44"),
				ev(reboot, StatusExecuted, "2024-01-11T02:00:00Z", "2024-01-11 02:09:41"),
			},
			want: Condition{
				Status:  corev1.ConditionFalse,
				Reason:  "SystemMaintenanceRebootExecuted",
				Message: "SystemMaintenance.Reboot scheduled for 2024-01-11T02:00:00Z was Executed (logged 2024-01-11 02:09:41 host time)",
			},
		},
		{
			name: "earliest deadline among several active",
			events: []Event{
				ev(isolate, StatusScheduled, "2024-01-13T03:30:00Z", "2024-01-09 00:00:00"),
				ev(reboot, StatusInquiring, "2024-01-12T02:00:00Z", "2024-01-09 00:01:00"),
				ev(reboot, StatusScheduled, "2024-01-14T02:00:00Z", "2024-01-09 00:02:00"),
			},
			want: Condition{
				Status:    corev1.ConditionTrue,
				Reason:    "SystemMaintenanceRebootInquiring",
				Message:   "SystemMaintenance.Reboot is Inquiring, not before 2024-01-12T02:00:00Z",
				NotBefore: utc("2024-01-12T02:00:00Z"),
			},
		},
		{
			name: "same deadline: type breaks the tie",
			events: []Event{
				ev(reboot, StatusScheduled, "2024-01-13T03:30:00Z", "2024-01-09 00:00:00"),
				ev(isolate, StatusScheduled, "2024-01-13T03:30:00Z", "2024-01-09 00:01:00"),
			},
			want: Condition{
				Status:    corev1.ConditionTrue,
				Reason:    "SystemMaintenanceRebootScheduled",
				Message:   "SystemMaintenance.Reboot is Scheduled, not before 2024-01-13T03:30:00Z",
				NotBefore: utc("2024-01-13T03:30:00Z"),
			},
		},
		{
			name: "an active event outweighs a later terminal one",
			events: []Event{
				ev(isolate, StatusScheduled, "2024-01-20T00:00:00Z", "2024-01-09 00:00:00"),
				ev(reboot, StatusScheduled, "2024-01-11T02:00:00Z", "2024-01-09 00:01:00"),
				ev(reboot, StatusAvoided, "2024-01-11T02:00:00Z", "2024-01-10 00:00:00"),
			},
			want: Condition{
				Status:    corev1.ConditionTrue,
				Reason:    "SystemMaintenanceRebootAndIsolateErrorDiskScheduled",
				Message:   "SystemMaintenance.RebootAndIsolateErrorDisk is Scheduled, not before 2024-01-20T00:00:00Z",
				NotBefore: utc("2024-01-20T00:00:00Z"),
			},
		},
		{
			name: "most recent terminal line describes a False condition",
			events: []Event{
				ev(isolate, StatusFailed, "2024-01-05T00:00:00Z", "2024-01-06 00:00:00"),
				ev(reboot, StatusCanceled, "2024-01-11T02:00:00Z", "2024-01-07 00:00:00"),
			},
			want: Condition{
				Status:  corev1.ConditionFalse,
				Reason:  "SystemMaintenanceRebootCanceled",
				Message: "SystemMaintenance.Reboot scheduled for 2024-01-11T02:00:00Z was Canceled (logged 2024-01-07 00:00:00 host time)",
			},
		},
		{
			name:     "boot rule: node booted after the action time",
			events:   []Event{ev(reboot, StatusExecuting, "2024-01-11T02:00:00Z", "2024-01-11 02:00:05")},
			bootTime: utc("2024-01-11T02:05:00Z"),
			want: Condition{
				Status:  corev1.ConditionFalse,
				Reason:  "SystemMaintenanceRebootDoneAfterBoot",
				Message: "SystemMaintenance.Reboot scheduled for 2024-01-11T02:00:00Z is done: the node booted at 2024-01-11T02:05:00Z, after the action time (last status Executing)",
			},
		},
		{
			name:     "boot rule: boot before the action time changes nothing",
			events:   []Event{ev(reboot, StatusScheduled, "2024-01-11T02:00:00Z", "2024-01-09 06:12:44")},
			bootTime: utc("2024-01-01T00:00:00Z"),
			want: Condition{
				Status:    corev1.ConditionTrue,
				Reason:    "SystemMaintenanceRebootScheduled",
				Message:   "SystemMaintenance.Reboot is Scheduled, not before 2024-01-11T02:00:00Z",
				NotBefore: utc("2024-01-11T02:00:00Z"),
			},
		},
		{
			name:     "boot rule: boot exactly at the action time is not after it",
			events:   []Event{ev(reboot, StatusScheduled, "2024-01-11T02:00:00Z", "2024-01-09 06:12:44")},
			bootTime: utc("2024-01-11T02:00:00Z"),
			want: Condition{
				Status:    corev1.ConditionTrue,
				Reason:    "SystemMaintenanceRebootScheduled",
				Message:   "SystemMaintenance.Reboot is Scheduled, not before 2024-01-11T02:00:00Z",
				NotBefore: utc("2024-01-11T02:00:00Z"),
			},
		},
		{
			name:     "boot rule: zero boot time disables it",
			events:   []Event{ev(reboot, StatusExecuting, "2024-01-11T02:00:00Z", "2024-01-11 02:00:05")},
			bootTime: noBoot,
			want: Condition{
				Status:    corev1.ConditionTrue,
				Reason:    "SystemMaintenanceRebootExecuting",
				Message:   "SystemMaintenance.Reboot is Executing, not before 2024-01-11T02:00:00Z",
				NotBefore: utc("2024-01-11T02:00:00Z"),
			},
		},
		{
			name: "boot rule: done events fall back to the next active one",
			events: []Event{
				ev(reboot, StatusScheduled, "2024-01-11T02:00:00Z", "2024-01-09 00:00:00"),
				ev(isolate, StatusScheduled, "2024-01-13T03:30:00Z", "2024-01-12 10:00:00"),
			},
			bootTime: utc("2024-01-11T02:05:00Z"),
			want: Condition{
				Status:    corev1.ConditionTrue,
				Reason:    "SystemMaintenanceRebootAndIsolateErrorDiskScheduled",
				Message:   "SystemMaintenance.RebootAndIsolateErrorDisk is Scheduled, not before 2024-01-13T03:30:00Z",
				NotBefore: utc("2024-01-13T03:30:00Z"),
			},
		},
		{
			name: "boot rule: a terminal line after the boot-done one describes the condition",
			events: []Event{
				ev(reboot, StatusExecuting, "2024-01-11T02:00:00Z", "2024-01-11 02:00:05"),
				ev(isolate, StatusCanceled, "2024-01-09T00:00:00Z", "2024-01-11 03:00:00"),
			},
			bootTime: utc("2024-01-11T02:05:00Z"),
			want: Condition{
				Status:  corev1.ConditionFalse,
				Reason:  "SystemMaintenanceRebootAndIsolateErrorDiskCanceled",
				Message: "SystemMaintenance.RebootAndIsolateErrorDisk scheduled for 2024-01-09T00:00:00Z was Canceled (logged 2024-01-11 03:00:00 host time)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker(DefaultMapping())
			for _, e := range tt.events {
				tr.Observe(e)
			}
			got := conditionByType(t, tr.Conditions(tt.bootTime), "HostEventRebootAfter48")
			tt.want.Type = "HostEventRebootAfter48"
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("condition (-want +got):\n%s", diff)
			}
		})
	}
}

func conditionByType(t *testing.T, conds []Condition, typ string) Condition {
	t.Helper()
	for _, c := range conds {
		if c.Type == typ {
			return c
		}
	}
	t.Fatalf("no condition %q in %+v", typ, conds)
	return Condition{}
}

func TestConditionsDeclaredUpFront(t *testing.T) {
	got := NewTracker(DefaultMapping()).Conditions(time.Time{})
	var types []string
	for _, c := range got {
		if c.Status != corev1.ConditionFalse || c.Reason != ReasonNoHostEvent {
			t.Errorf("fresh tracker: %+v, want False/NoHostEvent", c)
		}
		types = append(types, c.Type)
	}
	want := []string{"HostEventDelete", "HostEventRebootAfter48", "HostEventRedeploy", "HostEventStop"}
	if diff := cmp.Diff(want, types); diff != "" {
		t.Errorf("condition types (-want +got):\n%s", diff)
	}
}

func TestBoundedMemory(t *testing.T) {
	tr := NewTracker(DefaultMapping())
	start := utc("2020-01-01T00:00:00Z")
	day := 24 * time.Hour

	// One long-pending event, then years of maintenance that all ended.
	pending := Event{Type: isolate, Status: StatusScheduled, ActionTime: start.Add(10000 * day), LoggedAt: start}
	tr.Observe(pending)
	for i := range 1000 {
		at := start.Add(time.Duration(i) * day)
		tr.Observe(Event{Type: reboot, Status: StatusScheduled, ActionTime: at, LoggedAt: at})
		tr.Observe(Event{Type: reboot, Status: StatusExecuted, ActionTime: at, LoggedAt: at})
		tr.Observe(Event{Type: instReset, Status: StatusExecuted, ActionTime: at, LoggedAt: at})
	}

	for cond, g := range tr.groups {
		if len(g) > MaxEventsPerGroup {
			t.Errorf("group %q holds %d events, want at most %d", cond, len(g), MaxEventsPerGroup)
		}
	}
	g := tr.groups["HostEventRebootAfter48"]
	if _, ok := g[pending.ID()]; !ok {
		t.Error("the pending event was evicted; terminal ones must go first")
	}
	last := Event{Type: reboot, ActionTime: start.Add(999 * day)}
	if _, ok := g[last.ID()]; !ok {
		t.Error("the newest terminal event was evicted; the oldest must go first")
	}
	got := conditionByType(t, tr.Conditions(time.Time{}), "HostEventRebootAfter48")
	if got.Status != corev1.ConditionTrue || !got.NotBefore.Equal(pending.ActionTime) {
		t.Errorf("condition after eviction: %+v, want True for the pending event", got)
	}
	if tr.Observe(Event{Type: reboot, Status: StatusExecuted, ActionTime: start.Add(999 * day)}) {
		t.Error("a repeat of a kept event counted as new")
	}

	// Only active events: the least recently observed one goes, never the new one.
	tr = NewTracker(DefaultMapping())
	for i := range MaxEventsPerGroup + 1 {
		at := start.Add(time.Duration(i) * day)
		tr.Observe(Event{Type: reboot, Status: StatusScheduled, ActionTime: at, LoggedAt: at})
	}
	g = tr.groups["HostEventRebootAfter48"]
	if len(g) != MaxEventsPerGroup {
		t.Fatalf("group holds %d events, want %d", len(g), MaxEventsPerGroup)
	}
	if _, ok := g[ID{Type: reboot, ActionTime: start}]; ok {
		t.Error("the least recently observed active event was kept")
	}
}

func TestNewMapping(t *testing.T) {
	tests := []struct {
		name    string
		in      map[string][]string
		wantErr string // substring; "" means success
	}{
		{name: "valid", in: map[string][]string{"A": {"X.Y", "X.Z", "X.Y"}, "B": {"Q.R"}}},
		{name: "empty is valid", in: nil},
		{
			name:    "event type under two conditions",
			in:      map[string][]string{"HostEventStop": {"SystemMaintenance.Stop"}, "MyStop": {"Other.Thing", "SystemMaintenance.Stop"}},
			wantErr: `event type "SystemMaintenance.Stop" is mapped to both "HostEventStop" and "MyStop"`,
		},
		{name: "empty condition type", in: map[string][]string{"": {"X.Y"}}, wantErr: "invalid condition type"},
		{name: "blank in condition type", in: map[string][]string{"Host Event": {"X.Y"}}, wantErr: "invalid condition type"},
		{name: "no event types", in: map[string][]string{"A": {}}, wantErr: "has no event types"},
		{name: "bad event type", in: map[string][]string{"A": {"SystemMaintenance.Reboot,"}}, wantErr: "not of the form Word.Word"},
		{name: "three words", in: map[string][]string{"A": {"A.B.C"}}, wantErr: "not of the form Word.Word"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMapping(tt.in)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			case err != nil:
				return
			}
			for cond, events := range tt.in {
				for _, e := range events {
					if got, ok := m.ConditionType(e); !ok || got != cond {
						t.Errorf("ConditionType(%q) = %q, %v; want %q", e, got, ok, cond)
					}
				}
			}
		})
	}
}

func TestDefaultMapping(t *testing.T) {
	m := DefaultMapping()
	got := map[string][]string{}
	for _, cond := range m.ConditionTypes() {
		got[cond] = m.EventTypes(cond)
	}
	want := map[string][]string{
		"HostEventDelete":        {"AccountUnbalanced.Delete", "InstanceExpiration.Delete", "SystemFailure.Delete"},
		"HostEventRebootAfter48": {"SystemMaintenance.Reboot", "SystemMaintenance.RebootAndIsolateErrorDisk", "SystemMaintenance.RebootAndReInitErrorDisk"},
		"HostEventRedeploy":      {"SystemFailure.Redeploy", "SystemMaintenance.Redeploy"},
		"HostEventStop":          {"AccountUnbalanced.Stop", "InstanceExpiration.Stop", "SystemFailure.Stop", "SystemMaintenance.Stop"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DefaultMapping (-want +got):\n%s", diff)
	}
	for _, unmapped := range []string{"InstanceFailure.Reboot", "SystemFailure.Reboot"} {
		if _, ok := m.ConditionType(unmapped); ok {
			t.Errorf("%s is mapped; the spec has it as a Warning Event", unmapped)
		}
	}
	// Every mapped type is interned, so replaying a log of them does not allocate.
	for cond, events := range want {
		for _, e := range events {
			if _, ok := knownTypes[e]; !ok {
				t.Errorf("%s (%s) is not in knownTypes", e, cond)
			}
		}
	}
}

func ExampleTracker() {
	tr := NewTracker(DefaultMapping())
	for _, line := range []string{
		"2024-01-09 06:12:44 - WARNING - Ecs event type is: SystemMaintenance.Reboot,event status is: Scheduled,action ISO 8601 time is 2024-01-11T02:00:00Z",
		"2024-01-09 06:13:44 - WARNING - Ecs event type is: SystemMaintenance.Reboot,event status is: Scheduled,action ISO 8601 time is 2024-01-11T02:00:00Z",
	} {
		e, err := Parse([]byte(line))
		if err != nil {
			continue
		}
		fmt.Println("new:", tr.Observe(e))
	}
	for _, c := range tr.Conditions(time.Time{}) {
		fmt.Println(c.Type, c.Status, c.Reason)
	}
	// Output:
	// new: true
	// new: false
	// HostEventDelete False NoHostEvent
	// HostEventRebootAfter48 True SystemMaintenanceRebootScheduled
	// HostEventRedeploy False NoHostEvent
	// HostEventStop False NoHostEvent
}

func TestTrackerLatestIsOneObservationPerEventInLogOrder(t *testing.T) {
	tr := NewTracker(DefaultMapping())
	for _, line := range fixtureLines(t) {
		if ev, err := Parse(line); err == nil {
			tr.Observe(ev)
		}
	}
	var got []string
	for _, ev := range tr.Latest() {
		got = append(got, ev.Type+" "+string(ev.Status))
	}
	want := []string{
		"InstanceFailure.Reboot Executed",
		"SystemMaintenance.Redeploy Canceled",
		"SystemMaintenance.Reboot Executed",
		"InstanceExpiration.Stop Scheduled",
		"SystemMaintenance.RebootAndIsolateErrorDisk Scheduled",
		"SystemFailure.Reboot Executing",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Latest() mismatch (-want +got):\n%s", diff)
	}
}
