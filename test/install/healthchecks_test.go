package install

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewarden/nodewarden/internal/agent/healthcheck"
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
// containerd. NetworkingReady names the host's interfaces, as this test
// process (in the host's network namespace) sees them through the same
// detector: the pod reads the host's /sys, not its own network namespace.
//
// (Adding an interface on the host to watch NetworkingReady turn False
// breaks the pods' established connections on the machines this runs on,
// the agent's to the API server included; the detector's faults are
// tested on fixture trees, and on this machine's /sys in nodehealth.)
func (in install) healthChecksReport(t *testing.T) {
	t.Helper()
	in.healthCondition(t, "KernelReady", corev1.ConditionTrue, "KernelIsReady", time.Minute, "tasks", "threads-max")
	in.healthCondition(t, "StorageReady", corev1.ConditionTrue, "StorageIsReady", time.Minute, "/run/nodewarden/kubelet-fs", "/var/log")
	in.healthCondition(t, "ContainerRuntimeReady", corev1.ConditionTrue, "ContainerRuntimeIsReady", time.Minute, in.c.RealNode.CRIEndpoint())
	host := healthcheck.NetworkingReady(os.DirFS("/"))
	var among string
	i := strings.Index(host.Message, "among ")
	ok := i >= 0
	if ok {
		among, _, ok = strings.Cut(host.Message[i:], ")")
	}
	if host.Status != corev1.ConditionTrue || !ok {
		t.Fatalf("this machine's own NetworkingReady is %s/%s (%s): nothing to compare the agent's with", host.Status, host.Reason, host.Message)
	}
	in.healthCondition(t, "NetworkingReady", corev1.ConditionTrue, "NetworkingIsReady", time.Minute, among+")")
}
