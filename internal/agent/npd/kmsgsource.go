package npd

import (
	"context"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/nodewarden/nodewarden/internal/agent/npd/kmsg"
)

// kmsgWatcher reads kernel records from logPath (default /dev/kmsg). A
// record's time is boot time plus its boot-relative timestamp, so
// `lookback` keeps the records logged within lookback of now (and past
// `delay` after boot). Without a boot time no record of the replay can be
// dated, and none counts: only new records do.
func kmsgWatcher(c *Config, opts Options, m *Metrics, log logr.Logger) watchFunc {
	return func(ctx context.Context, onEntry func(logEntry, bool), onReplayDone func()) {
		src := metricsSourceOf(c)
		boot := opts.BootTime
		h := kmsg.Handler{
			Record: func(r kmsg.Record, replay bool) {
				opts.AgentMetrics.LineRead(src)
				// NPD skips empty messages and trims the message.
				msg := strings.TrimSpace(r.Message)
				if msg == "" || skipped(c.SkipList, msg) {
					return
				}
				if boot.IsZero() {
					if replay {
						return
					}
					onEntry(logEntry{Time: opts.Now(), Message: msg}, false)
					return
				}
				onEntry(logEntry{Time: boot.Add(r.Time), Message: msg}, replay)
			},
			ReplayDone: onReplayDone,
			Gap: func(after, lost uint64) {
				m.kmsgLost(c.File, lost)
				log.Info("kernel log records were lost (overwritten before they were read)", "afterSeq", after, "lost", lost)
			},
			Malformed: func(raw []byte, err error) {
				opts.AgentMetrics.LineUnparsed(src, "malformed_kmsg")
				log.V(1).Info("malformed kernel log record; skipped", "reason", err.Error(), "record", truncate(string(raw), 256))
			},
		}
		if err := kmsg.Follow(ctx, kmsg.Options{Path: c.LogPath, PollInterval: opts.PollInterval, RetryInterval: 5 * time.Second}, h, log); err != nil {
			log.Error(err, "reading the kernel log stopped")
		}
	}
}

// metricsSourceOf is the source label of the agent's line metrics for c.
func metricsSourceOf(c *Config) string {
	if c.Source != "" {
		return "npd-" + c.Source
	}
	return "npd-" + c.Plugin
}
