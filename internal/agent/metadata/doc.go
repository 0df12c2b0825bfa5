// Package metadata is the agent's cloud instance-metadata source: it reads
// scheduled maintenance, spot interruptions and similar notices from the
// link-local metadata endpoint of Alibaba Cloud, AWS, Azure or GCP and keeps
// Node conditions from them, the way the host event log does.
//
// # One lifecycle for every cloud
//
// Each provider turns what its endpoints say into host events
// (hostevent.Event: a type, a status, a not-before time) and the source
// feeds them to a hostevent.Tracker with a Mapping, exactly like the host
// event log source. So the condition semantics are the host event log's:
// True while an event is active, with the reason <Type><Status> and a
// message ending "not before <RFC 3339>" (package deadline) that the
// controller reads as the deadline; False with the terminal status, or
// NoHostEvent; one Kubernetes Event per new (type, status, time), with a key
// stable across restarts.
//
// Event types are named after their cloud: AWS.SystemReboot,
// AWS.SpotTerminate, Azure.Freeze, GCP.TerminateOnHostMaintenance,
// Alibaba.SpotTermination; Alibaba Cloud's system events keep ECS's own
// names (SystemMaintenance.Reboot), as in the host event log. The mapping is
// configuration (AgentConfig metadata.conditions, default
// v1alpha1.DefaultMetadataConditions); the source owns the mapped condition
// types its provider can produce.
//
// Endpoints that list events (AWS scheduled, Azure) are diffed read by read:
// an event that was active and is no longer listed is over — Canceled if its
// time had not come (or the cloud moved it under the same id), Executed
// otherwise. Endpoints that announce something without a time (GCP
// maintenance-event and preempted, Alibaba events without one) get the time
// the agent first read them: the notice means "imminent".
//
// # Failures
//
// A read that fails — unreachable, slow past the timeout, an HTTP status
// that is not the endpoint's "nothing" (404 for spot notices), a body that
// does not parse, even in part — changes nothing: the last known state
// stays, nodewarden_agent_metadata_errors_total{provider,endpoint,reason}
// counts it, the first failure of a run is logged (the rest at debug), and
// the endpoint is read again with backoff. Conditions are declared once
// every endpoint has answered once (or after a minute), so a restart never
// shows a True condition flipping False and back.
//
// # Providers
//
//   - AWS (IMDSv2 session token): events/maintenance/scheduled,
//     spot/instance-action, and, if enabled, events/recommendations/rebalance.
//   - Azure: Scheduled Events with Metadata: true, only the events whose
//     Resources name this VM (from compute metadata); optionally approves
//     (StartRequests) an event once the node's nodewarden.io/state is
//     Drained, once per EventId.
//   - GCP (Metadata-Flavor: Google, checked on the response too):
//     maintenance-event and preempted as long polls (wait_for_change with
//     last_etag), upcoming-maintenance polled.
//   - Alibaba (session token, as hardened mode requires):
//     instance/spot/termination-time and maintenance/active-system-events,
//     whose undocumented body is parsed defensively.
//
// Provider auto reads the DMI identification (Detect). docs/cloud-metadata.md
// is the operator's view.
package metadata
