package install

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/nodewarden/nodewarden/internal/repair"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// TestRepairRBAC: with config/default's RBAC the controller's repair steps
// DeleteNode and ClusterAPI are refused by RBAC; with the optional grants of
// config/rbac/optional (docs/security.md) they work, and need nothing more —
// run as the controller's ServiceAccount against an API server that serves
// Cluster API's real CRDs.
func TestRepairRBAC(t *testing.T) {
	t.Parallel()
	rendered := kustomizeBuild(t, "config/default") // skips with -short
	capiCRDs := filepath.Join(cluster.BinDir(), "capi-crds")
	if _, err := os.Stat(filepath.Join(capiCRDs, "cluster.x-k8s.io_machines.yaml")); err != nil {
		t.Fatalf("Cluster API's CRDs are not in %s: run `make k8s-bins` first", capiCRDs)
	}
	c := cluster.StartWith(t, cluster.Options{CRDDirectories: []string{
		filepath.Join(cluster.RepoRoot(), "config", "crd", "bases"), capiCRDs,
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Only the RBAC of config/default: no kubelet runs its pods here.
	var rbac []byte
	for _, o := range decode(t, rendered) {
		switch o.GetKind() {
		case "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
			y, err := yaml.Marshal(o.Object)
			if err != nil {
				t.Fatal(err)
			}
			rbac = append(append(rbac, "---\n"...), y...)
		}
	}
	if _, err := kubectlApply(t, c, rbac); err != nil {
		t.Fatalf("apply config/default's RBAC: %v", err)
	}

	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + namespace + ":nodewarden-controller",
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}
	clientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	crClient, err := client.New(cfg, client.Options{Scheme: cluster.Scheme()})
	if err != nil {
		t.Fatal(err)
	}

	createNode(t, c, "doomed")
	doomed, err := c.Clientset.CoreV1().Nodes().Get(ctx, "doomed", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	capiNode := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "machine-node", Annotations: map[string]string{
		repair.MachineAnnotation: "worker-0", repair.ClusterNamespaceAnnotation: "default",
	}}}
	machine := createLinkedMachine(ctx, t, c, "default", "worker-0", capiNode.Name)

	deniedByRBAC(t, "DeleteNode without the optional grant", repair.DeleteNode(ctx, clientset, doomed))
	deniedByRBAC(t, "ClusterAPI without the optional grant", repair.ClusterAPI(ctx, crClient, capiNode))

	for _, f := range []string{"controller_repair_delete_nodes.yaml", "controller_repair_clusterapi.yaml"} {
		grant, err := os.ReadFile(filepath.Join(cluster.RepoRoot(), "config/rbac/optional", f))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kubectlApply(t, c, grant); err != nil {
			t.Fatalf("apply config/rbac/optional/%s: %v", f, err)
		}
	}
	// The authorizer sees new bindings through its informers, soon after.
	cluster.Eventually(t, 30*time.Second, func() error { return repair.DeleteNode(ctx, clientset, doomed) })
	if _, err := c.Clientset.CoreV1().Nodes().Get(ctx, "doomed", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("node doomed after DeleteNode: %v, want NotFound", err)
	}
	cluster.Eventually(t, 30*time.Second, func() error { return repair.ClusterAPI(ctx, crClient, capiNode) })
	if err := c.Client.Get(ctx, client.ObjectKeyFromObject(machine), machine); err != nil {
		t.Fatal(err)
	}
	if _, ok := machine.GetAnnotations()[repair.RemediateMachineAnnotation]; !ok {
		t.Errorf("Machine default/worker-0 has no %s annotation", repair.RemediateMachineAnnotation)
	}
}

// createLinkedMachine creates a Cluster API Machine (v1beta2, what its
// schema requires) linked to node as Cluster API's machine controller links
// it (status.nodeRef).
func createLinkedMachine(ctx context.Context, t *testing.T, c *cluster.Cluster, ns, name, node string) *unstructured.Unstructured {
	t.Helper()
	m := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"clusterName":       "test",
			"bootstrap":         map[string]any{"dataSecretName": name + "-bootstrap"},
			"infrastructureRef": map[string]any{"apiGroup": "infrastructure.cluster.x-k8s.io", "kind": "DockerMachine", "name": name},
		},
	}}
	m.SetGroupVersionKind(schema.GroupVersionKind{Group: "cluster.x-k8s.io", Version: "v1beta2", Kind: "Machine"})
	if err := c.Client.Create(ctx, m); err != nil {
		t.Fatalf("create Machine %s: %v", name, err)
	}
	if err := unstructured.SetNestedField(m.Object, node, "status", "nodeRef", "name"); err != nil {
		t.Fatal(err)
	}
	if err := c.Client.Status().Update(ctx, m); err != nil {
		t.Fatalf("set status.nodeRef of Machine %s: %v", name, err)
	}
	return m
}
