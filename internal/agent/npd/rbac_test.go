package npd

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/nodewarden/nodewarden/internal/agent/condition"
	"github.com/nodewarden/nodewarden/internal/agent/lease"
	"github.com/nodewarden/nodewarden/internal/agent/nodeevent"
	"github.com/nodewarden/nodewarden/internal/agent/source"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// With NPD's own ServiceAccount and role (system:node-problem-detector) plus
// the list/watch rule docs/migrate-npd.md adds, host_event.json's
// condition and Events reach the Node.
// TestNPDServiceAccountRBACIsEnough drops the agent into NPD's own
// ServiceAccount with only NPD's ClusterRole (get nodes, patch nodes/status,
// events): the writer falls back to reading its Node on a timer, the Lease
// heartbeat gives up quietly, and conditions and Events still arrive.
func TestNPDServiceAccountRBACIsEnough(t *testing.T) {
	c := cluster.Start(t)
	ctx := t.Context()
	cs := c.Clientset
	const ns, sa, node = "kube-system", "node-problem-detector", "npd-rbac-node"
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "node-problem-detector"}, Subjects: subject,
		RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:node-problem-detector"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(c.Config)
	cfg.BearerToken = tok.Status.Token
	npdClient := cluster.AgentClient(t, cfg)

	opts := testOptions(t)
	hostLog := filepath.Join(t.TempDir(), "host_event.log")
	appendFile(t, hostLog, hostEventLine(time.Now(), hostEventScheduled))
	srcs, err := NewSources([]string{fixture(t, "host_event.json", map[string]any{"logPath": hostLog})}, opts)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	log := testr.New(t)
	sink := source.APISink{Writer: condition.NewWriter(npdClient, node, log, nil), Recorder: nodeevent.NewRecorder(npdClient, node, log, nil)}
	var wg sync.WaitGroup
	wg.Go(func() { sink.Writer.Run(runCtx) })
	wg.Go(func() { sink.Recorder.Run(runCtx) })
	wg.Go(func() { srcs[0].Run(runCtx, sink) })
	heartbeatDone := make(chan struct{})
	wg.Go(func() {
		defer close(heartbeatDone)
		(&lease.Heartbeat{Client: npdClient, Namespace: ns, Node: node, Interval: time.Minute, Duration: 4 * time.Minute, Log: log}).Run(runCtx)
	})
	t.Cleanup(func() { cancel(); wg.Wait() })

	cluster.Eventually(t, 20*time.Second, func() error {
		n, err := cs.CoreV1().Nodes().Get(context.Background(), node, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, nc := range n.Status.Conditions {
			if nc.Type == "HostEventRebootAfter48" && nc.Status == corev1.ConditionTrue && nc.Reason == "HostEventRebootAfter48Permanent" {
				// Only the agent's Events about this node count.
				evs, err := cs.CoreV1().Events(nodeevent.Namespace).List(context.Background(), metav1.ListOptions{
					FieldSelector: "involvedObject.name=" + node + ",source=" + nodeevent.Component,
				})
				if err != nil {
					return err
				}
				if len(evs.Items) != 2 {
					var reasons []string
					for _, e := range evs.Items {
						reasons = append(reasons, e.Reason+"/"+e.Source.Component+"/"+e.InvolvedObject.Name)
					}
					return fmt.Errorf("%d events, want 2: %v", len(evs.Items), reasons)
				}
				return nil
			}
		}
		return fmt.Errorf("conditions %+v", n.Status.Conditions)
	})
	select {
	case <-heartbeatDone:
	case <-time.After(10 * time.Second):
		t.Error("the heartbeat kept trying a Lease that NPD's RBAC forbids")
	}
}
