package install

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewarden/nodewarden/test/cluster"
)

// healthCondition waits for the real node's condition typ to have status
// and reason, with a message containing each of msg, and returns it.
func (in install) healthCondition(t *testing.T, typ string, status corev1.ConditionStatus, reason string, timeout time.Duration, msg ...string) corev1.NodeCondition {
	t.Helper()
	var got corev1.NodeCondition
	cluster.Eventually(t, timeout, func() error {
		node, err := in.c.Clientset.CoreV1().Nodes().Get(t.Context(), cluster.RealNodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cond := findCondition(node, corev1.NodeConditionType(typ))
		if cond == nil {
			return fmt.Errorf("no %s on %s", typ, cluster.RealNodeName)
		}
		if cond.Status != status || cond.Reason != reason {
			return fmt.Errorf("%s is %s/%s (%q), want %s/%s", typ, cond.Status, cond.Reason, cond.Message, status, reason)
		}
		for _, m := range msg {
			if !strings.Contains(cond.Message, m) {
				return fmt.Errorf("%s message %q lacks %q", typ, cond.Message, m)
			}
		}
		got = *cond
		return nil
	})
	return got
}

// healthChecksReport: the agent pod, unprivileged, reports the real node's
// health checks from the host's /proc and /sys, its kubelet filesystem (the
// emptyDir) and, through the CRI socket with group 0 only, the real
// containerd. An interface that comes up on the host without a link makes
// NetworkingReady False naming it — proof that the pod reads the host's
// /sys and not its own network namespace — and True again once it runs.
func (in install) healthChecksReport(t *testing.T) {
	t.Helper()
	in.healthCondition(t, "KernelReady", corev1.ConditionTrue, "KernelIsReady", time.Minute, "tasks")
	in.healthCondition(t, "StorageReady", corev1.ConditionTrue, "StorageIsReady", time.Minute, "/run/nodewarden/kubelet-fs", "/var/log")
	in.healthCondition(t, "NetworkingReady", corev1.ConditionTrue, "NetworkingIsReady", time.Minute)
	in.healthCondition(t, "ContainerRuntimeReady", corev1.ConditionTrue, "ContainerRuntimeIsReady", time.Minute, in.c.RealNode.CRIEndpoint())

	const iface, peer = "nwtest0", "nwtest1"
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	_ = exec.Command("ip", "link", "del", iface).Run()
	ip("link", "add", iface, "type", "veth", "peer", "name", peer)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", iface).Run() })
	// Up with its peer down: operstate lowerlayerdown, no IFF_RUNNING.
	ip("link", "set", iface, "up")
	in.healthCondition(t, "NetworkingReady", corev1.ConditionFalse, "InterfaceNotRunning", time.Minute, iface)
	ip("link", "set", peer, "up")
	in.healthCondition(t, "NetworkingReady", corev1.ConditionTrue, "NetworkingIsReady", time.Minute)
}
