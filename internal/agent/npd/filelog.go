package npd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"

	"github.com/nodewarden/nodewarden/internal/agent/logfile"
)

// Why a filelog line was not a log entry, for the lines-unparsed metric.
var (
	errNoTimestamp  = errors.New("no_timestamp")
	errBadTimestamp = errors.New("bad_timestamp")
	errNoMessage    = errors.New("no_message")
)

// translate is NPD's filelog translator: the timestamp and the message are
// the last submatch of their regular expressions (the whole match if they
// have no group); a timestamp without a year is in the current year.
func (c *Config) translate(line string, loc *time.Location, now time.Time) (logEntry, error) {
	m := c.TimestampRE.FindStringSubmatch(line)
	if len(m) == 0 {
		return logEntry{}, errNoTimestamp
	}
	ts, err := time.ParseInLocation(c.TimestampFormat, m[len(m)-1], loc)
	if err != nil {
		return logEntry{}, fmt.Errorf("%w: %w", errBadTimestamp, err)
	}
	if ts.Year() == 0 {
		ts = ts.AddDate(now.Year(), 0, 0)
	}
	m = c.MessageRE.FindStringSubmatch(line)
	if len(m) == 0 {
		return logEntry{}, errNoMessage
	}
	return logEntry{Time: ts, Message: m[len(m)-1]}, nil
}

// filelogWatcher follows the log file with the same follower as the host
// event log: rotation (rename and copytruncate), truncation, a file that
// does not exist yet, partial last lines. The rotated file (logPath.1) is
// replayed too; `lookback` decides what of it counts.
func filelogWatcher(c *Config, opts Options, log logr.Logger) watchFunc {
	return func(ctx context.Context, onEntry func(logEntry, bool), onReplayDone func()) {
		src := metricsSourceOf(c)
		f := logfile.New(logfile.Options{
			Path:           c.LogPath,
			PollInterval:   opts.PollInterval,
			IncludeRotated: true,
			OnSkip: func(n int) {
				for range n {
					opts.AgentMetrics.LineUnparsed(src, "too_long")
				}
			},
		}, log)
		onLine := func(l logfile.Line) {
			opts.AgentMetrics.LineRead(src)
			line := string(l.Text)
			if skipped(c.SkipList, line) {
				return
			}
			e, err := c.translate(line, opts.Location, opts.Now())
			if err != nil {
				reason := err
				for _, r := range []error{errNoTimestamp, errBadTimestamp, errNoMessage} {
					if errors.Is(err, r) {
						reason = r
					}
				}
				opts.AgentMetrics.LineUnparsed(src, reason.Error())
				log.V(1).Info("line does not fit pluginConfig; skipped", "reason", err.Error(), "line", truncate(line, 256))
				return
			}
			onEntry(e, l.Replay)
		}
		if err := f.Run(ctx, onLine, onReplayDone); err != nil {
			log.Error(err, "following the log stopped")
		}
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
