// Package source defines what a producer of Node conditions is to the agent:
// the host event log, node-problem-detector monitors, cloud metadata
// endpoints. A source computes desired state only; the agent's writer and
// event recorder own every API call, its retries, and outages.
package source

import (
	"context"

	"github.com/nodewarden/nodewarden/internal/agent/condition"
	"github.com/nodewarden/nodewarden/internal/agent/nodeevent"
)

// Source produces conditions and Events for the agent's Node.
type Source interface {
	// Name identifies the source in logs and in the startup error for a
	// condition type claimed twice, e.g. "host-event-log /var/log/host_event.log".
	Name() string
	// ConditionTypes are the condition types the source owns. No two
	// sources may own the same type.
	ConditionTypes() []string
	// Run publishes to out until ctx ends. It publishes every owned
	// condition once it knows their state (declared False at start when
	// nothing is wrong), and then on every change.
	Run(ctx context.Context, out Sink)
}

// Sink is where sources publish. It never blocks on the API server.
type Sink interface {
	// SetConditions makes wants the desired state of their types.
	SetConditions(wants ...condition.Want)
	// Record reports an Event on the Node; the same Key is recorded once.
	Record(e nodeevent.Event)
}

// APISink is the agent's Sink: the condition writer and the event recorder,
// which take what sources publish to the API server.
type APISink struct {
	Writer   *condition.Writer
	Recorder *nodeevent.Recorder
}

func (s APISink) SetConditions(wants ...condition.Want) { s.Writer.Set(wants...) }
func (s APISink) Record(e nodeevent.Event)              { s.Recorder.Record(e) }
