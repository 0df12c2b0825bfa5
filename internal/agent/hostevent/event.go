package hostevent

import (
	"strings"
	"time"

	"github.com/nodewarden/nodewarden/internal/deadline"
)

// Event is one parsed line of the host event log.
type Event struct {
	// Type is the cloud's event type, e.g. "SystemMaintenance.Reboot".
	Type string
	// Status is always one of the Status constants.
	Status Status
	// ActionTime is when the cloud will act (or acted), in UTC.
	ActionTime time.Time
	// LoggedAt is the line's leading timestamp. The host writes local time
	// without a zone; it is stored as if it were UTC. See the package doc.
	LoggedAt time.Time
}

// ID identifies an event across its lines: the cloud re-logs the same event
// with changing statuses, keeping type and action time.
type ID struct {
	Type       string
	ActionTime time.Time
}

// ID returns the event's identity. ActionTime is normalised to UTC so that
// IDs compare equal with == and work as map keys.
func (e Event) ID() ID {
	return ID{Type: e.Type, ActionTime: e.ActionTime.UTC()}
}

// Status is where a host event is in its lifecycle, as the cloud reports it.
type Status string

// Active statuses: the action is still ahead or under way.
const (
	StatusInquiring Status = "Inquiring" // waiting for the user to agree to a time
	StatusScheduled Status = "Scheduled"
	StatusExecuting Status = "Executing"
)

// Terminal statuses: the event is over, one way or another.
const (
	StatusExecuted Status = "Executed"
	StatusAvoided  Status = "Avoided"
	StatusCanceled Status = "Canceled"
	StatusFailed   Status = "Failed"
)

// statuses lists every known status; the position gives the bit a Tracker
// uses to remember which statuses an event has shown.
var statuses = [...]Status{
	StatusInquiring, StatusScheduled, StatusExecuting,
	StatusExecuted, StatusAvoided, StatusCanceled, StatusFailed,
}

// Active reports whether the event still lies ahead or is under way.
func (s Status) Active() bool {
	return s == StatusInquiring || s == StatusScheduled || s == StatusExecuting
}

// Terminal reports whether the event is over.
func (s Status) Terminal() bool {
	return s == StatusExecuted || s == StatusAvoided || s == StatusCanceled || s == StatusFailed
}

// bit is the status's flag in a Tracker's seen-set, 0 for an unknown status.
func (s Status) bit() uint8 {
	for i, known := range statuses {
		if s == known {
			return 1 << i
		}
	}
	return 0
}

// Reason is the Kubernetes reason for this observation: type and status in
// CamelCase without dots, e.g. "SystemMaintenanceRebootScheduled". Used for
// both the Node condition and the Kubernetes Event, so they match.
func (e Event) Reason() string {
	return camelType(e.Type) + string(e.Status)
}

// Message is the human text for this observation, shared by conditions and
// Kubernetes Events. For an active event it ends with the action time as
// deadline.Suffix writes it: the controller reads the deadline from there.
func (e Event) Message() string {
	if e.Status.Terminal() {
		return e.Type + " scheduled for " + formatUTC(e.ActionTime) +
			" was " + string(e.Status) + " (logged " + formatHostTime(e.LoggedAt) + " host time)"
	}
	return e.Type + " is " + string(e.Status) + ", " + deadline.Suffix(e.ActionTime)
}

// String renders the event as a canonical log line, with level WARNING as the
// plugin writes it. Parse(e.String()) gives e back, which makes it handy for
// tests that write host event logs.
func (e Event) String() string {
	b := make([]byte, 0, 160)
	b = e.LoggedAt.UTC().AppendFormat(b, hostTimeLayout)
	b = append(b, " - WARNING - Ecs event type is: "...)
	b = append(b, e.Type...)
	b = append(b, ",event status is: "...)
	b = append(b, e.Status...)
	b = append(b, ",action ISO 8601 time is "...)
	b = e.ActionTime.UTC().AppendFormat(b, time.RFC3339Nano)
	return string(b)
}

// hostTimeLayout is the leading timestamp's shape; the fraction is printed
// only when there is one, matching what Parse accepts.
const hostTimeLayout = "2006-01-02 15:04:05.999999999"

func formatUTC(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func formatHostTime(t time.Time) string { return t.UTC().Format(hostTimeLayout) }

func camelType(eventType string) string { return strings.ReplaceAll(eventType, ".", "") }
