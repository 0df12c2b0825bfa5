package install

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

func typed[T any](t *testing.T, objs map[objKey]*unstructured.Unstructured, k objKey) *T {
	t.Helper()
	o := objs[k]
	if o == nil {
		t.Fatalf("%s is not installed", k)
	}
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, out, true); err != nil {
		t.Fatalf("%s: %v", k, err)
	}
	return out
}

// TestAgentPod pins what SPEC §4 and docs/security.md promise about the
// agent's pod. (TestInstallsAgree makes the Helm chart's pod the same.)
func TestAgentPod(t *testing.T) {
	objs := index(t, decode(t, kustomizeBuild(t, "config/default")))
	ds := typed[appsv1.DaemonSet](t, objs, objKey{"DaemonSet", namespace, "nodewarden-agent"})
	pod := ds.Spec.Template.Spec
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
		t.Fatalf("agent pod: %d containers, %d init containers; want exactly one container", len(pod.Containers), len(pod.InitContainers))
	}
	ctr := pod.Containers[0]

	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Error("agent pod shares a host namespace")
	}
	if pod.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName %q, want system-node-critical", pod.PriorityClassName)
	}
	if !slices.ContainsFunc(pod.Tolerations, func(tol corev1.Toleration) bool {
		return tol.Key == "" && tol.Operator == corev1.TolerationOpExists && tol.Effect == ""
	}) {
		t.Errorf("tolerations %v do not tolerate every taint", pod.Tolerations)
	}

	checkAgentConfined(t, "config/default", pod)

	// Host access: read-only, and only the host event log's directory and
	// /sys (for /sys/class/net of the node); the kubelet's filesystem
	// through an emptyDir, read-only too.
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range ctr.VolumeMounts {
		mounts[m.Name] = m
	}
	var hostPaths []string
	for _, v := range pod.Volumes {
		if v.HostPath == nil {
			continue
		}
		hostPaths = append(hostPaths, v.HostPath.Path)
		if m, ok := mounts[v.Name]; !ok || !m.ReadOnly {
			t.Errorf("hostPath %s is not mounted read-only", v.HostPath.Path)
		}
	}
	slices.Sort(hostPaths)
	if !slices.Equal(hostPaths, []string{"/sys", "/var/log"}) {
		t.Errorf("hostPath volumes %v, want only /sys and /var/log (the host event log's directory)", hostPaths)
	}
	checkDefaultHostAccess(t, "config/default", pod)
	if m := mounts["config"]; m.SubPath != "" || !m.ReadOnly {
		t.Errorf("config mount %+v: want the whole ConfigMap, read-only (a subPath mount never sees updates)", m)
	}

	env := map[string]string{}
	for _, e := range ctr.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			env[e.Name] = e.ValueFrom.FieldRef.FieldPath
		}
	}
	if env["NODE_NAME"] != "spec.nodeName" || env["POD_NAMESPACE"] != "metadata.namespace" {
		t.Errorf("downward API env %v, want NODE_NAME=spec.nodeName and POD_NAMESPACE=metadata.namespace", env)
	}
	if !slices.Equal(ctr.Command, []string{"/nodewarden-agent"}) || !slices.Contains(ctr.Args, "--config=/etc/nodewarden/agent.yaml") {
		t.Errorf("agent command %v args %v, want /nodewarden-agent --config=/etc/nodewarden/agent.yaml ...", ctr.Command, ctr.Args)
	}
	if !strings.HasPrefix(ctr.Image, "ghcr.io/nodewarden/nodewarden:") {
		t.Errorf("image %s", ctr.Image)
	}
	wantRes := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("24Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
	}
	for name, want := range wantRes.Requests {
		if got := ctr.Resources.Requests[name]; got.Cmp(want) != 0 {
			t.Errorf("request %s = %s, want %s", name, got.String(), want.String())
		}
	}
	for name, want := range wantRes.Limits {
		if got := ctr.Resources.Limits[name]; got.Cmp(want) != 0 {
			t.Errorf("limit %s = %s, want %s", name, got.String(), want.String())
		}
	}
	if ctr.LivenessProbe == nil || ctr.ReadinessProbe == nil {
		t.Error("agent has no liveness or readiness probe")
	}
}

// TestAgentPodHostNetwork: the host-network component (and the chart's
// agent.hostNetwork.enabled, which TestInstallsAgree holds equal to it)
// changes the agent's pod in exactly these ways: the node's network, cluster
// DNS kept, and the metrics and probe ports moved off 8080/8081, in the flags
// and the container ports alike. Nothing else, privileges included.
func TestAgentPodHostNetwork(t *testing.T) {
	agentPod := func(objs []*unstructured.Unstructured) corev1.PodSpec {
		return typed[appsv1.DaemonSet](t, index(t, objs), objKey{"DaemonSet", namespace, "nodewarden-agent"}).Spec.Template.Spec
	}
	want := agentPod(decode(t, kustomizeBuild(t, "config/default")))
	got := agentPod(decode(t, kustomizeBuild(t, overlay(t, []string{"config/default"}, []string{"config/agent/host-network"}))))

	want.HostNetwork, want.DNSPolicy = true, corev1.DNSClusterFirstWithHostNet
	ctr := &want.Containers[0]
	moved := map[string]string{"--metrics-bind-address=:8080": "--metrics-bind-address=:20258", "--health-probe-bind-address=:8081": "--health-probe-bind-address=:20259"}
	for i, a := range ctr.Args {
		if m, ok := moved[a]; ok {
			ctr.Args[i] = m
			delete(moved, a)
		}
	}
	if len(moved) != 0 {
		t.Fatalf("the default agent has no flags %v", moved)
	}
	for i, p := range ctr.Ports {
		switch p.Name {
		case "metrics":
			ctr.Ports[i].ContainerPort = 20258
		case "probes":
			ctr.Ports[i].ContainerPort = 20259
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the host-network agent pod differs from the default one in more than its network and ports (-want +got):\n%s", diff)
	}
}

// TestControllerPod: two leader-elected replicas, spread, with a PDB, and as
// locked down as the agent (it needs no host access at all).
func TestControllerPod(t *testing.T) {
	objs := index(t, decode(t, kustomizeBuild(t, "config/default")))
	dep := typed[appsv1.Deployment](t, objs, objKey{"Deployment", namespace, "nodewarden-controller"})
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 {
		t.Errorf("replicas %v, want 2", dep.Spec.Replicas)
	}
	pod := dep.Spec.Template.Spec
	ctr := pod.Containers[0]
	if ctr.Args[0] != "controller" || !slices.Contains(ctr.Args, "--leader-elect") {
		t.Errorf("controller args %v, want controller --leader-elect", ctr.Args)
	}
	if pod.Affinity == nil || pod.Affinity.PodAntiAffinity == nil {
		t.Error("controller replicas are not spread (no pod anti-affinity)")
	}
	if len(pod.Volumes) != 0 || pod.HostNetwork {
		t.Errorf("controller has volumes %v or host network", pod.Volumes)
	}
	sc := ctr.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Errorf("controller security context %+v / %+v", sc, pod.SecurityContext)
	}
	if objs[objKey{"PodDisruptionBudget", namespace, "nodewarden-controller"}] == nil {
		t.Error("no PodDisruptionBudget for the controller")
	}
}

// checkAgentConfined: the agent's container is not privileged, cannot gain
// privileges, has a read-only root filesystem and no capability, and runs
// as a user other than root under RuntimeDefault seccomp. Every install
// but config/agent/kmsg's (agent.kmsg.enabled) promises this.
func checkAgentConfined(t *testing.T, what string, pod corev1.PodSpec) {
	t.Helper()
	if len(pod.Containers) == 0 {
		t.Fatalf("%s: agent pod has no container", what)
	}
	sc, psc := pod.Containers[0].SecurityContext, pod.SecurityContext
	switch {
	case sc == nil || psc == nil:
		t.Errorf("%s: no security context", what)
	case sc.Privileged == nil || *sc.Privileged:
		t.Errorf("%s: agent container is privileged", what)
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Errorf("%s: agent container allows privilege escalation", what)
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Errorf("%s: agent's root file system is writable", what)
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0:
		t.Errorf("%s: agent capabilities %+v, want drop [ALL] and nothing added", what, sc.Capabilities)
	case psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 ||
		sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot || sc.RunAsUser != nil && *sc.RunAsUser == 0:
		t.Errorf("%s: agent may run as root", what)
	case psc.RunAsGroup == nil || *psc.RunAsGroup == 0 || sc.RunAsGroup != nil && *sc.RunAsGroup == 0:
		t.Errorf("%s: agent's primary group is root", what)
	case psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("%s: agent has no RuntimeDefault seccomp profile", what)
	}
}

// checkDefaultHostAccess: what every install gives the health checks — the
// node's /sys read-only at /host/sys, and an emptyDir on the node's disk
// (not memory: it must be the kubelet's filesystem), read-only, small.
func checkDefaultHostAccess(t *testing.T, what string, pod corev1.PodSpec) {
	t.Helper()
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	mountOf := func(path string) (corev1.VolumeMount, corev1.Volume, bool) {
		for _, m := range pod.Containers[0].VolumeMounts {
			if m.MountPath == path {
				return m, volumes[m.Name], true
			}
		}
		return corev1.VolumeMount{}, corev1.Volume{}, false
	}
	if m, v, ok := mountOf("/host/sys"); !ok {
		t.Errorf("%s: nothing is mounted at /host/sys", what)
	} else if hp := v.HostPath; hp == nil || hp.Path != "/sys" || hp.Type == nil || *hp.Type != corev1.HostPathDirectory ||
		!m.ReadOnly || m.SubPath != "" || m.MountPropagation != nil && *m.MountPropagation != corev1.MountPropagationNone {
		t.Errorf("%s: /host/sys is %+v from %+v, want hostPath /sys (type Directory), read-only", what, m, v.VolumeSource)
	}
	if m, v, ok := mountOf("/run/nodewarden/kubelet-fs"); !ok {
		t.Errorf("%s: nothing is mounted at /run/nodewarden/kubelet-fs", what)
	} else if ed := v.EmptyDir; ed == nil || ed.Medium != corev1.StorageMediumDefault ||
		ed.SizeLimit == nil || ed.SizeLimit.Cmp(resource.MustParse("1Mi")) != 0 || !m.ReadOnly || m.SubPath != "" {
		t.Errorf("%s: /run/nodewarden/kubelet-fs is %+v from %+v, want an emptyDir on the node's disk (medium \"\"), sizeLimit 1Mi, read-only", what, m, v.VolumeSource)
	}
}

// TestControllerHistoryFlags: the history's bounds reach the controller from
// Helm's values, and a release upgraded with --reuse-values from a chart
// without controller.history (no such key) gets the flags' defaults rather
// than a template error.
func TestControllerHistoryFlags(t *testing.T) {
	for _, tc := range []struct {
		set  []string
		want []string
	}{
		{nil, []string{"--history-max-records=1000", "--history-max-age=720h"}},
		{[]string{"--set", "controller.history=null"}, []string{"--history-max-records=1000", "--history-max-age=720h"}},
		{[]string{"--set", "controller.history.maxRecords=0", "--set-string", "controller.history.maxAge=0"}, []string{"--history-max-records=0", "--history-max-age=0"}},
		{[]string{"--set", "controller.history.maxRecords=50000", "--set", "controller.history.maxAge=2160h"}, []string{"--history-max-records=50000", "--history-max-age=2160h"}},
	} {
		objs := index(t, decode(t, helmTemplate(t, tc.set...)))
		dep := typed[appsv1.Deployment](t, objs, objKey{"Deployment", namespace, "nodewarden-controller"})
		args := dep.Spec.Template.Spec.Containers[0].Args
		for _, w := range tc.want {
			if !slices.Contains(args, w) {
				t.Errorf("helm template %v: controller args %v, want %s", tc.set, args, w)
			}
		}
	}
}
