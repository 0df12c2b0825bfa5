package metadata

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// newAWS is a fake EC2 instance metadata service that speaks IMDSv2 only.
func newAWS(t *testing.T) (*fake, *tokens) {
	f := newFake(t)
	tk := withTokens(f, awsTokenPath, awsTokenTTLHeader, awsTokenHeader)
	return f, tk
}

func TestAWSScheduledMaintenance(t *testing.T) {
	t.Parallel()
	f, _ := newAWS(t)
	scheduled := fixture(t, "aws/scheduled.json")
	f.set(awsScheduledPath, route{body: scheduled})
	s, out := start(t, testConfig(v1alpha1.MetadataProviderAWS, f.URL, nil), Options{})

	if diff := cmp.Diff([]string{"HostEventDelete", "HostEventRebootAfter48", "HostEventStop"}, s.ConditionTypes()); diff != "" {
		t.Errorf("condition types (-want +got):\n%s", diff)
	}
	on := out.wait(t, "HostEventRebootAfter48", corev1.ConditionTrue, "AWSSystemRebootScheduled",
		"AWS.SystemReboot is Scheduled, not before 2019-01-21T09:00:43Z")
	out.wait(t, "HostEventStop", corev1.ConditionFalse, "NoHostEvent", "no host event seen")
	out.wait(t, "HostEventDelete", corev1.ConditionFalse, "NoHostEvent", "no host event seen")

	// Every failure keeps the last known state, and is counted.
	checkFailures(t, f, s, out, awsScheduledPath, "events/maintenance/scheduled", failureCases(scheduled))
	f.set(awsScheduledPath, route{body: scheduled})
	s.waitPolls(t, "events/maintenance/scheduled", 3)
	if got, _ := out.get("HostEventRebootAfter48"); got != on {
		t.Errorf("after the endpoint recovered: %+v, want %+v unchanged", got, on)
	}

	// AWS keeps a completed event in the list for a while.
	f.set(awsScheduledPath, route{body: fixture(t, "aws/scheduled-history.json")})
	off := out.wait(t, "HostEventRebootAfter48", corev1.ConditionFalse, "AWSSystemRebootExecuted", "")
	if !strings.HasPrefix(off.Message, "AWS.SystemReboot scheduled for 2019-01-21T09:00:43Z was Executed") {
		t.Errorf("message %q", off.Message)
	}

	// One Kubernetes Event per new status, however often the endpoint repeats it.
	for reason, want := range map[string]int{"AWSSystemRebootScheduled": 1, "AWSSystemRebootExecuted": 1} {
		evs := out.eventsWithReason(reason)
		if len(evs) != want {
			t.Errorf("%d Events with reason %s, want %d: %+v", len(evs), reason, want, evs)
			continue
		}
		if !strings.Contains(evs[0].Message, "instance-event-0d59937288b749b32") {
			t.Errorf("Event message %q does not name the EventId", evs[0].Message)
		}
	}
	if got := out.eventsWithReason("AWSSystemRebootScheduled")[0]; got.Key != "metadata/aws/AWS.SystemReboot/Scheduled/2019-01-21T09:00:43Z" || got.Type != corev1.EventTypeWarning {
		t.Errorf("Event %+v: want the stable key metadata/aws/AWS.SystemReboot/Scheduled/2019-01-21T09:00:43Z, type Warning", got)
	}
	noRejections(t, f)
	// The rebalance recommendation is off by default: never read.
	if n := f.hitCount(http.MethodGet, awsRebalancePath); n != 0 {
		t.Errorf("rebalance read %d times while off", n)
	}
}

func TestAWSEventRemovedOrRescheduled(t *testing.T) {
	t.Parallel()
	f, _ := newAWS(t)
	future := `[{"NotBefore":"21 Jan 2099 09:00:43 GMT","Code":"instance-retirement","Description":"retirement","EventId":"instance-event-1","NotAfter":"21 Jan 2099 09:17:23 GMT","State":"active"},` +
		`{"NotBefore":"21 Jan 2019 09:00:43 GMT","Code":"system-maintenance","Description":"network maintenance","EventId":"instance-event-2","State":"active"}]`
	f.set(awsScheduledPath, route{body: future})
	_, out := start(t, testConfig(v1alpha1.MetadataProviderAWS, f.URL, nil), Options{})
	out.wait(t, "HostEventStop", corev1.ConditionTrue, "AWSInstanceRetirementScheduled", "AWS.InstanceRetirement is Scheduled, not before 2099-01-21T09:00:43Z")
	out.wait(t, "HostEventRebootAfter48", corev1.ConditionTrue, "AWSSystemMaintenanceScheduled", "AWS.SystemMaintenance is Scheduled, not before 2019-01-21T09:00:43Z")

	// AWS moves the retirement (same EventId, new time): the old one is
	// canceled, the new one holds the condition with its new deadline.
	f.set(awsScheduledPath, route{body: strings.Replace(future, "21 Jan 2099 09:00:43", "25 Jan 2099 10:00:00", 1)})
	out.wait(t, "HostEventStop", corev1.ConditionTrue, "AWSInstanceRetirementScheduled", "AWS.InstanceRetirement is Scheduled, not before 2099-01-25T10:00:00Z")
	if evs := out.eventsWithReason("AWSInstanceRetirementCanceled"); len(evs) != 1 || !strings.Contains(evs[0].Message, "rescheduled") {
		t.Errorf("rescheduling: Canceled Events %+v, want one saying rescheduled", evs)
	}

	// Both leave the list: the one still ahead was canceled, the one past
	// its time happened.
	f.set(awsScheduledPath, route{body: "[]"})
	out.wait(t, "HostEventStop", corev1.ConditionFalse, "AWSInstanceRetirementCanceled", "")
	out.wait(t, "HostEventRebootAfter48", corev1.ConditionFalse, "AWSSystemMaintenanceExecuted", "")
	noRejections(t, f)
}

func TestAWSSpotAndRebalance(t *testing.T) {
	t.Parallel()
	f, _ := newAWS(t)
	f.set(awsScheduledPath, route{body: "[]"})
	f.set(awsRebalancePath, route{body: fixture(t, "aws/rebalance.json")})
	s, out := start(t, testConfig(v1alpha1.MetadataProviderAWS, f.URL, func(m *v1alpha1.MetadataConfig) { m.AWS.Rebalance = true }), Options{})
	if diff := cmp.Diff([]string{"HostEventDelete", "HostEventRebalanceRecommendation", "HostEventRebootAfter48", "HostEventStop"}, s.ConditionTypes()); diff != "" {
		t.Errorf("condition types with rebalance on (-want +got):\n%s", diff)
	}
	out.wait(t, "HostEventRebalanceRecommendation", corev1.ConditionTrue, "AWSRebalanceRecommendationScheduled",
		"AWS.RebalanceRecommendation is Scheduled, not before 2020-10-27T08:22:00Z")
	// 404 on spot/instance-action means no interruption.
	out.wait(t, "HostEventDelete", corev1.ConditionFalse, "NoHostEvent", "")

	spot := fixture(t, "aws/spot-instance-action.json")
	f.set(awsSpotPath, route{body: spot})
	out.wait(t, "HostEventDelete", corev1.ConditionTrue, "AWSSpotTerminateScheduled", "AWS.SpotTerminate is Scheduled, not before 2017-09-18T08:22:00Z")

	// For the spot endpoint 404 is an answer, so its failures are the others.
	var cases []failureCase
	for _, c := range failureCases(spot) {
		if c.name != "404" {
			cases = append(cases, c)
		}
	}
	checkFailures(t, f, s, out, awsSpotPath, "spot/instance-action", cases)

	f.set(awsSpotPath, route{body: strings.Replace(spot, "terminate", "stop", 1)})
	out.wait(t, "HostEventStop", corev1.ConditionTrue, "AWSSpotStopScheduled", "AWS.SpotStop is Scheduled, not before 2017-09-18T08:22:00Z")
	out.wait(t, "HostEventDelete", corev1.ConditionFalse, "AWSSpotTerminateExecuted", "")
	f.del(awsSpotPath)
	out.wait(t, "HostEventStop", corev1.ConditionFalse, "AWSSpotStopExecuted", "")
	noRejections(t, f)
}

func TestAWSTokenFlow(t *testing.T) {
	t.Parallel()
	f, tk := newAWS(t)
	f.set(awsScheduledPath, route{body: fixture(t, "aws/scheduled.json")})
	s, out := start(t, testConfig(v1alpha1.MetadataProviderAWS, f.URL, nil), Options{})
	out.wait(t, "HostEventRebootAfter48", corev1.ConditionTrue, "AWSSystemRebootScheduled", "")
	if n := f.hitCount(http.MethodPut, awsTokenPath); n != 1 {
		t.Errorf("%d token PUTs, want 1: the token is reused for its lifetime", n)
	}

	// The instance forgets its tokens: one 401, a new token, no error.
	tk.revoke()
	s.waitPolls(t, "events/maintenance/scheduled", 3)
	if n := f.hitCount(http.MethodPut, awsTokenPath); n != 2 {
		t.Errorf("%d token PUTs after a revocation, want 2", n)
	}
	if n := s.errorCount("events/maintenance/scheduled", "http_401"); n != 0 {
		t.Errorf("a revoked token was counted as %v errors; it should be renewed silently", n)
	}

	// No token to be had: counted, state kept.
	mark := out.mark()
	tk.setFailPut(http.StatusForbidden)
	tk.revoke()
	cluster.Eventually(t, 5*time.Second, func() error {
		if s.errorCount("events/maintenance/scheduled", "token") < 2 {
			return errors.New("token failures not counted")
		}
		return nil
	})
	if got := out.since(mark); len(got) > 0 {
		t.Errorf("conditions changed while no token could be had: %+v", got)
	}
	noRejections(t, f, "no valid "+awsTokenHeader)
}
