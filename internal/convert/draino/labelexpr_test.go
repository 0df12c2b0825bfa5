package draino

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSelectorFromExpr(t *testing.T) {
	req := func(key string, op metav1.LabelSelectorOperator, values ...string) metav1.LabelSelectorRequirement {
		return metav1.LabelSelectorRequirement{Key: key, Operator: op, Values: values}
	}
	const (
		in       = metav1.LabelSelectorOpIn
		notIn    = metav1.LabelSelectorOpNotIn
		exists   = metav1.LabelSelectorOpExists
		notExist = metav1.LabelSelectorOpDoesNotExist
	)
	for _, tc := range []struct {
		expr    string
		want    []metav1.LabelSelectorRequirement
		wantErr string
	}{
		// Expressible.
		{expr: "metadata.labels.region == 'us-west-1'", want: []metav1.LabelSelectorRequirement{req("region", in, "us-west-1")}},
		{expr: `metadata.labels["topology.kubernetes.io/zone"] == "z1"`, want: []metav1.LabelSelectorRequirement{req("topology.kubernetes.io/zone", in, "z1")}},
		{expr: "'us-west-1' == metadata.labels.region", want: []metav1.LabelSelectorRequirement{req("region", in, "us-west-1")}},
		{expr: "metadata.labels.region != 'us-west-1'", want: []metav1.LabelSelectorRequirement{req("region", notIn, "us-west-1")}},
		{expr: "metadata.labels.app in ['a', 'b', 'a']", want: []metav1.LabelSelectorRequirement{req("app", in, "a", "b")}},
		{expr: "metadata.labels.app not in ['a','b',]", want: []metav1.LabelSelectorRequirement{req("app", notIn, "a", "b")}},
		{expr: "metadata.labels.app not in []", want: nil},
		{expr: "'draino-enabled' in metadata.labels", want: []metav1.LabelSelectorRequirement{req("draino-enabled", exists)}},
		{expr: "'spot' not in metadata.labels", want: []metav1.LabelSelectorRequirement{req("spot", notExist)}},
		{expr: "!('spot' in metadata.labels)", want: []metav1.LabelSelectorRequirement{req("spot", notExist)}},
		{expr: "not (metadata.labels.app in ['a'])", want: []metav1.LabelSelectorRequirement{req("app", notIn, "a")}},
		{expr: "!(metadata.labels.app != 'a')", want: []metav1.LabelSelectorRequirement{req("app", in, "a")}},
		{
			// The example from the task and Draino's README style.
			expr: "metadata.labels.region == 'us-west-1' && metadata.labels.app in ['a','b']",
			want: []metav1.LabelSelectorRequirement{req("region", in, "us-west-1"), req("app", in, "a", "b")},
		},
		{
			// What Draino's own --node-label conversion produces.
			expr: "'a' in metadata.labels && metadata.labels['b'] == 'x' and (metadata.labels.c == 'y')",
			want: []metav1.LabelSelectorRequirement{req("a", exists), req("b", in, "x"), req("c", in, "y")},
		},
		{
			expr: "(metadata.labels.region == 'a' || metadata.labels.region in ['b', 'c']) && metadata.labels.app == 'x'",
			want: []metav1.LabelSelectorRequirement{req("region", in, "a", "b", "c"), req("app", in, "x")},
		},
		{expr: `metadata.labels.team == 'it\'s'`, wantErr: "not a valid label value"},

		// Not expressible.
		{expr: "metadata.labels.region == 'a' || metadata.labels.app == 'b'", wantErr: "disjunction"},
		{
			// Draino's README example: a disjunction of conjunctions.
			expr:    "(metadata.labels.region == 'us-west-1' && metadata.labels.app == 'nginx') || (metadata.labels.region == 'us-west-2' && metadata.labels.app == 'nginx')",
			wantErr: "disjunction",
		},
		{expr: "!(metadata.labels.a == 'x' && metadata.labels.b == 'y')", wantErr: "negated conjunction"},
		{expr: "metadata.labels.app matches '^web'", wantErr: `"matches"`},
		{expr: "metadata.labels.tier > '2'", wantErr: `">"`},
		{expr: "metadata.labels.tier == 2", wantErr: "number 2"},
		{expr: "len(metadata.labels) > 3", wantErr: `"len"`},
		{expr: "metadata.annotations.x == 'y'", wantErr: "only metadata.labels"},
		{expr: "metadata.labels.a == metadata.labels.b", wantErr: "between metadata.labels.<name> and a string"},
		{expr: "!metadata.labels.a == 'x'", wantErr: "between metadata.labels.<name> and a string"},
		{expr: "metadata.labels.a in []", wantErr: "never matches"},
		{expr: "metadata.labels.a", wantErr: "bare value"},
		{expr: "metadata.labels.a == 'x' &&", wantErr: "unexpected end"},
		{expr: "(metadata.labels.a == 'x'", wantErr: `expected ")"`},
		{expr: "metadata.labels.a == 'x", wantErr: "unterminated string"},
		{expr: "metadata.labels.a == 'x' 'y'", wantErr: "unexpected string"},
		{expr: "metadata.labels?.a == 'x'", wantErr: `"?."`},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			got, err := selectorFromExpr(tc.expr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v (requirements %v), want one containing %q", err, got, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildSelector(t *testing.T) {
	got := buildSelector([]metav1.LabelSelectorRequirement{
		{Key: "a", Operator: metav1.LabelSelectorOpIn, Values: []string{"1"}},
		{Key: "b", Operator: metav1.LabelSelectorOpIn, Values: []string{"1"}},
		{Key: "b", Operator: metav1.LabelSelectorOpIn, Values: []string{"2"}},
		{Key: "c", Operator: metav1.LabelSelectorOpIn, Values: []string{"1", "2"}},
	})
	want := &metav1.LabelSelector{
		MatchLabels: map[string]string{"a": "1"},
		MatchExpressions: []metav1.LabelSelectorRequirement{
			// Two values required for b: kept as is (no node matches, as in Draino).
			{Key: "b", Operator: metav1.LabelSelectorOpIn, Values: []string{"1"}},
			{Key: "b", Operator: metav1.LabelSelectorOpIn, Values: []string{"2"}},
			{Key: "c", Operator: metav1.LabelSelectorOpIn, Values: []string{"1", "2"}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if buildSelector(nil) != nil {
		t.Error("no requirement should select every node (nil selector)")
	}
}
