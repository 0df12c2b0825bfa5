// Package condition writes the agent's Node conditions to the API server.
//
// The agent owns a few condition types (HostEventRebootAfter48, ...); kubelet
// owns others (Ready, MemoryPressure, ...). Both write nodes/status, so the
// writer sends a strategic-merge patch that names only its own types: the
// API server merges status.conditions by type, and kubelet's entries are left
// exactly as they were.
//
// A patch is sent only when a condition's status, reason or message differs
// from what the Node shows. Timestamps in the patch are derived from the
// desired state, not from the moment of sending, so the same desired state
// always produces the same patch: sending it twice (for instance from a stale
// cache) is a no-op for the API server and does not change the Node's
// resourceVersion.
package condition

import (
	"encoding/json"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Desired is what the agent wants one condition to say.
type Desired struct {
	Type    corev1.NodeConditionType
	Status  corev1.ConditionStatus
	Reason  string
	Message string
	// Since is when the agent first wanted this status, reason and message.
	// It becomes lastHeartbeatTime, and lastTransitionTime when the status
	// differs from the Node's.
	Since time.Time
}

// Patch returns the nodes/status strategic-merge patch that makes current
// agree with desired, and the conditions it writes. It returns nil when
// nothing needs to change.
func Patch(current []corev1.NodeCondition, desired []Desired) ([]byte, []corev1.NodeCondition) {
	var changed []corev1.NodeCondition
	for _, want := range desired {
		cur := find(current, want.Type)
		if cur != nil && cur.Status == want.Status && cur.Reason == want.Reason && cur.Message == want.Message {
			continue
		}
		transition := metav1.NewTime(want.Since)
		if cur != nil && cur.Status == want.Status {
			// Only a status change is a transition; a new reason or message is not.
			transition = cur.LastTransitionTime
		}
		changed = append(changed, corev1.NodeCondition{
			Type:               want.Type,
			Status:             want.Status,
			Reason:             want.Reason,
			Message:            want.Message,
			LastHeartbeatTime:  metav1.NewTime(want.Since),
			LastTransitionTime: transition,
		})
	}
	if len(changed) == 0 {
		return nil, nil
	}
	body, err := json.Marshal(map[string]any{"status": map[string]any{"conditions": changed}})
	if err != nil {
		// Marshalling plain structs of strings and times cannot fail.
		panic(err)
	}
	return body, changed
}

func find(conds []corev1.NodeCondition, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}
