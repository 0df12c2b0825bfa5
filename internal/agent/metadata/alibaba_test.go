package metadata

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/agent/hostevent"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// newAlibaba is a fake ECS metadata server in hardened mode: no request
// without a session token.
func newAlibaba(t *testing.T) (*fake, *tokens) {
	f := newFake(t)
	return f, withTokens(f, alibabaTokenPath, alibabaTokenTTLHeader, alibabaTokenHeader)
}

func TestAlibabaSpotTermination(t *testing.T) {
	t.Parallel()
	f, _ := newAlibaba(t)
	spot := fixture(t, "alibaba/spot-termination-time.txt")
	_, out := start(t, testConfig(v1alpha1.MetadataProviderAlibaba, f.URL, nil), Options{})
	// 404 on both: no reclaim, no active system event.
	out.wait(t, "HostEventDelete", corev1.ConditionFalse, "NoHostEvent", "")

	f.set(alibabaSpotPath, route{body: spot})
	out.wait(t, "HostEventDelete", corev1.ConditionTrue, "AlibabaSpotTerminationScheduled",
		"Alibaba.SpotTermination is Scheduled, not before 2015-01-05T18:02:00Z")
	f.del(alibabaSpotPath)
	out.wait(t, "HostEventDelete", corev1.ConditionFalse, "AlibabaSpotTerminationExecuted", "")
	noRejections(t, f)
}

func TestAlibabaActiveSystemEvents(t *testing.T) {
	t.Parallel()
	f, tk := newAlibaba(t)
	body := `{"RequestId":"x","Events":[{"EventId":"e-123","EventType":{"Code":1,"Name":"SystemMaintenance.Reboot"},` +
		`"EventCycleStatus":{"Code":24,"Name":"Scheduled"},"NotBefore":"2099-01-11T02:00:00Z"}]}`
	f.set(alibabaEventsPath, route{body: body})
	s, out := start(t, testConfig(v1alpha1.MetadataProviderAlibaba, f.URL, nil), Options{})
	if diff := cmp.Diff([]string{"HostEventDelete", "HostEventRebootAfter48", "HostEventRedeploy", "HostEventStop"}, s.ConditionTypes()); diff != "" {
		t.Errorf("condition types (-want +got):\n%s", diff)
	}
	on := out.wait(t, "HostEventRebootAfter48", corev1.ConditionTrue, "SystemMaintenanceRebootScheduled",
		"SystemMaintenance.Reboot is Scheduled, not before 2099-01-11T02:00:00Z")

	// 404 means "none" here, like the spot endpoint; the rest are failures.
	var cases []failureCase
	for _, c := range failureCases(body) {
		if c.name != "404" {
			cases = append(cases, c)
		}
	}
	checkFailures(t, f, s, out, alibabaEventsPath, "maintenance/active-system-events", cases)
	f.set(alibabaEventsPath, route{body: body})
	s.waitPolls(t, "maintenance/active-system-events", 3)
	if got, _ := out.get("HostEventRebootAfter48"); got != on {
		t.Errorf("after the endpoint recovered: %+v, want %+v unchanged", got, on)
	}

	// No session token to be had (the token endpoint answers 404): counted
	// under reason token, the state kept.
	mark := out.mark()
	tk.setFailPut(http.StatusNotFound)
	tk.revoke()
	cluster.Eventually(t, 5*time.Second, func() error {
		if s.errorCount("maintenance/active-system-events", "token") < 2 {
			return errors.New("token failures not counted")
		}
		return nil
	})
	if got := out.since(mark); len(got) > 0 {
		t.Errorf("conditions changed while no token could be had: %+v", got)
	}
	tk.setFailPut(0)

	// The event leaves the list before its time: canceled.
	f.set(alibabaEventsPath, route{body: `{"RequestId":"y","Events":[]}`})
	out.wait(t, "HostEventRebootAfter48", corev1.ConditionFalse, "SystemMaintenanceRebootCanceled", "")
	noRejections(t, f, "no valid "+alibabaTokenHeader)
}

// The body of active-system-events is undocumented: every plausible shape
// is read, anything else is an error, never a guess.
func TestParseAlibabaEvents(t *testing.T) {
	now := time.Date(2024, 1, 8, 17, 2, 1, 0, time.UTC)
	reboot := func(status hostevent.Status, at time.Time, key string) feedEvent {
		return feedEvent{Event: hostevent.Event{Type: "SystemMaintenance.Reboot", Status: status, ActionTime: at}, Key: key}
	}
	at := time.Date(2099, 1, 11, 2, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		body string
		want []feedEvent
		err  bool
	}{
		{name: "empty", body: ""},
		{name: "blank", body: " \n"},
		{name: "null", body: "null"},
		{name: "empty list", body: "[]"},
		{name: "empty object", body: "{}"},
		{name: "list of flat objects", body: `[{"EventId":"e-1","EventType":"SystemMaintenance.Reboot","EventStatus":"Scheduled","NotBefore":"2099-01-11T02:00:00Z"}]`,
			want: []feedEvent{reboot(hostevent.StatusScheduled, at, "e-1")}},
		{name: "ECS API shape, nested names", body: `{"Events":[{"EventId":"e-1","EventType":{"Name":"SystemMaintenance.Reboot"},"EventCycleStatus":{"Name":"Executing"},"NotBefore":"2099-01-11T02:00:00Z"}]}`,
			want: []feedEvent{reboot(hostevent.StatusExecuting, at, "e-1")}},
		{name: "list deeper down, keys in any case", body: `{"data":{"systemEvents":[{"eventid":"e-1","name":"SystemMaintenance.Reboot","state":"inquiring","planTime":"2099-01-11T02:00:00Z"}]}}`,
			want: []feedEvent{reboot(hostevent.StatusInquiring, at, "e-1")}},
		{name: "one event object", body: `{"EventType":"SystemMaintenance.Reboot","NotBefore":"2099-01-11T02:00:00Z"}`,
			want: []feedEvent{reboot(hostevent.StatusScheduled, at, "")}},
		{name: "no time: first seen", body: `[{"EventType":"SystemMaintenance.Reboot"}]`,
			want: []feedEvent{reboot(hostevent.StatusScheduled, now, "")}},
		{name: "host event log lines", body: "2024-01-08 17:02:01 - WARNING - Ecs event type is: SystemMaintenance.Reboot,event status is: Scheduled,action ISO 8601 time is 2099-01-11T02:00:00Z\n",
			want: []feedEvent{reboot(hostevent.StatusScheduled, at, "")}},
		{name: "garbage", body: "<html>", err: true},
		{name: "broken JSON", body: `[{"EventType":`, err: true},
		{name: "list of strings", body: `["SystemMaintenance.Reboot"]`, err: true},
		{name: "type of another shape", body: `[{"EventType":"reboot"}]`, err: true},
		{name: "unknown status", body: `[{"EventType":"SystemMaintenance.Reboot","Status":"Pending"}]`, err: true},
		{name: "bad time", body: `[{"EventType":"SystemMaintenance.Reboot","NotBefore":"tomorrow"}]`, err: true},
		{name: "object without events", body: `{"RequestId":"x","Total":0}`, err: true},
		{name: "text that is not a log line", body: "SystemMaintenance.Reboot\n", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAlibabaEvents([]byte(tt.body), newEventTimes(), now)
			if tt.err {
				if err == nil || reasonOf(err) != reasonBadResponse {
					t.Fatalf("got %+v, %v; want a bad_response error", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty(), cmpopts.IgnoreFields(feedEvent{}, "Detail")); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
