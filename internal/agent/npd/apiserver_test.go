package npd

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/nodewarden/nodewarden/internal/agent/nodeevent"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// NPD's configs, fed the sample problems, make on a real API server the
// conditions and Events NPD makes; a restart (which replays the logs)
// changes nothing and records no Event twice.
func TestNPDMonitorsOnAPIServer(t *testing.T) {
	c := cluster.Start(t)
	ctx := t.Context()
	const node = "npd-node"
	n, err := c.Clientset.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ready := corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status",
		LastHeartbeatTime: metav1.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), LastTransitionTime: metav1.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	n.Status.Conditions = []corev1.NodeCondition{ready}
	if _, err := c.Clientset.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	opts := testOptions(t)
	dir := t.TempDir()
	kmsgPath := filepath.Join(dir, "kmsg")
	hostLog := filepath.Join(dir, "host_event.log")
	// The kernel's buffer holds the samples, logged a minute ago.
	var lines []string
	for _, p := range []string{"oom_kill", "docker_hung", "aufs_umount_hung", "readonly_filesystem", "unregister_netdevice", "au_opts_verify"} {
		lines = append(lines, problemLines(t, p)...)
	}
	appendFile(t, kmsgPath, kmsgRecords(lines, 1000, time.Since(opts.BootTime)-time.Minute))
	appendFile(t, hostLog, "")
	paths := []string{
		fixture(t, "kernel-monitor.json", map[string]any{"logPath": kmsgPath}),
		fixture(t, "readonly-monitor.json", map[string]any{"logPath": kmsgPath}),
		fixture(t, "host_event.json", map[string]any{"logPath": hostLog}),
	}

	start := func() func() { return runOnAPIServer(t, c, node, paths, opts) }
	stop := start()

	// The scheduled reboot arrives while running.
	appendFile(t, hostLog, hostEventLine(time.Now(), hostEventScheduled))

	wantConds := map[string]cond{
		"Ready":                  {"True", "KubeletReady", "kubelet is posting ready status"},
		"KernelDeadlock":         {"True", "DockerHung", dockerHungLine},
		"XfsShutdown":            kernelDefaults["XfsShutdown"],
		"CperHardwareErrorFatal": kernelDefaults["CperHardwareErrorFatal"],
		"ReadonlyFilesystem":     {"True", "FilesystemIsReadOnly", readonlyLine},
		"HostEventRebootAfter48": {"True", "HostEventRebootAfter48Permanent", hostEventScheduled},
	}
	wantEvents := []ev{
		{warning, "OOMKilling", oomLine},
		{warning, "TaskHung", dockerHungLine},
		changeEvent("KernelDeadlock", "True", "DockerHung", dockerHungLine),
		{warning, "TaskHung", "INFO: task umount.aufs:21568 blocked for more than 120 seconds."},
		changeEvent("ReadonlyFilesystem", "True", "FilesystemIsReadOnly", readonlyLine),
		{warning, "UnregisterNetDevice", "unregister_netdevice: waiting for lo to become free. Usage count = 1"},
		{warning, "HostEventRebootAfter48temporary", hostEventScheduled},
		changeEvent("HostEventRebootAfter48", "True", "HostEventRebootAfter48Permanent", hostEventScheduled),
	}
	nodeConds := func() (map[string]cond, map[string]metav1.Time) {
		n, err := c.Clientset.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, since := map[string]cond{}, map[string]metav1.Time{}
		for _, nc := range n.Status.Conditions {
			got[string(nc.Type)] = cond{string(nc.Status), nc.Reason, nc.Message}
			since[string(nc.Type)] = nc.LastTransitionTime
		}
		return got, since
	}
	nodeEvents := func() []ev {
		list, err := c.Clientset.CoreV1().Events(nodeevent.Namespace).List(context.Background(), metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("involvedObject.name", node).String(),
		})
		if err != nil {
			t.Fatal(err)
		}
		var out []ev
		for _, e := range list.Items {
			out = append(out, ev{e.Type, e.Reason, e.Message})
		}
		return out
	}
	check := func() error {
		got, _ := nodeConds()
		if diff := cmp.Diff(wantConds, got); diff != "" {
			return fmt.Errorf("node conditions (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(sortedEvents(wantEvents), sortedEvents(nodeEvents())); diff != "" {
			return fmt.Errorf("node events (-want +got):\n%s", diff)
		}
		return nil
	}
	cluster.Eventually(t, 20*time.Second, check)
	_, before := nodeConds()

	// Restart: the replay finds the same problems; nothing changes.
	stop()
	stop = start()
	// A new line, and its effect, shows the restarted sources are running.
	appendFile(t, kmsgPath, kmsgRecords([]string{"Killed process 77 (late) total-vm:1kB, anon-rss:1kB, file-rss:1kB"}, 5000, time.Since(opts.BootTime)))
	wantEvents = append(wantEvents, ev{warning, "OOMKilling", "Killed process 77 (late) total-vm:1kB, anon-rss:1kB, file-rss:1kB"})
	cluster.Eventually(t, 20*time.Second, check)
	_, after := nodeConds()
	for typ, at := range before {
		if a := after[typ]; !a.Equal(&at) {
			t.Errorf("%s: lastTransitionTime moved across a restart: %v -> %v", typ, at, after[typ])
		}
	}
	stop()
	if got := strings.Count(fmt.Sprint(nodeEvents()), "OOMKilling"); got != 2 {
		t.Errorf("%d OOMKilling events, want 2", got)
	}
}
