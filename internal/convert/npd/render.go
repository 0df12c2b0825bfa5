package npd

import (
	"encoding/json"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// Render prints cfg as an AgentConfig file, with a comment naming the NPD
// files it was converted from. Only the fields set are printed: every other
// field keeps its default.
func Render(cfg *v1alpha1.AgentConfig, from []string) ([]byte, error) {
	if cfg == nil {
		return nil, fmt.Errorf("no configuration to render")
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	prune(obj)
	obj["apiVersion"] = v1alpha1.GroupVersion.String()
	obj["kind"] = v1alpha1.AgentConfigKind
	body, err := yaml.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("# AgentConfig converted by `nodewarden convert npd` from:\n")
	for _, f := range from {
		fmt.Fprintf(&b, "#   %s\n", f)
	}
	b.WriteString("# The NPD files run unchanged (npdConfigs); keep them mounted where listed.\n")
	b.Write(body)
	return []byte(b.String()), nil
}

// prune removes empty objects (sections left at their defaults).
func prune(m map[string]any) {
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			prune(sub)
			if len(sub) == 0 {
				delete(m, k)
			}
		}
	}
}
