package metadata

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/agent/condition"
	"github.com/nodewarden/nodewarden/internal/agent/hostevent"
	"github.com/nodewarden/nodewarden/internal/agent/metrics"
	"github.com/nodewarden/nodewarden/internal/agent/nodeevent"
	"github.com/nodewarden/nodewarden/internal/agent/source"
)

// SourceName starts the name of the source in logs and in the agent's
// "claimed by two sources" error.
const SourceName = "cloud-metadata"

// DefaultDeclareAfter is how long the source waits for every endpoint to
// answer once before it declares its conditions anyway.
const DefaultDeclareAfter = time.Minute

// NodeStateFunc returns the value of the node's nodewarden.io/state
// annotation ("" when absent). The Azure provider calls it only while an
// event it may acknowledge is pending.
type NodeStateFunc func(ctx context.Context) (string, error)

// Options are what the source needs besides the configuration.
type Options struct {
	// BootTime of the node (the agent reads it once); zero means unknown.
	// An active event due before the boot is taken as done.
	BootTime time.Time
	// NodeState tells the Azure provider when the node is Drained, for
	// metadata.azure.acknowledge. Nil means never acknowledge (logged at
	// start when acknowledge is on). NodeStateFromAPI is one.
	NodeState NodeStateFunc
	// Registerer gets the source's collectors (see MetricsFor); nil
	// registers them nowhere.
	Registerer prometheus.Registerer
	// AgentMetrics counts host events (nodewarden_agent_host_events_total)
	// as the host event log does; may be nil.
	AgentMetrics *metrics.Agent
	Log          logr.Logger
	// HTTPClient replaces the default client (no proxy, no redirects).
	HTTPClient *http.Client
	// DeclareAfter overrides DefaultDeclareAfter.
	DeclareAfter time.Duration
}

// Source reads one cloud's instance-metadata endpoint and keeps the mapped
// Node conditions. It implements source.Source.
type Source struct {
	provider v1alpha1.MetadataProvider // resolved; "" when auto found no cloud
	detected string                    // what provider auto saw, for the log
	endpoint string
	mapping  hostevent.Mapping
	feeds    []*feed

	bootTime     time.Time
	declareAfter time.Duration
	notes        []string // said once when Run starts
	metrics      *Metrics
	agentMetrics *metrics.Agent
	log          logr.Logger
}

var _ source.Source = (*Source)(nil)

// New builds the metadata source of cfg (defaulted and valid), or returns
// nil when metadata.provider is none. With provider auto it reads the DMI
// files now; on a machine of no known cloud the source owns no condition
// and Run only says so. New starts nothing: the agent builds its sources
// more than once (to check a configuration before it switches to it).
func New(cfg *v1alpha1.AgentConfig, opts Options) (*Source, error) {
	m := &cfg.Metadata
	if !m.Enabled() {
		return nil, nil
	}
	full, err := hostevent.MappingFor(m.Conditions)
	if err != nil {
		return nil, fmt.Errorf("metadata.conditions: %w", err)
	}
	mx, err := MetricsFor(opts.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Source{
		provider:     m.Provider,
		bootTime:     opts.BootTime,
		declareAfter: opts.DeclareAfter,
		metrics:      mx,
		agentMetrics: opts.AgentMetrics,
	}
	if s.declareAfter <= 0 {
		s.declareAfter = DefaultDeclareAfter
	}
	if s.provider == v1alpha1.MetadataProviderAuto {
		s.provider, s.detected = Detect(m.DMIPath)
	}
	s.log = opts.Log.WithName(SourceName).WithValues("provider", string(s.provider))
	if s.provider == "" {
		return s, nil
	}
	s.mapping, err = restrict(full, func(eventType string) bool { return producible(s.provider, m, eventType) })
	if err != nil {
		return nil, fmt.Errorf("metadata.conditions: %w", err)
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = newHTTPClient()
	}
	switch s.provider {
	case v1alpha1.MetadataProviderAlibaba:
		s.endpoint = m.Alibaba.Endpoint
		s.feeds = alibabaFeeds(&m.Alibaba, hc, s.log)
	case v1alpha1.MetadataProviderAWS:
		s.endpoint = m.AWS.Endpoint
		s.feeds = awsFeeds(&m.AWS, hc)
	case v1alpha1.MetadataProviderAzure:
		s.endpoint = m.Azure.Endpoint
		ack := m.Azure.Acknowledge
		if ack && opts.NodeState == nil {
			ack = false
			s.notes = append(s.notes, "metadata.azure.acknowledge is on, but the agent gave no way to read the node's state; not acknowledging")
		}
		a := &azure{mapping: s.mapping, metrics: mx, log: s.log}
		if ack {
			a.nodeState = opts.NodeState
		}
		s.feeds = a.feeds(&m.Azure, hc)
	case v1alpha1.MetadataProviderGCP:
		s.endpoint = m.GCP.Endpoint
		s.feeds = gcpFeeds(&m.GCP, hc)
	default:
		return nil, fmt.Errorf("metadata.provider: unknown provider %q", s.provider)
	}
	return s, nil
}

// Name identifies the source, e.g. "cloud-metadata aws http://169.254.169.254".
func (s *Source) Name() string {
	if s.provider == "" {
		return SourceName + " auto (no cloud detected)"
	}
	return SourceName + " " + string(s.provider) + " " + s.endpoint
}

// Provider is the cloud the source reads, "" when auto detected none.
func (s *Source) Provider() v1alpha1.MetadataProvider { return s.provider }

// ConditionTypes are the mapped conditions at least one of whose event types
// this provider can produce: an AWS node does not declare HostEventFreeze.
func (s *Source) ConditionTypes() []string { return s.mapping.ConditionTypes() }

// result is one successful read of one feed.
type result struct {
	feed *feed
	snapshot
}

// Run polls every endpoint of the provider and publishes until ctx ends.
//
// Conditions are declared once every endpoint has answered once, or after
// DeclareAfter if one does not: declaring them False earlier would, after an
// agent restart, flip a True condition False and back. A failed read changes
// nothing; the next successful one is compared with the last.
func (s *Source) Run(ctx context.Context, out source.Sink) {
	if s.provider == "" {
		s.log.Info("metadata.provider is auto, but this machine is of no known cloud; reading no metadata endpoint", "dmi", s.detected)
		return
	}
	s.log.Info("reading the instance-metadata endpoint", "endpoint", s.endpoint, "detected", s.detected,
		"conditions", s.mapping.ConditionTypes())
	for _, n := range s.notes {
		s.log.Info(n)
	}

	results := make(chan result)
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, f := range s.feeds {
		wg.Go(func() { s.runFeed(ctx, f, results) })
	}

	st := newState(s.mapping)
	pending := map[*feed]bool{}
	for _, f := range s.feeds {
		pending[f] = true
	}
	declared := false
	declare := time.NewTimer(s.declareAfter)
	defer declare.Stop()
	var published []condition.Want
	publish := func() {
		wants := s.wants(st.tracker)
		if !slices.Equal(wants, published) {
			out.SetConditions(wants...)
			published = wants
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-declare.C:
			if !declared {
				s.log.Info("not every metadata endpoint answered yet; declaring the conditions with what is known")
				declared = true
				publish()
			}
		case r := <-results:
			for _, fe := range st.apply(r.feed.endpoint, r.events, time.Now()) {
				s.agentMetrics.HostEvent(fe.Type, string(fe.Status))
				s.log.Info("host event", "type", fe.Type, "status", fe.Status, "notBefore", fe.ActionTime, "id", fe.Key)
				out.Record(s.nodeEvent(st.tracker, fe))
			}
			for _, n := range r.notes {
				out.Record(n)
			}
			delete(pending, r.feed)
			if !declared && len(pending) == 0 {
				declared = true
			}
			if declared {
				publish()
			}
		}
	}
}

func (s *Source) wants(t *hostevent.Tracker) []condition.Want {
	var wants []condition.Want
	for _, c := range t.Conditions(s.bootTime) {
		wants = append(wants, condition.Want{
			Type: corev1.NodeConditionType(c.Type), Status: c.Status, Reason: c.Reason, Message: c.Message,
		})
	}
	return wants
}

// nodeEvent is the Kubernetes Event for a new observation; the key is stable
// across restarts, so the recorder creates it once.
func (s *Source) nodeEvent(t *hostevent.Tracker, fe feedEvent) nodeevent.Event {
	kind := corev1.EventTypeNormal
	if t.Unmapped(fe.Event) || fe.Status.Active() {
		kind = corev1.EventTypeWarning
	}
	msg := fe.Message()
	if fe.Detail != "" {
		msg += "; " + fe.Detail
	}
	return nodeevent.Event{
		Key:     fmt.Sprintf("metadata/%s/%s/%s/%s", s.provider, fe.Type, fe.Status, fe.ActionTime.UTC().Format(time.RFC3339)),
		Type:    kind,
		Reason:  fe.Reason(),
		Message: msg,
	}
}

// producible reports whether provider p can report eventType. Event types
// are named after their cloud (AWS., Azure., GCP., Alibaba.); Alibaba
// Cloud's system events keep their own names (SystemMaintenance.Reboot).
func producible(p v1alpha1.MetadataProvider, m *v1alpha1.MetadataConfig, eventType string) bool {
	prefix, _, _ := strings.Cut(eventType, ".")
	switch p {
	case v1alpha1.MetadataProviderAWS:
		return prefix == awsPrefix && (eventType != awsRebalanceType || m.AWS.Rebalance)
	case v1alpha1.MetadataProviderAzure:
		return prefix == azurePrefix
	case v1alpha1.MetadataProviderGCP:
		return prefix == gcpPrefix
	case v1alpha1.MetadataProviderAlibaba:
		return prefix == alibabaPrefix || !slices.Contains([]string{awsPrefix, azurePrefix, gcpPrefix}, prefix)
	}
	return false
}

// restrict keeps the conditions of m that have an event type keep accepts,
// with all their event types.
func restrict(m hostevent.Mapping, keep func(eventType string) bool) (hostevent.Mapping, error) {
	table := map[string][]string{}
	for _, cond := range m.ConditionTypes() {
		types := m.EventTypes(cond)
		if slices.ContainsFunc(types, keep) {
			table[cond] = types
		}
	}
	return hostevent.NewMapping(table)
}

// feedEvent is an event as a provider reports it.
type feedEvent struct {
	hostevent.Event // Type, Status, ActionTime; LoggedAt is set by the source
	// Key is the cloud's id of the event (AWS and Azure EventId), "" if none.
	Key string
	// Detail is extra text for the Kubernetes Event: id, description.
	Detail string
}

// snapshot is what one read of an endpoint says: every event it lists now,
// and Kubernetes Events to record as they are (acknowledgements).
type snapshot struct {
	events []feedEvent
	notes  []nodeevent.Event
}

// state is the source's memory across reads.
type state struct {
	tracker *hostevent.Tracker
	// active holds, per endpoint, the events its last read listed as active.
	active map[string]map[hostevent.ID]feedEvent
	// firstSeen is when each (event, status) was first read: the LoggedAt
	// of every later read, so that repeating a read changes no message.
	firstSeen map[seenKey]time.Time
}

type seenKey struct {
	id     hostevent.ID
	status hostevent.Status
}

// maxFirstSeen bounds firstSeen; past it, entries of forgotten events go.
const maxFirstSeen = 1024

func newState(m hostevent.Mapping) *state {
	return &state{
		tracker:   hostevent.NewTracker(m),
		active:    map[string]map[hostevent.ID]feedEvent{},
		firstSeen: map[seenKey]time.Time{},
	}
}

// apply feeds one successful read of endpoint to the tracker and returns the
// observations that are new. An event the endpoint listed as active last
// time and lists no more is over: Canceled if its time had not come yet (or
// the cloud rescheduled it under the same id), Executed otherwise.
func (st *state) apply(endpoint string, events []feedEvent, now time.Time) (fresh []feedEvent) {
	now = now.UTC().Truncate(time.Second)
	listed := map[hostevent.ID]bool{}
	keys := map[string]bool{}
	active := map[hostevent.ID]feedEvent{}
	for _, fe := range events {
		fe.ActionTime = fe.ActionTime.UTC()
		fe.LoggedAt = st.seen(fe.ID(), fe.Status, now)
		if st.tracker.Observe(fe.Event) {
			fresh = append(fresh, fe)
		}
		listed[fe.ID()] = true
		if fe.Key != "" {
			keys[fe.Key] = true
		}
		if fe.Status.Active() {
			active[fe.ID()] = fe
		}
	}
	for id, fe := range st.active[endpoint] {
		if listed[id] {
			continue
		}
		switch {
		case fe.Key != "" && keys[fe.Key]:
			fe.Status, fe.Detail = hostevent.StatusCanceled, "rescheduled: "+fe.Key+" is listed with another time or type"
		case fe.ActionTime.After(now):
			fe.Status, fe.Detail = hostevent.StatusCanceled, "no longer listed by the metadata endpoint before its time"
		default:
			fe.Status, fe.Detail = hostevent.StatusExecuted, "no longer listed by the metadata endpoint"
		}
		fe.LoggedAt = st.seen(id, fe.Status, now)
		if st.tracker.Observe(fe.Event) {
			fresh = append(fresh, fe)
		}
	}
	st.active[endpoint] = active
	st.prune()
	return fresh
}

func (st *state) seen(id hostevent.ID, status hostevent.Status, now time.Time) time.Time {
	k := seenKey{id, status}
	if t, ok := st.firstSeen[k]; ok {
		return t
	}
	st.firstSeen[k] = now
	return now
}

func (st *state) prune() {
	if len(st.firstSeen) <= maxFirstSeen {
		return
	}
	kept := map[hostevent.ID]bool{}
	for _, e := range st.tracker.Latest() {
		kept[e.ID()] = true
	}
	for k := range st.firstSeen {
		if !kept[k.id] {
			delete(st.firstSeen, k)
		}
	}
}
