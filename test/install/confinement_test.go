package install

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/nodewarden/nodewarden/internal/agent/condition"
	"github.com/nodewarden/nodewarden/internal/agent/lease"
	"github.com/nodewarden/nodewarden/internal/agent/nodeevent"
	"github.com/nodewarden/nodewarden/test/cluster"
)

var apiextensionsGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

const nodeNameExtra = "authentication.kubernetes.io/node-name"

// createNode makes a Node as kubelet would have it: Ready, with capacity and
// an address, so that the tests can try to change each of them.
func createNode(t *testing.T, c *cluster.Cluster, name string) {
	t.Helper()
	ctx := t.Context()
	n, err := c.Clientset.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	capacity := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("110")}
	n.Status = corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Addresses:   []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}, {Type: corev1.NodeHostName, Address: name}},
		Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now},
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", LastHeartbeatTime: now, LastTransitionTime: now},
		},
	}
	if _, err := c.Clientset.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// agentClient returns a client holding what the agent on node holds in its
// pod: a ServiceAccount token bound to a pod scheduled to node.
func agentClient(t *testing.T, c *cluster.Cluster, ns, sa, node string) (kubernetes.Interface, string) {
	t.Helper()
	ctx := t.Context()
	pod, err := c.Clientset.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: sa + "-" + node, Namespace: ns},
		Spec: corev1.PodSpec{
			NodeName:           node,
			ServiceAccountName: sa,
			Containers:         []corev1.Container{{Name: "agent", Image: "ghcr.io/nodewarden/nodewarden:test"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := c.Clientset.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: ptr.To[int64](3600),
			BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tokenClient(t, c, tr.Status.Token), tr.Status.Token
}

// tokenConfig is a client configuration that authenticates with token only.
func tokenConfig(c *cluster.Cluster, token string) *rest.Config {
	cfg := rest.AnonymousClientConfig(c.Config)
	cfg.BearerToken = token
	// Fail fast: a denied request is the expected answer, not worth retrying.
	cfg.QPS, cfg.Burst = 100, 200
	return cfg
}

func tokenClient(t *testing.T, c *cluster.Cluster, token string) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(tokenConfig(c, token))
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// deniedByPolicy: the request passed RBAC and was refused by the admission policy.
func deniedByPolicy(t *testing.T, what string, err error, policy, msg string) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s: allowed, want denied by ValidatingAdmissionPolicy %s", what, policy)
	case !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "ValidatingAdmissionPolicy '"+policy+"'"):
		t.Errorf("%s: %v, want 403 from ValidatingAdmissionPolicy %s", what, err, policy)
	case !strings.Contains(err.Error(), msg):
		t.Errorf("%s: denied with %q, want a message containing %q", what, err, msg)
	}
}

// deniedByRBAC: the request never got past authorization.
func deniedByRBAC(t *testing.T, what string, err error) {
	t.Helper()
	if !apierrors.IsForbidden(err) || strings.Contains(err.Error(), "ValidatingAdmissionPolicy") {
		t.Errorf("%s: %v, want 403 from RBAC", what, err)
	}
}

func allowed(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v, want allowed", what, err)
	}
}

// checkAgentConfinement is SPEC §4 and docs/security.md for the agent: with
// the token of its pod on node A, the agent keeps its own conditions on A,
// its Lease and Events about A — and nothing else.
//
// The policies are named after the agent's ServiceAccount: <sa>-own-node,
// <sa>-own-lease, <sa>-own-events.
func checkAgentConfinement(t *testing.T, c *cluster.Cluster, ns, sa string) {
	nodePolicy, leasePolicy, eventPolicy := sa+"-own-node", sa+"-own-lease", sa+"-own-events"
	ctx := t.Context()
	const nodeA, nodeB = "node-a", "node-b"
	createNode(t, c, nodeA)
	createNode(t, c, nodeB)
	agent, token := agentClient(t, c, ns, sa, nodeA)
	patch := func(node, body string) error {
		_, err := agent.CoreV1().Nodes().PatchStatus(ctx, node, []byte(body))
		return err
	}

	// The API server says who the agent is, and on which node: the extra
	// the policy relies on (`kubectl auth whoami` shows the same).
	review, err := agent.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	user := review.Status.UserInfo
	if want := "system:serviceaccount:" + ns + ":" + sa; user.Username != want {
		t.Errorf("whoami: username %q, want %q", user.Username, want)
	}
	if got := user.Extra[nodeNameExtra]; len(got) != 1 || got[0] != nodeA {
		t.Fatalf("whoami: extra %s = %v, want [%s]; extra: %v", nodeNameExtra, got, nodeA, user.Extra)
	}
	ca := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, c.Config.CAData, 0o600); err != nil {
		t.Fatal(err)
	}
	whoami := string(run(t, nil, "kubectl", "auth", "whoami", "--kubeconfig=/dev/null",
		"--server="+c.Config.Host, "--certificate-authority="+ca, "--token="+token))
	if !regexp.MustCompile(`Extra: ` + regexp.QuoteMeta(nodeNameExtra) + `\s+\[` + nodeA + `\]`).MatchString(whoami) {
		t.Errorf("kubectl auth whoami with the agent's token does not show %s [%s]:\n%s", nodeNameExtra, nodeA, whoami)
	}

	// The agent's own patch (internal/agent/condition builds it) of node B:
	// RBAC allows it, the policy must not. Policies take effect a moment
	// after they are created; wait for this one.
	ownCondition := func(status corev1.ConditionStatus, reason string) string {
		body, _ := condition.Patch(nil, []condition.Desired{{
			Type: "HostEventRebootAfter48", Status: status, Reason: reason,
			Message: "test: " + reason, Since: time.Now(),
		}})
		return string(body)
	}
	leaseB := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: lease.Name(nodeB), Namespace: ns}}
	event := func(ns, node string) error {
		_, err := agent.CoreV1().Events(ns).Create(ctx, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{GenerateName: "install-test-", Namespace: ns},
			InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: node, UID: types.UID(node), APIVersion: "v1"},
			Type:           corev1.EventTypeWarning, Reason: "Test", Message: "test",
			Source: corev1.EventSource{Component: nodeevent.Component, Host: nodeA},
		}, metav1.CreateOptions{})
		return err
	}
	cluster.Eventually(t, 30*time.Second, func() error {
		if err := patch(nodeB, ownCondition(corev1.ConditionFalse, "NoHostEvent")); err == nil {
			return fmt.Errorf("the admission policies have not taken effect: patching node B's status was allowed")
		}
		if _, err := agent.CoordinationV1().Leases(ns).Create(ctx, leaseB, metav1.CreateOptions{}); err == nil || apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("the admission policies have not taken effect: creating node B's Lease was allowed")
		}
		if err := event("default", nodeB); err == nil {
			return fmt.Errorf("the admission policies have not taken effect: recording an Event about node B was allowed")
		}
		return nil
	})
	deniedByPolicy(t, "the agent on A patches a condition of node B", patch(nodeB, ownCondition(corev1.ConditionFalse, "NoHostEvent")),
		nodePolicy, "the nodewarden agent on node "+nodeA+" may not change node "+nodeB)

	// What the agent does: the real condition writer, heartbeat and event
	// recorder, with the agent's token.
	agentAPI := cluster.AgentClient(t, tokenConfig(c, token))
	writer := condition.NewWriter(agentAPI, nodeA, logr.Discard(), nil)
	writer.Set(condition.Want{Type: "HostEventRebootAfter48", Status: corev1.ConditionTrue, Reason: "SystemMaintenanceRebootScheduled",
		Message: "SystemMaintenance.Reboot is Scheduled, not before 2030-01-10T02:00:00Z"})
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go writer.Run(runCtx)
	recorder := nodeevent.NewRecorder(agentAPI, nodeA, logr.Discard(), nil)
	recorder.Record(nodeevent.Event{Key: "install-test", Type: corev1.EventTypeWarning, Reason: "InstanceFailureReboot", Message: "test"})
	go recorder.Run(runCtx)
	hb := &lease.Heartbeat{Client: agentAPI, Namespace: ns, Node: nodeA, Interval: time.Hour, Duration: 4 * time.Hour, Log: logr.Discard()}
	go hb.Run(runCtx)
	cluster.Eventually(t, 30*time.Second, func() error {
		n, err := c.Clientset.CoreV1().Nodes().Get(ctx, nodeA, metav1.GetOptions{})
		if err != nil {
			return err
		}
		found := false
		for _, cond := range n.Status.Conditions {
			if cond.Type == "HostEventRebootAfter48" && cond.Status == corev1.ConditionTrue {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("node %s: the agent's writer has not set HostEventRebootAfter48=True: %v", nodeA, n.Status.Conditions)
		}
		if _, err := c.Clientset.CoordinationV1().Leases(ns).Get(ctx, lease.Name(nodeA), metav1.GetOptions{}); err != nil {
			return fmt.Errorf("the agent's heartbeat: %w", err)
		}
		if _, err := c.Clientset.CoreV1().Events(nodeevent.Namespace).Get(ctx, nodeevent.Name(nodeA, "install-test"), metav1.GetOptions{}); err != nil {
			return fmt.Errorf("the agent's event recorder: %w", err)
		}
		return nil
	})
	stop()
	allowed(t, "the agent on A patches its own condition on A", patch(nodeA, ownCondition(corev1.ConditionFalse, "SystemMaintenanceRebootExecuted")))

	// kubelet's conditions, other status fields, metadata: refused.
	kubeletMsg := "may not change kubelet's conditions"
	deniedByPolicy(t, "the agent sets Ready=False on its node",
		patch(nodeA, `{"status":{"conditions":[{"type":"Ready","status":"False","reason":"Evil","message":"x"}]}}`), nodePolicy, kubeletMsg)
	deniedByPolicy(t, "the agent refreshes Ready's heartbeat",
		patch(nodeA, fmt.Sprintf(`{"status":{"conditions":[{"type":"Ready","lastHeartbeatTime":%q}]}}`, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))), nodePolicy, kubeletMsg)
	deniedByPolicy(t, "the agent adds NetworkUnavailable",
		patch(nodeA, `{"status":{"conditions":[{"type":"NetworkUnavailable","status":"True","reason":"Evil"}]}}`), nodePolicy, kubeletMsg)
	deniedByPolicy(t, "the agent removes Ready",
		patch(nodeA, `{"status":{"conditions":[{"type":"Ready","$patch":"delete"}]}}`), nodePolicy, kubeletMsg)
	deniedByPolicy(t, "the agent changes its node's capacity",
		patch(nodeA, `{"status":{"capacity":{"cpu":"64"}}}`), nodePolicy, "may change only status.conditions")
	deniedByPolicy(t, "the agent changes its node's addresses",
		patch(nodeA, `{"status":{"addresses":[{"type":"InternalIP","address":"10.9.9.9"}]}}`), nodePolicy, "may change only status.conditions")
	deniedByPolicy(t, "the agent adds an image to its node's status",
		patch(nodeA, `{"status":{"images":[{"names":["evil:latest"],"sizeBytes":1}]}}`), nodePolicy, "may change only status.conditions")
	deniedByPolicy(t, "the agent labels its node through nodes/status",
		patch(nodeA, `{"metadata":{"labels":{"node-role.kubernetes.io/control-plane":""}}}`), nodePolicy, "may not change a Node's metadata")
	deniedByPolicy(t, "the agent annotates its node through nodes/status",
		patch(nodeA, `{"metadata":{"annotations":{"nodewarden.io/state":"Drained"}}}`), nodePolicy, "may not change a Node's metadata")

	// The Node itself (not its status): RBAC refuses before admission.
	_, err = agent.CoreV1().Nodes().Patch(ctx, nodeA, types.StrategicMergePatchType, []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{})
	deniedByRBAC(t, "the agent cordons its node", err)
	deniedByRBAC(t, "the agent deletes its node", agent.CoreV1().Nodes().Delete(ctx, nodeA, metav1.DeleteOptions{}))
	_, err = agent.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-evil"}}, metav1.CreateOptions{})
	deniedByRBAC(t, "the agent creates a node", err)

	// Leases: only its own, only in its namespace.
	_, err = agent.CoordinationV1().Leases(ns).Create(ctx, leaseB, metav1.CreateOptions{})
	deniedByPolicy(t, "the agent on A creates node B's Lease", err, leasePolicy, "may only write its own Lease")
	_, err = agent.CoordinationV1().Leases("default").Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: lease.Name(nodeA), Namespace: "default"},
	}, metav1.CreateOptions{})
	deniedByRBAC(t, "the agent creates a Lease outside its namespace", err)
	deniedByRBAC(t, "the agent deletes its Lease", agent.CoordinationV1().Leases(ns).Delete(ctx, lease.Name(nodeA), metav1.DeleteOptions{}))

	// Events: only about its own node, only in namespace default.
	deniedByPolicy(t, "the agent on A records an Event about node B", event("default", nodeB), eventPolicy, "may only record Events about its own Node")
	deniedByRBAC(t, "the agent records an Event in its own namespace", event(ns, nodeA))

	// Reads beyond Nodes: none.
	_, err = agent.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	deniedByRBAC(t, "the agent lists Secrets", err)
	_, err = agent.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	deniedByRBAC(t, "the agent lists Pods", err)

	// A token of the agent's ServiceAccount that is not bound to a pod on a
	// node (a leaked long-lived token, say) cannot write Nodes at all.
	tr, err := c.Clientset.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	unbound := tokenClient(t, c, tr.Status.Token)
	_, err = unbound.CoreV1().Nodes().PatchStatus(ctx, nodeA, []byte(ownCondition(corev1.ConditionFalse, "NoHostEvent")))
	deniedByPolicy(t, "the agent's ServiceAccount without a pod-bound token patches node A", err, nodePolicy, "bound ServiceAccount token")

	// After all that, node A is as kubelet left it, but for the agent's condition.
	n, err := c.Clientset.CoreV1().Nodes().Get(ctx, nodeA, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Spec.Unschedulable || len(n.Status.Addresses) != 2 || n.Status.Capacity.Cpu().String() != "4" || len(n.Labels) != 1 {
		t.Errorf("node %s changed: unschedulable=%v addresses=%v capacity=%v labels=%v", nodeA, n.Spec.Unschedulable, n.Status.Addresses, n.Status.Capacity, n.Labels)
	}
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady && (cond.Status != corev1.ConditionTrue || cond.Reason != "KubeletReady") {
			t.Errorf("node %s: Ready changed: %+v", nodeA, cond)
		}
	}
}

// checkController: the controller's ServiceAccount drains through the
// Eviction API and cannot delete a pod.
func checkController(t *testing.T, c *cluster.Cluster, ns, sa string) {
	ctx := t.Context()
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + ns + ":" + sa,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}
	ctrl, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	const node = "node-c"
	createNode(t, c, node)
	mkPod := func(name string) *corev1.Pod {
		p, err := c.Clientset.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	victim := mkPod("victim")

	deniedByRBAC(t, "the controller deletes a pod", ctrl.CoreV1().Pods("default").Delete(ctx, victim.Name, metav1.DeleteOptions{}))
	deniedByRBAC(t, "the controller deletes pods by collection",
		ctrl.CoreV1().Pods("default").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}))
	list, err := ctrl.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + node})
	allowed(t, "the controller lists a node's pods", err)
	if err == nil && len(list.Items) != 1 {
		t.Errorf("the controller lists %d pods on %s, want 1", len(list.Items), node)
	}
	allowed(t, "the controller evicts a pod", ctrl.PolicyV1().Evictions("default").Evict(ctx, &policyv1.Eviction{
		ObjectMeta:    metav1.ObjectMeta{Name: victim.Name, Namespace: "default"},
		DeleteOptions: &metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(victim.UID))},
	}))
	p, err := c.Clientset.CoreV1().Pods("default").Get(ctx, victim.Name, metav1.GetOptions{})
	if err == nil && p.DeletionTimestamp == nil {
		t.Errorf("pod %s was evicted but is not terminating", victim.Name)
	}
	_, err = ctrl.CoreV1().Nodes().Patch(ctx, node, types.StrategicMergePatchType, []byte(`{"spec":{"unschedulable":true}}`), metav1.PatchOptions{})
	allowed(t, "the controller cordons a node", err)
	deniedByRBAC(t, "the controller deletes a node", ctrl.CoreV1().Nodes().Delete(ctx, node, metav1.DeleteOptions{}))
	_, err = ctrl.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	deniedByRBAC(t, "the controller lists Secrets", err)

	// The rest of its permissions, as the API server's authorizer sees them.
	for _, tc := range []struct {
		attrs authorizationv1.ResourceAttributes
		want  bool
	}{
		{authorizationv1.ResourceAttributes{Verb: "create", Group: "coordination.k8s.io", Resource: "leases", Namespace: ns}, true},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: ns, Name: "nodewarden-controller"}, true},
		{authorizationv1.ResourceAttributes{Verb: "create", Group: "coordination.k8s.io", Resource: "leases", Namespace: "kube-system"}, false},
		{authorizationv1.ResourceAttributes{Verb: "create", Group: "events.k8s.io", Resource: "events", Namespace: "default"}, true},
		{authorizationv1.ResourceAttributes{Verb: "watch", Group: "nodewarden.io", Resource: "remediationpolicies"}, true},
		{authorizationv1.ResourceAttributes{Verb: "patch", Group: "nodewarden.io", Resource: "remediationpolicies", Subresource: "status"}, true},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: "nodewarden.io", Resource: "remediationpolicies"}, false},
		{authorizationv1.ResourceAttributes{Verb: "create", Group: "nodewarden.io", Resource: "remediationrecords"}, true},
		{authorizationv1.ResourceAttributes{Verb: "update", Group: "nodewarden.io", Resource: "remediationrecords"}, true},
		{authorizationv1.ResourceAttributes{Verb: "delete", Group: "nodewarden.io", Resource: "remediationrecords"}, true},
		{authorizationv1.ResourceAttributes{Verb: "watch", Resource: "pods"}, false},
		{authorizationv1.ResourceAttributes{Verb: "update", Resource: "nodes"}, false},
		{authorizationv1.ResourceAttributes{Verb: "patch", Resource: "nodes", Subresource: "status"}, false},
		// The notifications Secret, by name only (docs/security.md).
		{authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: ns, Name: "nodewarden-notifications"}, true},
		{authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: ns, Name: "other"}, false},
		{authorizationv1.ResourceAttributes{Verb: "watch", Resource: "secrets", Namespace: ns, Name: "nodewarden-notifications"}, false},
		{authorizationv1.ResourceAttributes{Verb: "get", Resource: "secrets", Namespace: "default", Name: "nodewarden-notifications"}, false},
	} {
		sar, err := c.Clientset.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
			Spec: authorizationv1.SubjectAccessReviewSpec{User: cfg.Impersonate.UserName, Groups: cfg.Impersonate.Groups, ResourceAttributes: &tc.attrs},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed != tc.want {
			t.Errorf("controller may %s %s.%s/%s in %q: %v, want %v", tc.attrs.Verb, tc.attrs.Resource, tc.attrs.Group, tc.attrs.Subresource, tc.attrs.Namespace, sar.Status.Allowed, tc.want)
		}
	}
}
