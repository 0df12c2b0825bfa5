package metadata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/agent/hostevent"
	"github.com/nodewarden/nodewarden/internal/agent/nodeevent"
)

// Azure Instance Metadata Service, Scheduled Events.
const (
	azurePrefix          = "Azure"
	azureEventsPath      = "/metadata/scheduledevents"
	azureEventsVersion   = "2020-07-01"
	azureNamePath        = "/metadata/instance/compute/name"
	azureInstanceVersion = "2021-02-01"
	// ReasonScheduledEventAcknowledged is the reason of the Kubernetes
	// Event recorded when an Azure event is approved early.
	ReasonScheduledEventAcknowledged = "ScheduledEventAcknowledged"
)

// azure is the Azure provider's state, owned by its one feed's goroutine.
type azure struct {
	client    *client
	mapping   hostevent.Mapping
	nodeState NodeStateFunc // nil: never acknowledge
	metrics   *Metrics
	log       logr.Logger

	vmName string               // from compute metadata, once known
	times  map[string]time.Time // EventId -> NotBefore, kept once Started empties it
	acked  map[string]bool      // EventIds approved by this process
}

func (a *azure) feeds(c *v1alpha1.AzureMetadataConfig, hc *http.Client) []*feed {
	a.client = newClient(hc, c.Endpoint, c.Timeout.Duration)
	a.client.header.Set("Metadata", "true")
	a.times, a.acked = map[string]time.Time{}, map[string]bool{}
	return []*feed{{endpoint: "scheduledevents", interval: c.PollInterval.Duration, fetch: a.fetch}}
}

type azureDocument struct {
	DocumentIncarnation int           `json:"DocumentIncarnation"`
	Events              *[]azureEvent `json:"Events"`
}

type azureEvent struct {
	EventID      string   `json:"EventId"`
	EventStatus  string   `json:"EventStatus"`
	EventType    string   `json:"EventType"`
	ResourceType string   `json:"ResourceType"`
	Resources    []string `json:"Resources"`
	NotBefore    string   `json:"NotBefore"`
	Description  string   `json:"Description"`
	EventSource  string   `json:"EventSource"`
}

func (a *azure) fetch(ctx context.Context) (snapshot, error) {
	if a.vmName == "" {
		// Scheduled Events lists the events of every VM in the
		// availability set or scale set; Resources says whose each is.
		q := url.Values{"api-version": {azureInstanceVersion}, "format": {"text"}}
		resp, err := a.client.get(ctx, azureNamePath, q, 0)
		if err != nil {
			return snapshot{}, withEndpoint(err, "instance/compute/name")
		}
		name := strings.TrimSpace(string(resp.body))
		if name == "" || strings.ContainsAny(name, "\r\n") {
			return snapshot{}, withEndpoint(badResponse("compute name %q", snippet(resp.body)), "instance/compute/name")
		}
		a.vmName = name
		a.log.Info("Azure VM name", "name", name)
	}
	resp, err := a.client.get(ctx, azureEventsPath, url.Values{"api-version": {azureEventsVersion}}, 0)
	if err != nil {
		return snapshot{}, err
	}
	events, pending, err := a.parse(resp.body, time.Now())
	if err != nil {
		return snapshot{}, err
	}
	return snapshot{events: events, notes: a.acknowledge(ctx, pending)}, nil
}

// parse reads a Scheduled Events document, keeps this VM's events and
// returns them with those still Scheduled (which may be acknowledged). A
// document that does not parse, or an event of this VM whose NotBefore does
// not, fails the read.
func (a *azure) parse(body []byte, now time.Time) (events []feedEvent, scheduled []feedEvent, err error) {
	var doc azureDocument
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, badResponse("scheduledevents: %v: %s", err, snippet(body))
	}
	if doc.Events == nil {
		return nil, nil, badResponse("scheduledevents: no Events list: %s", snippet(body))
	}
	listed := map[string]bool{}
	for i, e := range *doc.Events {
		if !slices.ContainsFunc(e.Resources, func(r string) bool { return strings.EqualFold(r, a.vmName) }) {
			continue
		}
		typ, ok := eventType(azurePrefix, e.EventType)
		if !ok || e.EventID == "" {
			return nil, nil, badResponse("scheduledevents: Events[%d]: EventType %q EventId %q", i, e.EventType, e.EventID)
		}
		listed[e.EventID] = true
		at, known := a.times[e.EventID]
		if e.NotBefore != "" {
			if at, err = parseTime(e.NotBefore, time.RFC1123, time.RFC1123Z, time.RFC3339); err != nil {
				return nil, nil, badResponse("scheduledevents: Events[%d]: NotBefore: %v", i, err)
			}
		} else if !known {
			// Started before the agent saw it: NotBefore is gone.
			at = now.UTC().Truncate(time.Second)
		}
		a.times[e.EventID] = at
		fe := feedEvent{
			Event: hostevent.Event{Type: typ, Status: azureStatus(e.EventStatus), ActionTime: at},
			Key:   e.EventID,
			Detail: fmt.Sprintf("EventId %s from %s: %s (DocumentIncarnation %d)",
				e.EventID, e.EventSource, e.Description, doc.DocumentIncarnation),
		}
		events = append(events, fe)
		if fe.Status == hostevent.StatusScheduled {
			scheduled = append(scheduled, fe)
		}
	}
	for id := range a.times {
		if !listed[id] {
			delete(a.times, id)
		}
	}
	return events, scheduled, nil
}

func azureStatus(s string) hostevent.Status {
	switch strings.ToLower(s) {
	case "started":
		return hostevent.StatusExecuting
	case "completed":
		return hostevent.StatusExecuted
	case "canceled", "cancelled":
		return hostevent.StatusCanceled
	}
	// Scheduled, and whatever Azure adds: pending until it leaves the list.
	return hostevent.StatusScheduled
}

// acknowledge approves (StartRequests) the scheduled events of this VM that
// drive a condition and were not approved yet, once the node is Drained:
// the workloads are gone, so the maintenance may as well start now. Each
// EventId is approved once; a failed POST is retried on the next read.
func (a *azure) acknowledge(ctx context.Context, scheduled []feedEvent) []nodeevent.Event {
	if a.nodeState == nil {
		return nil
	}
	var ids []string
	var todo []feedEvent
	for _, fe := range scheduled {
		if _, mapped := a.mapping.ConditionType(fe.Type); mapped && !a.acked[fe.Key] {
			ids = append(ids, fe.Key)
			todo = append(todo, fe)
		}
	}
	for id := range a.acked {
		if !slices.ContainsFunc(scheduled, func(fe feedEvent) bool { return fe.Key == id }) {
			delete(a.acked, id) // no longer Scheduled: never approved again
		}
	}
	if len(ids) == 0 {
		return nil
	}
	state, err := a.nodeState(ctx)
	if err != nil {
		a.log.Error(err, "reading the node's state to acknowledge scheduled events; retrying on the next read", "events", ids)
		return nil
	}
	if state != string(v1alpha1.StateDrained) {
		a.log.V(1).Info("not acknowledging scheduled events until the node is Drained", "state", state, "events", ids)
		return nil
	}
	type startRequest struct {
		EventID string `json:"EventId"`
	}
	var body struct {
		StartRequests []startRequest `json:"StartRequests"`
	}
	for _, id := range ids {
		body.StartRequests = append(body.StartRequests, startRequest{EventID: id})
	}
	data, err := json.Marshal(body)
	if err != nil {
		return nil
	}
	if _, err := a.client.do(ctx, http.MethodPost, azureEventsPath, url.Values{"api-version": {azureEventsVersion}}, data, 0); err != nil {
		a.metrics.failed(string(v1alpha1.MetadataProviderAzure), "scheduledevents/ack", reasonOf(err))
		a.log.Error(err, "acknowledging scheduled events failed; retrying on the next read", "events", ids)
		return nil
	}
	a.metrics.acknowledged(string(v1alpha1.MetadataProviderAzure), len(ids))
	notes := make([]nodeevent.Event, 0, len(todo))
	for _, fe := range todo {
		a.acked[fe.Key] = true
		a.log.Info("acknowledged scheduled event: the node is Drained", "id", fe.Key, "type", fe.Type, "notBefore", fe.ActionTime)
		notes = append(notes, nodeevent.Event{
			Key:    "metadata/azure/ack/" + fe.Key,
			Type:   corev1.EventTypeNormal,
			Reason: ReasonScheduledEventAcknowledged,
			Message: fmt.Sprintf("approved %s %s (StartRequests): the node is Drained, so the maintenance may start now instead of at %s",
				fe.Type, fe.Key, fe.ActionTime.UTC().Format(time.RFC3339)),
		})
	}
	return notes
}

// withEndpoint labels err with the endpoint of the helper request that failed.
func withEndpoint(err error, endpoint string) error {
	var fe *fetchError
	if errors.As(err, &fe) {
		c := *fe
		c.endpoint = endpoint
		return &c
	}
	return &fetchError{endpoint: endpoint, reason: reasonOf(err), err: err}
}
