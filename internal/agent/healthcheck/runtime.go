package healthcheck

import (
	"fmt"
	"strings"
	"time"
)

// TypeContainerRuntimeReady is the EKS node monitoring agent's condition
// for the container runtime and the kubelet.
const TypeContainerRuntimeReady = "ContainerRuntimeReady"

// ContainerRuntimeReady's reasons. PodStuckTerminating and
// <Unit>RepeatedRestart are the EKS agent's; the others are nodewarden's
// (the EKS agent reads the runtime's logs, not its CRI status).
const (
	ReasonContainerRuntimeReady       = "ContainerRuntimeIsReady"
	ReasonContainerRuntimeUnreachable = "ContainerRuntimeUnreachable"
	ReasonContainerRuntimeNotReady    = "ContainerRuntimeNotReady"
	ReasonContainerNetworkNotReady    = "ContainerNetworkNotReady"
	ReasonPodStuckTerminating         = "PodStuckTerminating"
	// ReasonRepeatedRestartSuffix follows the unit's name: KubeletRepeatedRestart.
	ReasonRepeatedRestartSuffix = "RepeatedRestart"
)

// RuntimeCondition is one condition of the CRI's RuntimeStatus
// (RuntimeReady, NetworkReady).
type RuntimeCondition struct {
	Type    string
	Status  bool
	Reason  string
	Message string
}

// StuckPod is a pod deleted past its grace period whose containers the
// runtime still runs.
type StuckPod struct {
	Namespace, Name string
	// For is how long past its grace period the deletion is.
	For time.Duration
}

// UnitRestarts is how often a systemd unit started within a window.
type UnitRestarts struct {
	// Unit is the systemd unit without ".service": containerd, kubelet.
	Unit   string
	Starts int
	Window time.Duration
}

// RuntimeInput is what the runner gathered for ContainerRuntimeReady.
type RuntimeInput struct {
	// Endpoint is the CRI socket asked, for messages.
	Endpoint string
	// StatusErr is why the CRI Status call failed; nil if it answered.
	StatusErr error
	// Conditions are the runtime's answer (when StatusErr is nil).
	Conditions []RuntimeCondition
	// Stuck pods, already filtered by the configured time.
	Stuck []StuckPod
	// Restarts at or above the configured threshold.
	Restarts []UnitRestarts
	// Unreadable inputs besides the CRI (the pod list, the journal): the
	// path or API and why.
	Errs []string
}

// ContainerRuntimeReady is False when the runtime does not answer over the
// CRI or says it is not ready, when a pod is stuck terminating, or when the
// runtime or the kubelet restarts repeatedly.
func ContainerRuntimeReady(in RuntimeInput) Result {
	r := report{typ: TypeContainerRuntimeReady, okReason: ReasonContainerRuntimeReady,
		okMsg: "the container runtime answers at " + in.Endpoint + " and is ready"}
	if in.StatusErr != nil {
		r.add(0, ReasonContainerRuntimeUnreachable,
			fmt.Sprintf("the container runtime does not answer at %s: %v", in.Endpoint, in.StatusErr))
	}
	for _, c := range in.Conditions {
		if c.Status {
			continue
		}
		why := strings.TrimSpace(strings.Join(nonEmpty(c.Reason, c.Message), ": "))
		if why == "" {
			why = "no reason given"
		}
		switch c.Type {
		case "RuntimeReady":
			r.add(1, ReasonContainerRuntimeNotReady, "the container runtime reports RuntimeReady false: "+truncate(why, 200))
		case "NetworkReady":
			r.add(3, ReasonContainerNetworkNotReady, "the container runtime reports NetworkReady false: "+truncate(why, 200))
		}
	}
	for _, p := range in.Stuck {
		r.add(2, ReasonPodStuckTerminating, fmt.Sprintf("pod %s/%s is still running %v after its grace period ended",
			p.Namespace, p.Name, p.For.Round(time.Second)))
	}
	for _, u := range in.Restarts {
		r.add(4, unitReason(u.Unit), fmt.Sprintf("%s.service started %d times in the last %v", u.Unit, u.Starts, u.Window))
	}
	r.errs = append(r.errs, in.Errs...)
	return r.result()
}

// unitReason is the EKS agent's reason for a unit's restarts:
// KubeletRepeatedRestart, ContainerdRepeatedRestart.
func unitReason(unit string) string {
	if unit == "" {
		return ReasonRepeatedRestartSuffix
	}
	return strings.ToUpper(unit[:1]) + unit[1:] + ReasonRepeatedRestartSuffix
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
