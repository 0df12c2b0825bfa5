package v1alpha1

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
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

	// Metadata configures the source that reads scheduled maintenance, spot
	// interruptions and similar notices from the cloud's instance-metadata
	// endpoint (Alibaba Cloud, AWS, Azure, GCP). It is off by default.
	// +optional
	Metadata MetadataConfig `json:"metadata"`

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

	// HealthChecks configures the built-in node health checks: KernelReady,
	// NetworkingReady, StorageReady and ContainerRuntimeReady (or their AKS
	// names). docs/conditions.md lists every condition, reason and what each
	// check needs from the host.
	// +optional
	HealthChecks HealthChecksConfig `json:"healthChecks"`
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
	c.Metadata.Default()
	c.HealthChecks.Default()
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
	errs = append(errs, c.Metadata.validate(field.NewPath("metadata"), &c.HostEventLog)...)
	errs = append(errs, c.HealthChecks.validate(field.NewPath("healthChecks"))...)

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

// MetadataProvider names a cloud whose instance-metadata endpoint the agent
// reads, or says how to choose one.
type MetadataProvider string

// The values of MetadataConfig.Provider.
const (
	// MetadataProviderNone turns the metadata source off.
	MetadataProviderNone MetadataProvider = "none"
	// MetadataProviderAuto detects the cloud from the machine's DMI
	// identification (sys_vendor, product_name) and reads that cloud's
	// endpoint; on a machine of no known cloud it reads nothing.
	MetadataProviderAuto    MetadataProvider = "auto"
	MetadataProviderAlibaba MetadataProvider = "alibaba"
	MetadataProviderAWS     MetadataProvider = "aws"
	MetadataProviderAzure   MetadataProvider = "azure"
	MetadataProviderGCP     MetadataProvider = "gcp"
)

// MetadataProviders lists every valid MetadataConfig.Provider.
var MetadataProviders = []MetadataProvider{
	MetadataProviderAuto, MetadataProviderNone,
	MetadataProviderAlibaba, MetadataProviderAWS, MetadataProviderAzure, MetadataProviderGCP,
}

// Defaults of MetadataConfig.
const (
	DefaultMetadataProvider = MetadataProviderNone
	DefaultDMIPath          = "/sys/class/dmi/id"
	// DefaultMetadataTimeout bounds one request. Metadata endpoints are
	// link-local and answer in milliseconds; a slow one is broken.
	DefaultMetadataTimeout = 2 * time.Second

	DefaultAlibabaMetadataEndpoint = "http://100.100.100.200"
	DefaultAWSMetadataEndpoint     = "http://169.254.169.254"
	DefaultAzureMetadataEndpoint   = "http://169.254.169.254"
	// GCP also answers as http://metadata.google.internal; the address
	// needs no DNS, which a hostNetwork pod may resolve differently.
	DefaultGCPMetadataEndpoint = "http://169.254.169.254"

	DefaultAlibabaPollInterval = 30 * time.Second
	// Spot notices come minutes (Alibaba: 5, AWS: 2) before the instance goes.
	DefaultAlibabaSpotPollInterval = 5 * time.Second
	DefaultAWSPollInterval         = 60 * time.Second
	DefaultAWSSpotPollInterval     = 5 * time.Second
	// One Azure document carries maintenance and Spot preemptions, and a
	// Preempt comes only 30 s ahead; 5 s is far below Azure's rate limit.
	DefaultAzurePollInterval = 5 * time.Second
	// GCP's maintenance-event and preempted are long polls that return as
	// soon as the value changes; the interval is how long one waits, and
	// how often upcoming-maintenance is read.
	DefaultGCPPollInterval = 60 * time.Second
)

// Limits enforced on MetadataConfig.
const (
	// MinMetadataPollInterval keeps a misconfigured fleet from hammering
	// the endpoint, which rate-limits (Azure: 5 requests per second).
	MinMetadataPollInterval = time.Second
	MinMetadataTimeout      = 100 * time.Millisecond
	MaxMetadataTimeout      = time.Minute
)

// MetadataConfig configures the source that reads the cloud's
// instance-metadata endpoint. It maps what each cloud announces to the same
// host events as the host event log: an event type per notice (e.g.
// AWS.SystemReboot, Azure.Freeze), a status and a not-before time.
type MetadataConfig struct {
	// Provider is auto, none, alibaba, aws, azure or gcp. Unset means none.
	// A provider other than none and the host event log must not map to the
	// same condition types: turn the log off (hostEventLog.path: "") or
	// give one of them condition types of its own.
	// +optional
	Provider MetadataProvider `json:"provider,omitempty"`

	// DMIPath is the directory of the DMI identification files (sys_vendor,
	// product_name, chassis_asset_tag) that provider auto reads. Unset means
	// /sys/class/dmi/id.
	// +optional
	DMIPath string `json:"dmiPath,omitempty"`

	// Conditions maps each Node condition type the source maintains to the
	// event types that drive it, for every cloud at once. A non-empty list
	// replaces the default table as a whole; empty or unset means
	// DefaultMetadataConditions.
	// +optional
	Conditions []HostEventCondition `json:"conditions,omitempty"`

	// Alibaba configures Alibaba Cloud ECS.
	// +optional
	Alibaba AlibabaMetadataConfig `json:"alibaba"`
	// AWS configures Amazon EC2 (IMDSv2).
	// +optional
	AWS AWSMetadataConfig `json:"aws"`
	// Azure configures Azure Scheduled Events.
	// +optional
	Azure AzureMetadataConfig `json:"azure"`
	// GCP configures Google Compute Engine.
	// +optional
	GCP GCPMetadataConfig `json:"gcp"`
}

// MetadataEndpointConfig is what every provider has.
type MetadataEndpointConfig struct {
	// Endpoint is the base URL of the metadata service, scheme and host
	// only. Unset means the cloud's link-local address; set it for tests or
	// a local metadata proxy.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`
	// PollInterval is how often the provider's maintenance endpoints are
	// read. Zero or unset means the provider's default.
	// +optional
	PollInterval metav1.Duration `json:"pollInterval,omitzero"`
	// Timeout bounds one request (a long poll waits PollInterval longer).
	// Zero or unset means 2s.
	// +optional
	Timeout metav1.Duration `json:"timeout,omitzero"`
}

// AlibabaMetadataConfig configures Alibaba Cloud ECS.
type AlibabaMetadataConfig struct {
	MetadataEndpointConfig `json:",inline"`
	// SpotPollInterval is how often the spot termination time is read.
	// Zero or unset means 5s.
	// +optional
	SpotPollInterval metav1.Duration `json:"spotPollInterval,omitzero"`
}

// AWSMetadataConfig configures Amazon EC2.
type AWSMetadataConfig struct {
	MetadataEndpointConfig `json:",inline"`
	// SpotPollInterval is how often spot/instance-action (and, if on, the
	// rebalance recommendation) is read. Zero or unset means 5s.
	// +optional
	SpotPollInterval metav1.Duration `json:"spotPollInterval,omitzero"`
	// Rebalance reads events/recommendations/rebalance as the event type
	// AWS.RebalanceRecommendation (by default its own condition,
	// HostEventRebalanceRecommendation). Off by default: a recommendation
	// is early and often not followed by an interruption.
	// +optional
	Rebalance bool `json:"rebalance,omitempty"`
}

// AzureMetadataConfig configures Azure Scheduled Events.
type AzureMetadataConfig struct {
	MetadataEndpointConfig `json:",inline"`
	// Acknowledge approves (StartRequests) a scheduled event of this VM once
	// the controller has drained the node (annotation nodewarden.io/state
	// is Drained), so the maintenance starts then instead of at NotBefore.
	// Off by default.
	// +optional
	Acknowledge bool `json:"acknowledge,omitempty"`
}

// GCPMetadataConfig configures Google Compute Engine.
type GCPMetadataConfig struct {
	MetadataEndpointConfig `json:",inline"`
}

// DefaultMetadataConditions is the default mapping of the metadata source,
// one table for every cloud: each cloud's notices drive the conditions the
// host event log drives, so one RemediationPolicy works everywhere. Alibaba
// Cloud's system events keep the host event log's names. It returns a new
// slice on every call so that callers may modify it.
func DefaultMetadataConditions() []HostEventCondition {
	return []HostEventCondition{
		{Type: "HostEventRebootAfter48", EventTypes: []string{
			"AWS.SystemReboot",
			"AWS.InstanceReboot",
			"AWS.SystemMaintenance",
			"Azure.Reboot",
			"SystemMaintenance.Reboot",
			"SystemMaintenance.RebootAndIsolateErrorDisk",
			"SystemMaintenance.RebootAndReInitErrorDisk",
		}},
		{Type: "HostEventRedeploy", EventTypes: []string{
			"Azure.Redeploy",
			"GCP.TerminateOnHostMaintenance",
			"GCP.UpcomingTerminateOnHostMaintenance",
			"SystemMaintenance.Redeploy",
			"SystemFailure.Redeploy",
		}},
		{Type: "HostEventStop", EventTypes: []string{
			"AWS.InstanceRetirement",
			"AWS.InstanceStop",
			"AWS.SpotStop",
			"AWS.SpotHibernate",
			"SystemMaintenance.Stop",
			"SystemFailure.Stop",
			"InstanceExpiration.Stop",
			"AccountUnbalanced.Stop",
		}},
		{Type: "HostEventDelete", EventTypes: []string{
			"AWS.SpotTerminate",
			"Azure.Preempt",
			"Azure.Terminate",
			"GCP.Preempted",
			"Alibaba.SpotTermination",
			"InstanceExpiration.Delete",
			"AccountUnbalanced.Delete",
			"SystemFailure.Delete",
		}},
		{Type: "HostEventFreeze", EventTypes: []string{
			"Azure.Freeze",
			"GCP.MigrateOnHostMaintenance",
			"GCP.UpcomingMigrateOnHostMaintenance",
		}},
		{Type: "HostEventRebalanceRecommendation", EventTypes: []string{
			"AWS.RebalanceRecommendation",
		}},
	}
}

// Default fills in every unset field of the metadata section, in place.
func (m *MetadataConfig) Default() {
	if m.Provider == "" {
		m.Provider = DefaultMetadataProvider
	}
	if m.DMIPath == "" {
		m.DMIPath = DefaultDMIPath
	}
	if len(m.Conditions) == 0 {
		m.Conditions = DefaultMetadataConditions()
	}
	m.Alibaba.defaults(DefaultAlibabaMetadataEndpoint, DefaultAlibabaPollInterval)
	if m.Alibaba.SpotPollInterval.Duration == 0 {
		m.Alibaba.SpotPollInterval.Duration = DefaultAlibabaSpotPollInterval
	}
	m.AWS.defaults(DefaultAWSMetadataEndpoint, DefaultAWSPollInterval)
	if m.AWS.SpotPollInterval.Duration == 0 {
		m.AWS.SpotPollInterval.Duration = DefaultAWSSpotPollInterval
	}
	m.Azure.defaults(DefaultAzureMetadataEndpoint, DefaultAzurePollInterval)
	m.GCP.defaults(DefaultGCPMetadataEndpoint, DefaultGCPPollInterval)
}

func (e *MetadataEndpointConfig) defaults(endpoint string, poll time.Duration) {
	if e.Endpoint == "" {
		e.Endpoint = endpoint
	}
	if e.PollInterval.Duration == 0 {
		e.PollInterval.Duration = poll
	}
	if e.Timeout.Duration == 0 {
		e.Timeout.Duration = DefaultMetadataTimeout
	}
}

// Enabled reports whether the metadata source is on (provider other than none).
func (m *MetadataConfig) Enabled() bool {
	return m.Provider != "" && m.Provider != MetadataProviderNone
}

func (m *MetadataConfig) validate(path *field.Path, log *HostEventLogConfig) field.ErrorList {
	var errs field.ErrorList
	providerPath := path.Child("provider")
	known := slices.Contains(MetadataProviders, m.Provider)
	if !known {
		supported := make([]string, len(MetadataProviders))
		for i, p := range MetadataProviders {
			supported[i] = string(p)
		}
		errs = append(errs, field.NotSupported(providerPath, m.Provider, supported))
	}
	errs = append(errs, validateAbsPath(path.Child("dmiPath"), m.DMIPath)...)
	errs = append(errs, validateConditions(path.Child("conditions"), m.Conditions)...)

	errs = append(errs, m.Alibaba.validate(path.Child("alibaba"))...)
	errs = append(errs, validatePollInterval(path.Child("alibaba", "spotPollInterval"), m.Alibaba.SpotPollInterval.Duration)...)
	errs = append(errs, m.AWS.validate(path.Child("aws"))...)
	errs = append(errs, validatePollInterval(path.Child("aws", "spotPollInterval"), m.AWS.SpotPollInterval.Duration)...)
	errs = append(errs, m.Azure.validate(path.Child("azure"))...)
	errs = append(errs, m.GCP.validate(path.Child("gcp"))...)

	// A condition type has one source (SPEC §2): two sources publishing the
	// same condition would overwrite each other on every change.
	if known && m.Enabled() && log.Path != nil && *log.Path != "" {
		if shared := sharedConditionTypes(m.Conditions, log.Conditions); len(shared) > 0 {
			errs = append(errs, field.Invalid(providerPath, m.Provider, fmt.Sprintf(
				"the metadata source and hostEventLog would both maintain %s; a condition type has one source: "+
					`set hostEventLog.path: "" to take them from the metadata endpoint only, `+
					"or give metadata.conditions (or hostEventLog.conditions) condition types of their own",
				strings.Join(shared, ", "))))
		}
	}
	return errs
}

func (e *MetadataEndpointConfig) validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if msg := checkEndpoint(e.Endpoint); msg != "" {
		errs = append(errs, field.Invalid(path.Child("endpoint"), e.Endpoint, msg))
	}
	errs = append(errs, validatePollInterval(path.Child("pollInterval"), e.PollInterval.Duration)...)
	if d := e.Timeout.Duration; d < MinMetadataTimeout || d > MaxMetadataTimeout {
		errs = append(errs, field.Invalid(path.Child("timeout"), d.String(),
			fmt.Sprintf("must be between %v and %v", MinMetadataTimeout, MaxMetadataTimeout)))
	}
	return errs
}

func validatePollInterval(path *field.Path, d time.Duration) field.ErrorList {
	if d < MinMetadataPollInterval {
		return field.ErrorList{field.Invalid(path, d.String(), fmt.Sprintf("must be at least %v", MinMetadataPollInterval))}
	}
	return nil
}

// checkEndpoint says what is wrong with a metadata base URL, or "".
func checkEndpoint(s string) string {
	const want = "must be an http:// or https:// URL with a host and nothing after it, e.g. http://169.254.169.254"
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return want
	}
	return ""
}

// sharedConditionTypes returns the condition types both tables name, sorted.
func sharedConditionTypes(a, b []HostEventCondition) []string {
	var shared []string
	for _, x := range a {
		for _, y := range b {
			if x.Type == y.Type && !slices.Contains(shared, x.Type) {
				shared = append(shared, x.Type)
			}
		}
	}
	slices.Sort(shared)
	return shared
}
