package npd

import (
	"context"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/internal/agent/nodeevent"
	"github.com/nodewarden/nodewarden/internal/agent/source"
)

// JournaldUnavailable says why journald monitors do not run.
const JournaldUnavailable = "nodewarden cannot read the systemd journal: NPD reads it through libsystemd (cgo), " +
	"which the static, distroless nodewarden binary does not have, and nodewarden has no journal file reader of its own yet"

// notMonitored is appended to the default message of a journald monitor's
// conditions, so that `kubectl describe node` does not claim a check that
// is not made.
const notMonitored = " (not monitored: nodewarden cannot read the systemd journal; see the agent's log)"

// journaldSource stands for a journald monitor that cannot run. It still
// owns and declares its conditions at their defaults, so that nothing
// silently disappears from the Node and no other source can claim them, and
// it says clearly, in the agent's log and in an Event on the Node, which
// file and which conditions and rules are not monitored, and why.
type journaldSource struct {
	baseSource
}

func (s *journaldSource) Run(ctx context.Context, out source.Sink) {
	s.logWarnings()
	var reasons []string
	for _, r := range s.cfg.Rules {
		reasons = append(reasons, r.Reason)
	}
	s.log.Error(nil, "NPD journald monitor is unavailable: its rules never fire and its conditions stay at their defaults",
		"why", JournaldUnavailable, "source", s.cfg.JournalSource, "logPath", s.cfg.LogPath,
		"conditions", s.cfg.ConditionTypes(), "rules", reasons,
		"instead", "have journald forward to a syslog file (ForwardToSyslog) and use a filelog monitor on it")
	s.metrics.initRules(s.cfg)
	cs := newConditions(s.cfg, s.opts.Now())
	for i := range cs {
		cs[i].message += notMonitored
	}
	out.SetConditions(cs.wants()...)
	s.publishGauges(cs)
	out.Record(nodeevent.Event{
		Key:  "npd/" + s.cfg.File + "/journald-unavailable",
		Type: corev1.EventTypeWarning, Reason: "NPDMonitorUnavailable",
		Message: "NPD config " + s.cfg.File + " (journald, SYSLOG_IDENTIFIER " + s.cfg.JournalSource + ") is not monitored: " +
			JournaldUnavailable + ". Rules not checked: " + strings.Join(reasons, ", ") + ".",
	})
	<-ctx.Done()
}
