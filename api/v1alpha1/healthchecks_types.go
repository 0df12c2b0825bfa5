package v1alpha1

import (
	"fmt"
	"path/filepath"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"
)

// HealthCheckProfile names the condition set the health checks publish.
type HealthCheckProfile string

const (
	// ProfileEKS publishes the EKS node monitoring agent's conditions
	// (KernelReady, NetworkingReady, StorageReady, ContainerRuntimeReady):
	// True means healthy, the issue is the reason when False.
	ProfileEKS HealthCheckProfile = "EKS"
	// ProfileAKS publishes AKS's node-problem-detector conditions
	// (KernelDeadlock, ReadonlyFilesystem, FilesystemCorruptionProblem,
	// ContainerRuntimeProblem, FrequentContainerdRestart,
	// FrequentKubeletRestart): True means the problem is present.
	ProfileAKS HealthCheckProfile = "AKS"
)

// HealthCheckProfiles are the supported profiles.
var HealthCheckProfiles = []HealthCheckProfile{ProfileEKS, ProfileAKS}

// Health check defaults and bounds.
const (
	DefaultHealthCheckInterval = 30 * time.Second
	// MinHealthCheckInterval keeps the checks' CPU cost bounded: each run
	// reads a few dozen small files.
	MinHealthCheckInterval = 5 * time.Second
	// DefaultHealthCheckConfirmations: a status change must be seen this
	// many runs in a row before it is published (damping).
	DefaultHealthCheckConfirmations = 2
	MaxHealthCheckConfirmations     = 10
	DefaultProcPath                 = "/proc"
	DefaultSysPath                  = "/sys"
	DefaultKernelLogWindow          = time.Hour
	// KernelLogAuto, as KernelLogConfig.Path (and its default), reads
	// /dev/kmsg if it can be opened when the checks start, and no kernel
	// log otherwise.
	KernelLogAuto                   = "auto"
	DefaultCRIEndpoint              = "unix:///run/containerd/containerd.sock"
	DefaultCRITimeout               = 5 * time.Second
	DefaultPodStuckTerminatingAfter = 10 * time.Minute
	DefaultJournalPath              = "/var/log/journal"
	DefaultRestartWindow            = 20 * time.Minute
	DefaultRestartThreshold         = 5
)

// DefaultStoragePaths are the paths whose filesystems StorageReady checks
// when none are configured: where pods' data and the node's logs live.
func DefaultStoragePaths() []string { return []string{"/var/lib/kubelet", "/var/log"} }

// HealthChecksConfig configures the built-in node health checks.
type HealthChecksConfig struct {
	// Profiles are the condition sets published: EKS, AKS or both. Unset
	// means [EKS].
	// +optional
	Profiles []HealthCheckProfile `json:"profiles,omitempty"`

	// Interval between runs of every check. Unset means 30s; at least 5s.
	// +optional
	Interval metav1.Duration `json:"interval,omitzero"`

	// Confirmations is how many runs in a row must agree before a
	// condition's status changes, so a flapping reading (an interface
	// bouncing, a runtime restarting) does not flap the condition. The first
	// run after start is published as it is. Unset means 2; 1 turns damping
	// off.
	// +optional
	Confirmations int32 `json:"confirmations,omitempty"`

	// ProcPath is where the host's /proc is: pid_max, threads-max, loadavg,
	// the mount table (self/mountinfo) and conntrack's counters. Unset means
	// /proc (the container's own /proc shows the host's values for all but
	// conntrack, which is per network namespace).
	// +optional
	ProcPath string `json:"procPath,omitempty"`

	// SysPath is where the host's /sys is, for /sys/class/net. Unset means
	// /sys, which in a pod shows the pod's own interfaces: mount the host's
	// /sys (read-only) and point this at it, as the shipped DaemonSet does.
	// +optional
	SysPath string `json:"sysPath,omitempty"`

	// KernelLog feeds kernel log lines (soft lockups, hung tasks, I/O
	// errors, ...) to KernelReady and StorageReady.
	// +optional
	KernelLog KernelLogConfig `json:"kernelLog"`

	// Kernel is KernelReady (KernelDeadlock in the AKS profile). On by default.
	// +optional
	Kernel CheckConfig `json:"kernel"`
	// Networking is NetworkingReady. On by default.
	// +optional
	Networking CheckConfig `json:"networking"`
	// Storage is StorageReady (ReadonlyFilesystem and
	// FilesystemCorruptionProblem in the AKS profile). On by default.
	// +optional
	Storage StorageCheckConfig `json:"storage"`
	// ContainerRuntime is ContainerRuntimeReady (ContainerRuntimeProblem,
	// FrequentContainerdRestart, FrequentKubeletRestart in the AKS profile).
	// Off by default: it needs the runtime's socket, which is root on the
	// node (config/agent/container-runtime).
	// +optional
	ContainerRuntime ContainerRuntimeCheckConfig `json:"containerRuntime"`
}

// CheckConfig switches one check.
type CheckConfig struct {
	// Enabled runs the check. Unset means the check's default.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
}

// KernelLogConfig is where kernel log lines come from.
type KernelLogConfig struct {
	// Path of the kernel's log device: an absolute path (normally
	// /dev/kmsg), "auto" for /dev/kmsg if it can be opened at start and
	// none otherwise, or "" for none. Reading /dev/kmsg takes root
	// (config/agent/kmsg). Unset means "auto" (hence a pointer: "" is not
	// the same as unset).
	// +optional
	Path *string `json:"path,omitempty"`
	// Window is how long a kernel log line counts: a soft lockup logged
	// longer ago than this no longer makes KernelReady False. Unset means 1h.
	// +optional
	Window metav1.Duration `json:"window,omitzero"`
}

// StorageCheckConfig configures StorageReady.
type StorageCheckConfig struct {
	// Enabled runs the check. Unset means true.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// Paths whose filesystems must not be read-only. Each is looked up in
	// the mount table as the agent sees it, and the filesystem's own
	// read-only flag (not that of a read-only bind mount) is checked, so a
	// path may be a read-only mount of the host's directory, or an emptyDir
	// (which lives on the kubelet's filesystem). Unset means
	// [/var/lib/kubelet, /var/log].
	// +optional
	Paths []string `json:"paths,omitempty"`
}

// ContainerRuntimeCheckConfig configures ContainerRuntimeReady.
type ContainerRuntimeCheckConfig struct {
	// Enabled runs the check. Unset means false.
	// +optional
	Enabled *bool `json:"enabled,omitempty"`
	// Endpoint of the runtime's CRI socket. Unset means
	// unix:///run/containerd/containerd.sock.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`
	// Timeout of one CRI call. Unset means 5s.
	// +optional
	Timeout metav1.Duration `json:"timeout,omitzero"`
	// PodStuckTerminatingAfter: a pod on this node whose deletion is this
	// long past its grace period while the runtime still runs one of its
	// containers makes the condition False with PodStuckTerminating (a
	// finalizer that holds a finished pod does not). It takes listing the
	// node's pods (metadata only), which config/agent/container-runtime
	// grants. Unset means 10m.
	// +optional
	PodStuckTerminatingAfter metav1.Duration `json:"podStuckTerminatingAfter,omitzero"`
	// JournalPath is the systemd journal directory read to count restarts
	// of containerd and the kubelet, or "" not to count them. Unset means
	// "".
	// +optional
	JournalPath string `json:"journalPath,omitempty"`
	// RestartThreshold restarts of one service within RestartWindow make
	// the condition False with RepeatedRestart (FrequentContainerdRestart /
	// FrequentKubeletRestart in the AKS profile, NPD's 5 in 20m). Unset
	// means 5.
	// +optional
	RestartThreshold int32 `json:"restartThreshold,omitempty"`
	// RestartWindow: unset means 20m.
	// +optional
	RestartWindow metav1.Duration `json:"restartWindow,omitzero"`
}

// On reports whether the check is enabled (after Default).
func (c CheckConfig) On() bool { return c.Enabled != nil && *c.Enabled }

// Default fills in every unset field.
func (h *HealthChecksConfig) Default() {
	if len(h.Profiles) == 0 {
		h.Profiles = []HealthCheckProfile{ProfileEKS}
	}
	if h.Interval.Duration == 0 {
		h.Interval.Duration = DefaultHealthCheckInterval
	}
	if h.Confirmations == 0 {
		h.Confirmations = DefaultHealthCheckConfirmations
	}
	if h.ProcPath == "" {
		h.ProcPath = DefaultProcPath
	}
	if h.SysPath == "" {
		h.SysPath = DefaultSysPath
	}
	if h.KernelLog.Path == nil {
		h.KernelLog.Path = ptr.To(KernelLogAuto)
	}
	if h.KernelLog.Window.Duration == 0 {
		h.KernelLog.Window.Duration = DefaultKernelLogWindow
	}
	for _, c := range []**bool{&h.Kernel.Enabled, &h.Networking.Enabled, &h.Storage.Enabled} {
		if *c == nil {
			*c = ptr.To(true)
		}
	}
	if len(h.Storage.Paths) == 0 {
		h.Storage.Paths = DefaultStoragePaths()
	}
	r := &h.ContainerRuntime
	if r.Enabled == nil {
		r.Enabled = ptr.To(false)
	}
	if r.Endpoint == "" {
		r.Endpoint = DefaultCRIEndpoint
	}
	if r.Timeout.Duration == 0 {
		r.Timeout.Duration = DefaultCRITimeout
	}
	if r.PodStuckTerminatingAfter.Duration == 0 {
		r.PodStuckTerminatingAfter.Duration = DefaultPodStuckTerminatingAfter
	}
	if r.RestartThreshold == 0 {
		r.RestartThreshold = DefaultRestartThreshold
	}
	if r.RestartWindow.Duration == 0 {
		r.RestartWindow.Duration = DefaultRestartWindow
	}
}

// StorageOn, RuntimeOn: see CheckConfig.On.
func (h *HealthChecksConfig) StorageOn() bool { return h.Storage.Enabled != nil && *h.Storage.Enabled }
func (h *HealthChecksConfig) RuntimeOn() bool {
	return h.ContainerRuntime.Enabled != nil && *h.ContainerRuntime.Enabled
}

// Off turns every check off.
func (h *HealthChecksConfig) Off() {
	for _, c := range []**bool{&h.Kernel.Enabled, &h.Networking.Enabled, &h.Storage.Enabled, &h.ContainerRuntime.Enabled} {
		*c = ptr.To(false)
	}
}

// AnyOn reports whether any check runs.
func (h *HealthChecksConfig) AnyOn() bool {
	return h.Kernel.On() || h.Networking.On() || h.StorageOn() || h.RuntimeOn()
}

func (h *HealthChecksConfig) validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[HealthCheckProfile]bool{}
	for i, p := range h.Profiles {
		pp := path.Child("profiles").Index(i)
		switch {
		case !slices.Contains(HealthCheckProfiles, p):
			errs = append(errs, field.NotSupported(pp, p, HealthCheckProfiles))
		case seen[p]:
			errs = append(errs, field.Duplicate(pp, p))
		}
		seen[p] = true
	}
	// Bounds relative to the interval are checked against a valid interval
	// only: an interval of 1s must not also report the default timeout (5s),
	// which the file does not even set.
	intervalOK := h.Interval.Duration >= MinHealthCheckInterval
	if d := h.Interval.Duration; !intervalOK {
		errs = append(errs, field.Invalid(path.Child("interval"), d.String(),
			fmt.Sprintf("must be at least %v", MinHealthCheckInterval)))
	}
	if c := h.Confirmations; c < 1 || c > MaxHealthCheckConfirmations {
		errs = append(errs, field.Invalid(path.Child("confirmations"), c,
			fmt.Sprintf("must be between 1 (no damping) and %d", MaxHealthCheckConfirmations)))
	}
	errs = append(errs, validateAbsPath(path.Child("procPath"), h.ProcPath)...)
	errs = append(errs, validateAbsPath(path.Child("sysPath"), h.SysPath)...)
	// "" (none) and "auto" are valid; anything else must be absolute.
	if p := h.KernelLog.Path; p != nil && *p != "" && *p != KernelLogAuto && !filepath.IsAbs(*p) {
		errs = append(errs, field.Invalid(path.Child("kernelLog", "path"), *p,
			`must be an absolute path, "auto" (/dev/kmsg if it can be opened at start, else none) or "" (no kernel log)`))
	}
	if d := h.KernelLog.Window.Duration; intervalOK && d < h.Interval.Duration {
		errs = append(errs, field.Invalid(path.Child("kernelLog", "window"), d.String(),
			fmt.Sprintf("must be at least interval (%v), or a line could be missed between two runs", h.Interval.Duration)))
	}
	storage := path.Child("storage", "paths")
	seenPath := map[string]bool{}
	for i, p := range h.Storage.Paths {
		errs = append(errs, validateAbsPath(storage.Index(i), p)...)
		if seenPath[p] {
			errs = append(errs, field.Duplicate(storage.Index(i), p))
		}
		seenPath[p] = true
	}
	r := h.ContainerRuntime
	rp := path.Child("containerRuntime")
	if err := validateUnixEndpoint(r.Endpoint); err != "" {
		errs = append(errs, field.Invalid(rp.Child("endpoint"), r.Endpoint, err))
	}
	if r.Timeout.Duration <= 0 || intervalOK && r.Timeout.Duration > h.Interval.Duration {
		errs = append(errs, field.Invalid(rp.Child("timeout"), r.Timeout.Duration.String(),
			fmt.Sprintf("must be positive and at most interval (%v)", h.Interval.Duration)))
	}
	if r.PodStuckTerminatingAfter.Duration < time.Minute {
		errs = append(errs, field.Invalid(rp.Child("podStuckTerminatingAfter"), r.PodStuckTerminatingAfter.Duration.String(),
			"must be at least 1m"))
	}
	if p := r.JournalPath; p != "" {
		errs = append(errs, validateAbsPath(rp.Child("journalPath"), p)...)
	}
	if r.RestartThreshold < 2 {
		errs = append(errs, field.Invalid(rp.Child("restartThreshold"), r.RestartThreshold, "must be at least 2"))
	}
	if r.RestartWindow.Duration < time.Minute {
		errs = append(errs, field.Invalid(rp.Child("restartWindow"), r.RestartWindow.Duration.String(), "must be at least 1m"))
	}
	return errs
}

// validateUnixEndpoint accepts unix:///absolute/path, the only transport
// the CRI is served on in Linux; it returns why not, or "".
func validateUnixEndpoint(e string) string {
	const scheme = "unix://"
	if len(e) <= len(scheme) || e[:len(scheme)] != scheme || e[len(scheme)] != '/' {
		return "must be unix:///path/to/the.sock"
	}
	return ""
}
