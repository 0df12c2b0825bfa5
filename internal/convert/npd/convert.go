// Package npd converts node-problem-detector monitor configs into the
// equivalent nodewarden AgentConfig (`nodewarden convert npd FILE...`).
//
// # What the conversion is
//
// The agent runs NPD's JSON files unchanged (AgentConfig.npdConfigs, or
// --npd-config), with NPD's semantics. So the exact equivalent of a set of
// NPD configs is an AgentConfig that lists them, and the AgentConfig type
// gains nothing: the NPD files stay the single place where their rules
// live, the ConfigMap users already have keeps working, and there is no
// second rule language to translate into and drift from. What the
// conversion adds is checking: every file is loaded as the agent will load
// it, errors stop the conversion, and every unsupported field and every
// difference from NPD is a warning.
//
// By default the output does exactly what NPD did: the listed monitors and
// nothing else, so the agent's built-in host event source is turned off
// (hostEventLog.path: ""), since NPD had none and the built-in source
// declares conditions of its own (and a condition type can have only one
// owner, so host_event.json and the built-in source cannot both run).
//
// With Options.BuiltinHostEvents, a host event filelog monitor (Alibaba's
// host_event.json: rules matching "Ecs event type is: ...") is replaced by
// the built-in host event source, with a hostEventLog.conditions mapping
// taken from its permanent rules. That is not the same behaviour, and the
// warnings say how it differs: the built-in source clears a condition when
// the event is over and rebuilds its state from the whole log on restart,
// where NPD's monitor sets the condition True and never clears it.
package npd

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"k8s.io/utils/ptr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/agent/npd"
	"github.com/nodewarden/nodewarden/internal/journal"
)

// Options tune Convert.
type Options struct {
	// BuiltinHostEvents replaces host event filelog monitors by the agent's
	// built-in host event source.
	BuiltinHostEvents bool
}

// hostEventTypeRE finds the host event types a host_event.json rule matches.
var hostEventTypeRE = regexp.MustCompile(`Ecs event type is: ?\(?([A-Za-z][A-Za-z0-9]*\\?\.[A-Za-z][A-Za-z0-9]*)`)

// Convert returns the AgentConfig equivalent to the NPD monitor configs at
// paths, and one warning line per thing that is not the same as in NPD.
func Convert(paths []string, opts Options) (*v1alpha1.AgentConfig, []string, error) {
	if len(paths) == 0 {
		return nil, nil, errors.New("no NPD config files given")
	}
	var warnings []string
	cfg := &v1alpha1.AgentConfig{}
	cfg.APIVersion = v1alpha1.GroupVersion.String()
	cfg.Kind = v1alpha1.AgentConfigKind
	owner := map[string]string{}
	var hostEvent *npd.Config
	for _, p := range paths {
		c, err := npd.Load(p, npd.LoadOptions{SkipPluginPathCheck: true})
		if err != nil {
			return nil, nil, err
		}
		warnings = append(warnings, c.Warnings...)
		for _, t := range c.ConditionTypes() {
			if prev, ok := owner[t]; ok {
				return nil, nil, fmt.Errorf("condition type %s is declared by both %s and %s; in nodewarden a condition type has one owner (NPD let both write it, and the last write won): remove it from one of them", t, prev, p)
			}
			owner[t] = p
		}
		warnings = append(warnings, differences(c)...)

		if isHostEventMonitor(c) && !opts.BuiltinHostEvents {
			warnings = append(warnings, fmt.Sprintf("%s: a host event monitor; it runs as in NPD (the condition is set True and never cleared). The built-in host event source clears it when the event is over: convert with --builtin-host-events to use it instead", p))
		}
		if opts.BuiltinHostEvents && isHostEventMonitor(c) {
			if hostEvent != nil {
				return nil, nil, fmt.Errorf("%s and %s are both host event monitors; the built-in host event source reads one log", hostEvent.File, p)
			}
			hostEvent = c
			continue
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, nil, err
		}
		if abs != p {
			warnings = append(warnings, fmt.Sprintf("%s: relative path written as %s; npdConfigs must be where the agent's container sees the file (e.g. /config/%s in NPD's DaemonSet)", p, abs, filepath.Base(p)))
		}
		cfg.NPDConfigs = append(cfg.NPDConfigs, abs)
	}

	if hostEvent == nil {
		cfg.HostEventLog.Path = ptr.To("")
		if opts.BuiltinHostEvents {
			warnings = append(warnings, "no host event monitor (rules matching \"Ecs event type is: ...\") among the files; the built-in host event source stays off")
		}
		return cfg, warnings, nil
	}
	w, err := builtinHostEvents(cfg, hostEvent)
	if err != nil {
		return nil, nil, err
	}
	return cfg, append(warnings, w...), nil
}

// isHostEventMonitor tells a filelog monitor of the host event log.
func isHostEventMonitor(c *npd.Config) bool {
	if c.Plugin != npd.PluginFilelog {
		return false
	}
	for _, r := range c.Rules {
		if strings.Contains(r.Pattern, "Ecs event type is:") {
			return true
		}
	}
	return false
}

// builtinHostEvents configures the built-in host event source in place of c.
func builtinHostEvents(cfg *v1alpha1.AgentConfig, c *npd.Config) ([]string, error) {
	var conds []v1alpha1.HostEventCondition
	for _, t := range c.ConditionTypes() {
		var types []string
		for _, r := range c.Rules {
			if r.Type != npd.Permanent || r.Condition != t {
				continue
			}
			for _, m := range hostEventTypeRE.FindAllStringSubmatch(r.Pattern, -1) {
				et := strings.ReplaceAll(m[1], `\.`, ".")
				if !slices.Contains(types, et) {
					types = append(types, et)
				}
			}
		}
		if len(types) == 0 {
			return nil, fmt.Errorf("%s: no host event type found in the permanent rules of condition %s; convert without the built-in host event source", c.File, t)
		}
		conds = append(conds, v1alpha1.HostEventCondition{Type: t, EventTypes: types})
	}
	if len(conds) == 0 {
		return nil, fmt.Errorf("%s declares no condition; convert without the built-in host event source", c.File)
	}
	cfg.HostEventLog = v1alpha1.HostEventLogConfig{Path: ptr.To(c.LogPath), Conditions: conds}
	var w []string
	w = append(w, fmt.Sprintf("%s: replaced by the built-in host event source (hostEventLog) reading %s. It behaves differently, on purpose:", c.File, c.LogPath))
	for _, cond := range conds {
		w = append(w, fmt.Sprintf("  %s: True while one of %s is Inquiring, Scheduled or Executing (NPD: only the statuses its patterns name), and False again when the event is Executed, Canceled, Avoided or Failed, or the node rebooted after the action time (NPD: never cleared)", cond.Type, strings.Join(cond.EventTypes, ", ")))
	}
	var reasons []string
	for _, r := range c.Rules {
		reasons = append(reasons, r.Reason)
	}
	w = append(w,
		fmt.Sprintf("  reasons differ: the event type and status, e.g. SystemMaintenanceRebootScheduled, instead of %s; update RemediationPolicies or alerts that match these reasons", strings.Join(reasons, ", ")),
		"  the condition message ends with \"not before <RFC3339 time>\" (the action time), which the controller uses as the node's deadline",
		"  state is rebuilt from the whole log (and its .1 rotation) on every restart, not from the last `lookback`; Events are one per new (event type, status, action time)",
	)
	return w, nil
}

// differences are the warnings about how nodewarden runs c differently from NPD.
func differences(c *npd.Config) []string {
	var w []string
	switch c.Plugin {
	case npd.PluginJournald:
		dirs := strings.Join(journal.DirsFor(c.LogPath), " and ")
		w = append(w, fmt.Sprintf("%s: a journald monitor (SYSLOG_IDENTIFIER %q); it runs as in NPD, reading the journal files under %s itself: the agent's Pod needs them mounted read-only (hostPath) and readable by its user (uid 65532): journal files are usually mode 0640, group systemd-journal, so add that group's GID to the Pod's securityContext.supplementalGroups (docs/migrate-npd.md#journald)",
			c.File, c.JournalSource, dirs))
	case npd.PluginCustom:
		for _, r := range c.Rules {
			if !filepath.IsAbs(r.Path) {
				w = append(w, fmt.Sprintf("%s: rules[%d] (reason %q): plugin path %q is relative: it is resolved against the agent's working directory (/ in nodewarden's image), as in NPD", c.File, r.Index, r.Reason, r.Path))
			}
		}
		w = append(w, fmt.Sprintf("%s: custom plugins run inside the agent's container: the scripts and every program they call (a shell, ntpq, ...) must be there; nodewarden's image is distroless and has no shell", c.File))
	}
	return w
}
