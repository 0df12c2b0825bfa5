// Package npd runs node-problem-detector's monitor configs, unchanged, as
// sources of the agent (`nodewarden agent --npd-config a.json,b.json`, or
// AgentConfig.npdConfigs).
//
// One config file is one source (one NPD problem daemon), told apart by its
// `plugin`:
//
//	filelog   system-log-monitor on a log file, with the host event log's
//	          follower (logfile.Follower: rotation, copytruncate, replay)
//	kmsg      system-log-monitor on /dev/kmsg (package kmsg), or on the
//	          file or FIFO that logPath names
//	journald  system-log-monitor on the journal files under logPath (and
//	          /run/log/journal for the default /var/log/journal), read with
//	          package journal: entries whose SYSLOG_IDENTIFIER is
//	          pluginConfig.source, polled from the last cursor
//	custom    custom-plugin-monitor: scripts run with a timeout and a
//	          concurrency bound
//
// # Semantics, as NPD
//
//   - A monitor declares its conditions at start: False, with their default
//     reason and message.
//   - A log rule's pattern is matched against the monitor's last bufferSize
//     messages joined by "\n" and must match up to the end (logBuffer).
//     A `temporary` rule makes a Warning Event: the rule's reason, the
//     matched lines as message. A `permanent` rule sets its condition True
//     with the rule's reason and the matched lines as message, and makes
//     NPD's condition-change Event ("Node condition X is now: True, ...");
//     a log monitor never sets a condition back to False.
//   - On start, log entries count only if within `lookback` of now and past
//     `delay` after boot, by their parsed timestamp (filelog), their
//     boot-relative time (kmsg) or their realtime stamp (journald). Entries
//     arriving later always count.
//   - A custom plugin's exit code is its status: 0 OK, 1 problem, anything
//     else (or a timeout) unknown; its trimmed stdout, cut to
//     max_output_length, is the message. A temporary rule makes an Event
//     while the plugin does not say OK; a permanent rule makes its condition
//     False, True or Unknown, with NPD's reasons and messages.
//   - problem_counter{reason} and problem_gauge{type,reason} are NPD's
//     metrics, with NPD's names and labels (Metrics).
//
// # What is different
//
// Events have keys made of what they report (rule, time, message), so the
// replay after a restart records nothing twice. Conditions are published
// only once the replay is over. A custom plugin's temporary problem is one
// Event per episode, not one per run. kmsg continuation lines are not part
// of the message. docs/migrate-npd.md lists every difference.
//
// # Extension: resolving permanent conditions
//
// NPD never clears a condition a log rule set. A condition may carry a
// `nodewarden` object, which NPD ignores:
//
//	{"type": "KernelDeadlock", "reason": "KernelHasNoDeadlock", "message": "kernel has no deadlock",
//	 "nodewarden": {"resolvePattern": "...", "resolveAfter": "24h"}}
//
// A log entry matching resolvePattern (with the rules' matching semantics),
// or resolveAfter passing since the condition became True, sets it back to
// its default, with a Normal condition-change Event. Both are off unless set.
package npd
