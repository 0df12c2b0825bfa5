package repair

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Cluster API's names, as sigs.k8s.io/cluster-api v1.13 defines them in
// api/core/v1beta2/common_types.go (and v1beta1 alike). Cluster API's
// machine controller sets the two Node annotations once it has linked the
// Machine to its Node (status.nodeRef).
const (
	// MachineAnnotation on a Node names its Machine (clusterv1.MachineAnnotation).
	MachineAnnotation = "cluster.x-k8s.io/machine"
	// ClusterNamespaceAnnotation on a Node is the namespace of its Cluster,
	// and so of its Machine (clusterv1.ClusterNamespaceAnnotation).
	ClusterNamespaceAnnotation = "cluster.x-k8s.io/cluster-namespace"
	// RemediateMachineAnnotation on a Machine asks for its remediation
	// (clusterv1.RemediateMachineAnnotation; its value is not read). The
	// MachineHealthCheck controller marks a Machine that has it unhealthy
	// before any other check (healthCheckTarget.needsRemediation in
	// internal/controllers/machinehealthcheck/machinehealthcheck_targets.go:
	// MachineHealthCheckSucceeded=False, reason HasRemediateMachineAnnotation),
	// and then remediates it like any unhealthy Machine: its owner
	// (MachineSet, KubeadmControlPlane) replaces it, or the
	// MachineHealthCheck's external remediation template does, within the
	// MachineHealthCheck's own limits. A Machine no MachineHealthCheck
	// selects is not remediated.
	RemediateMachineAnnotation = "cluster.x-k8s.io/remediate-machine"
)

// MachineKind is Cluster API's Machine; its version is the one the API
// server serves (v1beta1 and v1beta2 in Cluster API v1.11 and later; the
// patch below is the same in both).
var MachineKind = schema.GroupKind{Group: "cluster.x-k8s.io", Kind: "Machine"}

// MachineOf is the Machine Cluster API created node for, from the node's
// annotations.
func MachineOf(node *corev1.Node) (types.NamespacedName, error) {
	name, namespace := node.Annotations[MachineAnnotation], node.Annotations[ClusterNamespaceAnnotation]
	if name == "" || namespace == "" {
		return types.NamespacedName{}, fmt.Errorf("node %s has no Cluster API Machine: annotations %s and %s must both be set (Cluster API sets them on the Nodes of its Machines)",
			node.Name, MachineAnnotation, ClusterNamespaceAnnotation)
	}
	return types.NamespacedName{Namespace: namespace, Name: name}, nil
}

// ClusterAPI asks Cluster API to remediate node's Machine: it sets the
// Machine's cluster.x-k8s.io/remediate-machine annotation (see
// RemediateMachineAnnotation for what Cluster API does with it).
//
// c is a controller-runtime client because the Machine is a custom
// resource: its RESTMapper finds the version the API server serves (and
// notices Cluster API installed after the controller started), and the
// unstructured patch needs none of Cluster API's Go types.
//
// The Machine must be the node's: a Machine whose status.nodeRef names
// another Node is refused, so that stale or wrong annotations never get
// another machine replaced. The patch carries the resourceVersion that was
// checked, retried when Cluster API updated the Machine in between.
func ClusterAPI(ctx context.Context, c client.Client, node *corev1.Node) error {
	key, err := MachineOf(node)
	if err != nil {
		return err
	}
	mapping, err := c.RESTMapper().RESTMapping(MachineKind)
	if meta.IsNoMatchError(err) {
		return fmt.Errorf("the API server does not serve %s: is Cluster API installed?", MachineKind)
	}
	if err != nil {
		return fmt.Errorf("find the served version of %s: %w", MachineKind, err)
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		machine := &unstructured.Unstructured{}
		machine.SetGroupVersionKind(mapping.GroupVersionKind)
		if err := c.Get(ctx, key, machine); err != nil {
			return err
		}
		nodeRef, _, _ := unstructured.NestedString(machine.Object, "status", "nodeRef", "name")
		if nodeRef != node.Name {
			return &wrongMachineError{machine: key, nodeRef: nodeRef, node: node.Name}
		}
		if _, ok := machine.GetAnnotations()[RemediateMachineAnnotation]; ok {
			return nil // marked already: a repeated step
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
			"resourceVersion": machine.GetResourceVersion(),
			"annotations":     map[string]string{RemediateMachineAnnotation: ""},
		}})
		if err != nil {
			return err
		}
		return c.Patch(ctx, machine, client.RawPatch(types.MergePatchType, patch))
	})
	var wrong *wrongMachineError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &wrong):
		return err
	case apierrors.IsNotFound(err):
		return fmt.Errorf("node %s names Machine %s, which does not exist", node.Name, key)
	}
	return fmt.Errorf("mark Machine %s for remediation: %w", key, err)
}

type wrongMachineError struct {
	machine types.NamespacedName
	nodeRef string
	node    string
}

func (e *wrongMachineError) Error() string {
	if e.nodeRef == "" {
		return fmt.Sprintf("Machine %s has no Node yet (status.nodeRef), though node %s names it: not remediating it", e.machine, e.node)
	}
	return fmt.Sprintf("Machine %s belongs to node %s (status.nodeRef), not to node %s: not remediating it", e.machine, e.nodeRef, e.node)
}
