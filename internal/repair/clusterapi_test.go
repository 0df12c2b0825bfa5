package repair

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/nodewarden/nodewarden/test/cluster"
)

// machineV1beta2 is the version Cluster API's controllers read Machines in
// (its storage version since v1.11).
var machineV1beta2 = schema.GroupVersionKind{Group: "cluster.x-k8s.io", Version: "v1beta2", Kind: "Machine"}

// capiCRDs is where hack/k8s-bins.sh puts Cluster API's CRDs, copied from
// its module at the version it pins.
func capiCRDs(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a control plane; skipped with -short")
	}
	dir := filepath.Join(cluster.BinDir(), "capi-crds")
	if _, err := os.Stat(filepath.Join(dir, "cluster.x-k8s.io_machines.yaml")); err != nil {
		t.Fatalf("Cluster API's CRDs are not in %s: run `make k8s-bins` (or hack/k8s-bins.sh capi-crds) first", dir)
	}
	return dir
}

// TestClusterAPI runs ClusterAPI against an API server with Cluster API's
// own CRDs, and reads the Machine back as Cluster API's MachineHealthCheck
// controller does: the remediate-machine annotation is present.
func TestClusterAPI(t *testing.T) {
	c := cluster.StartWith(t, cluster.Options{CRDDirectories: []string{
		filepath.Join(cluster.RepoRoot(), "config", "crd", "bases"),
		capiCRDs(t),
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ns = "capi-system-test"
	if _, err := c.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createMachine(ctx, t, c.Client, ns, "worker-a", "node-a")
	createMachine(ctx, t, c.Client, ns, "worker-b", "node-b")
	createMachine(ctx, t, c.Client, ns, "worker-new", "") // not linked to a Node yet

	capiNode := func(name, machine, namespace string) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{}}}
		if machine != "" {
			n.Annotations[MachineAnnotation] = machine
		}
		if namespace != "" {
			n.Annotations[ClusterNamespaceAnnotation] = namespace
		}
		return n
	}
	for _, tc := range []struct {
		name string
		node *corev1.Node
		// wantErr lists what the error must say; nil: success.
		wantErr []string
		// marked are the Machines that must carry the annotation after it.
		marked []string
	}{{
		name:    "no Cluster API annotations",
		node:    capiNode("plain", "", ""),
		wantErr: []string{"node plain has no Cluster API Machine", MachineAnnotation, ClusterNamespaceAnnotation},
	}, {
		name:    "machine annotation without namespace",
		node:    capiNode("half", "worker-a", ""),
		wantErr: []string{ClusterNamespaceAnnotation},
	}, {
		name:    "machine missing",
		node:    capiNode("node-x", "worker-x", ns),
		wantErr: []string{"node node-x names Machine " + ns + "/worker-x, which does not exist"},
	}, {
		name:    "machine of another node",
		node:    capiNode("node-c", "worker-b", ns),
		wantErr: []string{"Machine " + ns + "/worker-b belongs to node node-b (status.nodeRef), not to node node-c"},
	}, {
		name:    "machine without a node yet",
		node:    capiNode("node-d", "worker-new", ns),
		wantErr: []string{"Machine " + ns + "/worker-new has no Node yet"},
	}, {
		name:   "marks the node's machine",
		node:   capiNode("node-a", "worker-a", ns),
		marked: []string{"worker-a"},
	}, {
		name:   "again: already marked",
		node:   capiNode("node-a", "worker-a", ns),
		marked: []string{"worker-a"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			err := ClusterAPI(ctx, c.Client, tc.node)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("ClusterAPI: %v, want success", err)
			case tc.wantErr != nil && err == nil:
				t.Fatal("ClusterAPI succeeded, want an error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ClusterAPI: %q does not say %q", err, w)
				}
			}
			for _, m := range []string{"worker-a", "worker-b", "worker-new"} {
				machine := &unstructured.Unstructured{}
				machine.SetGroupVersionKind(machineV1beta2)
				if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: m}, machine); err != nil {
					t.Fatal(err)
				}
				// Cluster API tests the key's presence only
				// (util/annotations.HasRemediateMachine).
				value, has := machine.GetAnnotations()[RemediateMachineAnnotation]
				want := slices.Contains(tc.marked, m)
				if has != want || has && value != "" {
					t.Errorf("Machine %s: %s present %v (value %q), want present %v with value \"\"", m, RemediateMachineAnnotation, has, value, want)
				}
			}
		})
	}
	t.Run("Cluster API updates the Machine in between", func(t *testing.T) { testConflictRetried(ctx, t, c, ns) })
}

// testConflictRetried: Cluster API updates a Machine often (its status);
// one updated between ClusterAPI's check and its patch fails the patch's
// resourceVersion precondition, and is checked and patched again.
func testConflictRetried(ctx context.Context, t *testing.T, c *cluster.Cluster, ns string) {
	createMachine(ctx, t, c.Client, ns, "busy", "node-busy")
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-busy", Annotations: map[string]string{
		MachineAnnotation: "busy", ClusterNamespaceAnnotation: ns,
	}}}
	hooked := &beforePatch{Client: c.Client, hook: func() {
		// What Cluster API's machine controller does all the time.
		m := &unstructured.Unstructured{}
		m.SetGroupVersionKind(machineV1beta2)
		if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "busy"}, m); err != nil {
			t.Error(err)
			return
		}
		_ = unstructured.SetNestedField(m.Object, "Provisioned", "status", "phase")
		if err := c.Client.Status().Update(ctx, m); err != nil {
			t.Error(err)
		}
	}}
	if err := ClusterAPI(ctx, hooked, node); err != nil {
		t.Fatalf("ClusterAPI: %v, want success after a retry", err)
	}
	if hooked.patches != 2 {
		t.Errorf("%d patches sent, want 2: a conflict, then the retry", hooked.patches)
	}
	m := &unstructured.Unstructured{}
	m.SetGroupVersionKind(machineV1beta2)
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "busy"}, m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.GetAnnotations()[RemediateMachineAnnotation]; !ok {
		t.Errorf("Machine busy: no %s annotation", RemediateMachineAnnotation)
	}
}

// beforePatch runs hook once, before the first patch reaches the API server.
type beforePatch struct {
	client.Client
	hook    func()
	patches int
}

func (b *beforePatch) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	b.patches++
	if b.patches == 1 {
		b.hook()
	}
	return b.Client.Patch(ctx, obj, patch, opts...)
}

// TestClusterAPINotInstalled: without Cluster API's CRDs the step fails
// saying so.
func TestClusterAPINotInstalled(t *testing.T) {
	c := cluster.Start(t)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", Annotations: map[string]string{
		MachineAnnotation: "m", ClusterNamespaceAnnotation: "default",
	}}}
	err := ClusterAPI(context.Background(), c.Client, node)
	if err == nil || !strings.Contains(err.Error(), "is Cluster API installed?") {
		t.Fatalf("ClusterAPI: %v, want an error saying Cluster API is not installed", err)
	}
}

// createMachine creates a Machine with what the v1beta2 schema requires,
// linked to node (status.nodeRef) as Cluster API's machine controller links
// it, unless node is "".
func createMachine(ctx context.Context, t *testing.T, c client.Client, ns, name, node string) {
	t.Helper()
	m := &unstructured.Unstructured{Object: map[string]any{
		"metadata": map[string]any{
			"name":      name,
			"namespace": ns,
			"labels":    map[string]any{"cluster.x-k8s.io/cluster-name": "test"},
		},
		"spec": map[string]any{
			"clusterName": "test",
			"bootstrap":   map[string]any{"dataSecretName": name + "-bootstrap"},
			"infrastructureRef": map[string]any{
				"apiGroup": "infrastructure.cluster.x-k8s.io",
				"kind":     "DockerMachine",
				"name":     name,
			},
		},
	}}
	m.SetGroupVersionKind(machineV1beta2)
	if err := c.Create(ctx, m); err != nil {
		t.Fatalf("create Machine %s: %v", name, err)
	}
	if node == "" {
		return
	}
	if err := unstructured.SetNestedField(m.Object, node, "status", "nodeRef", "name"); err != nil {
		t.Fatal(err)
	}
	if err := c.Status().Update(ctx, m); err != nil {
		t.Fatalf("set status.nodeRef of Machine %s: %v", name, err)
	}
}
