package install

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/yaml"

	"github.com/nodewarden/nodewarden/controllers"
	"github.com/nodewarden/nodewarden/internal/agent/agentconfig"
	agentmetrics "github.com/nodewarden/nodewarden/internal/agent/metrics"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// externalMetrics are the series the alerts and the dashboard take from
// kube-state-metrics.
var externalMetrics = []string{"kube_lease_renew_time", "kube_node_status_condition"}

// descRegistry collects the names of the collectors registered with it.
type descRegistry struct{ names map[string]bool }

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (r *descRegistry) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			// Histograms and summaries are queried through their series.
			for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
				r.names[m[1]+suffix] = true
			}
		}
	}
	return nil
}

func (r *descRegistry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c)
	}
}

func (r *descRegistry) Unregister(prometheus.Collector) bool { return false }

// knownMetrics is every metric nodewarden's binaries define.
func knownMetrics(t *testing.T) map[string]bool {
	t.Helper()
	r := &descRegistry{names: map[string]bool{}}
	agentmetrics.New(r)
	if _, err := agentconfig.NewMetrics(r); err != nil {
		t.Fatal(err)
	}
	controllers.NewMetrics(r)
	for _, m := range externalMetrics {
		r.names[m] = true
	}
	return r.names
}

var metricRef = regexp.MustCompile(`\b(?:nodewarden|kube)_[a-z0-9_]+`)

func checkExpr(t *testing.T, where, expr string, known map[string]bool) {
	t.Helper()
	if expr == "" {
		t.Errorf("%s: empty expression", where)
	}
	refs := metricRef.FindAllString(expr, -1)
	if len(refs) == 0 {
		t.Errorf("%s: %q uses no nodewarden metric", where, expr)
	}
	for _, m := range refs {
		if !known[m] {
			t.Errorf("%s: metric %s does not exist (expr %q)", where, m, expr)
		}
	}
}

// TestAlertsUseRealMetrics: every alert is complete and queries metrics that
// exist, with the labels they are defined with.
func TestAlertsUseRealMetrics(t *testing.T) {
	known := knownMetrics(t)
	data, err := os.ReadFile(filepath.Join(cluster.RepoRoot(), "config/prometheus/prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rule struct {
		APIVersion string `json:"apiVersion"`
		Kind       string
		Metadata   struct{ Name string }
		Spec       struct {
			Groups []struct {
				Name  string
				Rules []struct {
					Alert       string
					Expr        string
					For         string
					Labels      map[string]string
					Annotations map[string]string
				}
			}
		}
	}
	if err := yaml.UnmarshalStrict(data, &rule, yaml.DisallowUnknownFields); err != nil {
		t.Fatalf("prometheusrule.yaml: %v", err)
	}
	var alerts []string
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			checkExpr(t, "alert "+r.Alert, r.Expr, known)
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s needs a severity label and summary and description annotations", r.Alert)
			}
		}
	}
	for _, want := range []string{"NodewardenNodeStuck", "NodewardenCircuitOpen", "NodewardenAgentLeaseStale", "NodewardenAgentParseErrorsRising"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("alert %s missing (docs/operations.md promises it)", want)
		}
	}
}

// TestDashboardUsesRealMetrics: the Grafana dashboard is valid JSON and
// every panel queries metrics that exist.
func TestDashboardUsesRealMetrics(t *testing.T) {
	known := knownMetrics(t)
	data, err := os.ReadFile(filepath.Join(cluster.RepoRoot(), "config/grafana/nodewarden-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string
		Panels []struct {
			ID      int
			Type    string
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("nodewarden-dashboard.json: %v", err)
	}
	if dash.UID == "" {
		t.Error("dashboard has no uid")
	}
	ids := map[int]bool{}
	queried := map[string]bool{}
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			checkExpr(t, "panel "+p.Title, q.Expr, known)
			for _, m := range metricRef.FindAllString(q.Expr, -1) {
				queried[m] = true
			}
		}
	}
	// What the issue asks the dashboard to show.
	for _, m := range []string{
		"kube_node_status_condition",                          // conditions by type
		"nodewarden_controller_nodes",                         // remediation states
		"nodewarden_controller_drain_duration_seconds_bucket", // drain durations
		"nodewarden_controller_eviction_retries_total",        // eviction retries
		"nodewarden_agent_lines_unparsed_total",               // parse errors
	} {
		if !queried[m] {
			t.Errorf("the dashboard does not show %s", m)
		}
	}
}
