package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/agent/condition"
	"github.com/nodewarden/nodewarden/internal/agent/hostevent"
	"github.com/nodewarden/nodewarden/internal/agent/logfile"
	"github.com/nodewarden/nodewarden/internal/agent/metrics"
	"github.com/nodewarden/nodewarden/internal/agent/nodeevent"
	"github.com/nodewarden/nodewarden/internal/agent/source"
)

const hostEventSourceName = "host-event-log"

// hostEventSource follows the host event log and turns it into conditions
// and Events.
type hostEventSource struct {
	follow   logfile.Options
	mapping  hostevent.Mapping
	bootTime time.Time
	metrics  *metrics.Agent
	log      logr.Logger
}

func newHostEventSource(cfg *v1alpha1.AgentConfig, opts Options) (*hostEventSource, error) {
	mapping, err := hostevent.MappingFor(cfg.HostEventLog.Conditions)
	if err != nil {
		return nil, fmt.Errorf("hostEventLog.conditions: %w", err)
	}
	h := &cfg.HostEventLog
	return &hostEventSource{
		follow: logfile.Options{
			Path:           *h.Path,
			MaxLineBytes:   int(h.MaxLineBytes),
			PollInterval:   h.PollInterval.Duration,
			IncludeRotated: *h.IncludeRotated,
		},
		mapping:  mapping,
		bootTime: opts.BootTime,
		metrics:  opts.Metrics,
		log:      opts.Log.WithName(hostEventSourceName),
	}, nil
}

func (s *hostEventSource) Name() string             { return hostEventSourceName + " " + s.follow.Path }
func (s *hostEventSource) ConditionTypes() []string { return s.mapping.ConditionTypes() }

// Run replays the log, publishes the resulting state, then follows the log.
//
// During the replay no Event is recorded line by line: a restart replays
// history, and only each event's latest status is worth an Event (whose
// stable name makes a second recording after a restart a no-op). Conditions
// are published only once the replay is over, so a restart never shows a
// condition flipping through its history.
func (s *hostEventSource) Run(ctx context.Context, out source.Sink) {
	tracker := hostevent.NewTracker(s.mapping)
	publish := func() {
		var wants []condition.Want
		for _, c := range tracker.Conditions(s.bootTime) {
			wants = append(wants, condition.Want{
				Type: corev1.NodeConditionType(c.Type), Status: c.Status, Reason: c.Reason, Message: c.Message,
			})
		}
		out.SetConditions(wants...)
	}
	onLine := func(line logfile.Line) {
		s.metrics.LineRead(hostEventSourceName)
		ev, err := hostevent.Parse(line.Text)
		if err != nil {
			s.metrics.LineUnparsed(hostEventSourceName, reasonOf(err))
			// Guarded: building the arguments costs allocations on every
			// noise line even when debug logging is off.
			if debug := s.log.V(1); debug.Enabled() {
				debug.Info("not a host event", "reason", err.Error(), "line", truncate(line.Text, 256))
			}
			return
		}
		if !tracker.Observe(ev) {
			return
		}
		s.metrics.HostEvent(ev.Type, string(ev.Status))
		if line.Replay {
			return
		}
		s.log.Info("host event", "type", ev.Type, "status", ev.Status, "notBefore", ev.ActionTime)
		out.Record(s.nodeEvent(tracker, ev))
		publish()
	}
	onReplayDone := func() {
		for _, ev := range tracker.Latest() {
			out.Record(s.nodeEvent(tracker, ev))
		}
		publish()
	}
	follow := s.follow
	follow.OnSkip = func(n int) {
		for range n {
			s.metrics.LineUnparsed(hostEventSourceName, "too_long")
		}
	}
	if err := logfile.New(follow, s.log).Run(ctx, onLine, onReplayDone); err != nil {
		s.log.Error(err, "following the host event log stopped")
	}
}

// nodeEvent is the Kubernetes Event for one host event observation. Events
// that drive no condition, and active ones, are Warnings: someone should look.
func (s *hostEventSource) nodeEvent(t *hostevent.Tracker, ev hostevent.Event) nodeevent.Event {
	kind := corev1.EventTypeNormal
	if t.Unmapped(ev) || ev.Status.Active() {
		kind = corev1.EventTypeWarning
	}
	return nodeevent.Event{
		Key:     fmt.Sprintf("hostevent/%s/%s/%s", ev.Type, ev.Status, ev.ActionTime.UTC().Format(time.RFC3339)),
		Type:    kind,
		Reason:  ev.Reason(),
		Message: ev.Message(),
	}
}

func reasonOf(err error) string {
	if pe, ok := errors.AsType[*hostevent.ParseError](err); ok {
		return pe.Reason()
	}
	return "other"
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
