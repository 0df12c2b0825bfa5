package drain

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Action is what a drain does with one pod on the node.
type Action string

const (
	// Evict: evict the pod, then wait for it to be gone.
	Evict Action = "Evict"
	// Wait: the pod is already terminating. Evicting it again would change
	// nothing (and would spend a disruption for nothing), so the drain only
	// waits for it to go.
	Wait Action = "Wait"
	// Skip: the pod may stay on the node. Leaving it does not fail the drain.
	Skip Action = "Skip"
	// Block: the options forbid evicting the pod, and a node that still runs
	// it is not drained: the drain fails, evicting nothing.
	Block Action = "Block"
)

// Verdict is the Action for one pod and, for Skip and Block, why.
type Verdict struct {
	Action Action
	Reason string
}

// Judge decides what a drain with opts does with pod.
//
// Skip rules come first, so that a pod which may stay anyway never blocks a
// drain. Then a terminating pod is only waited for: someone already decided
// it goes, whatever the options say. A pod that fails several block rules
// gets all of them in its reason, so one look tells the operator every
// option that stands in the way.
func Judge(pod *corev1.Pod, opts Options) Verdict {
	if _, ok := pod.Annotations[corev1.MirrorPodAnnotationKey]; ok {
		// The API object is only a mirror of a static pod; evicting it would
		// not stop the pod, and the kubelet would recreate the mirror.
		return Verdict{Skip, "mirror pod of a static pod"}
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		// A finished pod holds no resources and runs nothing to disrupt.
		return Verdict{Skip, fmt.Sprintf("finished (%s)", pod.Status.Phase)}
	}
	if isDaemonSetPod(pod) && !opts.EvictDaemonSetPods {
		// The DaemonSet controller would put it straight back: it tolerates
		// the cordon.
		return Verdict{Skip, "DaemonSet pod (evictDaemonSetPods is false)"}
	}
	if pod.DeletionTimestamp != nil {
		return Verdict{Action: Wait}
	}

	var blocks []string
	if entry := protectingAnnotation(pod, opts.ProtectedPodAnnotations); entry != "" {
		blocks = append(blocks, fmt.Sprintf("protected by annotation %s", entry))
	}
	if entry := protectingAnnotation(pod, DisruptionAnnotations); entry != "" && opts.HonorDisruptionAnnotations {
		blocks = append(blocks, fmt.Sprintf("protected by annotation %s (honorDisruptionAnnotations is true)", entry))
	}
	if volume := emptyDirVolume(pod); volume != "" && !opts.EvictEmptyDirPods {
		blocks = append(blocks, fmt.Sprintf("uses emptyDir volume %q (evictEmptyDirPods is false)", volume))
	}
	if metav1.GetControllerOf(pod) == nil && !opts.EvictUnreplicatedPods {
		blocks = append(blocks, "has no controller to recreate it (evictUnreplicatedPods is false)")
	}
	if len(blocks) > 0 {
		return Verdict{Block, strings.Join(blocks, ", ")}
	}
	return Verdict{Action: Evict}
}

// DisruptionAnnotations are the annotations with which a pod's owner asks
// the autoscalers not to disrupt it (Karpenter, Cluster Autoscaler); with
// Options.HonorDisruptionAnnotations (drain.honorDisruptionAnnotations,
// true by default) nodewarden treats such a pod as protected.
var DisruptionAnnotations = []string{
	"karpenter.sh/do-not-disrupt=true",
	"cluster-autoscaler.kubernetes.io/safe-to-evict=false",
}

func isDaemonSetPod(pod *corev1.Pod) bool {
	owner := metav1.GetControllerOf(pod)
	return owner != nil && owner.Kind == "DaemonSet" && strings.HasPrefix(owner.APIVersion, "apps/")
}

// protectingAnnotation returns the first entry of protected that the pod's
// annotations match: an entry is a key (any value matches) or key=value.
// Annotation keys cannot contain '=', so the first '=' separates the value.
func protectingAnnotation(pod *corev1.Pod, protected []string) string {
	for _, entry := range protected {
		key, want, hasValue := strings.Cut(entry, "=")
		got, ok := pod.Annotations[key]
		if ok && (!hasValue || got == want) {
			return entry
		}
	}
	return ""
}

func emptyDirVolume(pod *corev1.Pod) string {
	for _, v := range pod.Spec.Volumes {
		if v.EmptyDir != nil {
			return v.Name
		}
	}
	return ""
}

// gracePeriod is the DeleteOptions.GracePeriodSeconds of the pod's eviction
// when left is the time until the drain's deadline: the pod's own period,
// shortened to limit when one is set, and to the whole seconds left when it
// would run past the deadline, but not below MinGracePeriod. Whole seconds
// rounded down, so that the kubelet's SIGKILL comes before the deadline, not
// after. Nil lets the API server apply the pod's own.
func gracePeriod(pod *corev1.Pod, limit *int64, left time.Duration) *int64 {
	// The API server defaults the field; only pods made up in tests lack it.
	period := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		period = *pod.Spec.TerminationGracePeriodSeconds
	}
	if limit != nil {
		period = min(period, *limit)
	}
	fit := max(int64(left/time.Second), int64(MinGracePeriod/time.Second))
	if period > fit {
		return &fit
	}
	if limit == nil {
		return nil
	}
	return &period
}
