package draino

import (
	"encoding/json"
	"fmt"
	"reflect"

	"sigs.k8s.io/yaml"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// Render prints a policy as YAML ready for kubectl apply: apiVersion and kind
// always set, and without the noise of a Go-built object (an empty status, a
// null creationTimestamp). Keys are sorted, as kubectl prints them.
func Render(p *v1alpha1.RemediationPolicy) ([]byte, error) {
	if p == nil {
		return nil, fmt.Errorf("no policy to render")
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	obj["apiVersion"] = v1alpha1.GroupVersion.String()
	obj["kind"] = "RemediationPolicy"
	if reflect.DeepEqual(p.Status, v1alpha1.RemediationPolicyStatus{}) {
		delete(obj, "status")
	}
	if meta, ok := obj["metadata"].(map[string]any); ok {
		if meta["creationTimestamp"] == nil {
			delete(meta, "creationTimestamp")
		}
		if len(meta) == 0 {
			delete(obj, "metadata")
		}
	}
	return yaml.Marshal(obj)
}
