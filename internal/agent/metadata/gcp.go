package metadata

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/agent/hostevent"
)

// Google Compute Engine metadata server.
const (
	gcpPrefix                = "GCP"
	gcpFlavorHeader          = "Metadata-Flavor"
	gcpFlavor                = "Google"
	gcpMaintenancePath       = "/computeMetadata/v1/instance/maintenance-event"
	gcpUpcomingPath          = "/computeMetadata/v1/instance/upcoming-maintenance"
	gcpPreemptedPath         = "/computeMetadata/v1/instance/preempted"
	gcpOnHostMaintenancePath = "/computeMetadata/v1/instance/scheduling/on-host-maintenance"
)

func gcpFeeds(c *v1alpha1.GCPMetadataConfig, hc *http.Client) []*feed {
	cl := newClient(hc, c.Endpoint, c.Timeout.Duration)
	cl.header.Set(gcpFlavorHeader, gcpFlavor)
	cl.check = func(r *http.Response) error {
		if r.Header.Get(gcpFlavorHeader) != gcpFlavor {
			return errors.New("no Metadata-Flavor: Google in the response: not the GCE metadata server")
		}
		return nil
	}
	wait := c.PollInterval.Duration
	up := &gcpUpcoming{client: cl}
	return []*feed{
		longPoll(cl, "maintenance-event", gcpMaintenancePath, wait, newFirstSeen(), parseGCPMaintenance),
		longPoll(cl, "preempted", gcpPreemptedPath, wait, newFirstSeen(), parseGCPPreempted),
		{endpoint: "upcoming-maintenance", interval: c.PollInterval.Duration, fetch: up.fetch},
	}
}

// longPoll is a feed of a value that the server holds the request for until
// it changes (wait_for_change with the last ETag), at most wait long: a
// change is seen as soon as it is made, not at the next poll.
func longPoll(cl *client, endpoint, path string, wait time.Duration, seen *firstSeen,
	parse func(value string, seen *firstSeen, now time.Time) ([]feedEvent, error)) *feed {
	var etag string
	var spin bool // the last answer came at once and unchanged
	var last time.Time
	secs := max(int(wait/time.Second), 1)
	return &feed{endpoint: endpoint, retry: cl.timeout, fetch: func(ctx context.Context) (snapshot, error) {
		// A server that ignores wait_for_change (or sends no ETag) answers
		// at once with the same value: read it once per minLongPollSpacing.
		if spin && !sleep(ctx, minLongPollSpacing-time.Since(last)) {
			return snapshot{}, ctx.Err()
		}
		q := url.Values{}
		timeout := cl.timeout
		if etag != "" {
			q.Set("wait_for_change", "true")
			q.Set("last_etag", etag)
			q.Set("timeout_sec", strconv.Itoa(secs))
			timeout += time.Duration(secs) * time.Second
		}
		last = time.Now()
		resp, err := cl.get(ctx, path, q, timeout)
		if err != nil {
			return snapshot{}, err
		}
		evs, err := parse(strings.TrimSpace(string(resp.body)), seen, time.Now())
		if err != nil {
			// The ETag stays: the next request asks again at once
			// instead of waiting for a change of a value never understood.
			return snapshot{}, err
		}
		tag := resp.header.Get("ETag")
		spin = (tag == "" || tag == etag) && time.Since(last) < minLongPollSpacing
		etag = tag
		return snapshot{events: evs}, nil
	}}
}

// minLongPollSpacing paces a long poll whose server answers at once.
const minLongPollSpacing = time.Second

// firstSeen remembers when a value was first read, as the not-before of an
// event whose cloud gives no time: "now" is the honest deadline of a notice
// that something is imminent.
type firstSeen struct{ at map[string]time.Time }

func newFirstSeen() *firstSeen { return &firstSeen{at: map[string]time.Time{}} }

// get returns when key was first seen, and forgets every other key: the
// value changed, so another occurrence of an old one is a new event.
func (f *firstSeen) get(key string, now time.Time) time.Time {
	t, ok := f.at[key]
	if !ok {
		t = now.UTC().Truncate(time.Second)
	}
	clear(f.at)
	f.at[key] = t
	return t
}

func (f *firstSeen) reset() { clear(f.at) }

var gcpValueRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// parseGCPMaintenance reads maintenance-event: NONE, or what is about to
// happen (MIGRATE_ON_HOST_MAINTENANCE: a live migration; TERMINATE_ON_HOST_MAINTENANCE:
// the VM is stopped, and restarted on another host if so configured). GCP
// announces it 60 s ahead (an hour for VMs with GPUs) with no time, so its
// not-before is when it was first read.
func parseGCPMaintenance(v string, seen *firstSeen, now time.Time) ([]feedEvent, error) {
	if v == "NONE" {
		seen.reset()
		return nil, nil
	}
	typ, ok := eventType(gcpPrefix, v)
	if !gcpValueRE.MatchString(v) || !ok {
		return nil, badResponse("maintenance-event: %q", snippet([]byte(v)))
	}
	return []feedEvent{{
		Event:  hostevent.Event{Type: typ, Status: hostevent.StatusScheduled, ActionTime: seen.get(v, now)},
		Detail: "maintenance-event " + v,
	}}, nil
}

// parseGCPPreempted reads preempted: TRUE once the VM is being preempted
// (30 s before it stops), else FALSE.
func parseGCPPreempted(v string, seen *firstSeen, now time.Time) ([]feedEvent, error) {
	switch v {
	case "FALSE":
		seen.reset()
		return nil, nil
	case "TRUE":
		return []feedEvent{{
			Event:  hostevent.Event{Type: gcpPrefix + ".Preempted", Status: hostevent.StatusExecuting, ActionTime: seen.get(v, now)},
			Detail: "the VM is being preempted",
		}}, nil
	}
	return nil, badResponse("preempted: %q", snippet([]byte(v)))
}

// gcpUpcoming reads upcoming-maintenance, the advance notice (days) of a
// maintenance window. Whether that window means a live migration or a stop
// depends on the VM's onHostMaintenance policy, read once.
type gcpUpcoming struct {
	client *client
	policy string // MIGRATE or TERMINATE, once read
	seen   *firstSeen
}

type gcpUpcomingDoc struct {
	CanReschedule         any      `json:"can_reschedule"`
	LatestWindowStartTime string   `json:"latest_window_start_time"`
	MaintenanceReasons    []string `json:"maintenance_reasons"`
	MaintenanceStatus     string   `json:"maintenance_status"`
	Type                  string   `json:"type"`
	WindowEndTime         string   `json:"window_end_time"`
	WindowStartTime       string   `json:"window_start_time"`
}

func (u *gcpUpcoming) fetch(ctx context.Context) (snapshot, error) {
	if u.policy == "" {
		resp, err := u.client.get(ctx, gcpOnHostMaintenancePath, nil, 0)
		if err != nil {
			return snapshot{}, withEndpoint(err, "scheduling/on-host-maintenance")
		}
		p := strings.TrimSpace(string(resp.body))
		if p != "MIGRATE" && p != "TERMINATE" {
			return snapshot{}, withEndpoint(badResponse("on-host-maintenance %q", snippet(resp.body)), "scheduling/on-host-maintenance")
		}
		u.policy = p
	}
	resp, err := u.client.get(ctx, gcpUpcomingPath, url.Values{"alt": {"json"}}, 0)
	if err != nil {
		return snapshot{}, err
	}
	if u.seen == nil {
		u.seen = newFirstSeen()
	}
	evs, err := parseGCPUpcoming(resp.body, u.policy, u.seen, time.Now())
	return snapshot{events: evs}, err
}

// parseGCPUpcoming reads upcoming-maintenance: {} when none, else the
// window. The event is GCP.UpcomingMigrateOnHostMaintenance or
// GCP.UpcomingTerminateOnHostMaintenance after the VM's policy; its
// not-before is the window's start.
func parseGCPUpcoming(body []byte, policy string, seen *firstSeen, now time.Time) ([]feedEvent, error) {
	var doc gcpUpcomingDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, badResponse("upcoming-maintenance: %v: %s", err, snippet(body))
	}
	if doc.WindowStartTime == "" && doc.LatestWindowStartTime == "" && doc.MaintenanceStatus == "" && doc.Type == "" {
		seen.reset()
		return nil, nil
	}
	start := doc.WindowStartTime
	if start == "" {
		start = doc.LatestWindowStartTime
	}
	var at time.Time
	if start != "" {
		var err error
		if at, err = parseTime(start, time.RFC3339); err != nil {
			return nil, badResponse("upcoming-maintenance: window_start_time: %v", err)
		}
	} else {
		at = seen.get("window", now)
	}
	status := hostevent.StatusScheduled
	if strings.EqualFold(doc.MaintenanceStatus, "ONGOING") {
		status = hostevent.StatusExecuting
	}
	typ := gcpPrefix + ".UpcomingMigrateOnHostMaintenance"
	if policy == "TERMINATE" {
		typ = gcpPrefix + ".UpcomingTerminateOnHostMaintenance"
	}
	detail := "upcoming-maintenance " + doc.Type + " " + doc.MaintenanceStatus
	if doc.WindowEndTime != "" {
		detail += ", window until " + doc.WindowEndTime
	}
	if len(doc.MaintenanceReasons) > 0 {
		detail += ", reasons " + strings.Join(doc.MaintenanceReasons, " ")
	}
	return []feedEvent{{Event: hostevent.Event{Type: typ, Status: status, ActionTime: at}, Detail: detail}}, nil
}
