package status_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/status"
	"github.com/nodewarden/nodewarden/internal/status/statustest"
)

var now = statustest.Now

func TestStatusRows(t *testing.T) {
	f := statustest.New()
	var got []string
	for _, r := range status.Status(now, f.Policies, f.Nodes) {
		got = append(got, strings.Join([]string{r.Node, r.State, r.Policy, r.Action, r.Trigger.String(), r.TimeLeft, strings.Join(r.BlockedBy, ",")}, " | "))
	}
	want := []string{
		// By deadline, then the ones without one.
		"node-c | DrainFailed | maintenance | " + mustAction(t, f, "node-c") + " | HostEventRebootAfter48=True/SystemMaintenanceReboot | 1h0m0s | " + f.Nodes[2].Annotations[v1alpha1.AnnotationBlockedBy],
		"node-a | Draining | maintenance | Hold | HostEventRebootAfter48=True/SystemMaintenanceReboot | 3h0m0s | ",
		"node-b | Triggered | maintenance | Defer | HostEventRebootAfter48=True/SystemMaintenanceReboot | 5h0m0s | budget",
		"node-d | Triggered | kernel | Defer | KernelDeadlock=True/DockerHung |  | paused",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("rows (-want +got):\n%s", d)
	}
}

func metav1Duration(d time.Duration) metav1.Duration { return metav1.Duration{Duration: d} }

func mustAction(t *testing.T, f statustest.Fixture, node string) string {
	t.Helper()
	e, ok := status.Explain(now, f.Policies, f.Nodes, node)
	if !ok {
		t.Fatalf("no node %s", node)
	}
	return e.Action
}

// The reasons a wanted node is held back, as the policy's facts give them.
func TestBlockedBy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*statustest.Fixture)
		node   string
		want   []string
	}{
		{"budget", func(*statustest.Fixture) {}, "node-b", []string{"budget"}},
		{"paused", func(*statustest.Fixture) {}, "node-d", []string{"paused"}},
		{"circuit", func(f *statustest.Fixture) {
			// 4 of 6 triggered > 50%.
			f.Nodes[5].Status.Conditions = f.Nodes[1].Status.Conditions
		}, "node-b", []string{"circuit"}},
		{"window", func(f *statustest.Fixture) {
			f.Policies[0].Spec.Paused = false
			f.Policies[0].Spec.MaintenanceWindows = []v1alpha1.MaintenanceWindow{{Schedule: "0 2 * * *", Duration: metav1Duration(2 * time.Hour)}}
		}, "node-d", []string{"window"}},
		{"failed drain", func(*statustest.Fixture) {}, "node-c", []string{statustest.New().Nodes[2].Annotations[v1alpha1.AnnotationBlockedBy]}},
		{"nothing", func(*statustest.Fixture) {}, "node-a", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := statustest.New()
			tc.change(&f)
			e, ok := status.Explain(now, f.Policies, f.Nodes, tc.node)
			if !ok {
				t.Fatal("no node")
			}
			if d := cmp.Diff(tc.want, e.BlockedBy); d != "" {
				t.Errorf("blocked by (-want +got):\n%s\nwhy: %s", d, e.Why)
			}
		})
	}
}

func TestHistoryOrderAndSteps(t *testing.T) {
	f := statustest.New()
	all := status.History(now, f.Records, "", 0)
	var names []string
	for _, e := range all {
		names = append(names, e.Record)
		if e.Steps != nil {
			t.Errorf("%s: steps without a node", e.Record)
		}
	}
	if d := cmp.Diff([]string{"node-a-maintenance-1", "node-c-maintenance-2", "node-c-maintenance-1"}, names); d != "" {
		t.Errorf("newest first (-want +got):\n%s", d)
	}
	c := status.History(now, f.Records, "node-c", 1)
	if len(c) != 2 || len(c[0].Steps) != 3 || c[1].Steps != nil {
		t.Fatalf("node-c: %+v", c)
	}
	if c[0].Duration != "30m0s" || c[1].Duration != "1h0m0s" {
		t.Errorf("durations %q (open, from now) and %q (recorded)", c[0].Duration, c[1].Duration)
	}
}

func TestExplainFacts(t *testing.T) {
	f := statustest.New()
	e, _ := status.Explain(now, f.Policies, f.Nodes, "node-e")
	if e.Action != "None" || len(e.Policies) != 2 {
		t.Fatalf("node-e: %+v", e)
	}
	k := e.Policies[0]
	if k.Name != "kernel" || !k.Paused || len(k.Pending) != 1 || k.Pending[0].Remaining != "8m0s" {
		t.Errorf("kernel facts: %+v", k)
	}
	b, _ := status.Explain(now, f.Policies, f.Nodes, "node-b")
	if len(b.Policies) != 1 || b.Policies[0].BudgetUsed != 2 || b.Policies[0].BudgetAllowed != 2 {
		t.Errorf("node-b facts: %+v", b.Policies)
	}
	if _, ok := status.Explain(now, f.Policies, f.Nodes, "nope"); ok {
		t.Error("a missing node explained")
	}
}

func TestRenderTruncatesAndNoColour(t *testing.T) {
	rows := []status.NodeStatus{{
		Node: "node-x", State: "Cordoned", Policy: "p",
		Trigger:   &status.TriggerInfo{Type: strings.Repeat("T", 80), Status: "True"},
		BlockedBy: []string{strings.Repeat("b", 80)},
	}}
	var out bytes.Buffer
	if err := status.RenderStatus(&out, now, rows, status.Style{}); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(out.String(), "\n") {
		if n := len([]rune(l)); n > 160 {
			t.Errorf("line of %d runes: %q", n, l)
		}
	}
	if strings.Contains(out.String(), "\x1b[") {
		t.Error("colour without Style.Color")
	}
	if !strings.Contains(out.String(), "…") {
		t.Errorf("nothing truncated:\n%s", out.String())
	}
	out.Reset()
	_ = status.RenderStatus(&out, now, rows, status.Style{Color: true})
	if !strings.Contains(out.String(), "\x1b[33mCordoned\x1b[0m") {
		t.Errorf("no colour with Style.Color:\n%q", out.String())
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		45 * time.Second:              "45s",
		200 * time.Second:             "3m20s",
		47*time.Hour + 59*time.Minute: "47h59m",
		50 * time.Hour:                "2d2h",
		-90 * time.Second:             "-1m30s",
		1500 * time.Millisecond:       "2s",
	} {
		if got := status.HumanDuration(d); got != want {
			t.Errorf("HumanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
