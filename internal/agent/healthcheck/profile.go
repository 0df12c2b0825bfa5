package healthcheck

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Relevant reports whether a kernel log line is evidence any detector
// uses, so a runner keeps only those between runs.
func Relevant(line string) bool { return classifyKmsg(line) != kmsgNone }

// The AKS profile: node-problem-detector's condition types as AKS ships
// them, with NPD's polarity (True means the problem is present).
const (
	TypeKernelDeadlock              = "KernelDeadlock"
	TypeReadonlyFilesystem          = "ReadonlyFilesystem"
	TypeFilesystemCorruptionProblem = "FilesystemCorruptionProblem"
	TypeContainerRuntimeProblem     = "ContainerRuntimeProblem"
	TypeFrequentContainerdRestart   = "FrequentContainerdRestart"
	TypeFrequentKubeletRestart      = "FrequentKubeletRestart"
)

// aksCondition is one AKS condition: which EKS condition's findings feed
// it, and the reason and message it has when none does.
type aksCondition struct {
	typ, from       string
	reasons         []string
	okReason, okMsg string
	// problemReason, if set, replaces the finding's reason when True
	// (NPD names the condition's True reason after the condition).
	problemReason string
}

// aksConditions is the AKS profile's table. Findings that no row lists
// (ForkFailedOutOfPIDs, KernelBug, the networking reasons) have no AKS
// condition: docs/conditions.md says to add the EKS profile for them.
var aksConditions = []aksCondition{
	{typ: TypeKernelDeadlock, from: TypeKernelReady, reasons: []string{ReasonSoftLockup, ReasonAppBlocked},
		okReason: "KernelHasNoDeadlock", okMsg: "kernel has no deadlock"},
	{typ: TypeReadonlyFilesystem, from: TypeStorageReady, reasons: []string{ReasonFilesystemIsReadOnly},
		okReason: "FilesystemIsNotReadOnly", okMsg: "Filesystem is not read-only"},
	{typ: TypeFilesystemCorruptionProblem, from: TypeStorageReady, reasons: []string{ReasonXFSCorruption, ReasonIOError},
		okReason: "FilesystemIsOK", okMsg: "Filesystem is healthy"},
	{typ: TypeContainerRuntimeProblem, from: TypeContainerRuntimeReady,
		reasons:  []string{ReasonContainerRuntimeUnreachable, ReasonContainerRuntimeNotReady, ReasonPodStuckTerminating, ReasonContainerNetworkNotReady},
		okReason: "ContainerRuntimeIsUp", okMsg: "container runtime service is up"},
	{typ: TypeFrequentContainerdRestart, from: TypeContainerRuntimeReady, reasons: []string{unitReason("containerd")},
		okReason: "NoFrequentContainerdRestart", okMsg: "containerd is functioning properly", problemReason: TypeFrequentContainerdRestart},
	{typ: TypeFrequentKubeletRestart, from: TypeContainerRuntimeReady, reasons: []string{unitReason("kubelet")},
		okReason: "NoFrequentKubeletRestart", okMsg: "kubelet is functioning properly", problemReason: TypeFrequentKubeletRestart},
}

// AKSTypes returns the AKS condition types fed by the given EKS types.
func AKSTypes(eksTypes []string) []string {
	var out []string
	for _, c := range aksConditions {
		for _, t := range eksTypes {
			if c.from == t {
				out = append(out, c.typ)
			}
		}
	}
	return out
}

// Healthy reports whether r is the good state of its condition: True for
// the EKS conditions, False for the AKS (NPD) ones.
func Healthy(r Result) bool {
	for _, c := range aksConditions {
		if c.typ == r.Type {
			return r.Status == corev1.ConditionFalse
		}
	}
	return r.Status == corev1.ConditionTrue
}

// AKS maps EKS results onto the AKS conditions they feed. An Unknown
// result makes its AKS conditions Unknown too.
func AKS(results []Result) []Result {
	var out []Result
	for _, c := range aksConditions {
		for _, r := range results {
			if r.Type != c.from {
				continue
			}
			out = append(out, c.from1(r))
		}
	}
	return out
}

func (c aksCondition) from1(r Result) Result {
	if r.Status == corev1.ConditionUnknown {
		return Result{Type: c.typ, Status: corev1.ConditionUnknown, Reason: r.Reason, Message: r.Message}
	}
	var hits []Finding
	for _, f := range r.Findings {
		for _, reason := range c.reasons {
			if f.Reason == reason {
				hits = append(hits, f)
			}
		}
	}
	if len(hits) == 0 {
		return Result{Type: c.typ, Status: corev1.ConditionFalse, Reason: c.okReason, Message: c.okMsg}
	}
	msgs := make([]string, 0, len(hits))
	for i, h := range hits {
		if i == maxMessageIssues {
			break
		}
		msgs = append(msgs, h.Message)
	}
	reason := hits[0].Reason
	if c.problemReason != "" {
		reason = c.problemReason
	}
	return Result{Type: c.typ, Status: corev1.ConditionTrue, Reason: reason, Message: strings.Join(msgs, "; "), Findings: hits}
}
