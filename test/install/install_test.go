package install

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/nodewarden/nodewarden/test/cluster"
)

// startBare starts a level-1 control plane without nodewarden's CRD: the
// installs must bring it themselves, as they do on a real cluster.
func startBare(t *testing.T) *cluster.Cluster {
	t.Helper()
	return cluster.StartWith(t, cluster.Options{CRDDirectories: []string{}})
}

// kubectlApply applies manifests the way docs/install.md says, with
// server-side apply.
// It returns kubectl's stderr (warnings).
func kubectlApply(t *testing.T, c *cluster.Cluster, manifests []byte) ([]byte, error) {
	t.Helper()
	_, stderr, err := runCmd(t, manifests, "kubectl", "--kubeconfig", c.Kubeconfig,
		"apply", "--server-side", "--field-manager=nodewarden-install", "-f", "-")
	return stderr, err
}

// requireObjects checks that every rendered object exists in the cluster.
func requireObjects(t *testing.T, c *cluster.Cluster, objs []*unstructured.Unstructured) {
	t.Helper()
	ctx := t.Context()
	dc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Errorf("%s: %v", keyOf(o), err)
			continue
		}
		var r dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			r = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		}
		if _, err := r.Get(ctx, o.GetName(), metav1.GetOptions{}); err != nil {
			t.Errorf("%s was not installed: %v", keyOf(o), err)
		}
	}
}

// TestKustomizeInstall: `kubectl apply --server-side -k config/default` on a
// cluster without nodewarden; then the installed RBAC and admission policy
// confine the agent and the controller as docs/security.md says.
func TestKustomizeInstall(t *testing.T) {
	t.Parallel()
	manifests := kustomizeBuild(t, "config/default")
	c := startBare(t)
	// docs/install.md: the CRD first, so that kubectl knows the kind of the
	// sample policy when it applies config/default.
	if _, err := kubectlApply(t, c, kustomizeBuild(t, "config/crd")); err != nil {
		t.Fatalf("kubectl apply --server-side -k config/crd: %v", err)
	}
	run(t, nil, "kubectl", "--kubeconfig", c.Kubeconfig, "wait", "--for=condition=Established",
		"--timeout=60s", "crd/remediationpolicies.nodewarden.io")
	warnings, err := kubectlApply(t, c, manifests)
	if err != nil {
		t.Fatalf("kubectl apply --server-side -k config/default: %v", err)
	}
	if len(warnings) > 0 {
		t.Errorf("kubectl apply --server-side -k config/default warned:\n%s", warnings)
	}
	requireObjects(t, c, decode(t, manifests))
	if t.Failed() {
		return
	}
	t.Run("agent", func(t *testing.T) {
		checkAgentConfinement(t, c, namespace, "nodewarden-agent")
	})
	t.Run("controller", func(t *testing.T) { checkController(t, c, namespace, "nodewarden-controller") })
	t.Run("what the user sees", func(t *testing.T) {
		// The commands docs/install.md and the chart's NOTES.txt give, on the
		// node the agent subtest wrote to.
		kubectl := func(args ...string) string {
			return string(run(t, nil, "kubectl", append([]string{"--kubeconfig", c.Kubeconfig}, args...)...))
		}
		out := kubectl("get", "nodes", "-o", `custom-columns=NODE:.metadata.name,REBOOT:.status.conditions[?(@.type=="HostEventRebootAfter48")].status`)
		if !regexp.MustCompile(`(?m)^node-a\s+False$`).MatchString(out) {
			t.Errorf("kubectl get nodes -o custom-columns=...: want node-a False:\n%s", out)
		}
		out = kubectl("describe", "node", "node-a")
		if !strings.Contains(out, "HostEventRebootAfter48") || !strings.Contains(out, "SystemMaintenanceRebootExecuted") {
			t.Errorf("kubectl describe node node-a does not show the agent's condition:\n%s", out)
		}
		out = kubectl("get", "remediationpolicies")
		if !regexp.MustCompile(`(?m)^NAME\s+SELECTED\s+TRIGGERED\s+REMEDIATING\s+REPAIRING\s+CIRCUIT\s+PAUSED\s+AGE$`).MatchString(out) ||
			!strings.Contains(out, "host-maintenance") {
			t.Errorf("kubectl get remediationpolicies:\n%s", out)
		}
	})
	t.Run("optional parts", func(t *testing.T) {
		// config/prometheus needs the Prometheus Operator's CRDs, which this
		// cluster lacks; TestAlertsUseRealMetrics checks its content.
		sample, err := os.ReadFile(filepath.Join(cluster.RepoRoot(), "config/samples/remediationpolicy_kernel-deadlock.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kubectlApply(t, c, sample); err != nil {
			t.Errorf("the kernel-deadlock sample policy: %v", err)
		}
		if _, err := kubectlApply(t, c, kustomizeBuild(t, "config/grafana")); err != nil {
			t.Errorf("config/grafana: %v", err)
		}
	})
}

// TestHelmTemplateApply: `helm template | kubectl apply --server-side` is
// accepted too (GitOps tools install the chart this way). This cluster runs
// kube-controller-manager, whose admission policy status controller
// type-checks the policy's CEL against the Node, Event and Lease schemas:
// the shipped policy must come out without a warning.
func TestHelmTemplateApply(t *testing.T) {
	t.Parallel()
	manifests := helmTemplate(t)
	c := cluster.StartWith(t, cluster.Options{Full: true, CRDDirectories: []string{}})
	// As `helm install --create-namespace` and GitOps tools do: the
	// namespace and the CRD first, then the rest.
	run(t, nil, "kubectl", "--kubeconfig", c.Kubeconfig, "create", "namespace", namespace)
	var crds, rest []byte
	for _, o := range decode(t, manifests) {
		y, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		doc := append([]byte("---\n"), y...)
		if o.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, doc...)
		} else {
			rest = append(rest, doc...)
		}
	}
	if _, err := kubectlApply(t, c, crds); err != nil {
		t.Fatalf("helm template --include-crds | kubectl apply --server-side (CRDs): %v", err)
	}
	run(t, nil, "kubectl", "--kubeconfig", c.Kubeconfig, "wait", "--for=condition=Established",
		"--timeout=60s", "crd/remediationpolicies.nodewarden.io")
	warnings, err := kubectlApply(t, c, rest)
	if err != nil {
		t.Fatalf("helm template | kubectl apply --server-side: %v", err)
	}
	if len(warnings) > 0 {
		t.Errorf("helm template | kubectl apply --server-side warned:\n%s", warnings)
	}
	requireObjects(t, c, decode(t, manifests))

	for _, name := range []string{"nodewarden-agent-own-node", "nodewarden-agent-own-lease", "nodewarden-agent-own-events"} {
		cluster.Eventually(t, 30*time.Second, func() error {
			vap, err := c.Clientset.AdmissionregistrationV1().ValidatingAdmissionPolicies().Get(t.Context(), name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if vap.Status.ObservedGeneration != vap.Generation || vap.Status.TypeChecking == nil {
				return fmt.Errorf("admission policy %s not type-checked yet (status %+v)", name, vap.Status)
			}
			if w := vap.Status.TypeChecking.ExpressionWarnings; len(w) > 0 {
				t.Errorf("admission policy %s: type-checking warnings: %+v", name, w)
			}
			return nil
		})
	}
}

// TestHelmInstallUpgrade: `helm install` and `helm upgrade` against a real
// API server, under a release name and namespace other than the defaults, so
// that every name the chart derives (ServiceAccounts, the admission policy's
// user, bindings) is exercised; then the agent is confined as with
// kustomize, and `helm uninstall` leaves the CRD (and so the policies).
func TestHelmInstallUpgrade(t *testing.T) {
	t.Parallel()
	const (
		rel = "nw"
		ns  = "nw-helm"
	)
	tool(t, "helm")
	c := startBare(t)
	helm := func(args ...string) string {
		t.Helper()
		return string(run(t, nil, "helm", append([]string{"--kubeconfig", c.Kubeconfig, "--namespace", ns}, args...)...))
	}
	out := helm("install", rel, "charts/nodewarden", "--create-namespace")
	if !strings.Contains(out, "kubectl get remediationpolicies") || !strings.Contains(out, "kubectl get remediationrecords") {
		t.Errorf("helm install printed no NOTES about remediationpolicies and remediationrecords:\n%s", out)
	}
	ctx := t.Context()
	if _, err := c.Clientset.AppsV1().DaemonSets(ns).Get(ctx, rel+"-nodewarden-agent", metav1.GetOptions{}); err != nil {
		t.Fatalf("after helm install: %v", err)
	}

	helm("upgrade", rel, "charts/nodewarden", "--reuse-values", "--set", "controller.dryRun=true", "--set", "agent.logLevel=debug")
	dep, err := c.Clientset.AppsV1().Deployments(ns).Get(ctx, rel+"-nodewarden-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if args := strings.Join(dep.Spec.Template.Spec.Containers[0].Args, " "); !strings.Contains(args, "--dry-run") {
		t.Errorf("after helm upgrade --set controller.dryRun=true, controller args = %s", args)
	}
	if status := helm("status", rel, "-o", "json"); !strings.Contains(status, `"status":"deployed"`) || !strings.Contains(status, `"version":2`) {
		t.Errorf("helm status after upgrade: %s", status)
	}

	t.Run("agent", func(t *testing.T) {
		checkAgentConfinement(t, c, ns, rel+"-nodewarden-agent")
	})
	t.Run("controller", func(t *testing.T) { checkController(t, c, ns, rel+"-nodewarden-controller") })

	helm("uninstall", rel, "--wait", "--timeout", "60s")
	if _, err := c.Clientset.AppsV1().DaemonSets(ns).Get(ctx, rel+"-nodewarden-agent", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after helm uninstall, the agent DaemonSet: %v, want NotFound", err)
	}
	if _, err := c.Clientset.RbacV1().Roles("default").Get(ctx, rel+"-nodewarden-agent-events", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after helm uninstall, the agent's Role in namespace default: %v, want NotFound", err)
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	crds := dyn.Resource(apiextensionsGVR)
	if _, err := crds.Get(ctx, "remediationpolicies.nodewarden.io", metav1.GetOptions{}); err != nil {
		t.Errorf("after helm uninstall the CRD should stay (Helm never deletes crds/): %v", err)
	}
}
