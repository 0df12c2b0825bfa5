package draino

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// TestConvertedPoliciesApply sends every golden YAML, exactly as Render
// printed it, to a real API server with the RemediationPolicy CRD: the CRD's
// validation accepts it, and its defaulting adds nothing (the converted
// policy already spells out every field). Skipped with -short.
func TestConvertedPoliciesApply(t *testing.T) {
	c := cluster.Start(t)
	ctx := t.Context()

	files, err := filepath.Glob("testdata/*.args")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/*.args: %v", err)
	}
	// Plus a policy whose --node-label-expr could not be converted (the
	// placeholder selector must be valid too), zero budgets (which must
	// survive omitzero), and Draino evicting DaemonSet pods (which the CRD
	// refuses together with the cordon Draino always set); the fork's node
	// replacement turned off (maxRepairsPerHour: 0 must survive defaulting)
	// and at its limits (after: 0s, the CRD's maximum rate).
	extra := [][]string{
		{"--node-label-expr=metadata.labels.a == 'x' || metadata.labels.b == 'y'", "--skip-drain", "X"},
		{"--max-notready-nodes=0", "--max-simultaneous-cordon=0%", "X"},
		{"--evict-daemonset-pods", "X"},
		{"--evict-daemonset-pods", "--skip-drain", "X"},
		{"--do-not-evict-pod-controlled-by=StatefulSet", "X"},
		{"--max-node-replacement-per-hour=0", "X"},
		{"--duration-before-replacement=0s", "--max-node-replacement-per-hour=5000", "X"},
	}
	var cases [][]string
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n"))
	}
	cases = append(cases, extra...)

	for i, args := range cases {
		p, _, err := Convert(args, Options{Name: "converted-" + string(rune('a'+i))})
		if err != nil {
			t.Fatalf("Convert(%q): %v", args, err)
		}
		out, err := Render(p)
		if err != nil {
			t.Fatal(err)
		}
		var obj map[string]any
		if err := yaml.Unmarshal(out, &obj); err != nil {
			t.Fatal(err)
		}
		if err := c.Client.Create(ctx, &unstructured.Unstructured{Object: obj}); err != nil {
			t.Fatalf("the API server rejected the conversion of %q: %v\n%s", args, err, out)
		}
		var got v1alpha1.RemediationPolicy
		if err := c.Client.Get(ctx, client.ObjectKey{Name: p.Name}, &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(p.Spec, got.Spec); diff != "" {
			t.Errorf("the API server changed the spec of %q (-converted +stored):\n%s", args, diff)
		}
	}
}
