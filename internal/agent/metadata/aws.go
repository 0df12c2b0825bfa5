package metadata

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/agent/hostevent"
)

// Amazon EC2 instance metadata (IMDSv2).
const (
	awsPrefix         = "AWS"
	awsRebalanceType  = "AWS.RebalanceRecommendation"
	awsTokenPath      = "/latest/api/token"                    // #nosec G101 -- a path, not a credential
	awsTokenTTLHeader = "X-aws-ec2-metadata-token-ttl-seconds" // #nosec G101 -- a header name
	awsTokenHeader    = "X-aws-ec2-metadata-token"             // #nosec G101 -- a header name
	awsScheduledPath  = "/latest/meta-data/events/maintenance/scheduled"
	awsSpotPath       = "/latest/meta-data/spot/instance-action"
	awsRebalancePath  = "/latest/meta-data/events/recommendations/rebalance"
	// awsTimeLayout is how events/maintenance/scheduled writes times.
	awsTimeLayout = "2 Jan 2006 15:04:05 GMT"
	// awsTokenTTL is the longest session IMDSv2 grants.
	awsTokenTTL = 6 * time.Hour
)

func awsFeeds(c *v1alpha1.AWSMetadataConfig, hc *http.Client) []*feed {
	cl := newClient(hc, c.Endpoint, c.Timeout.Duration)
	cl.token = &tokenSource{path: awsTokenPath, ttlHeader: awsTokenTTLHeader, header: awsTokenHeader, ttl: awsTokenTTL}
	feeds := []*feed{
		polled(cl, "events/maintenance/scheduled", awsScheduledPath, c.PollInterval.Duration, false, parseAWSScheduled),
		// 404: no interruption pending.
		polled(cl, "spot/instance-action", awsSpotPath, c.SpotPollInterval.Duration, true, parseAWSSpot),
	}
	if c.Rebalance {
		feeds = append(feeds, polled(cl, "events/recommendations/rebalance", awsRebalancePath, c.SpotPollInterval.Duration, true, parseAWSRebalance))
	}
	return feeds
}

type awsScheduledEvent struct {
	NotBefore   string `json:"NotBefore"`
	NotAfter    string `json:"NotAfter"`
	Code        string `json:"Code"`
	Description string `json:"Description"`
	EventID     string `json:"EventId"`
	State       string `json:"State"`
}

// parseAWSScheduled reads events/maintenance/scheduled: a JSON list, with
// history (completed, canceled) kept for a while. One entry that does not
// parse fails the whole read: reading the others alone would make the
// unreadable one look removed.
func parseAWSScheduled(body []byte) ([]feedEvent, error) {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil, nil
	}
	var list []awsScheduledEvent
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, badResponse("events/maintenance/scheduled: %v: %s", err, snippet(body))
	}
	out := make([]feedEvent, 0, len(list))
	for i, e := range list {
		typ, ok := eventType(awsPrefix, e.Code)
		if !ok {
			return nil, badResponse("events/maintenance/scheduled[%d]: code %q", i, e.Code)
		}
		at, err := parseTime(e.NotBefore, awsTimeLayout, time.RFC1123, time.RFC3339)
		if err != nil {
			return nil, badResponse("events/maintenance/scheduled[%d]: NotBefore: %v", i, err)
		}
		detail := "EventId " + e.EventID
		if e.Description != "" {
			detail += ": " + e.Description
		}
		if e.NotAfter != "" {
			detail += ", not after " + e.NotAfter
		}
		out = append(out, feedEvent{
			Event:  hostevent.Event{Type: typ, Status: awsState(e.State, e.Description), ActionTime: at},
			Key:    e.EventID,
			Detail: detail,
		})
	}
	return out, nil
}

// awsState maps State (active, completed, canceled); older responses only
// prefix the description with [Completed] or [Canceled].
func awsState(state, description string) hostevent.Status {
	switch s := strings.ToLower(state); {
	case s == "completed" || strings.HasPrefix(description, "[Completed]"):
		return hostevent.StatusExecuted
	case s == "canceled" || s == "cancelled" || strings.HasPrefix(description, "[Canceled]"):
		return hostevent.StatusCanceled
	}
	return hostevent.StatusScheduled
}

// parseAWSSpot reads spot/instance-action: {"action": "terminate", "time": "..."}.
func parseAWSSpot(body []byte) ([]feedEvent, error) {
	var v struct {
		Action string `json:"action"`
		Time   string `json:"time"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, badResponse("spot/instance-action: %v: %s", err, snippet(body))
	}
	typ, ok := eventType(awsPrefix, "spot-"+v.Action)
	if !ok || v.Action == "" {
		return nil, badResponse("spot/instance-action: action %q", v.Action)
	}
	at, err := parseTime(v.Time, time.RFC3339)
	if err != nil {
		return nil, badResponse("spot/instance-action: time: %v", err)
	}
	return []feedEvent{{
		Event:  hostevent.Event{Type: typ, Status: hostevent.StatusScheduled, ActionTime: at},
		Detail: "spot instance interruption notice: " + v.Action,
	}}, nil
}

// parseAWSRebalance reads events/recommendations/rebalance: {"noticeTime": "..."}.
func parseAWSRebalance(body []byte) ([]feedEvent, error) {
	var v struct {
		NoticeTime string `json:"noticeTime"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, badResponse("events/recommendations/rebalance: %v: %s", err, snippet(body))
	}
	at, err := parseTime(v.NoticeTime, time.RFC3339)
	if err != nil {
		return nil, badResponse("events/recommendations/rebalance: noticeTime: %v", err)
	}
	return []feedEvent{{
		Event:  hostevent.Event{Type: awsRebalanceType, Status: hostevent.StatusScheduled, ActionTime: at},
		Detail: "EC2 instance rebalance recommendation: elevated risk of a spot interruption",
	}}, nil
}

// eventTypeRE is the shape hostevent accepts: Word.Word.
var eventTypeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*\.[A-Za-z][A-Za-z0-9]*$`)

// eventType makes prefix.CamelCase of a cloud's code such as system-reboot
// or MIGRATE_ON_HOST_MAINTENANCE.
func eventType(prefix, code string) (string, bool) {
	t := prefix + "." + camel(code)
	return t, eventTypeRE.MatchString(t)
}

// camel turns words separated by '-', '_', '.' or blanks into CamelCase,
// lower-casing the rest of each word only when the code is all upper case.
func camel(code string) string {
	upper := strings.ToUpper(code) == code
	var b strings.Builder
	for _, w := range strings.FieldsFunc(code, func(r rune) bool { return r == '-' || r == '_' || r == '.' || r == ' ' }) {
		if upper {
			w = strings.ToLower(w)
		}
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}

// parseTime parses s with the first layout that fits, into UTC.
func parseTime(s string, layouts ...string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range layouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time", s)
}
