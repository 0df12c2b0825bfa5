// Package hostevent turns the lines Alibaba Cloud's ecs-tool-event plugin
// writes to /var/log/host_event.log into Node conditions. It is pure logic:
// no files, no clock, no API calls. The agent tails the log, feeds each line
// to Parse and the result to a Tracker, and writes what Tracker.Conditions
// returns.
//
// # The log
//
// One line per observation of a cloud event:
//
//	2024-01-08 17:02:01 - WARNING - Ecs event type is: SystemMaintenance.Reboot,event status is: Scheduled,action ISO 8601 time is 2024-01-10T02:00:00Z
//
// The cloud re-logs an event every time it polls, so the same line repeats,
// and an event moves through statuses over days. An event is identified by
// its type and action time (ID); its latest line, in log order, wins.
//
// Parse is tolerant of what has been seen in the field: any level word,
// blanks around '-', ',' and ':', "Ecs" in any case, a fractional second on
// the leading timestamp, CRLF endings and junk after the action time. It is
// strict about content: the type must look like Word.Word (ASCII letters and
// digits, each word starting with a letter, so the derived reasons are valid
// Kubernetes reasons), the status must be a known one, and the action time
// must be RFC 3339 with a zone. Anything else is rejected with one of a
// small, fixed set of *ParseError values, suitable as a metric label.
//
// The leading timestamp is the host's local time without a zone. Parse
// stores it as if it were UTC (Event.LoggedAt) because the zone is not
// knowable from the line; it is only ever shown as "host time", never used
// for ordering or deadlines. The action time carries its zone and is exact.
//
// # Lifecycle
//
// Statuses are active (Inquiring, Scheduled, Executing) or terminal
// (Executed, Avoided, Canceled, Failed). A Mapping assigns each condition
// type a set of event types (DefaultMapping is the table in the spec). For
// each condition type, Tracker.Conditions reports:
//
//   - True while any of its events is active. If several are, the one with
//     the earliest action time is reported, because its deadline is the one
//     the controller must meet. Reason is type and status in CamelCase
//     (SystemMaintenanceRebootScheduled); the message ends with
//     "not before <action time, RFC 3339 UTC>" (package deadline), which
//     the controller parses.
//   - False with reason NoHostEvent while none of its events was ever seen.
//   - False otherwise, describing the event that ended most recently in log
//     order: either its terminal status (SystemMaintenanceRebootExecuted) or,
//     see below, <Type>DoneAfterBoot.
//
// The cloud does not always log a terminal line: a reboot that happened is
// often never reported as Executed. So an active event whose action time is
// before the node's boot time is taken as done, with reason
// <Type>DoneAfterBoot (e.g. SystemMaintenanceRebootDoneAfterBoot): the node
// has booted since the action was due, so the action has happened. A zero
// boot time turns this rule off.
//
// Events of a type no condition maps (InstanceFailure.Reboot, for example)
// are still tracked; the agent reports them as Warning Events. Observe
// returns true exactly once per (type, status, action time), so the agent
// emits one Kubernetes Event per new observation and none for repeats; the
// Event's reason and message come from Event.Reason and Event.Message. A
// Tracker lives in memory only: after a restart the agent replays the log
// into a fresh one, and every observation is new again, so it is for the
// agent to decide whether a replay re-emits Events.
//
// # Memory
//
// The log may cover years. A Tracker keeps only the latest observation per
// event ID, and at most MaxEventsPerGroup events per condition type (and as
// many again for unmapped events). Past that, the least recently observed
// terminal event is forgotten first, then, only if every kept event is still
// active, the least recently observed active one. Forgetting an event means
// a later repeat of one of its lines counts as new again; with real logs,
// which hold a handful of events per year, this does not happen.
package hostevent
