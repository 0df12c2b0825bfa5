package v1alpha1

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

// AgentConfigKind is the kind of the agent's configuration file.
const AgentConfigKind = "AgentConfig"

// Defaults of AgentConfig. The agent must run without a configuration file,
// so every field has one.
const (
	DefaultHostEventLogPath    = "/var/log/host_event.log"
	DefaultMaxLineBytes        = 64 << 10
	DefaultHostEventLogPoll    = time.Second
	DefaultLeaseRenewInterval  = 60 * time.Second
	DefaultLeaseDurationFactor = 4
	DefaultProcStatPath        = "/proc/stat"
)

// Limits enforced by AgentConfig.Validate.
const (
	MinMaxLineBytes = 1 << 10
	// MaxMaxLineBytes bounds the memory one line can take: the follower
	// buffers up to this much of a line before it decides to skip it.
	MaxMaxLineBytes = 16 << 20
	// MinHostEventLogPoll keeps a misconfigured agent from spinning on stat.
	MinHostEventLogPoll = 100 * time.Millisecond
	// MinLeaseRenewInterval keeps a misconfigured fleet of agents from
	// flooding the API server with Lease updates.
	MinLeaseRenewInterval = 10 * time.Second
	// MinLeaseDurationFactor: a Lease must outlive at least one late renewal,
	// or a single slow API call would make a healthy agent look dead.
	MinLeaseDurationFactor = 2
)

// AgentConfig is the file that `nodewarden agent --config` reads. It is a
// versioned file format, not an API object: the API server never serves it.
// controller-gen makes CRDs only of types with ObjectMeta, so it makes none of
// this one. (Do not add +kubebuilder:skip for that: it is a package marker,
// and one detached from the type's doc comment drops every CRD of the
// package, RemediationPolicy's included.)
//
// Every field is optional. Defaults are applied by Default, in place, and
// after that every pointer field is non-nil.
//
// +kubebuilder:object:generate=true
type AgentConfig struct {
	metav1.TypeMeta `json:",inline"`

	// HostEventLog configures the built-in source that reads the host event
	// log of Alibaba Cloud's ecs-tool-event plugin.
	// +optional
	HostEventLog HostEventLogConfig `json:"hostEventLog"`

	// LeaseRenewInterval is how often the agent renews its Lease. Zero or
	// unset means 60s.
	// +optional
	LeaseRenewInterval metav1.Duration `json:"leaseRenewInterval,omitzero"`

	// LeaseDuration is the Lease's spec.leaseDurationSeconds: how long after
	// the last renewal the agent counts as gone. Zero or unset means four
	// times LeaseRenewInterval.
	// +optional
	LeaseDuration metav1.Duration `json:"leaseDuration,omitzero"`

	// ProcStatPath is the file the node's boot time (the btime line) is read
	// from. It is configurable for containers that mount the host's /proc
	// elsewhere, and for tests. Empty or unset means /proc/stat.
	// +optional
	ProcStatPath string `json:"procStatPath,omitempty"`

	// NPDConfigs are node-problem-detector monitor configuration files (JSON)
	// that the agent runs as additional sources.
	// +optional
	NPDConfigs []string `json:"npdConfigs,omitempty"`
}

// HostEventLogConfig configures the host event log source.
type HostEventLogConfig struct {
	// Path of the log. Unset means /var/log/host_event.log; the empty string
	// turns the source off (hence a pointer).
	// +optional
	Path *string `json:"path,omitempty"`

	// IncludeRotated replays Path+".1" before Path on start, because right
	// after a rotation the current file alone does not hold the events the
	// agent must rebuild its state from. Unset means true.
	// +optional
	IncludeRotated *bool `json:"includeRotated,omitempty"`

	// MaxLineBytes is the longest line read, not counting its newline;
	// longer lines are skipped. Zero or unset means 65536.
	// +optional
	MaxLineBytes int32 `json:"maxLineBytes,omitempty"`

	// PollInterval is how often the log is checked even without a file
	// system notification. Zero or unset means 1s.
	// +optional
	PollInterval metav1.Duration `json:"pollInterval,omitzero"`

	// Conditions maps each Node condition type the source maintains to the
	// event types that drive it. A non-empty list replaces the default table
	// as a whole; empty or unset means DefaultHostEventConditions.
	// +optional
	Conditions []HostEventCondition `json:"conditions,omitempty"`
}

// HostEventCondition is one Node condition type and the host event types
// that make it True while one of them is active.
type HostEventCondition struct {
	// Type is the Node condition type, e.g. HostEventRebootAfter48.
	Type string `json:"type"`
	// EventTypes are host event types as the log spells them, e.g.
	// SystemMaintenance.Reboot.
	EventTypes []string `json:"eventTypes"`
}

// DefaultHostEventConditions is the condition mapping of SPEC §2.1. It
// returns a new slice on every call so that callers may modify it.
func DefaultHostEventConditions() []HostEventCondition {
	return []HostEventCondition{
		{Type: "HostEventRebootAfter48", EventTypes: []string{
			"SystemMaintenance.Reboot",
			"SystemMaintenance.RebootAndIsolateErrorDisk",
			"SystemMaintenance.RebootAndReInitErrorDisk",
		}},
		{Type: "HostEventRedeploy", EventTypes: []string{
			"SystemMaintenance.Redeploy",
			"SystemFailure.Redeploy",
		}},
		{Type: "HostEventStop", EventTypes: []string{
			"SystemMaintenance.Stop",
			"SystemFailure.Stop",
			"InstanceExpiration.Stop",
			"AccountUnbalanced.Stop",
		}},
		{Type: "HostEventDelete", EventTypes: []string{
			"InstanceExpiration.Delete",
			"AccountUnbalanced.Delete",
			"SystemFailure.Delete",
		}},
	}
}

// Default fills in every unset field, in place. It leaves TypeMeta alone:
// the file's apiVersion and kind are checked before defaulting, by whoever
// reads the file.
func (c *AgentConfig) Default() {
	h := &c.HostEventLog
	if h.Path == nil {
		h.Path = ptr.To(DefaultHostEventLogPath)
	}
	if h.IncludeRotated == nil {
		h.IncludeRotated = ptr.To(true)
	}
	if h.MaxLineBytes == 0 {
		h.MaxLineBytes = DefaultMaxLineBytes
	}
	if h.PollInterval.Duration == 0 {
		h.PollInterval.Duration = DefaultHostEventLogPoll
	}
	if len(h.Conditions) == 0 {
		h.Conditions = DefaultHostEventConditions()
	}
	if c.LeaseRenewInterval.Duration == 0 {
		c.LeaseRenewInterval.Duration = DefaultLeaseRenewInterval
	}
	if c.LeaseDuration.Duration == 0 {
		c.LeaseDuration.Duration = DefaultLeaseDurationFactor * c.LeaseRenewInterval.Duration
	}
	if c.ProcStatPath == "" {
		c.ProcStatPath = DefaultProcStatPath
	}
}

var (
	// Condition types are written to the Node as they are. CamelCase is
	// what every Node condition type looks like, and `kubectl describe`,
	// field selectors and the controller's policies all expect one word.
	conditionTypeRE = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*$`)
	// Event types are matched against what the host event parser accepts
	// (hostevent.Parse): two words of ASCII letters and digits, each
	// starting with a letter. A type outside that shape would never match.
	eventTypeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*\.[A-Za-z][A-Za-z0-9]*$`)
)

// kubeletConditionTypes are owned by the kubelet. The agent patches only its
// own condition types; claiming one of these would make the two fight.
var kubeletConditionTypes = []corev1.NodeConditionType{
	corev1.NodeReady,
	corev1.NodeMemoryPressure,
	corev1.NodeDiskPressure,
	corev1.NodePIDPressure,
	corev1.NodeNetworkUnavailable,
}

// Validate checks a defaulted AgentConfig. Field paths are relative to the
// file's root, e.g. hostEventLog.conditions[1].type.
func (c *AgentConfig) Validate() field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, c.HostEventLog.validate(field.NewPath("hostEventLog"))...)

	renewPath := field.NewPath("leaseRenewInterval")
	renew := c.LeaseRenewInterval.Duration
	if renew < MinLeaseRenewInterval {
		errs = append(errs, field.Invalid(renewPath, renew.String(),
			fmt.Sprintf("must be at least %v", MinLeaseRenewInterval)))
	}
	if d := c.LeaseDuration.Duration; d < MinLeaseDurationFactor*renew {
		errs = append(errs, field.Invalid(field.NewPath("leaseDuration"), d.String(),
			fmt.Sprintf("must be at least twice leaseRenewInterval (%v), so that one late renewal does not expire the Lease",
				MinLeaseDurationFactor*renew)))
	}

	errs = append(errs, validateAbsPath(field.NewPath("procStatPath"), c.ProcStatPath)...)

	npdPath := field.NewPath("npdConfigs")
	seen := map[string]bool{}
	for i, p := range c.NPDConfigs {
		errs = append(errs, validateAbsPath(npdPath.Index(i), p)...)
		if seen[p] {
			errs = append(errs, field.Duplicate(npdPath.Index(i), p))
		}
		seen[p] = true
	}
	return errs
}

func (h *HostEventLogConfig) validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	// The empty path is valid: it turns the source off.
	if h.Path != nil && *h.Path != "" && !filepath.IsAbs(*h.Path) {
		errs = append(errs, field.Invalid(path.Child("path"), *h.Path,
			`must be an absolute path, or "" to turn the host event source off`))
	}
	if h.MaxLineBytes < MinMaxLineBytes {
		errs = append(errs, field.Invalid(path.Child("maxLineBytes"), h.MaxLineBytes,
			fmt.Sprintf("must be at least %d", MinMaxLineBytes)))
	}
	if h.MaxLineBytes > MaxMaxLineBytes {
		errs = append(errs, field.Invalid(path.Child("maxLineBytes"), h.MaxLineBytes,
			fmt.Sprintf("must be at most %d (16 MiB)", MaxMaxLineBytes)))
	}
	if d := h.PollInterval.Duration; d < MinHostEventLogPoll {
		errs = append(errs, field.Invalid(path.Child("pollInterval"), d.String(),
			fmt.Sprintf("must be at least %v", MinHostEventLogPoll)))
	}
	return append(errs, validateConditions(path.Child("conditions"), h.Conditions)...)
}

func validateConditions(path *field.Path, conds []HostEventCondition) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{} // condition types
	// An event type under two conditions would drive both, so the two would
	// always agree: never what the author meant.
	owner := map[string]int{} // event type -> index of the condition that has it
	for i, cond := range conds {
		condPath := path.Index(i)
		typePath := condPath.Child("type")
		switch {
		case cond.Type == "":
			errs = append(errs, field.Required(typePath, "a Node condition type, e.g. HostEventRebootAfter48"))
		case !conditionTypeRE.MatchString(cond.Type):
			errs = append(errs, field.Invalid(typePath, cond.Type,
				"must be CamelCase: an upper-case letter followed by letters and digits ("+conditionTypeRE.String()+")"))
		case slices.Contains(kubeletConditionTypes, corev1.NodeConditionType(cond.Type)):
			errs = append(errs, field.Invalid(typePath, cond.Type,
				"is a condition type the kubelet owns; the agent must not write it"))
		}
		if cond.Type != "" && seen[cond.Type] {
			errs = append(errs, field.Duplicate(typePath, cond.Type))
		}
		seen[cond.Type] = true

		eventsPath := condPath.Child("eventTypes")
		if len(cond.EventTypes) == 0 {
			errs = append(errs, field.Required(eventsPath, "at least one event type, e.g. SystemMaintenance.Reboot"))
		}
		for j, ev := range cond.EventTypes {
			evPath := eventsPath.Index(j)
			if !eventTypeRE.MatchString(ev) {
				errs = append(errs, field.Invalid(evPath, ev,
					"must look like Word.Word, e.g. SystemMaintenance.Reboot ("+eventTypeRE.String()+")"))
				continue
			}
			other, taken := owner[ev]
			switch {
			case !taken:
				owner[ev] = i
			case other == i:
				errs = append(errs, field.Duplicate(evPath, ev))
			default:
				errs = append(errs, field.Invalid(evPath, ev, fmt.Sprintf(
					"is mapped to both %q (%s) and %q; an event type can drive only one condition",
					conds[other].Type, path.Index(other), cond.Type)))
			}
		}
	}
	return errs
}

// validateAbsPath requires an absolute path: a relative one would resolve
// against the agent's working directory, which nobody configures on purpose.
func validateAbsPath(path *field.Path, p string) field.ErrorList {
	switch {
	case p == "":
		return field.ErrorList{field.Required(path, "an absolute path")}
	case !filepath.IsAbs(p):
		return field.ErrorList{field.Invalid(path, p, "must be an absolute path")}
	}
	return nil
}
