package metadata

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/deadline"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// newGCP is a fake GCE metadata server: Metadata-Flavor: Google required on
// requests and sent on responses, ETags and long polls as GCE does them.
func newGCP(t *testing.T) *fake {
	f := newFake(t)
	f.longPoll = true
	f.header.Set("Metadata-Flavor", "Google")
	f.check = func(r *http.Request) (int, string) {
		if r.Header.Get("Metadata-Flavor") != "Google" {
			return http.StatusForbidden, "missing Metadata-Flavor: Google"
		}
		return 0, ""
	}
	f.set(gcpMaintenancePath, route{body: "NONE"})
	f.set(gcpPreemptedPath, route{body: "FALSE"})
	f.set(gcpUpcomingPath, route{body: "{}"})
	f.set(gcpOnHostMaintenancePath, route{body: "TERMINATE"})
	return f
}

func TestGCPUpcomingMaintenance(t *testing.T) {
	t.Parallel()
	f := newGCP(t)
	upcoming := fixture(t, "gcp/upcoming-maintenance.json")
	f.set(gcpUpcomingPath, route{body: upcoming})
	s, out := start(t, testConfig(v1alpha1.MetadataProviderGCP, f.URL, nil), Options{})
	if diff := cmp.Diff([]string{"HostEventDelete", "HostEventFreeze", "HostEventRedeploy"}, s.ConditionTypes()); diff != "" {
		t.Errorf("condition types (-want +got):\n%s", diff)
	}
	on := out.wait(t, "HostEventRedeploy", corev1.ConditionTrue, "GCPUpcomingTerminateOnHostMaintenanceScheduled",
		"GCP.UpcomingTerminateOnHostMaintenance is Scheduled, not before 2024-12-01T19:00:01Z")
	out.wait(t, "HostEventFreeze", corev1.ConditionFalse, "NoHostEvent", "")
	out.wait(t, "HostEventDelete", corev1.ConditionFalse, "NoHostEvent", "")

	checkFailures(t, f, s, out, gcpUpcomingPath, "upcoming-maintenance", failureCases(upcoming))
	f.set(gcpUpcomingPath, route{body: upcoming})
	s.waitPolls(t, "upcoming-maintenance", 3)
	if got, _ := out.get("HostEventRedeploy"); got != on {
		t.Errorf("after the endpoint recovered: %+v, want %+v unchanged", got, on)
	}

	f.set(gcpUpcomingPath, route{body: "{}"})
	out.wait(t, "HostEventRedeploy", corev1.ConditionFalse, "GCPUpcomingTerminateOnHostMaintenanceExecuted", "")
	noRejections(t, f)
}

func TestGCPUpcomingMaintenanceLiveMigrates(t *testing.T) {
	t.Parallel()
	f := newGCP(t)
	f.set(gcpOnHostMaintenancePath, route{body: "MIGRATE"})
	f.set(gcpUpcomingPath, route{body: strings.Replace(fixture(t, "gcp/upcoming-maintenance.json"), "PENDING", "ONGOING", 1)})
	_, out := start(t, testConfig(v1alpha1.MetadataProviderGCP, f.URL, nil), Options{})
	out.wait(t, "HostEventFreeze", corev1.ConditionTrue, "GCPUpcomingMigrateOnHostMaintenanceExecuting",
		"GCP.UpcomingMigrateOnHostMaintenance is Executing, not before 2024-12-01T19:00:01Z")
	out.wait(t, "HostEventRedeploy", corev1.ConditionFalse, "NoHostEvent", "")
}

// A change of maintenance-event is seen within one round trip of the long
// poll that is already waiting, not after a poll interval (an hour here).
func TestGCPLongPoll(t *testing.T) {
	t.Parallel()
	f := newGCP(t)
	cfg := testConfig(v1alpha1.MetadataProviderGCP, f.URL, func(m *v1alpha1.MetadataConfig) {
		m.GCP.PollInterval.Duration = time.Hour
	})
	_, out := start(t, cfg, Options{})
	out.wait(t, "HostEventFreeze", corev1.ConditionFalse, "NoHostEvent", "")
	// Wait until the long poll is parked on the server with the ETag of NONE.
	etag := etagOf(route{status: http.StatusOK, body: "NONE"})
	cluster.Eventually(t, 5*time.Second, func() error {
		for _, q := range f.gets(gcpMaintenancePath) {
			v, _ := url.ParseQuery(q)
			if v.Get("wait_for_change") == "true" && v.Get("last_etag") == etag && v.Get("timeout_sec") == "3600" {
				return nil
			}
		}
		return errors.New("no long poll with wait_for_change=true&last_etag=<NONE's>&timeout_sec=3600 yet")
	})

	before := time.Now().UTC().Truncate(time.Second)
	f.set(gcpMaintenancePath, route{body: fixture(t, "gcp/maintenance-event.txt")})
	changed := time.Now()
	w := out.wait(t, "HostEventRedeploy", corev1.ConditionTrue, "GCPTerminateOnHostMaintenanceScheduled", "")
	if d := time.Since(changed); d > 2*time.Second {
		t.Errorf("change seen after %v, want within one round trip", d)
	}
	if !strings.HasPrefix(w.Message, "GCP.TerminateOnHostMaintenance is Scheduled, ") {
		t.Fatalf("message %q", w.Message)
	}
	// GCP gives no time: the deadline is when the agent saw the notice.
	if at, ok := deadline.Parse(w.Message); !ok || at.Before(before) || at.After(time.Now()) {
		t.Errorf("message %q: want the deadline to be the time the notice was seen (%v .. now)", w.Message, before)
	}

	f.set(gcpMaintenancePath, route{body: "MIGRATE_ON_HOST_MAINTENANCE"})
	out.wait(t, "HostEventFreeze", corev1.ConditionTrue, "GCPMigrateOnHostMaintenanceScheduled", "")
	out.wait(t, "HostEventRedeploy", corev1.ConditionFalse, "GCPTerminateOnHostMaintenanceExecuted", "")
	f.set(gcpMaintenancePath, route{body: "NONE"})
	out.wait(t, "HostEventFreeze", corev1.ConditionFalse, "GCPMigrateOnHostMaintenanceExecuted", "")

	f.set(gcpPreemptedPath, route{body: "TRUE"})
	out.wait(t, "HostEventDelete", corev1.ConditionTrue, "GCPPreemptedExecuting", "")

	// The hour-long interval was never waited for: a handful of requests.
	if n := f.hitCount(http.MethodGet, gcpUpcomingPath); n != 1 {
		t.Errorf("upcoming-maintenance read %d times within its hour", n)
	}
	noRejections(t, f)
}

func TestGCPBadValues(t *testing.T) {
	t.Parallel()
	f := newGCP(t)
	f.set(gcpPreemptedPath, route{body: "TRUE"})
	s, out := start(t, testConfig(v1alpha1.MetadataProviderGCP, f.URL, nil), Options{})
	out.wait(t, "HostEventDelete", corev1.ConditionTrue, "GCPPreemptedExecuting", "")
	checkFailures(t, f, s, out, gcpMaintenancePath, "maintenance-event", []failureCase{
		{"garbage", route{body: "<html>hello</html>"}, "bad_response"},
		{"503", route{status: http.StatusServiceUnavailable}, "http_503"},
	})
	checkFailures(t, f, s, out, gcpPreemptedPath, "preempted", []failureCase{
		{"garbage", route{body: "maybe"}, "bad_response"},
	})
	noRejections(t, f)
}

// Something that is not the metadata server (it does not answer with
// Metadata-Flavor: Google) is not believed.
func TestGCPResponseMustComeFromGoogle(t *testing.T) {
	t.Parallel()
	f := newGCP(t)
	f.header.Del("Metadata-Flavor")
	s, out := start(t, testConfig(v1alpha1.MetadataProviderGCP, f.URL, nil), Options{DeclareAfter: 300 * time.Millisecond})
	out.wait(t, "HostEventDelete", corev1.ConditionFalse, "NoHostEvent", "")
	cluster.Eventually(t, 5*time.Second, func() error {
		if s.errorCount("maintenance-event", "bad_response") < 1 {
			return errors.New("not counted")
		}
		return nil
	})
}

func (f *fake) gets(path string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, q := range f.queries {
		if p, query, _ := strings.Cut(q, "?"); p == path {
			out = append(out, query)
		}
	}
	return out
}
