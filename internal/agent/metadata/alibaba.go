package metadata

import (
	"bufio"
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/agent/hostevent"
)

// Alibaba Cloud ECS instance metadata.
const (
	alibabaPrefix         = "Alibaba"
	alibabaSpotType       = "Alibaba.SpotTermination"
	alibabaTokenPath      = "/latest/api/token"                       // #nosec G101 -- a path, not a credential
	alibabaTokenTTLHeader = "X-aliyun-ecs-metadata-token-ttl-seconds" // #nosec G101 -- a header name
	alibabaTokenHeader    = "X-aliyun-ecs-metadata-token"             // #nosec G101 -- a header name
	alibabaSpotPath       = "/latest/meta-data/instance/spot/termination-time"
	alibabaEventsPath     = "/latest/maintenance/active-system-events"
	alibabaTokenTTL       = 6 * time.Hour
)

// alibabaFeeds reads the spot termination time and the active system
// events, always with a session token: that works in normal mode and is
// required in hardened mode.
func alibabaFeeds(c *v1alpha1.AlibabaMetadataConfig, hc *http.Client, log logr.Logger) []*feed {
	cl := newClient(hc, c.Endpoint, c.Timeout.Duration)
	cl.token = &tokenSource{path: alibabaTokenPath, ttlHeader: alibabaTokenTTLHeader, header: alibabaTokenHeader, ttl: alibabaTokenTTL}
	seen := newEventTimes()
	return []*feed{
		// 404: the instance is not being reclaimed.
		polled(cl, "instance/spot/termination-time", alibabaSpotPath, c.SpotPollInterval.Duration, true, parseAlibabaSpot),
		// 404 is read as "no active event", as the spot endpoint of the
		// same server says "no reclaim".
		polled(cl, "maintenance/active-system-events", alibabaEventsPath, c.PollInterval.Duration, true, func(body []byte) ([]feedEvent, error) {
			log.V(1).Info("active-system-events", "body", snippet(body))
			return parseAlibabaEvents(body, seen, time.Now())
		}),
	}
}

// parseAlibabaSpot reads spot/termination-time: the UTC time the instance
// is reclaimed.
func parseAlibabaSpot(body []byte) ([]feedEvent, error) {
	at, err := parseTime(string(body), time.RFC3339, "2006-01-02T15:04:05", "2006-01-02 15:04:05")
	if err != nil {
		return nil, badResponse("instance/spot/termination-time: %v", err)
	}
	return []feedEvent{{
		Event:  hostevent.Event{Type: alibabaSpotType, Status: hostevent.StatusScheduled, ActionTime: at},
		Detail: "preemptible (spot) instance is reclaimed",
	}}, nil
}

// eventTimes remembers when events without a time were first seen.
type eventTimes struct{ at map[string]time.Time }

func newEventTimes() *eventTimes { return &eventTimes{at: map[string]time.Time{}} }

// parseAlibabaEvents reads maintenance/active-system-events, whose body
// Alibaba Cloud does not document. It takes what it can recognise:
//
//   - empty, null, [] or {}: no event;
//   - JSON: a list of event objects, an object holding such a list under
//     any key (at any depth), or one event object. An event object has a
//     type under EventType, Type, EventName, Name or Code (a string, or an
//     object with Name or Code, as in the ECS API's EventType.Name), a
//     status under EventCycleStatus, EventStatus, Status or State (same
//     shapes; missing means Scheduled), a time under NotBefore, ActionTime,
//     PlanTime or ExecuteTime (missing: when first seen), and an id under
//     EventId or Id. Keys match in any case;
//   - text: lines in the host event log's format.
//
// Event types keep ECS's names (SystemMaintenance.Reboot), so the host event
// log's table maps them. Anything else, or an event that is only partly
// understood, fails the read (counted, the last state kept); the agent logs
// the raw body at debug level.
func parseAlibabaEvents(body []byte, seen *eventTimes, now time.Time) ([]feedEvent, error) {
	trimmed := bytes.TrimSpace(body)
	switch string(trimmed) {
	case "", "null", "[]", "{}":
		clear(seen.at)
		return nil, nil
	}
	var evs []feedEvent
	var err error
	if trimmed[0] == '[' || trimmed[0] == '{' {
		var v any
		if jerr := json.Unmarshal(trimmed, &v); jerr != nil {
			return nil, badResponse("active-system-events: %v: %s", jerr, snippet(body))
		}
		evs, err = alibabaJSONEvents(v, seen, now)
	} else {
		evs, err = alibabaTextEvents(trimmed)
	}
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{}
	for _, fe := range evs {
		keep[fe.Type+"/"+fe.Key] = true
	}
	for k := range seen.at {
		if !keep[k] {
			delete(seen.at, k)
		}
	}
	return evs, nil
}

func alibabaJSONEvents(v any, seen *eventTimes, now time.Time) ([]feedEvent, error) {
	objs, ok := eventObjects(v, 0)
	if !ok {
		return nil, badResponse("active-system-events: no list of events recognised")
	}
	out := make([]feedEvent, 0, len(objs))
	for i, o := range objs {
		typ := lookupName(o, "eventtype", "type", "eventname", "name", "code")
		if !eventTypeRE.MatchString(typ) {
			return nil, badResponse("active-system-events[%d]: event type %q", i, typ)
		}
		status := hostevent.StatusScheduled
		if s := lookupName(o, "eventcyclestatus", "eventstatus", "status", "state"); s != "" {
			st, ok := statusOf(s)
			if !ok {
				return nil, badResponse("active-system-events[%d]: status %q", i, s)
			}
			status = st
		}
		id := lookupName(o, "eventid", "id")
		var at time.Time
		if ts := lookupName(o, "notbefore", "actiontime", "plantime", "executetime"); ts != "" {
			var err error
			if at, err = parseTime(ts, time.RFC3339, "2006-01-02T15:04Z", "2006-01-02T15:04:05", "2006-01-02 15:04:05", time.RFC1123); err != nil {
				return nil, badResponse("active-system-events[%d]: time: %v", i, err)
			}
		} else {
			k := typ + "/" + id
			t, ok := seen.at[k]
			if !ok {
				t = now.UTC().Truncate(time.Second)
				seen.at[k] = t
			}
			at = t
		}
		detail := "active system event"
		if id != "" {
			detail += " " + id
		}
		out = append(out, feedEvent{Event: hostevent.Event{Type: typ, Status: status, ActionTime: at}, Key: id, Detail: detail})
	}
	return out, nil
}

// eventObjects finds the event objects in v: v itself if it is a list of
// objects (or empty), the first such list among an object's values (depth
// first, a few levels down), or v as the one event if it names a type.
func eventObjects(v any, depth int) ([]map[string]any, bool) {
	if depth > 4 {
		return nil, false
	}
	switch x := v.(type) {
	case []any:
		objs := make([]map[string]any, 0, len(x))
		for _, e := range x {
			o, ok := e.(map[string]any)
			if !ok {
				return nil, false
			}
			objs = append(objs, o)
		}
		return objs, true
	case map[string]any:
		if lookupName(x, "eventtype", "type", "eventname", "name", "code") != "" {
			return []map[string]any{x}, true
		}
		for _, k := range slices.Sorted(maps.Keys(x)) { // the same body always gives the same events
			switch x[k].(type) {
			case []any, map[string]any:
				if objs, ok := eventObjects(x[k], depth+1); ok {
					return objs, true
				}
			}
		}
	}
	return nil, false
}

// lookupName returns the first of keys (matched in any case) that o has as
// a string, or as an object with a Name or Code string.
func lookupName(o map[string]any, keys ...string) string {
	for _, want := range keys {
		for k, v := range o {
			if !strings.EqualFold(k, want) {
				continue
			}
			switch x := v.(type) {
			case string:
				return strings.TrimSpace(x)
			case map[string]any:
				if s := lookupName(x, "name", "code"); s != "" {
					return s
				}
			}
		}
	}
	return ""
}

// statusOf maps a status word, in any case, to a host event status.
func statusOf(s string) (hostevent.Status, bool) {
	for _, st := range []hostevent.Status{
		hostevent.StatusInquiring, hostevent.StatusScheduled, hostevent.StatusExecuting,
		hostevent.StatusExecuted, hostevent.StatusAvoided, hostevent.StatusCanceled, hostevent.StatusFailed,
	} {
		if strings.EqualFold(s, string(st)) {
			return st, true
		}
	}
	if strings.EqualFold(s, "cancelled") {
		return hostevent.StatusCanceled, true
	}
	return "", false
}

// alibabaTextEvents reads lines in the host event log's format.
func alibabaTextEvents(body []byte) ([]feedEvent, error) {
	var out []feedEvent
	sc := bufio.NewScanner(bytes.NewReader(body))
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		ev, err := hostevent.Parse(line)
		if err != nil {
			return nil, badResponse("active-system-events line %d: %v", n, err)
		}
		ev.LoggedAt = time.Time{}
		out = append(out, feedEvent{Event: ev, Detail: "active system event"})
	}
	if err := sc.Err(); err != nil {
		return nil, badResponse("active-system-events: %v", err)
	}
	return out, nil
}
