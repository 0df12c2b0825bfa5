package controllers_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/controllers"
	"github.com/nodewarden/nodewarden/test/cluster"
)

func records(t *testing.T, c *cluster.Cluster, labels client.MatchingLabels) []v1alpha1.RemediationRecord {
	t.Helper()
	var list v1alpha1.RemediationRecordList
	if err := c.Client.List(t.Context(), &list, labels); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func reasons(r v1alpha1.RemediationRecord) []string {
	var out []string
	for _, s := range r.Status.Steps {
		out = append(out, s.Reason)
	}
	return out
}

// TestHistoryEpisodeSurvivesRestart: one episode is one RemediationRecord,
// with its steps and outcome; a controller restarted mid-episode continues
// the same record; kubectl shows it with its columns.
func TestHistoryEpisodeSurvivesRestart(t *testing.T) {
	c := cluster.Start(t) // no pods: the drain finishes at once
	for _, n := range []string{"h1", "h2"} {
		if err := c.Client.Create(t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n, Labels: map[string]string{"pool": "web"}}}); err != nil {
			t.Fatal(err)
		}
	}
	hist := controllers.Options{History: controllers.HistoryOptions{MaxRecords: 100, MaxAge: time.Hour, SweepEvery: time.Second}}
	stop := startControllerOpts(t, c, hist)
	createPolicy(t, c, "maintenance", nil)
	deadline := time.Now().Add(47 * time.Hour).Truncate(time.Second)
	setTrigger(t, c, "h1", corev1.ConditionTrue, deadline)
	waitState(t, c, "h1", "Drained", time.Minute)

	var open v1alpha1.RemediationRecord
	cluster.Eventually(t, 30*time.Second, func() error {
		recs := records(t, c, client.MatchingLabels{v1alpha1.LabelRecordNode: "h1"})
		if len(recs) != 1 {
			return fmt.Errorf("%d records of h1, want 1", len(recs))
		}
		open = recs[0]
		if got := reasons(open); !slices.Equal(got, []string{"Cordoned", "DrainStarted", "DrainSucceeded"}) {
			return fmt.Errorf("record %s: steps %v", open.Name, got)
		}
		return nil
	})
	st := open.Status
	if st.Node != "h1" || st.Policy != "maintenance" || st.Outcome != v1alpha1.OutcomeOpen || st.EndedAt != nil ||
		open.Labels[v1alpha1.LabelRecordOpen] != "true" || open.Labels[v1alpha1.LabelRecordPolicy] != "maintenance" {
		t.Errorf("open record %s: %+v, labels %v", open.Name, st, open.Labels)
	}
	if st.Trigger.Type != trigger || st.Trigger.Status != corev1.ConditionTrue || st.Trigger.Reason != "SystemMaintenanceRebootScheduled" ||
		st.Trigger.Deadline == nil || !st.Trigger.Deadline.Time.Equal(deadline) {
		t.Errorf("trigger %+v, want %s=True, reason SystemMaintenanceRebootScheduled, deadline %s", st.Trigger, trigger, deadline)
	}
	if want := fmt.Sprintf("h1.maintenance.%d", st.StartedAt.Unix()); open.Name != want {
		t.Errorf("record named %s, want %s", open.Name, want)
	}

	// The controller dies mid-episode; a new one ends it.
	stop()
	startControllerOpts(t, c, hist)
	setTrigger(t, c, "h1", corev1.ConditionFalse, time.Time{})
	waitState(t, c, "h1", "", time.Minute)
	var closed v1alpha1.RemediationRecord
	cluster.Eventually(t, 30*time.Second, func() error {
		recs := records(t, c, client.MatchingLabels{v1alpha1.LabelRecordNode: "h1"})
		if len(recs) != 1 {
			return fmt.Errorf("%d records of h1 after the restart, want the same one", len(recs))
		}
		closed = recs[0]
		if closed.Status.Outcome != v1alpha1.OutcomeReleased {
			return fmt.Errorf("record %s: outcome %s, steps %v", closed.Name, closed.Status.Outcome, reasons(closed))
		}
		return nil
	})
	if closed.Name != open.Name || closed.Labels[v1alpha1.LabelRecordOpen] != "false" || closed.Status.EndedAt == nil || closed.Status.Duration == "" {
		t.Errorf("closed record %s (was %s): labels %v, ended %v, duration %q", closed.Name, open.Name, closed.Labels, closed.Status.EndedAt, closed.Status.Duration)
	}
	if got := reasons(closed); !slices.Equal(got, []string{"Cordoned", "DrainStarted", "DrainSucceeded", "Uncordoned"}) {
		t.Errorf("steps %v", got)
	}
	if n := len(records(t, c, nil)); n != 1 {
		t.Errorf("%d records, want 1: h2 never had an episode", n)
	}

	// What people read.
	out, err := c.Kubectl(t, "get", "remediationrecords")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !slices.Equal(strings.Fields(lines[0]), []string{"NAME", "NODE", "POLICY", "TRIGGER", "OUTCOME", "STARTED", "DURATION", "AGE"}) {
		t.Fatalf("kubectl get remediationrecords:\n%s", out)
	}
	if f := strings.Fields(lines[1]); len(f) != 8 || f[0] != open.Name || f[1] != "h1" || f[2] != "maintenance" || f[3] != trigger || f[4] != "Released" {
		t.Errorf("kubectl get remediationrecords:\n%s", out)
	}
	for _, args := range [][]string{{"get", "nwrec"}, {"get", "nodewarden"}, {"get", "nwrec", "-l", "nodewarden.io/node=h1,nodewarden.io/open=false"}} {
		if out, err := c.Kubectl(t, args...); err != nil || !strings.Contains(out, open.Name) {
			t.Errorf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestHistoryPruneAndDeletedNodes: closed records beyond --history-max-records
// go, oldest first; an open one is never pruned; the open record of a node
// that was deleted is closed as NodeDeleted.
func TestHistoryPruneAndDeletedNodes(t *testing.T) {
	c := cluster.Start(t)
	if err := c.Client.Create(t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "alive"}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	create := func(name, node string, endedHoursAgo int) {
		t.Helper()
		st := v1alpha1.RemediationRecordStatus{Node: node, Policy: "p", Outcome: v1alpha1.OutcomeOpen,
			StartedAt: metav1.NewTime(now.Add(-1000 * time.Hour))}
		open := "true"
		if endedHoursAgo >= 0 {
			end := metav1.NewTime(now.Add(-time.Duration(endedHoursAgo) * time.Hour))
			st.Outcome, st.EndedAt, open = v1alpha1.OutcomeReleased, &end, "false"
		}
		rec := &v1alpha1.RemediationRecord{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			v1alpha1.LabelRecordNode: node, v1alpha1.LabelRecordPolicy: "p", v1alpha1.LabelRecordOpen: open,
		}}, Status: st}
		if err := c.Client.Create(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
	}
	create("open-oldest", "alive", -1)
	create("ghost", "ghost", -1) // its node is gone
	for i := 1; i <= 5; i++ {
		create(fmt.Sprintf("closed-%d", i), "alive", 10*i) // closed-5 ended first
	}
	startControllerOpts(t, c, controllers.Options{History: controllers.HistoryOptions{MaxRecords: 3, MaxAge: 24 * time.Hour, SweepEvery: time.Second}})
	cluster.Eventually(t, 30*time.Second, func() error {
		var names []string
		for _, r := range records(t, c, nil) {
			names = append(names, r.Name)
		}
		// 7 records, at most 3: the open one stays, ghost is now the newest
		// closed one, and closed-1 the next (the others are also older than a day).
		if !slices.Equal(names, []string{"closed-1", "ghost", "open-oldest"}) {
			return fmt.Errorf("records %v", names)
		}
		return nil
	})
	var ghost v1alpha1.RemediationRecord
	if err := c.Client.Get(t.Context(), client.ObjectKey{Name: "ghost"}, &ghost); err != nil {
		t.Fatal(err)
	}
	if ghost.Status.Outcome != v1alpha1.OutcomeNodeDeleted || ghost.Labels[v1alpha1.LabelRecordOpen] != "false" || !slices.Equal(reasons(ghost), []string{"NodeDeleted"}) {
		t.Errorf("record of the deleted node: outcome %s, labels %v, steps %v", ghost.Status.Outcome, ghost.Labels, reasons(ghost))
	}
}

// TestHistoryHumanUncordonThenNewEpisode: a human uncordon ends the episode
// as HumanUncordoned; the next time the condition transitions, a new
// episode gets a record of its own.
func TestHistoryHumanUncordonThenNewEpisode(t *testing.T) {
	c := cluster.Start(t)
	if err := c.Client.Create(t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "u1", Labels: map[string]string{"pool": "web"}}}); err != nil {
		t.Fatal(err)
	}
	startControllerOpts(t, c, controllers.Options{History: controllers.HistoryOptions{MaxRecords: 100, SweepEvery: time.Second}})
	createPolicy(t, c, "maintenance", func(rp *v1alpha1.RemediationPolicy) { rp.Spec.Drain.Enabled = ptr.To(false) })
	setTrigger(t, c, "u1", corev1.ConditionTrue, time.Now().Add(47*time.Hour))
	waitState(t, c, "u1", "Cordoned", time.Minute)
	if _, err := c.Clientset.CoreV1().Nodes().Patch(t.Context(), "u1", types.MergePatchType, []byte(`{"spec":{"unschedulable":false}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, "u1", "", time.Minute)
	cluster.Eventually(t, 30*time.Second, func() error {
		recs := records(t, c, nil)
		if len(recs) != 1 || recs[0].Status.Outcome != v1alpha1.OutcomeHumanUncordoned {
			return fmt.Errorf("%d records, want 1 HumanUncordoned: %+v", len(recs), recs)
		}
		if got := reasons(recs[0]); !slices.Equal(got, []string{"Cordoned", "RemediationStopped"}) {
			return fmt.Errorf("steps %v", got)
		}
		return nil
	})

	// The condition transitions again (after a second: record names and
	// the human-uncordoned mark count in seconds): a second episode.
	time.Sleep(1100 * time.Millisecond)
	setTrigger(t, c, "u1", corev1.ConditionTrue, time.Now().Add(47*time.Hour))
	waitState(t, c, "u1", "Cordoned", time.Minute)
	cluster.Eventually(t, 30*time.Second, func() error {
		open := records(t, c, client.MatchingLabels{v1alpha1.LabelRecordOpen: "true"})
		all := records(t, c, nil)
		if len(all) != 2 || len(open) != 1 || !slices.Equal(reasons(open[0]), []string{"Cordoned"}) {
			return fmt.Errorf("%d records, %d open; want 2, one open with its own Cordoned step", len(all), len(open))
		}
		return nil
	})
}

// TestHistoryHandover: a node handed over from one policy to another closes
// the first policy's record as HandedOver and opens the second's.
func TestHistoryHandover(t *testing.T) {
	c := cluster.Start(t)
	if err := c.Client.Create(t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "o1", Labels: map[string]string{"pool": "web"}}}); err != nil {
		t.Fatal(err)
	}
	startControllerOpts(t, c, controllers.Options{History: controllers.HistoryOptions{MaxRecords: 100, SweepEvery: time.Second}})
	createPolicy(t, c, "first", func(rp *v1alpha1.RemediationPolicy) { rp.Spec.Drain.Enabled = ptr.To(false) })
	setTrigger(t, c, "o1", corev1.ConditionTrue, time.Now().Add(47*time.Hour))
	waitState(t, c, "o1", "Cordoned", time.Minute)

	createPolicy(t, c, "second", func(rp *v1alpha1.RemediationPolicy) {
		rp.Spec.Drain.Enabled = ptr.To(false)
		rp.Spec.Conditions = []v1alpha1.ConditionRule{{Type: "KernelDeadlock"}}
	})
	now := time.Now().UTC().Format(time.RFC3339)
	patch := fmt.Sprintf(`{"status":{"conditions":[{"type":"KernelDeadlock","status":"True","reason":"DockerHung","message":"task docker:7 blocked","lastTransitionTime":%q,"lastHeartbeatTime":%q}]}}`, now, now)
	if _, err := c.Clientset.CoreV1().Nodes().PatchStatus(t.Context(), "o1", []byte(patch)); err != nil {
		t.Fatal(err)
	}
	setTrigger(t, c, "o1", corev1.ConditionFalse, time.Time{}) // first's condition clears, second's holds
	cluster.Eventually(t, time.Minute, func() error {
		if p := node(t, c, "o1").Annotations[v1alpha1.AnnotationPolicy]; p != "second" {
			return fmt.Errorf("o1 held by %q, want second", p)
		}
		return nil
	})
	cluster.Eventually(t, 30*time.Second, func() error {
		first := records(t, c, client.MatchingLabels{v1alpha1.LabelRecordPolicy: "first"})
		second := records(t, c, client.MatchingLabels{v1alpha1.LabelRecordPolicy: "second"})
		if len(first) != 1 || first[0].Status.Outcome != v1alpha1.OutcomeHandedOver || !slices.Equal(reasons(first[0]), []string{"Cordoned", "HandedOver"}) {
			return fmt.Errorf("records of policy first: %+v", first)
		}
		if len(second) != 1 || second[0].Status.Outcome != v1alpha1.OutcomeOpen || !slices.Equal(reasons(second[0]), []string{"HandedOver"}) ||
			second[0].Status.Trigger.Type != "KernelDeadlock" || second[0].Status.Trigger.Reason != "DockerHung" {
			return fmt.Errorf("records of policy second: %+v", second)
		}
		return nil
	})
}
