package agent_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/agent"
	"github.com/nodewarden/nodewarden/internal/agent/nodeevent"
	"github.com/nodewarden/nodewarden/test/cluster"
)

const (
	scheduled = "2024-01-09 06:12:44 - WARNING - Ecs event type is: SystemMaintenance.Reboot,event status is: Scheduled,action ISO 8601 time is 2099-01-11T02:00:00Z\n"
	executed  = "2099-01-11 02:09:41 - WARNING - Ecs event type is: SystemMaintenance.Reboot,event status is: Executed,action ISO 8601 time is 2099-01-11T02:00:00Z\n"
	unmapped  = "2024-01-08 17:02:01 - WARNING - Ecs event type is: InstanceFailure.Reboot,event status is: Executed,action ISO 8601 time is 2023-12-27T11:49:28Z\n"
)

// env is one agent under test against a real API server.
type env struct {
	t       *testing.T
	c       *cluster.Cluster
	node    string
	logPath string
	cancel  context.CancelFunc
	done    chan struct{}
}

func newEnv(t *testing.T, c *cluster.Cluster, node string) *env {
	t.Helper()
	e := &env{t: t, c: c, node: node, logPath: filepath.Join(t.TempDir(), "host_event.log")}
	ctx := t.Context()
	_, err := c.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "nodewarden-system"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	n, err := c.Clientset.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// kubelet's condition, which the agent must never touch.
	n.Status.Conditions = []corev1.NodeCondition{kubeletReady()}
	if _, err := c.Clientset.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return e
}

func kubeletReady() corev1.NodeCondition {
	return corev1.NodeCondition{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status",
		LastHeartbeatTime: metav1.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), LastTransitionTime: metav1.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

// start runs the agent in-process against cfg (the API server, or a proxy in front of it).
func (e *env) start(cfg *rest.Config) {
	e.t.Helper()
	conf := &v1alpha1.AgentConfig{}
	conf.Default()
	conf.HostEventLog.Path = ptr.To(e.logPath)
	conf.HostEventLog.PollInterval = metav1.Duration{Duration: 100 * time.Millisecond}
	e.run(agent.Options{Client: cluster.AgentClient(e.t, cfg), Config: conf})
}

// run runs the agent with opts, filling in the node, namespace and logger.
func (e *env) run(opts agent.Options) {
	e.t.Helper()
	opts.NodeName, opts.Namespace, opts.Log = e.node, "nodewarden-system", testr.New(e.t)
	opts.BootTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	a, err := agent.New(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan struct{})
	go func() { defer close(e.done); a.Run(ctx) }()
	e.t.Cleanup(e.stop)
}

func (e *env) stop() {
	if e.cancel != nil {
		e.cancel()
		<-e.done
		e.cancel = nil
	}
}

func (e *env) appendLine(line string) {
	e.t.Helper()
	f, err := os.OpenFile(e.logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) getNode() *corev1.Node {
	e.t.Helper()
	n, err := e.c.Clientset.CoreV1().Nodes().Get(context.Background(), e.node, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func condition(n *corev1.Node, t string) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if string(n.Status.Conditions[i].Type) == t {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

// waitCondition waits until the node's condition t has status, reason and message.
func (e *env) waitCondition(t string, status corev1.ConditionStatus, reason, message string) corev1.NodeCondition {
	e.t.Helper()
	var got corev1.NodeCondition
	cluster.Eventually(e.t, 20*time.Second, func() error {
		c := condition(e.getNode(), t)
		if c == nil {
			return fmt.Errorf("node %s has no %s condition", e.node, t)
		}
		if c.Status != status || c.Reason != reason || (message != "" && c.Message != message) {
			return fmt.Errorf("node %s: %s=%s reason %q message %q; want %s %q %q", e.node, t, c.Status, c.Reason, c.Message, status, reason, message)
		}
		got = *c
		return nil
	})
	return got
}

// events returns the agent's Events on the node, by reason.
func (e *env) events() map[string][]corev1.Event {
	e.t.Helper()
	list, err := e.c.Clientset.CoreV1().Events(nodeevent.Namespace).List(context.Background(), metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", e.node).String(),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string][]corev1.Event{}
	for _, ev := range list.Items {
		out[ev.Reason] = append(out[ev.Reason], ev)
	}
	return out
}

func (e *env) assertKubeletReadyUntouched() {
	e.t.Helper()
	got := condition(e.getNode(), "Ready")
	want := kubeletReady()
	if got == nil || got.Status != want.Status || got.Reason != want.Reason || got.Message != want.Message ||
		!got.LastHeartbeatTime.Equal(&want.LastHeartbeatTime) || !got.LastTransitionTime.Equal(&want.LastTransitionTime) {
		e.t.Errorf("kubelet's Ready condition changed: %+v, want %+v", got, want)
	}
}

var defaultTypes = []string{"HostEventDelete", "HostEventRebootAfter48", "HostEventRedeploy", "HostEventStop"}

func TestAgentHostEventLifecycle(t *testing.T) {
	c := cluster.Start(t)
	e := newEnv(t, c, "n1")
	e.start(c.Config)

	// Declared at start, before any event: kubectl describe shows them.
	for _, typ := range defaultTypes {
		e.waitCondition(typ, corev1.ConditionFalse, "NoHostEvent", "")
	}
	e.assertKubeletReadyUntouched()

	e.appendLine(scheduled)
	e.appendLine(scheduled) // the plugin repeats lines every minute: no new Event
	e.appendLine(unmapped)
	on := e.waitCondition("HostEventRebootAfter48", corev1.ConditionTrue, "SystemMaintenanceRebootScheduled",
		"SystemMaintenance.Reboot is Scheduled, not before 2099-01-11T02:00:00Z")
	e.assertKubeletReadyUntouched()

	e.appendLine(executed)
	off := e.waitCondition("HostEventRebootAfter48", corev1.ConditionFalse, "SystemMaintenanceRebootExecuted", "")
	if !off.LastTransitionTime.After(on.LastTransitionTime.Time) && !off.LastTransitionTime.Equal(&on.LastTransitionTime) {
		t.Errorf("lastTransitionTime did not move forward: on %v, off %v", on.LastTransitionTime, off.LastTransitionTime)
	}
	e.assertKubeletReadyUntouched()

	cluster.Eventually(t, 10*time.Second, func() error {
		evs := e.events()
		for reason, wantType := range map[string]string{
			"SystemMaintenanceRebootScheduled": corev1.EventTypeWarning,
			"SystemMaintenanceRebootExecuted":  corev1.EventTypeNormal,
			"InstanceFailureRebootExecuted":    corev1.EventTypeWarning,
		} {
			if len(evs[reason]) != 1 {
				return fmt.Errorf("%d %s events, want exactly 1 (all: %v)", len(evs[reason]), reason, slices.Collect(maps.Keys(evs)))
			}
			if got := evs[reason][0].Type; got != wantType {
				return fmt.Errorf("%s event type %s, want %s", reason, got, wantType)
			}
		}
		return nil
	})
}

func TestAgentRestartMakesNoTransitionAndNoDuplicateEvent(t *testing.T) {
	c := cluster.Start(t)
	e := newEnv(t, c, "n2")
	e.appendLine(scheduled)
	e.appendLine(unmapped)
	e.start(c.Config)
	before := e.waitCondition("HostEventRebootAfter48", corev1.ConditionTrue, "SystemMaintenanceRebootScheduled", "")
	cluster.Eventually(t, 10*time.Second, func() error {
		if n := len(e.events()["SystemMaintenanceRebootScheduled"]); n != 1 {
			return fmt.Errorf("%d Scheduled events, want 1", n)
		}
		return nil
	})
	e.stop()
	rv := e.getNode().ResourceVersion
	eventsBefore := e.events()

	e.start(c.Config)
	e.appendLine(unmapped) // a repeat: nothing new
	// A line that *is* new, and its effect: by then the restarted agent has
	// certainly replayed the file and compared its state with the Node.
	e.appendLine("2024-01-12 11:00:00 - WARNING - Ecs event type is: SystemFailure.Reboot,event status is: Executing,action ISO 8601 time is 2024-01-12T10:58:00Z\n")
	cluster.Eventually(t, 10*time.Second, func() error {
		if n := len(e.events()["SystemFailureRebootExecuting"]); n != 1 {
			return fmt.Errorf("%d SystemFailureRebootExecuting events, want 1", n)
		}
		return nil
	})
	after := condition(e.getNode(), "HostEventRebootAfter48")
	if !after.LastTransitionTime.Equal(&before.LastTransitionTime) || after.Status != before.Status {
		t.Errorf("restart changed the condition: before %+v, after %+v", before, after)
	}
	if got := e.getNode().ResourceVersion; got != rv {
		t.Errorf("restart rewrote the Node (resourceVersion %s -> %s) though nothing changed", rv, got)
	}
	evs := e.events()
	for reason, list := range eventsBefore {
		if len(evs[reason]) != len(list) {
			t.Errorf("restart duplicated %s events: %d before, %d after", reason, len(list), len(evs[reason]))
		}
	}
}

func TestAgentConvergesAfterAPIOutage(t *testing.T) {
	c := cluster.Start(t)
	e := newEnv(t, c, "n3")
	proxy := c.NewProxy(t)
	e.start(proxy.Config(c))
	e.waitCondition("HostEventRebootAfter48", corev1.ConditionFalse, "NoHostEvent", "")

	proxy.Cut()
	e.appendLine(scheduled)
	e.appendLine("2024-01-12 10:00:00 - WARNING - Ecs event type is: InstanceExpiration.Stop,event status is: Scheduled,action ISO 8601 time is 2099-01-15T00:00:00Z\n")
	e.appendLine(executed)
	// The agent has read the lines and is failing to write; keep it down a while.
	time.Sleep(3 * time.Second) //nolint:forbidigo // the outage itself is the thing being simulated, not a synchronisation
	if got := condition(e.getNode(), "HostEventStop"); got.Status != corev1.ConditionFalse {
		t.Fatalf("condition changed while the API was cut off: %+v", got)
	}
	proxy.Restore()

	e.waitCondition("HostEventRebootAfter48", corev1.ConditionFalse, "SystemMaintenanceRebootExecuted", "")
	e.waitCondition("HostEventStop", corev1.ConditionTrue, "InstanceExpirationStopScheduled",
		"InstanceExpiration.Stop is Scheduled, not before 2099-01-15T00:00:00Z")
	cluster.Eventually(t, 20*time.Second, func() error {
		evs := e.events()
		for _, r := range []string{"SystemMaintenanceRebootScheduled", "SystemMaintenanceRebootExecuted", "InstanceExpirationStopScheduled"} {
			if len(evs[r]) != 1 {
				return fmt.Errorf("%d %s events after the outage, want 1", len(evs[r]), r)
			}
		}
		return nil
	})
	e.assertKubeletReadyUntouched()
}

func TestAgentDoesNotWriteInSteadyState(t *testing.T) {
	c := cluster.Start(t)
	e := newEnv(t, c, "n4")
	e.appendLine(scheduled)
	e.start(c.Config)
	e.waitCondition("HostEventRebootAfter48", corev1.ConditionTrue, "SystemMaintenanceRebootScheduled", "")
	e.appendLine(scheduled) // repeats of a known line change nothing either
	rv := e.getNode().ResourceVersion

	// Watch the Node for a while: no event at all may arrive.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w, err := c.Clientset.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", e.node).String(), ResourceVersion: rv,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if n, ok := ev.Object.(*corev1.Node); ok {
			t.Errorf("node written in steady state: %s, resourceVersion %s", ev.Type, n.ResourceVersion)
		}
	}
}

func TestAgentConfigReload(t *testing.T) {
	c := cluster.Start(t)
	e := newEnv(t, c, "n5")
	cfgPath := filepath.Join(t.TempDir(), "agent.yaml")
	writeConfig := func(body string) {
		t.Helper()
		// Written whole and renamed, as a ConfigMap update is.
		tmp := cfgPath + ".tmp"
		if err := os.WriteFile(tmp, []byte("apiVersion: nodewarden.io/v1alpha1\nkind: AgentConfig\nhostEventLog:\n  path: "+e.logPath+"\n  pollInterval: 100ms\n"+body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, cfgPath); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig("")
	e.appendLine(scheduled)
	e.run(agent.Options{Client: cluster.AgentClient(t, c.Config), ConfigPath: cfgPath})
	e.waitCondition("HostEventRebootAfter48", corev1.ConditionTrue, "SystemMaintenanceRebootScheduled", "")

	// An invalid file: reported on the Node, and the agent goes on as before.
	writeConfig("  maxLineBytes: 10\n")
	cluster.Eventually(t, 20*time.Second, func() error {
		evs := e.events()["InvalidAgentConfig"]
		if len(evs) != 1 || evs[0].Type != corev1.EventTypeWarning {
			return fmt.Errorf("%d InvalidAgentConfig events, want one Warning", len(evs))
		}
		return nil
	})
	e.appendLine(executed)
	e.waitCondition("HostEventRebootAfter48", corev1.ConditionFalse, "SystemMaintenanceRebootExecuted", "")

	// A valid change of the mapping takes effect without a restart.
	writeConfig("  conditions:\n  - type: CustomMaintenance\n    eventTypes: [InstanceFailure.Reboot]\n")
	e.appendLine(unmapped) // InstanceFailure.Reboot, Executed
	e.waitCondition("CustomMaintenance", corev1.ConditionFalse, "InstanceFailureRebootExecuted", "")
}
