package metadata

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/test/cluster"
)

const azureVM = "aks-nodepool1-12345678-vmss_0"

// azureFake is a fake Azure IMDS: every request needs Metadata: true and an
// api-version; it records acknowledgement POSTs.
type azureFake struct {
	*fake
	mu       sync.Mutex
	acks     [][]string // EventIds of each accepted POST
	failNext int        // fail this many POSTs with 500 first
}

func newAzure(t *testing.T, vmName string) *azureFake {
	a := &azureFake{fake: newFake(t)}
	a.check = func(r *http.Request) (int, string) {
		if r.Header.Get("Metadata") != "true" {
			return http.StatusBadRequest, "missing Metadata: true"
		}
		if r.URL.Query().Get("api-version") == "" {
			return http.StatusBadRequest, "missing api-version"
		}
		return 0, ""
	}
	a.special = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost || r.URL.Path != azureEventsPath {
			return false
		}
		if status, why := a.check(r); status != 0 {
			a.reject(w, r, status, why)
			return true
		}
		if r.URL.Query().Get("api-version") != azureEventsVersion {
			a.reject(w, r, http.StatusBadRequest, "ack: api-version "+r.URL.Query().Get("api-version"))
			return true
		}
		body, _ := io.ReadAll(r.Body)
		var req struct {
			StartRequests []struct {
				EventID string `json:"EventId"`
			} `json:"StartRequests"`
		}
		if err := json.Unmarshal(body, &req); err != nil || len(req.StartRequests) == 0 {
			a.reject(w, r, http.StatusBadRequest, "ack: bad body "+string(body))
			return true
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.failNext > 0 {
			a.failNext--
			http.Error(w, "internal error", http.StatusInternalServerError)
			return true
		}
		var ids []string
		for _, sr := range req.StartRequests {
			ids = append(ids, sr.EventID)
		}
		a.acks = append(a.acks, ids)
		return true
	}
	a.set(azureNamePath, route{body: vmName})
	return a
}

func (a *azureFake) acknowledged() [][]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([][]string(nil), a.acks...)
}

func TestAzureScheduledEvents(t *testing.T) {
	t.Parallel()
	f := newAzure(t, azureVM)
	doc := fixture(t, "azure/scheduledevents.json")
	f.set(azureEventsPath, route{body: doc})
	s, out := start(t, testConfig(v1alpha1.MetadataProviderAzure, f.URL, nil), Options{})

	if diff := cmp.Diff([]string{"HostEventDelete", "HostEventFreeze", "HostEventRebootAfter48", "HostEventRedeploy"}, s.ConditionTypes()); diff != "" {
		t.Errorf("condition types (-want +got):\n%s", diff)
	}
	on := out.wait(t, "HostEventRebootAfter48", corev1.ConditionTrue, "AzureRebootScheduled",
		"Azure.Reboot is Scheduled, not before 2022-04-11T22:26:58Z")
	out.wait(t, "HostEventFreeze", corev1.ConditionFalse, "NoHostEvent", "")

	checkFailures(t, f.fake, s, out, azureEventsPath, "scheduledevents", failureCases(doc))
	f.set(azureEventsPath, route{body: doc})
	s.waitPolls(t, "scheduledevents", 3)
	if got, _ := out.get("HostEventRebootAfter48"); got != on {
		t.Errorf("after the endpoint recovered: %+v, want %+v unchanged", got, on)
	}

	// Started: NotBefore is emptied, the deadline stays what it was.
	started := strings.Replace(strings.Replace(doc, `"EventStatus":"Scheduled"`, `"EventStatus":"Started"`, 1),
		`"NotBefore":"Mon, 11 Apr 2022 22:26:58 GMT"`, `"NotBefore":""`, 1)
	f.set(azureEventsPath, route{body: started})
	out.wait(t, "HostEventRebootAfter48", corev1.ConditionTrue, "AzureRebootExecuting",
		"Azure.Reboot is Executing, not before 2022-04-11T22:26:58Z")

	// An event is over when it leaves the list.
	f.set(azureEventsPath, route{body: fixture(t, "azure/scheduledevents-empty.json")})
	out.wait(t, "HostEventRebootAfter48", corev1.ConditionFalse, "AzureRebootExecuted", "")
	if n := len(out.eventsWithReason("AzureRebootScheduled")); n != 1 {
		t.Errorf("%d AzureRebootScheduled Events, want 1", n)
	}
	noRejections(t, f.fake)
	if got := f.acknowledged(); len(got) != 0 {
		t.Errorf("acknowledged %v with acknowledge off", got)
	}
}

func TestAzureOtherVMsEventsAreIgnored(t *testing.T) {
	t.Parallel()
	f := newAzure(t, "aks-nodepool1-12345678-vmss_7")
	f.set(azureEventsPath, route{body: fixture(t, "azure/scheduledevents.json")})
	s, out := start(t, testConfig(v1alpha1.MetadataProviderAzure, f.URL, nil), Options{})
	out.wait(t, "HostEventRebootAfter48", corev1.ConditionFalse, "NoHostEvent", "")
	s.waitPolls(t, "scheduledevents", 3)
	out.wait(t, "HostEventRebootAfter48", corev1.ConditionFalse, "NoHostEvent", "")
	noRejections(t, f.fake)
}

func TestAzurePreemptAndNameInAnyCase(t *testing.T) {
	t.Parallel()
	// A spot eviction in the same document, and a VM name in another case.
	f := newAzure(t, strings.ToUpper(azureVM))
	f.set(azureEventsPath, route{body: `{"DocumentIncarnation":5,"Events":[{"EventId":"A","EventStatus":"Scheduled","EventType":"Preempt","ResourceType":"VirtualMachine","Resources":["` + azureVM + `"],"NotBefore":"Mon, 11 Apr 2099 22:26:58 GMT","Description":"spot eviction","EventSource":"Platform","DurationInSeconds":-1}]}`})
	_, out := start(t, testConfig(v1alpha1.MetadataProviderAzure, f.URL, nil), Options{})
	out.wait(t, "HostEventDelete", corev1.ConditionTrue, "AzurePreemptScheduled", "Azure.Preempt is Scheduled, not before 2099-04-11T22:26:58Z")
	// Gone before its time: canceled, as Azure documents for a removed event.
	f.set(azureEventsPath, route{body: `{"DocumentIncarnation":6,"Events":[]}`})
	out.wait(t, "HostEventDelete", corev1.ConditionFalse, "AzurePreemptCanceled", "")
}

func TestAzureAcknowledgeOnceDrained(t *testing.T) {
	t.Parallel()
	f := newAzure(t, azureVM)
	doc := fixture(t, "azure/scheduledevents.json")
	f.set(azureEventsPath, route{body: doc})
	var state atomic.Value
	state.Store("")
	var stateReads atomic.Int32
	nodeState := func(context.Context) (string, error) {
		stateReads.Add(1)
		s := state.Load().(string)
		if s == "error" {
			return "", errors.New("API server unreachable")
		}
		return s, nil
	}
	cfg := testConfig(v1alpha1.MetadataProviderAzure, f.URL, func(m *v1alpha1.MetadataConfig) { m.Azure.Acknowledge = true })
	s, out := start(t, cfg, Options{NodeState: nodeState})
	out.wait(t, "HostEventRebootAfter48", corev1.ConditionTrue, "AzureRebootScheduled", "")

	// Not while the node is held but not drained, nor when its state is unknown.
	for _, st := range []string{"", "Cordoned", "Draining", "error", "DrainFailed"} {
		state.Store(st)
		s.waitPolls(t, "scheduledevents", 3)
		if got := f.acknowledged(); len(got) != 0 {
			t.Fatalf("acknowledged %v while the node state was %q", got, st)
		}
	}

	// Drained: approved exactly once, although the event stays Scheduled
	// for a few more reads and the first POST fails.
	f.mu.Lock()
	f.failNext = 1
	f.mu.Unlock()
	state.Store("Drained")
	cluster.Eventually(t, 5*time.Second, func() error {
		if len(f.acknowledged()) == 0 {
			return errors.New("not acknowledged")
		}
		return nil
	})
	s.waitPolls(t, "scheduledevents", 5)
	if diff := cmp.Diff([][]string{{"C7061BAC-AFDC-4513-B24B-AA5F13A16123"}}, f.acknowledged()); diff != "" {
		t.Errorf("acknowledgements (-want +got):\n%s", diff)
	}
	if n := s.errorCount("scheduledevents/ack", "http_500"); n != 1 {
		t.Errorf("failed POSTs counted %v, want 1", n)
	}
	if n := counterValue(s.metrics.Acknowledgements, "azure"); n != 1 {
		t.Errorf("nodewarden_agent_metadata_acknowledgements_total = %v, want 1", n)
	}
	evs := out.eventsWithReason(ReasonScheduledEventAcknowledged)
	if len(evs) != 1 || evs[0].Key != "metadata/azure/ack/C7061BAC-AFDC-4513-B24B-AA5F13A16123" {
		t.Errorf("acknowledgement Events %+v", evs)
	}
	// Nothing left to approve: the node's state is not read any more.
	reads := stateReads.Load()
	s.waitPolls(t, "scheduledevents", 3)
	if got := stateReads.Load(); got != reads {
		t.Errorf("node state read %d more times with nothing to acknowledge", got-reads)
	}

	// A second event: approved once, alone. An unmapped type is not approved.
	second := strings.Replace(doc, `]}`, `,{"EventId":"D2","EventStatus":"Scheduled","EventType":"Redeploy","ResourceType":"VirtualMachine","Resources":["`+azureVM+`"],"NotBefore":"Tue, 12 Apr 2022 01:00:00 GMT","Description":"host failure","EventSource":"Platform","DurationInSeconds":-1},`+
		`{"EventId":"D3","EventStatus":"Scheduled","EventType":"Hibernate","ResourceType":"VirtualMachine","Resources":["`+azureVM+`"],"NotBefore":"Tue, 12 Apr 2022 01:00:00 GMT","Description":"?","EventSource":"Platform","DurationInSeconds":-1}]}`, 1)
	f.set(azureEventsPath, route{body: second})
	out.wait(t, "HostEventRedeploy", corev1.ConditionTrue, "AzureRedeployScheduled", "")
	s.waitPolls(t, "scheduledevents", 5)
	if diff := cmp.Diff([][]string{{"C7061BAC-AFDC-4513-B24B-AA5F13A16123"}, {"D2"}}, f.acknowledged()); diff != "" {
		t.Errorf("acknowledgements (-want +got):\n%s", diff)
	}
	if n := len(out.eventsWithReason("AzureHibernateScheduled")); n != 1 {
		t.Errorf("an unmapped Azure event made %d Events, want 1 (Warning)", n)
	}
	noRejections(t, f.fake)
}

func TestAzureAcknowledgeNeedsNodeState(t *testing.T) {
	t.Parallel()
	f := newAzure(t, azureVM)
	f.set(azureEventsPath, route{body: fixture(t, "azure/scheduledevents.json")})
	cfg := testConfig(v1alpha1.MetadataProviderAzure, f.URL, func(m *v1alpha1.MetadataConfig) { m.Azure.Acknowledge = true })
	s, out := start(t, cfg, Options{})
	out.wait(t, "HostEventRebootAfter48", corev1.ConditionTrue, "AzureRebootScheduled", "")
	s.waitPolls(t, "scheduledevents", 3)
	if got := f.acknowledged(); len(got) != 0 {
		t.Errorf("acknowledged %v without knowing the node's state", got)
	}
}

func TestAzureVMNameUnavailable(t *testing.T) {
	t.Parallel()
	f := newAzure(t, azureVM)
	f.set(azureNamePath, route{status: http.StatusServiceUnavailable})
	f.set(azureEventsPath, route{body: fixture(t, "azure/scheduledevents.json")})
	cfg := testConfig(v1alpha1.MetadataProviderAzure, f.URL, nil)
	s, out := start(t, cfg, Options{DeclareAfter: 300 * time.Millisecond})
	// Without the VM's name no event can be attributed: nothing is read,
	// the failure is counted, and the conditions are declared anyway.
	out.wait(t, "HostEventRebootAfter48", corev1.ConditionFalse, "NoHostEvent", "")
	if n := s.errorCount("instance/compute/name", "http_503"); n < 1 {
		t.Errorf("compute name failures counted %v", n)
	}
	f.set(azureNamePath, route{body: azureVM})
	out.wait(t, "HostEventRebootAfter48", corev1.ConditionTrue, "AzureRebootScheduled", "")
}
