package hostevent

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nodewarden/nodewarden/api/v1alpha1"

	corev1 "k8s.io/api/core/v1"
)

// Mapping says which event types drive which condition type. It is
// immutable once built; the zero Mapping maps nothing.
type Mapping struct {
	conditionOf    map[string]string   // event type -> condition type
	eventTypes     map[string][]string // condition type -> sorted event types
	conditionTypes []string            // sorted
}

// NewMapping builds a Mapping from condition type -> event types. It rejects
// what would silently never work: an empty condition type, a condition with
// no event types, an event type Parse could never produce, and an event type
// under two conditions (one event would then drive both, and the two
// conditions would always agree, which is never what the author meant).
func NewMapping(conditionToEvents map[string][]string) (Mapping, error) {
	m := Mapping{
		conditionOf: map[string]string{},
		eventTypes:  map[string][]string{},
	}
	// Walk in sorted order so that errors name the same pair every run.
	for _, cond := range slices.Sorted(maps.Keys(conditionToEvents)) {
		if strings.TrimSpace(cond) == "" || strings.ContainsAny(cond, " \t\r\n") {
			return Mapping{}, fmt.Errorf("hostevent mapping: invalid condition type %q", cond)
		}
		events := conditionToEvents[cond]
		if len(events) == 0 {
			return Mapping{}, fmt.Errorf("hostevent mapping: condition type %q has no event types", cond)
		}
		for _, ev := range events {
			if !validType(ev) {
				return Mapping{}, fmt.Errorf("hostevent mapping: condition type %q: event type %q is not of the form Word.Word", cond, ev)
			}
			if other, dup := m.conditionOf[ev]; dup && other != cond {
				return Mapping{}, fmt.Errorf("hostevent mapping: event type %q is mapped to both %q and %q", ev, other, cond)
			}
			m.conditionOf[ev] = cond
		}
		m.eventTypes[cond] = slices.Compact(slices.Sorted(slices.Values(events)))
		m.conditionTypes = append(m.conditionTypes, cond)
	}
	return m, nil
}

// MappingFor builds the mapping of an AgentConfig's hostEventLog.conditions.
func MappingFor(conds []v1alpha1.HostEventCondition) (Mapping, error) {
	table := make(map[string][]string, len(conds))
	for _, c := range conds {
		table[c.Type] = c.EventTypes
	}
	return NewMapping(table)
}

// DefaultMapping is the mapping from the spec (v1alpha1.DefaultHostEventConditions),
// used when the agent's config does not override it.
func DefaultMapping() Mapping {
	m, err := MappingFor(v1alpha1.DefaultHostEventConditions())
	if err != nil {
		panic(err) // a constant table; the tests prove it valid
	}
	return m
}

// ConditionTypes returns the mapped condition types, sorted. The agent
// declares these at start.
func (m Mapping) ConditionTypes() []string { return slices.Clone(m.conditionTypes) }

// EventTypes returns the event types mapped to conditionType, sorted.
func (m Mapping) EventTypes(conditionType string) []string {
	return slices.Clone(m.eventTypes[conditionType])
}

// ConditionType returns the condition type eventType drives, if any.
func (m Mapping) ConditionType(eventType string) (conditionType string, ok bool) {
	conditionType, ok = m.conditionOf[eventType]
	return conditionType, ok
}

// Condition is the desired state of one Node condition. The agent copies it
// into a corev1.NodeCondition; timestamps are the writer's business.
type Condition struct {
	Type    string
	Status  corev1.ConditionStatus
	Reason  string
	Message string
	// NotBefore is the action time of the event holding the condition True
	// (also at the end of Message); zero when the condition is False.
	NotBefore time.Time
}

// ReasonNoHostEvent is the reason of a condition none of whose events has
// been seen.
const ReasonNoHostEvent = "NoHostEvent"

// MaxEventsPerGroup bounds how many events a Tracker keeps per condition
// type, and for unmapped events. See the package doc.
const MaxEventsPerGroup = 64

// Tracker accumulates observations in log order and derives conditions from
// them. It reads no clock: the boot time is passed in. Not safe for
// concurrent use.
type Tracker struct {
	mapping Mapping
	// groups holds the events of each condition type, keyed by condition
	// type; unmapped events live under "". Grouping makes the memory bound
	// per condition, so a flood of one kind cannot push out another.
	groups map[string]map[ID]*record
	seq    uint64 // number of observations so far; orders records by log position
}

// record is what a Tracker remembers of one event.
type record struct {
	latest Event  // the last line seen for this ID
	seen   uint8  // Status.bit of every status seen for this ID
	seq    uint64 // when latest was observed, in Tracker.seq
}

// NewTracker returns an empty Tracker using m.
func NewTracker(m Mapping) *Tracker {
	return &Tracker{mapping: m, groups: map[string]map[ID]*record{}}
}

// Unmapped reports whether e drives no condition; the agent reports such
// events as Warning Events on the Node instead.
func (t *Tracker) Unmapped(e Event) bool {
	_, ok := t.mapping.conditionOf[e.Type]
	return !ok
}

// Observe records e as the latest line for its ID. It reports whether this
// (type, status, action time) is new, so the caller emits one Kubernetes
// Event per new observation and none for the repeats the cloud logs every
// minute. Events with a status Parse would not return are ignored.
func (t *Tracker) Observe(e Event) (isNew bool) {
	bit := e.Status.bit()
	if bit == 0 {
		return false
	}
	e.ActionTime = e.ActionTime.UTC()
	e.LoggedAt = e.LoggedAt.UTC()

	cond := t.mapping.conditionOf[e.Type] // "" when unmapped
	g := t.groups[cond]
	if g == nil {
		g = map[ID]*record{}
		t.groups[cond] = g
	}
	t.seq++
	id := e.ID()
	r, known := g[id]
	if !known {
		r = &record{}
		g[id] = r
	}
	isNew = r.seen&bit == 0
	r.latest, r.seen, r.seq = e, r.seen|bit, t.seq
	if !known && len(g) > MaxEventsPerGroup {
		evict(g, id)
	}
	return isNew
}

// evict forgets one event of g other than keep: the least recently observed
// terminal one, else the least recently observed active one. Terminal events
// go first because they can only affect a False condition's message.
func evict(g map[ID]*record, keep ID) {
	var victim ID
	var best *record
	for id, r := range g {
		if id == keep {
			continue
		}
		if best == nil || evictBefore(r, best) {
			victim, best = id, r
		}
	}
	delete(g, victim)
}

func evictBefore(a, b *record) bool {
	if at, bt := a.latest.Status.Terminal(), b.latest.Status.Terminal(); at != bt {
		return at
	}
	return a.seq < b.seq
}

// Latest returns the latest observation of every event the Tracker
// remembers, in log order. After a replay these are the statuses worth
// reporting; the intermediate ones are history.
func (t *Tracker) Latest() []Event {
	var recs []*record
	for _, g := range t.groups {
		for _, r := range g {
			recs = append(recs, r)
		}
	}
	slices.SortFunc(recs, func(a, b *record) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]Event, len(recs))
	for i, r := range recs {
		out[i] = r.latest
	}
	return out
}

// Conditions returns one Condition per mapped condition type, sorted by type.
// bootTime is when the node last booted; an active event due before it is
// taken as done (see the package doc). A zero bootTime turns that rule off.
func (t *Tracker) Conditions(bootTime time.Time) []Condition {
	out := make([]Condition, 0, len(t.mapping.conditionTypes))
	for _, cond := range t.mapping.conditionTypes {
		out = append(out, condition(cond, t.groups[cond], bootTime))
	}
	return out
}

func condition(condType string, g map[ID]*record, bootTime time.Time) Condition {
	// active: the pending event with the earliest deadline.
	// ended: the event that ended most recently in log order.
	var active, ended *record
	for _, r := range g {
		if r.latest.Status.Active() && !doneByBoot(r.latest, bootTime) {
			if active == nil || dueBefore(r.latest, active.latest) {
				active = r
			}
			continue
		}
		if ended == nil || r.seq > ended.seq {
			ended = r
		}
	}

	switch {
	case active != nil:
		e := active.latest
		return Condition{
			Type:      condType,
			Status:    corev1.ConditionTrue,
			Reason:    e.Reason(),
			Message:   e.Message(),
			NotBefore: e.ActionTime,
		}
	case ended != nil && ended.latest.Status.Terminal():
		e := ended.latest
		return Condition{Type: condType, Status: corev1.ConditionFalse, Reason: e.Reason(), Message: e.Message()}
	case ended != nil:
		e := ended.latest
		return Condition{
			Type:   condType,
			Status: corev1.ConditionFalse,
			Reason: camelType(e.Type) + "DoneAfterBoot",
			Message: e.Type + " scheduled for " + formatUTC(e.ActionTime) +
				" is done: the node booted at " + formatUTC(bootTime) +
				", after the action time (last status " + string(e.Status) + ")",
		}
	}
	return Condition{
		Type:    condType,
		Status:  corev1.ConditionFalse,
		Reason:  ReasonNoHostEvent,
		Message: "no host event seen",
	}
}

// doneByBoot reports whether the node booted after e's action time, which
// means the reboot, stop or redeploy has happened even if the cloud never
// logged it as Executed.
func doneByBoot(e Event, bootTime time.Time) bool {
	return !bootTime.IsZero() && e.ActionTime.Before(bootTime)
}

// dueBefore orders active events by deadline; the type breaks ties so the
// choice does not depend on map order.
func dueBefore(a, b Event) bool {
	if !a.ActionTime.Equal(b.ActionTime) {
		return a.ActionTime.Before(b.ActionTime)
	}
	return a.Type < b.Type
}

// validType reports whether s has the Word.Word shape Parse accepts.
func validType(s string) bool {
	sc := scanner{b: []byte(s)}
	_, ok := sc.eventType()
	return ok && sc.i == len(s)
}
