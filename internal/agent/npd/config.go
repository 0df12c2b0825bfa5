package npd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/nodewarden/nodewarden/internal/agent/agentconfig"
	"github.com/nodewarden/nodewarden/internal/journal"
)

// MonitorKind is which NPD problem daemon a config file is for. NPD takes
// them under different flags (--config.system-log-monitor,
// --config.custom-plugin-monitor); nodewarden tells them apart by `plugin`.
type MonitorKind string

const (
	SystemLogMonitor    MonitorKind = "system-log-monitor"
	CustomPluginMonitor MonitorKind = "custom-plugin-monitor"
)

// Plugins NPD knows.
const (
	PluginFilelog  = "filelog"
	PluginKmsg     = "kmsg"
	PluginJournald = "journald"
	PluginCustom   = "custom"
)

// ProblemType is a rule's `type`.
type ProblemType string

const (
	// Temporary problems are reported as Events.
	Temporary ProblemType = "temporary"
	// Permanent problems set their condition True.
	Permanent ProblemType = "permanent"
)

// NPD's defaults.
const (
	DefaultBufferSize      = 10
	DefaultKmsgPath        = "/dev/kmsg"
	DefaultJournalPath     = journal.PersistentDir
	DefaultInvokeInterval  = 30 * time.Second
	DefaultPluginTimeout   = 5 * time.Second
	DefaultMaxOutputLength = 80
	DefaultConcurrency     = 3
)

// maxConfigBytes bounds what is read of one config file.
const maxConfigBytes = 1 << 20

// kubeletConditionTypes are the kubelet's; a monitor writing one of them
// would fight the kubelet over the Node.
var kubeletConditionTypes = []string{"Ready", "MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"}

// Config is one NPD monitor configuration file, checked and with NPD's
// defaults applied.
type Config struct {
	// File is the path the config was read from.
	File string
	Kind MonitorKind
	// Plugin is filelog, kmsg, journald or custom.
	Plugin string
	// Source is the monitor's `source` (e.g. "kernel-monitor").
	Source string
	// MetricsReporting is `metricsReporting` (default true): whether the
	// monitor's problems are counted in problem_counter and problem_gauge.
	MetricsReporting bool
	// Conditions are the default conditions, in file order.
	Conditions []Condition
	Rules      []Rule

	// System log monitors.

	// LogPath is `logPath`: the file (filelog), the device (kmsg, default
	// /dev/kmsg) or the journal directory (journald, default
	// /var/log/journal).
	LogPath string
	// Lookback is how far back, from now, log entries are considered on
	// start (`lookback`, default 0: only new entries).
	Lookback time.Duration
	// Delay skips entries logged less than Delay after boot (`delay`).
	Delay      time.Duration
	BufferSize int
	// SkipList: lines containing any of these are ignored (`skipList`).
	SkipList []string
	// filelog `pluginConfig`.
	TimestampRE     *regexp.Regexp
	MessageRE       *regexp.Regexp
	TimestampFormat string
	// journald `pluginConfig.source`: the SYSLOG_IDENTIFIER to read.
	JournalSource string

	// Custom plugin monitors (`pluginConfig`).
	InvokeInterval                    time.Duration
	Timeout                           time.Duration
	MaxOutputLength                   int
	Concurrency                       int
	MessageChangeBasedConditionUpdate bool
	SkipInitialStatus                 bool

	// Warnings name every field of the file that nodewarden does not
	// support and ignores, one line each, prefixed with the file.
	Warnings []string
}

// Condition is one of a monitor's default conditions.
type Condition struct {
	Type    string
	Reason  string
	Message string

	// ResolvePattern and ResolveAfter are nodewarden's extension (the
	// `nodewarden` object of a condition, which NPD ignores): a log entry
	// matching ResolvePattern, or ResolveAfter passing since the condition
	// became True, sets it back to its default. Both are off when unset.
	ResolvePattern *regexp.Regexp
	ResolveAfter   time.Duration
}

// Rule is one entry of `rules`.
type Rule struct {
	// Index is the rule's position in `rules`, for messages.
	Index     int
	Type      ProblemType
	Condition string
	Reason    string

	// Log monitors: Pattern must match up to the end of the buffered log.
	Pattern string
	re      *regexp.Regexp

	// Custom plugins.
	Path string
	Args []string
	// Timeout is the rule's `timeout`, or the global one.
	Timeout time.Duration
	// InvokeInterval is the rule's `invoke_interval`, or the global one.
	InvokeInterval time.Duration
}

// name identifies a rule in messages: rules[3] (reason "DockerHung").
func (r *Rule) name() string {
	if r.Reason == "" {
		return fmt.Sprintf("rules[%d]", r.Index)
	}
	return fmt.Sprintf("rules[%d] (reason %q)", r.Index, r.Reason)
}

// ConditionTypes are the condition types the monitor owns, in file order.
func (c *Config) ConditionTypes() []string {
	out := make([]string, 0, len(c.Conditions))
	for _, cond := range c.Conditions {
		out = append(out, cond.Type)
	}
	return out
}

func (c *Config) condition(t string) *Condition {
	for i := range c.Conditions {
		if c.Conditions[i].Type == t {
			return &c.Conditions[i]
		}
	}
	return nil
}

// LoadOptions tune Load.
type LoadOptions struct {
	// SkipPluginPathCheck does not require custom plugin scripts to exist,
	// for `nodewarden convert npd` on a machine other than the node.
	SkipPluginPathCheck bool
}

// Load reads and checks the NPD monitor config at path. Every error starts
// with "npd config <path>: " and names the field or rule and the problem.
func Load(path string, opts LoadOptions) (*Config, error) {
	data, err := readConfig(path)
	if err != nil {
		return nil, fmt.Errorf("npd config %s: %w", path, err)
	}
	return Parse(path, data, opts)
}

func readConfig(path string) ([]byte, error) {
	return agentconfig.ReadFile(path, maxConfigBytes, "not an NPD monitor config")
}

// Parse checks the NPD monitor config data read from file.
func Parse(file string, data []byte, opts LoadOptions) (*Config, error) {
	c, err := parse(file, data, opts)
	if err != nil {
		return nil, fmt.Errorf("npd config %s: %w", file, err)
	}
	return c, nil
}

func parse(file string, data []byte, opts LoadOptions) (*Config, error) {
	var raw json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, syntaxError(data, err)
	}
	root, err := newObject("", raw)
	if err != nil {
		return nil, err
	}
	c := &Config{File: file}
	var unused []string
	if _, err := root.get("plugin", &c.Plugin); err != nil {
		return nil, err
	}
	switch c.Plugin {
	case PluginFilelog, PluginKmsg, PluginJournald:
		c.Kind = SystemLogMonitor
	case PluginCustom:
		c.Kind = CustomPluginMonitor
	case "":
		return nil, errors.New(`plugin: missing; must be "filelog", "kmsg" or "journald" (system-log-monitor) or "custom" (custom-plugin-monitor); system-stats-monitor configs are not supported`)
	default:
		return nil, fmt.Errorf(`plugin: unknown plugin %q; must be "filelog", "kmsg" or "journald" (system-log-monitor) or "custom" (custom-plugin-monitor)`, c.Plugin)
	}
	if _, err := root.get("source", &c.Source); err != nil {
		return nil, err
	}
	c.MetricsReporting = true
	if _, err := root.get("metricsReporting", &c.MetricsReporting); err != nil {
		return nil, err
	}
	if unused, err = c.parseConditions(root, unused); err != nil {
		return nil, err
	}
	if c.Kind == SystemLogMonitor {
		unused, err = c.parseSystemLog(root, unused)
	} else {
		unused, err = c.parseCustom(root, unused, opts)
	}
	if err != nil {
		return nil, err
	}
	if err := c.checkRules(); err != nil {
		return nil, err
	}
	unused = append(unused, root.unused()...)
	slices.Sort(unused)
	for _, f := range unused {
		c.Warnings = append(c.Warnings, fmt.Sprintf("npd config %s: field %s is not supported by nodewarden and is ignored", file, f))
	}
	return c, nil
}

func (c *Config) parseConditions(root *object, unused []string) ([]string, error) {
	var list []json.RawMessage
	if _, err := root.get("conditions", &list); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i, raw := range list {
		o, err := newObject(fmt.Sprintf("conditions[%d]", i), raw)
		if err != nil {
			return nil, err
		}
		var cond Condition
		for _, f := range []struct {
			key string
			dst *string
		}{{"type", &cond.Type}, {"reason", &cond.Reason}, {"message", &cond.Message}} {
			if _, err := o.get(f.key, f.dst); err != nil {
				return nil, err
			}
		}
		switch {
		case cond.Type == "":
			return nil, o.fieldErr("type", errors.New("missing; every condition needs a type"))
		case slices.Contains(kubeletConditionTypes, cond.Type):
			return nil, o.fieldErr("type", fmt.Errorf("%q is a condition type the kubelet owns; a monitor must not write it", cond.Type))
		case seen[cond.Type]:
			return nil, o.fieldErr("type", fmt.Errorf("condition type %q is declared twice", cond.Type))
		}
		seen[cond.Type] = true
		if raw, ok := o.raw("nodewarden"); ok {
			var err error
			if unused, err = c.parseExtension(&cond, o.path("nodewarden"), raw, unused); err != nil {
				return nil, err
			}
		}
		unused = append(unused, o.unused()...)
		c.Conditions = append(c.Conditions, cond)
	}
	return unused, nil
}

// parseExtension reads nodewarden's resolve extension of a condition.
func (c *Config) parseExtension(cond *Condition, where string, raw json.RawMessage, unused []string) ([]string, error) {
	o, err := newObject(where, raw)
	if err != nil {
		return nil, err
	}
	var pattern, after string
	if _, err := o.get("resolvePattern", &pattern); err != nil {
		return nil, err
	}
	if _, err := o.get("resolveAfter", &after); err != nil {
		return nil, err
	}
	if c.Kind != SystemLogMonitor && (pattern != "" || after != "") {
		// A plugin's own result clears its condition.
		return append(unused, o.path("resolvePattern"), o.path("resolveAfter")), nil
	}
	if pattern != "" {
		if cond.ResolvePattern, err = compilePattern(pattern); err != nil {
			return nil, o.fieldErr("resolvePattern", fmt.Errorf("invalid regular expression %q: %w", pattern, err))
		}
	}
	if after != "" {
		d, err := time.ParseDuration(after)
		if err != nil || d <= 0 {
			return nil, o.fieldErr("resolveAfter", fmt.Errorf("%q must be a positive duration, e.g. 24h", after))
		}
		cond.ResolveAfter = d
	}
	return append(unused, o.unused()...), nil
}

// compilePattern compiles a rule pattern the way NPD does: it must match up
// to the end of the buffered log.
func compilePattern(p string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(p); err != nil {
		return nil, err
	}
	return regexp.Compile("(?:" + p + `)\z`)
}

func (c *Config) parseSystemLog(root *object, unused []string) ([]string, error) {
	var lookback, delay string
	for _, f := range []struct {
		key string
		dst any
	}{
		{"logPath", &c.LogPath}, {"lookback", &lookback}, {"delay", &delay},
		{"bufferSize", &c.BufferSize}, {"skipList", &c.SkipList},
	} {
		if _, err := root.get(f.key, f.dst); err != nil {
			return nil, err
		}
	}
	var err error
	if c.Lookback, err = parseDuration(root, "lookback", lookback); err != nil {
		return nil, err
	}
	if c.Delay, err = parseDuration(root, "delay", delay); err != nil {
		return nil, err
	}
	switch {
	case c.BufferSize < 0:
		return nil, root.fieldErr("bufferSize", fmt.Errorf("%d must not be negative", c.BufferSize))
	case c.BufferSize == 0:
		c.BufferSize = DefaultBufferSize
	}

	pc := map[string]string{}
	if _, err := root.get("pluginConfig", &pc); err != nil {
		return nil, err
	}
	known := map[string]bool{}
	switch c.Plugin {
	case PluginFilelog:
		if c.LogPath == "" {
			return nil, root.fieldErr("logPath", errors.New("missing; the filelog plugin needs the log file's path"))
		}
		for _, k := range []string{"timestamp", "message", "timestampFormat"} {
			known[k] = true
			if pc[k] == "" {
				return nil, root.fieldErr("pluginConfig."+k, errors.New("missing; the filelog plugin needs timestamp, message and timestampFormat"))
			}
		}
		if c.TimestampRE, err = regexp.Compile(pc["timestamp"]); err != nil {
			return nil, root.fieldErr("pluginConfig.timestamp", fmt.Errorf("invalid regular expression %q: %w", pc["timestamp"], err))
		}
		if c.MessageRE, err = regexp.Compile(pc["message"]); err != nil {
			return nil, root.fieldErr("pluginConfig.message", fmt.Errorf("invalid regular expression %q: %w", pc["message"], err))
		}
		c.TimestampFormat = pc["timestampFormat"]
	case PluginKmsg:
		if c.LogPath == "" {
			c.LogPath = DefaultKmsgPath
		}
	case PluginJournald:
		if c.LogPath == "" {
			c.LogPath = DefaultJournalPath
		}
		known["source"] = true
		if c.JournalSource = pc["source"]; c.JournalSource == "" {
			return nil, root.fieldErr("pluginConfig.source", errors.New("missing; the journald plugin needs the SYSLOG_IDENTIFIER to read"))
		}
	}
	for k := range pc {
		if !known[k] {
			unused = append(unused, "pluginConfig."+k)
		}
	}

	return c.parseRules(root, unused, parseLogRule)
}

// parseLogRule reads what a log monitor's rule has besides the basics.
func parseLogRule(o *object, r *Rule) error {
	if _, err := o.get("pattern", &r.Pattern); err != nil {
		return err
	}
	if !o.has("pattern") {
		return fmt.Errorf("%s: pattern: missing", r.name())
	}
	var err error
	if r.re, err = compilePattern(r.Pattern); err != nil {
		return fmt.Errorf("%s: pattern: invalid regular expression %q: %w", r.name(), r.Pattern, err)
	}
	return nil
}

func parseDuration(o *object, key, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, o.fieldErr(key, fmt.Errorf("%q is not a duration (e.g. 5m)", s))
	}
	return d, nil
}

// parseRules reads `rules`: for each, what every rule has (getRuleBasics),
// then what the plugin's rules have (parseRule).
func (c *Config) parseRules(root *object, unused []string, parseRule func(o *object, r *Rule) error) ([]string, error) {
	var rules []json.RawMessage
	if _, err := root.get("rules", &rules); err != nil {
		return nil, err
	}
	for i, raw := range rules {
		o, err := newObject(fmt.Sprintf("rules[%d]", i), raw)
		if err != nil {
			return nil, err
		}
		r := Rule{Index: i}
		if err := getRuleBasics(o, &r); err != nil {
			return nil, err
		}
		if err := parseRule(o, &r); err != nil {
			return nil, err
		}
		unused = append(unused, o.unused()...)
		c.Rules = append(c.Rules, r)
	}
	return unused, nil
}

func getRuleBasics(o *object, r *Rule) error {
	var typ string
	for _, f := range []struct {
		key string
		dst *string
	}{{"type", &typ}, {"condition", &r.Condition}, {"reason", &r.Reason}} {
		if _, err := o.get(f.key, f.dst); err != nil {
			return err
		}
	}
	r.Type = ProblemType(typ)
	return nil
}

func (c *Config) parseCustom(root *object, unused []string, opts LoadOptions) ([]string, error) {
	c.InvokeInterval = DefaultInvokeInterval
	c.Timeout = DefaultPluginTimeout
	c.MaxOutputLength = DefaultMaxOutputLength
	c.Concurrency = DefaultConcurrency
	if raw, ok := root.raw("pluginConfig"); ok {
		o, err := newObject("pluginConfig", raw)
		if err != nil {
			return nil, err
		}
		var interval, timeout string
		for _, f := range []struct {
			key string
			dst any
		}{
			{"invoke_interval", &interval}, {"timeout", &timeout},
			{"max_output_length", &c.MaxOutputLength}, {"concurrency", &c.Concurrency},
			{"enable_message_change_based_condition_update", &c.MessageChangeBasedConditionUpdate},
			{"skip_initial_status", &c.SkipInitialStatus},
		} {
			if _, err := o.get(f.key, f.dst); err != nil {
				return nil, err
			}
		}
		if interval != "" {
			if c.InvokeInterval, err = positiveDuration(o, "invoke_interval", interval); err != nil {
				return nil, err
			}
		}
		if timeout != "" {
			if c.Timeout, err = positiveDuration(o, "timeout", timeout); err != nil {
				return nil, err
			}
		}
		if c.MaxOutputLength < 0 {
			return nil, o.fieldErr("max_output_length", fmt.Errorf("%d must not be negative", c.MaxOutputLength))
		}
		if c.Concurrency < 1 {
			return nil, o.fieldErr("concurrency", fmt.Errorf("%d must be at least 1", c.Concurrency))
		}
		unused = append(unused, o.unused()...)
	}

	return c.parseRules(root, unused, func(o *object, r *Rule) error { return c.parseCustomRule(o, r, opts) })
}

// parseCustomRule reads what a custom plugin's rule has besides the basics.
func (c *Config) parseCustomRule(o *object, r *Rule, opts LoadOptions) error {
	r.Timeout, r.InvokeInterval = c.Timeout, c.InvokeInterval
	var timeout, interval string
	for _, f := range []struct {
		key string
		dst any
	}{{"path", &r.Path}, {"args", &r.Args}, {"timeout", &timeout}, {"invoke_interval", &interval}} {
		if _, err := o.get(f.key, f.dst); err != nil {
			return fmt.Errorf("%s: %w", r.name(), err)
		}
	}
	if r.Path == "" {
		return fmt.Errorf("%s: path: missing; a custom plugin rule runs the program at path", r.name())
	}
	if !opts.SkipPluginPathCheck {
		if _, err := os.Stat(r.Path); err != nil {
			return fmt.Errorf("%s: path: plugin %q cannot be run: %w", r.name(), r.Path, unwrapPathError(err))
		}
	}
	var err error
	if timeout != "" {
		if r.Timeout, err = positiveDuration(o, "timeout", timeout); err != nil {
			return fmt.Errorf("%s: %w", r.name(), err)
		}
		if r.Timeout > c.Timeout {
			return fmt.Errorf("%s: timeout: %v is longer than the global pluginConfig.timeout %v", r.name(), r.Timeout, c.Timeout)
		}
	}
	if interval != "" {
		if r.InvokeInterval, err = positiveDuration(o, "invoke_interval", interval); err != nil {
			return fmt.Errorf("%s: %w", r.name(), err)
		}
	}
	return nil
}

func unwrapPathError(err error) error {
	if pathErr := (*fs.PathError)(nil); errors.As(err, &pathErr) {
		return pathErr.Err
	}
	return err
}

func positiveDuration(o *object, key, s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, o.fieldErr(key, fmt.Errorf("%q must be a positive duration (e.g. 30s)", s))
	}
	return d, nil
}

// checkRules checks what every rule needs, whatever the plugin.
func (c *Config) checkRules() error {
	for _, r := range c.Rules {
		if r.Reason == "" {
			return fmt.Errorf("%s: reason: missing; it is the Event's or the condition's reason", r.name())
		}
		switch r.Type {
		case Temporary:
		case Permanent:
			if r.Condition == "" {
				return fmt.Errorf("%s: condition: missing; a permanent rule must name the condition it sets", r.name())
			}
			if c.condition(r.Condition) == nil {
				return fmt.Errorf("%s: condition: %q is not declared in conditions; a permanent rule's condition needs a default (declared: %s)",
					r.name(), r.Condition, quoteList(c.ConditionTypes()))
			}
		case "":
			return fmt.Errorf(`%s: type: missing; must be "temporary" or "permanent"`, r.name())
		default:
			return fmt.Errorf(`%s: type: %q must be "temporary" or "permanent"`, r.name(), r.Type)
		}
	}
	return nil
}

func quoteList(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}
