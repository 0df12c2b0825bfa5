package install

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/nodewarden/nodewarden/internal/agent/agentconfig"
	"github.com/nodewarden/nodewarden/test/cluster"
)

const (
	// namespace is where config/default installs, and where the tests point Helm.
	namespace = "nodewarden-system"
	// release is the Helm release name whose object names equal config/default's.
	release = "nodewarden"
	// kubeVersion is passed to `helm template`: the chart needs 1.30+, and a
	// helm built with `go install` assumes v1.20 when it has no cluster.
	kubeVersion = "v1.37.2"
)

// tool returns the path of a bin/ tool; it skips under -short.
func tool(t testing.TB, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs bin/" + name + "; skipped with -short")
	}
	p := filepath.Join(cluster.BinDir(), name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not found in %s: run `make k8s-bins` first", name, cluster.BinDir())
	}
	return p
}

// run runs a bin/ tool from the repository root and returns its stdout.
func run(t testing.TB, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	out, err := runErr(t, stdin, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func runErr(t testing.TB, stdin []byte, name string, args ...string) ([]byte, error) {
	t.Helper()
	stdout, _, err := runCmd(t, stdin, name, args...)
	return stdout, err
}

// runCmd runs a bin/ tool; a failure's error carries both outputs.
func runCmd(t testing.TB, stdin []byte, name string, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool(t, name), args...)
	cmd.Dir = cluster.RepoRoot()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.Bytes(), errOut.Bytes(), fmt.Errorf("%s %s: %w\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.Bytes(), errOut.Bytes(), nil
}

func kustomizeBuild(t testing.TB, dir string) []byte {
	t.Helper()
	return run(t, nil, "kustomize", "build", dir)
}

func helmTemplate(t testing.TB, args ...string) []byte {
	t.Helper()
	return run(t, nil, "helm", append([]string{"template", release, "charts/nodewarden",
		"--namespace", namespace, "--include-crds", "--kube-version", kubeVersion}, args...)...)
}

// overlay writes a kustomization in a temporary directory that combines
// directories of config/ (kustomize only accepts relative paths to them).
func overlay(t testing.TB, resources, components []string) string {
	t.Helper()
	dir := t.TempDir()
	rel := func(paths []string) []string {
		var out []string
		for _, p := range paths {
			r, err := filepath.Rel(dir, filepath.Join(cluster.RepoRoot(), p))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		return out
	}
	k, err := yaml.Marshal(map[string]any{
		"apiVersion": "kustomize.config.k8s.io/v1beta1",
		"kind":       "Kustomization",
		"resources":  rel(resources),
		"components": rel(components),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), k, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// decode splits a multi-document YAML stream into objects.
func decode(t testing.TB, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var m map[string]any
		err := d.Decode(&m)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("decode rendered YAML: %v", err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

type objKey struct{ Kind, Namespace, Name string }

func (k objKey) String() string {
	if k.Namespace == "" {
		return k.Kind + "/" + k.Name
	}
	return k.Kind + "/" + k.Namespace + "/" + k.Name
}

func keyOf(o *unstructured.Unstructured) objKey {
	return objKey{o.GetKind(), o.GetNamespace(), o.GetName()}
}

func index(t testing.TB, objs []*unstructured.Unstructured) map[objKey]*unstructured.Unstructured {
	t.Helper()
	m := map[objKey]*unstructured.Unstructured{}
	for _, o := range objs {
		k := keyOf(o)
		if _, dup := m[k]; dup {
			t.Errorf("%s rendered twice", k)
		}
		m[k] = o
	}
	return m
}

func keys[V any](m map[objKey]V) []objKey {
	var ks []objKey
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i].String() < ks[j].String() })
	return ks
}

// helmOnlyLabels are the labels only Helm adds: they say who manages an
// object, not what it is.
var helmOnlyLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/version"}

// normalize removes what legitimately differs between the two installs, so
// that what is left must be equal:
//   - Helm's bookkeeping labels;
//   - the layout of the agent's configuration file (compared parsed);
//   - the order of volumes and mounts (a patch and a template add them at
//     different places; the order means nothing).
func normalize(t testing.TB, o *unstructured.Unstructured) map[string]any {
	t.Helper()
	o = o.DeepCopy()
	labels := o.GetLabels()
	for _, l := range helmOnlyLabels {
		delete(labels, l)
	}
	o.SetLabels(labels)
	if o.GetKind() == "ConfigMap" {
		data, _, _ := unstructured.NestedStringMap(o.Object, "data")
		for k, v := range data {
			if strings.HasSuffix(k, ".yaml") {
				var parsed any
				if err := yaml.Unmarshal([]byte(v), &parsed); err != nil {
					t.Fatalf("%s: %s: %v", keyOf(o), k, err)
				}
				canonical, _ := json.Marshal(parsed)
				data[k] = string(canonical)
			}
		}
		if data != nil {
			_ = unstructured.SetNestedStringMap(o.Object, data, "data")
		}
	}
	if spec, ok, _ := unstructured.NestedMap(o.Object, "spec", "template", "spec"); ok {
		sortByName(spec, "volumes")
		containers, _, _ := unstructured.NestedSlice(spec, "containers")
		for _, c := range containers {
			sortByName(c.(map[string]any), "volumeMounts")
		}
		spec["containers"] = containers
		_ = unstructured.SetNestedMap(o.Object, spec, "spec", "template", "spec")
	}
	return o.Object
}

func sortByName(m map[string]any, field string) {
	list, ok := m[field].([]any)
	if !ok {
		return
	}
	sort.SliceStable(list, func(i, j int) bool {
		return fmt.Sprint(list[i].(map[string]any)["name"]) < fmt.Sprint(list[j].(map[string]any)["name"])
	})
}

// TestInstallsAgree: kustomize and Helm install the same objects — same
// (kind, name, namespace), and the same content but for Helm's bookkeeping
// labels — with the defaults, and with every optional part switched on.
func TestInstallsAgree(t *testing.T) {
	cases := []struct {
		name       string
		kustomize  func(t *testing.T) []byte
		helmValues []string
	}{{
		name:      "defaults",
		kustomize: func(t *testing.T) []byte { return kustomizeBuild(t, "config/default") },
	}, {
		name: "kmsg, ServiceMonitors, alerts and dashboard",
		kustomize: func(t *testing.T) []byte {
			return kustomizeBuild(t, overlay(t,
				[]string{"config/default", "config/prometheus", "config/grafana"},
				[]string{"config/agent/kmsg"}))
		},
		helmValues: []string{"--set", "agent.kmsg.enabled=true", "--set", "metrics.serviceMonitor.enabled=true",
			"--set", "metrics.prometheusRule.enabled=true", "--set", "metrics.grafanaDashboard.enabled=true"},
	}, {
		name: "hostNetwork",
		kustomize: func(t *testing.T) []byte {
			return kustomizeBuild(t, overlay(t, []string{"config/default"}, []string{"config/agent/host-network"}))
		},
		helmValues: []string{"--set", "agent.hostNetwork.enabled=true"},
	}, {
		name: "container runtime",
		kustomize: func(t *testing.T) []byte {
			return kustomizeBuild(t, overlay(t, []string{"config/default"}, []string{"config/agent/container-runtime"}))
		},
		helmValues: []string{"--set", "agent.healthChecks.containerRuntime.enabled=true"},
	}, {
		name: "journal",
		kustomize: func(t *testing.T) []byte {
			return kustomizeBuild(t, overlay(t, []string{"config/default"}, []string{"config/agent/journal"}))
		},
		helmValues: []string{"--set", "agent.journal.enabled=true"},
	}, {
		name: "container runtime and journal",
		kustomize: func(t *testing.T) []byte {
			return kustomizeBuild(t, overlay(t, []string{"config/default"},
				[]string{"config/agent/container-runtime", "config/agent/journal"}))
		},
		helmValues: []string{"--set", "agent.healthChecks.containerRuntime.enabled=true", "--set", "agent.journal.enabled=true"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kust := index(t, decode(t, tc.kustomize(t)))
			helm := index(t, decode(t, helmTemplate(t, tc.helmValues...)))

			// The one difference: kustomize creates the namespace (with its
			// Pod Security labels); Helm installs into one made by
			// `--create-namespace` or by the user (docs/install.md).
			nsKey := objKey{Kind: "Namespace", Name: namespace}
			if ns, ok := kust[nsKey]; !ok {
				t.Errorf("kustomize does not create namespace %s", namespace)
			} else if ns.GetLabels()["pod-security.kubernetes.io/enforce"] != "privileged" {
				t.Errorf("namespace %s: pod-security.kubernetes.io/enforce = %q, want privileged (the agent mounts a hostPath)",
					namespace, ns.GetLabels()["pod-security.kubernetes.io/enforce"])
			}
			delete(kust, nsKey)

			if diff := cmp.Diff(keys(kust), keys(helm)); diff != "" {
				t.Fatalf("objects differ (-kustomize +helm):\n%s", diff)
			}
			for _, k := range keys(kust) {
				if diff := cmp.Diff(normalize(t, kust[k]), normalize(t, helm[k])); diff != "" {
					t.Errorf("%s differs (-kustomize +helm):\n%s", k, diff)
				}
			}
			if t.Failed() {
				return
			}
			// Equal objects mean equal RBAC; say it in RBAC's terms as well.
			if diff := cmp.Diff(permissions(t, kust), permissions(t, helm)); diff != "" {
				t.Errorf("RBAC differs (-kustomize +helm):\n%s", diff)
			}
		})
	}
}

// TestAgentConfigLoads: the agent configuration both installs ship is one
// the agent accepts, and both mean the same: the agent's defaults, but for
// the health checks' host paths, which are where the DaemonSet mounts the
// node's /sys and filesystems.
func TestAgentConfigLoads(t *testing.T) {
	for name, data := range map[string][]byte{
		"kustomize": kustomizeBuild(t, "config/default"),
		"helm":      helmTemplate(t),
	} {
		objs := index(t, decode(t, data))
		o := objs[objKey{"ConfigMap", namespace, "nodewarden-agent-config"}]
		if o == nil {
			t.Fatalf("%s: no ConfigMap nodewarden-agent-config", name)
		}
		file, _, _ := unstructured.NestedString(o.Object, "data", "agent.yaml")
		path := filepath.Join(t.TempDir(), "agent.yaml")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := agentconfig.Load(path)
		if err != nil {
			t.Fatalf("%s: the agent rejects its shipped configuration: %v", name, err)
		}
		def := agentconfig.Default()
		if diff := cmp.Diff(def.HostEventLog, cfg.HostEventLog); diff != "" {
			t.Errorf("%s: the shipped host event log settings are not the agent's defaults (-default +shipped):\n%s", name, diff)
		}

		want := def.HealthChecks
		want.SysPath = "/host/sys"
		want.Storage.Paths = []string{"/run/nodewarden/kubelet-fs", "/var/log"}
		if diff := cmp.Diff(want, cfg.HealthChecks); diff != "" {
			t.Errorf("%s: the shipped health checks are not the agent's defaults with the host's /sys and the kubelet's filesystem (-want +shipped):\n%s", name, diff)
		}
		// Every path the checks read is mounted, from where it must come.
		pod := agentPodOf(t, objs)
		hc := cfg.HealthChecks
		if v, ok := volumeAt(pod, hc.SysPath); !ok || v.HostPath == nil || v.HostPath.Path != "/sys" {
			t.Errorf("%s: healthChecks.sysPath %s is not the node's /sys (%+v)", name, hc.SysPath, v.VolumeSource)
		}
		if v, ok := volumeAt(pod, "/run/nodewarden/kubelet-fs"); !ok || v.EmptyDir == nil {
			t.Errorf("%s: healthChecks.storage.paths: /run/nodewarden/kubelet-fs is not an emptyDir (%+v)", name, v.VolumeSource)
		}
		if v, ok := volumeAt(pod, "/var/log"); !ok || v.HostPath == nil || v.HostPath.Path != "/var/log" {
			t.Errorf("%s: healthChecks.storage.paths: /var/log is not the node's /var/log (%+v)", name, v.VolumeSource)
		}
	}
}

// agentPodOf is the agent DaemonSet's pod template among rendered objects.
func agentPodOf(t *testing.T, objs map[objKey]*unstructured.Unstructured) corev1.PodSpec {
	t.Helper()
	return typed[appsv1.DaemonSet](t, objs, objKey{"DaemonSet", namespace, "nodewarden-agent"}).Spec.Template.Spec
}

// volumeAt is the volume the agent's container mounts at path.
func volumeAt(pod corev1.PodSpec, path string) (corev1.Volume, bool) {
	for _, m := range pod.Containers[0].VolumeMounts {
		if m.MountPath == path {
			for _, v := range pod.Volumes {
				if v.Name == m.Name {
					return v, true
				}
			}
		}
	}
	return corev1.Volume{}, false
}

// TestAgentHealthCheckAccess: config/agent/container-runtime and
// config/agent/journal (the chart's agent.healthChecks.containerRuntime.enabled
// and agent.journal.enabled), alone or together, change the agent's pod in
// exactly these ways — flags, read-only host mounts, supplementary groups —
// and its RBAC by exactly these grants; and whatever is on, the agent stays
// non-root, unprivileged, without capabilities, on a read-only root.
func TestAgentHealthCheckAccess(t *testing.T) {
	const agent = "ServiceAccount nodewarden-system/nodewarden-agent"
	type access struct {
		args    []string
		volumes []corev1.Volume
		mounts  []corev1.VolumeMount
		groups  []int64
		grants  []string
	}
	hostPath := func(name, path string, typ corev1.HostPathType) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path, Type: ptr.To(typ)}}}
	}
	runtime := access{
		args: []string{"--container-runtime-endpoint=unix:///run/containerd/containerd.sock"},
		// The socket's directory, so that a restarted containerd's new
		// socket is seen; read-only all the same.
		volumes: []corev1.Volume{hostPath("container-runtime", "/run/containerd", corev1.HostPathDirectory)},
		mounts:  []corev1.VolumeMount{{Name: "container-runtime", MountPath: "/run/containerd", ReadOnly: true}},
		groups:  []int64{0},
		grants:  []string{agent + ": list pods in *cluster*"},
	}
	journal := access{
		args: []string{"--journal-path=/var/log/journal"},
		// /var/log/journal is read through the /var/log mount.
		volumes: []corev1.Volume{hostPath("runtime-journal", "/run/log/journal", corev1.HostPathUnset)},
		mounts:  []corev1.VolumeMount{{Name: "runtime-journal", MountPath: "/run/log/journal", ReadOnly: true}},
		groups:  []int64{4, 190},
	}
	both := access{
		args:    append(slices.Clone(runtime.args), journal.args...),
		volumes: append(slices.Clone(runtime.volumes), journal.volumes...),
		mounts:  append(slices.Clone(runtime.mounts), journal.mounts...),
		groups:  append(slices.Clone(runtime.groups), journal.groups...),
		grants:  runtime.grants,
	}

	kustBase := index(t, decode(t, kustomizeBuild(t, "config/default")))
	helmBase := index(t, decode(t, helmTemplate(t)))
	for name, objs := range map[string]map[objKey]*unstructured.Unstructured{"kustomize": kustBase, "helm": helmBase} {
		pod := agentPodOf(t, objs)
		checkAgentConfined(t, name+" defaults", pod)
		checkDefaultHostAccess(t, name+" defaults", pod)
		if len(pod.SecurityContext.SupplementalGroups) != 0 {
			t.Errorf("%s defaults: supplementalGroups %v, want none", name, pod.SecurityContext.SupplementalGroups)
		}
	}

	for _, tc := range []struct {
		name       string
		components []string
		helmValues []string
		want       access
	}{
		{"container runtime", []string{"config/agent/container-runtime"},
			[]string{"agent.healthChecks.containerRuntime.enabled=true"}, runtime},
		{"journal", []string{"config/agent/journal"}, []string{"agent.journal.enabled=true"}, journal},
		{"container runtime and journal", []string{"config/agent/container-runtime", "config/agent/journal"},
			[]string{"agent.healthChecks.containerRuntime.enabled=true", "agent.journal.enabled=true"}, both},
		{"host network, container runtime and journal", []string{"config/agent/host-network", "config/agent/container-runtime", "config/agent/journal"},
			[]string{"agent.hostNetwork.enabled=true", "agent.healthChecks.containerRuntime.enabled=true", "agent.journal.enabled=true"}, both},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var set []string
			for _, v := range tc.helmValues {
				set = append(set, "--set", v)
			}
			for _, install := range []struct {
				name       string
				base, objs map[objKey]*unstructured.Unstructured
			}{
				{"kustomize", kustBase, index(t, decode(t, kustomizeBuild(t, overlay(t, []string{"config/default"}, tc.components))))},
				{"helm", helmBase, index(t, decode(t, helmTemplate(t, set...)))},
			} {
				got := agentPodOf(t, install.objs)
				checkAgentConfined(t, install.name, got)
				checkDefaultHostAccess(t, install.name, got)

				// The pod the same option would give without this one:
				// host-network's own changes are TestAgentPodHostNetwork's.
				want := agentPodOf(t, install.base)
				if slices.Contains(tc.components, "config/agent/host-network") {
					want.HostNetwork, want.DNSPolicy = got.HostNetwork, got.DNSPolicy
					want.Containers[0].Args = slices.Clone(want.Containers[0].Args)
					copy(want.Containers[0].Args, got.Containers[0].Args[:len(want.Containers[0].Args)])
					want.Containers[0].Ports = got.Containers[0].Ports
				}
				ctr := &want.Containers[0]
				ctr.Args = append(ctr.Args, tc.want.args...)
				ctr.VolumeMounts = append(ctr.VolumeMounts, tc.want.mounts...)
				want.Volumes = append(want.Volumes, tc.want.volumes...)
				want.SecurityContext.SupplementalGroups = tc.want.groups
				byName := func(a, b corev1.Volume) int { return strings.Compare(a.Name, b.Name) }
				mountByName := func(a, b corev1.VolumeMount) int { return strings.Compare(a.Name, b.Name) }
				for _, p := range []*corev1.PodSpec{&want, &got} {
					slices.SortFunc(p.Volumes, byName)
					slices.SortFunc(p.Containers[0].VolumeMounts, mountByName)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s: the agent pod differs from the default one in more than what %s adds (-want +got):\n%s", install.name, tc.name, diff)
				}

				grants := added(permissions(t, install.base), permissions(t, install.objs))
				if diff := cmp.Diff(tc.want.grants, grants); diff != "" {
					t.Errorf("%s: RBAC grants added (-want +got):\n%s", install.name, diff)
				}
			}
		})
	}
}

// TestKustomizeNamespace: installing into another namespace the documented
// way (change nodewarden-system in config/default's kustomization.yaml and
// namespace.yaml) moves the admission policy's ServiceAccount along. A
// policy that kept naming the old one would silently stop confining the
// agent.
func TestKustomizeNamespace(t *testing.T) {
	tool(t, "kustomize")
	const other = "ops-nodewarden"
	config := filepath.Join(t.TempDir(), "config")
	if err := os.CopyFS(config, os.DirFS(filepath.Join(cluster.RepoRoot(), "config"))); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"default/kustomization.yaml", "default/namespace.yaml"} {
		p := filepath.Join(config, f)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, bytes.ReplaceAll(b, []byte(namespace), []byte(other)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	objs := index(t, decode(t, kustomizeBuild(t, filepath.Join(config, "default"))))
	policies := 0
	for _, k := range keys(objs) {
		if k.Kind != "ValidatingAdmissionPolicy" {
			continue
		}
		policies++
		conds, _, _ := unstructured.NestedSlice(objs[k].Object, "spec", "matchConditions")
		want := "request.userInfo.username == 'system:serviceaccount:" + other + ":nodewarden-agent'"
		if len(conds) != 1 || conds[0].(map[string]any)["expression"] != want {
			t.Errorf("%s: matchConditions = %v, want the single expression %q", k, conds, want)
		}
	}
	if policies != 3 {
		t.Errorf("%d admission policies, want 3", policies)
	}
	for _, k := range keys(objs) {
		if k.Namespace != "" && k.Namespace != other && k.Namespace != "default" {
			t.Errorf("%s: namespace %s, want %s (or default for Events' Roles)", k, k.Namespace, other)
		}
	}
	for _, p := range permissions(t, objs) {
		if !strings.HasPrefix(p, "ServiceAccount "+other+"/") {
			t.Errorf("permission for a ServiceAccount outside %s: %s", other, p)
		}
	}

	// config/agent/container-runtime's ClusterRoleBinding follows the
	// agent's ServiceAccount too.
	k, err := yaml.Marshal(map[string]any{
		"apiVersion": "kustomize.config.k8s.io/v1beta1",
		"kind":       "Kustomization",
		"resources":  []string{"../default"},
		"components": []string{"../agent/container-runtime"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(config, "overlay"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(config, "overlay", "kustomization.yaml"), k, 0o644); err != nil {
		t.Fatal(err)
	}
	perms := permissions(t, index(t, decode(t, kustomizeBuild(t, filepath.Join(config, "overlay")))))
	if want := "ServiceAccount " + other + "/nodewarden-agent: list pods in *cluster*"; !slices.Contains(perms, want) {
		t.Errorf("with config/agent/container-runtime: no %q in %v", want, perms)
	}
	for _, p := range perms {
		if !strings.HasPrefix(p, "ServiceAccount "+other+"/") {
			t.Errorf("with config/agent/container-runtime: permission for a ServiceAccount outside %s: %s", other, p)
		}
	}
}

// TestChartInSync: the files the chart carries from config/ are exact copies
// (`make chart-sync` makes them): one source of truth.
func TestChartInSync(t *testing.T) {
	root := cluster.RepoRoot()
	pairs := map[string]string{
		"config/rbac/agent_admission_policy.yaml":  "charts/nodewarden/files/agent-admission-policy.yaml",
		"config/prometheus/prometheusrule.yaml":    "charts/nodewarden/files/prometheusrule.yaml",
		"config/grafana/nodewarden-dashboard.json": "charts/nodewarden/files/nodewarden-dashboard.json",
	}
	crds, err := filepath.Glob(filepath.Join(root, "config/crd/bases/*.yaml"))
	if err != nil || len(crds) == 0 {
		t.Fatalf("no CRDs in config/crd/bases (%v)", err)
	}
	for _, c := range crds {
		pairs["config/crd/bases/"+filepath.Base(c)] = "charts/nodewarden/crds/" + filepath.Base(c)
	}
	chartCRDs, _ := filepath.Glob(filepath.Join(root, "charts/nodewarden/crds/*"))
	for _, c := range chartCRDs {
		if _, ok := pairs["config/crd/bases/"+filepath.Base(c)]; !ok {
			t.Errorf("charts/nodewarden/crds/%s has no source in config/crd/bases: run `make chart-sync`", filepath.Base(c))
		}
	}
	for src, dst := range pairs {
		a, errA := os.ReadFile(filepath.Join(root, src))
		b, errB := os.ReadFile(filepath.Join(root, dst))
		if errA != nil || errB != nil {
			t.Errorf("%s vs %s: %v %v", src, dst, errA, errB)
			continue
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s: run `make chart-sync`", dst, src)
		}
	}
}

// TestHelmLint: `helm lint --strict` is clean with the defaults and with
// every optional part on.
func TestHelmLint(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"--set", "agent.kmsg.enabled=true", "--set", "metrics.serviceMonitor.enabled=true",
			"--set", "metrics.prometheusRule.enabled=true", "--set", "metrics.grafanaDashboard.enabled=true",
			"--set", "controller.dryRun=true", "--set", "admissionPolicy.enabled=false",
			"--set", "controller.rbac.forceDeletePods=true", "--set", "controller.rbac.deleteNodes=true", "--set", "controller.rbac.clusterAPI=true",
			"--set", "agent.healthChecks.containerRuntime.enabled=true", "--set", "agent.journal.enabled=true"},
	} {
		out := run(t, nil, "helm", append([]string{"lint", "--strict", "charts/nodewarden", "--kube-version", kubeVersion}, args...)...)
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "[WARNING]") || strings.Contains(line, "[ERROR]") {
				t.Errorf("helm lint %v: %s", args, line)
			}
		}
	}
}

// TestValuesSchema: values.schema.json rejects what a user could plausibly
// get wrong, with a message that names it.
func TestValuesSchema(t *testing.T) {
	// want is looked for in Helm's message, not in the error, which
	// repeats the command line.
	for _, tc := range []struct{ set, want string }{
		{"agent.kmsg.enabled=yes", "'/agent/kmsg/enabled'"},
		{"controller.replicas=0", "'/controller/replicas'"},
		{"agent.logLevel=verbose", "'/agent/logLevel'"},
		{"agnet.logLevel=debug", "'agnet'"},
		{"image.pullPolicy=Sometimes", "'/image/pullPolicy'"},
		{"controller.rbac.deleteNodes=yes", "'/controller/rbac/deleteNodes'"},
		{"controller.rbac.clusterApi=true", "'clusterApi'"},
		{"agent.healthChecks.profiles={GKE}", "'/agent/healthChecks/profiles/0'"},
		{"agent.healthChecks.interval=30", "'/agent/healthChecks/interval'"},
		{"agent.healthChecks.kernel.enabled=yes", "'/agent/healthChecks/kernel/enabled'"},
		{"agent.healthChecks.storage.paths={var/log}", "'/agent/healthChecks/storage/paths/0'"},
		{"agent.healthChecks.containerRuntime.enabled=yes", "'/agent/healthChecks/containerRuntime/enabled'"},
		{"agent.healthChecks.containerRuntime.endpoint=/run/containerd/containerd.sock", "'/agent/healthChecks/containerRuntime/endpoint'"},
		{"agent.healthChecks.containerRuntime.journal=true", "'journal'"},
		{"agent.journal.enabled=yes", "'/agent/journal/enabled'"},
		{"agent.journal.supplementalGroups={adm}", "'/agent/journal/supplementalGroups/0'"},
	} {
		_, stderr, err := runCmd(t, nil, "helm", "template", release, "charts/nodewarden", "--kube-version", kubeVersion, "--set", tc.set)
		if err == nil || !strings.Contains(string(stderr), tc.want) {
			t.Errorf("helm template --set %s: got %v, want a schema error naming %s", tc.set, err, tc.want)
		}
	}
	// Not a schema matter: the persistent journal is read through the host
	// event log's mount, which must then contain it.
	_, stderr, err := runCmd(t, nil, "helm", "template", release, "charts/nodewarden", "--kube-version", kubeVersion,
		"--set", "agent.journal.enabled=true", "--set", "agent.hostEventLogDir=/var/log/azure")
	if err == nil || !strings.Contains(string(stderr), "agent.hostEventLogDir") {
		t.Errorf("helm template with agent.journal.enabled and agent.hostEventLogDir=/var/log/azure: got %v, want an error naming agent.hostEventLogDir", err)
	}
}

// A permission is one verb on one resource in one scope ("" = cluster-wide).
type permission struct {
	Subject, Scope, Group, Resource, Verb, ResourceName string
}

func (p permission) String() string {
	s := p.Scope
	if s == "" {
		s = "*cluster*"
	}
	r := p.Resource
	if p.Group != "" {
		r += "." + p.Group
	}
	if p.ResourceName != "" {
		r += "/" + p.ResourceName
	}
	return fmt.Sprintf("%s: %s %s in %s", p.Subject, p.Verb, r, s)
}

// permissions flattens the rendered RBAC into what each ServiceAccount may
// do. Names of objects do not matter here, only the grants.
func permissions(t testing.TB, objs map[objKey]*unstructured.Unstructured) []string {
	t.Helper()
	rules := func(kind, ns, name string) []any {
		o := objs[objKey{kind, ns, name}]
		if o == nil {
			t.Errorf("binding refers to missing %s %s/%s", kind, ns, name)
			return nil
		}
		r, _, _ := unstructured.NestedSlice(o.Object, "rules")
		return r
	}
	set := map[string]bool{}
	for _, k := range keys(objs) {
		if k.Kind != "RoleBinding" && k.Kind != "ClusterRoleBinding" {
			continue
		}
		b := objs[k]
		refKind, _, _ := unstructured.NestedString(b.Object, "roleRef", "kind")
		refName, _, _ := unstructured.NestedString(b.Object, "roleRef", "name")
		roleNS := ""
		if refKind == "Role" {
			roleNS = k.Namespace
		}
		subjects, _, _ := unstructured.NestedSlice(b.Object, "subjects")
		for _, s := range subjects {
			s := s.(map[string]any)
			subject := fmt.Sprintf("%s %s/%s", s["kind"], s["namespace"], s["name"])
			for _, r := range rules(refKind, roleNS, refName) {
				r := r.(map[string]any)
				names := stringsOf(r["resourceNames"])
				if len(names) == 0 {
					names = []string{""}
				}
				for _, g := range stringsOf(r["apiGroups"]) {
					for _, res := range stringsOf(r["resources"]) {
						for _, v := range stringsOf(r["verbs"]) {
							for _, n := range names {
								set[permission{subject, k.Namespace, g, res, v, n}.String()] = true
							}
						}
					}
				}
			}
		}
	}
	var out []string
	for p := range set {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func stringsOf(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

// TestLeastPrivilege pins every permission nodewarden's ServiceAccounts get.
// Adding one is a decision: change this list and docs/security.md together.
func TestLeastPrivilege(t *testing.T) {
	const (
		agent      = "ServiceAccount nodewarden-system/nodewarden-agent"
		controller = "ServiceAccount nodewarden-system/nodewarden-controller"
	)
	want := []string{
		agent + ": create events in default",
		agent + ": create leases.coordination.k8s.io in nodewarden-system",
		agent + ": get leases.coordination.k8s.io in nodewarden-system",
		agent + ": get nodes in *cluster*",
		agent + ": list nodes in *cluster*",
		agent + ": patch nodes/status in *cluster*",
		agent + ": update leases.coordination.k8s.io in nodewarden-system",
		agent + ": watch nodes in *cluster*",
		controller + ": create events in nodewarden-system",
		controller + ": create events.events.k8s.io in default",
		controller + ": create leases.coordination.k8s.io in nodewarden-system",
		controller + ": create pods/eviction in *cluster*",
		controller + ": create remediationrecords.nodewarden.io in *cluster*",
		controller + ": delete remediationrecords.nodewarden.io in *cluster*",
		controller + ": get leases.coordination.k8s.io in nodewarden-system",
		controller + ": get nodes in *cluster*",
		controller + ": get pods in *cluster*",
		controller + ": get remediationpolicies.nodewarden.io in *cluster*",
		controller + ": get remediationpolicies/status.nodewarden.io in *cluster*",
		controller + ": get remediationrecords.nodewarden.io in *cluster*",
		controller + ": get secrets/nodewarden-notifications in nodewarden-system",
		controller + ": list nodes in *cluster*",
		controller + ": list pods in *cluster*",
		controller + ": list remediationpolicies.nodewarden.io in *cluster*",
		controller + ": list remediationrecords.nodewarden.io in *cluster*",
		controller + ": patch events in nodewarden-system",
		controller + ": patch events.events.k8s.io in default",
		controller + ": patch nodes in *cluster*",
		controller + ": patch remediationpolicies/status.nodewarden.io in *cluster*",
		controller + ": patch remediationrecords.nodewarden.io in *cluster*",
		controller + ": update leases.coordination.k8s.io in nodewarden-system",
		controller + ": update remediationpolicies/status.nodewarden.io in *cluster*",
		controller + ": update remediationrecords.nodewarden.io in *cluster*",
		controller + ": watch nodes in *cluster*",
		controller + ": watch remediationpolicies.nodewarden.io in *cluster*",
		controller + ": watch remediationrecords.nodewarden.io in *cluster*",
	}
	got := permissions(t, index(t, decode(t, kustomizeBuild(t, "config/default"))))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("permissions of nodewarden's ServiceAccounts changed (-want +got):\n%s", diff)
	}
}

// TestOptionalRBAC pins what each opt-in grant of the controller adds, and
// that kustomize's file (applied beside config/default) and Helm's value
// add exactly the same: the two installs shape it differently (a ClusterRole
// of its own, a rule in the controller's), so TestInstallsAgree cannot
// compare them object by object.
func TestOptionalRBAC(t *testing.T) {
	const controller = "ServiceAccount nodewarden-system/nodewarden-controller"
	base := kustomizeBuild(t, "config/default")
	kustBase := permissions(t, index(t, decode(t, base)))
	helmBase := permissions(t, index(t, decode(t, helmTemplate(t))))
	for _, tc := range []struct {
		file, value string
		want        []string
	}{
		{"controller_force_delete.yaml", "forceDeletePods", []string{controller + ": delete pods in *cluster*"}},
		{"controller_repair_delete_nodes.yaml", "deleteNodes", []string{controller + ": delete nodes in *cluster*"}},
		{"controller_repair_clusterapi.yaml", "clusterAPI", []string{
			controller + ": get machines.cluster.x-k8s.io in *cluster*",
			controller + ": patch machines.cluster.x-k8s.io in *cluster*",
		}},
	} {
		t.Run(tc.value, func(t *testing.T) {
			optional, err := os.ReadFile(filepath.Join(cluster.RepoRoot(), "config/rbac/optional", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			kust := added(kustBase, permissions(t, index(t, decode(t, append(append(base, "\n---\n"...), optional...)))))
			if diff := cmp.Diff(tc.want, kust); diff != "" {
				t.Errorf("config/rbac/optional/%s adds (-want +got):\n%s", tc.file, diff)
			}
			helm := added(helmBase, permissions(t, index(t, decode(t, helmTemplate(t, "--set", "controller.rbac."+tc.value+"=true")))))
			if diff := cmp.Diff(tc.want, helm); diff != "" {
				t.Errorf("controller.rbac.%s=true adds (-want +got):\n%s", tc.value, diff)
			}
		})
	}
}

// added is what after has that before has not, and "LOST: ..." for what
// before has that after has not (an opt-in must only add).
func added(before, after []string) []string {
	var out []string
	for _, p := range after {
		if !slices.Contains(before, p) {
			out = append(out, p)
		}
	}
	for _, p := range before {
		if !slices.Contains(after, p) {
			return append(out, "LOST: "+p)
		}
	}
	return out
}

// TestNotificationsSecretValue: the chart's controller.notifications values
// move the controller's one Secret grant and its flag together, and an
// empty secretName leaves it no access to any Secret.
func TestNotificationsSecretValue(t *testing.T) {
	const controller = "ServiceAccount nodewarden-system/nodewarden-controller"
	base := permissions(t, index(t, decode(t, helmTemplate(t))))
	args := func(objs map[objKey]*unstructured.Unstructured) []string {
		dep := typed[appsv1.Deployment](t, objs, objKey{"Deployment", namespace, "nodewarden-controller"})
		return dep.Spec.Template.Spec.Containers[0].Args
	}
	for _, tc := range []struct {
		name     string
		set      []string
		want     []string // permissions added, LOST: removed
		wantArgs []string
	}{
		{"other Secret and a cluster name",
			[]string{"--set", "controller.notifications.secretName=ops-hooks", "--set", "controller.notifications.clusterName=prod"},
			[]string{controller + ": get secrets/ops-hooks in nodewarden-system", "LOST: " + controller + ": get secrets/nodewarden-notifications in nodewarden-system"},
			[]string{"--notifications-secret=ops-hooks", "--cluster-name=prod"}},
		{"off",
			[]string{"--set", "controller.notifications.secretName="},
			[]string{"LOST: " + controller + ": get secrets/nodewarden-notifications in nodewarden-system"},
			[]string{"--notifications-secret="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := index(t, decode(t, helmTemplate(t, tc.set...)))
			got := permissions(t, objs)
			var diff []string
			for _, p := range got {
				if !slices.Contains(base, p) {
					diff = append(diff, p)
				}
			}
			for _, p := range base {
				if !slices.Contains(got, p) {
					diff = append(diff, "LOST: "+p)
				}
			}
			if d := cmp.Diff(tc.want, diff); d != "" {
				t.Errorf("permissions changed (-want +got):\n%s", d)
			}
			a := args(objs)
			for _, w := range tc.wantArgs {
				if !slices.Contains(a, w) {
					t.Errorf("controller args %v lack %s", a, w)
				}
			}
		})
	}
}
