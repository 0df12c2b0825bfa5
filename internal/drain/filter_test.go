package drain

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// pod is a Running pod owned by a ReplicaSet, with no volumes: evictable
// under any options. Each case changes what it is about.
func pod(change ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: "p",
			OwnerReferences: []metav1.OwnerReference{owner("apps/v1", "ReplicaSet")},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, c := range change {
		c(p)
	}
	return p
}

func owner(apiVersion, kind string) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: "owner", UID: "u", Controller: ptr.To(true)}
}

func ownedBy(refs ...metav1.OwnerReference) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.OwnerReferences = refs }
}

func annotated(kv ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Annotations = map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			p.Annotations[kv[i]] = kv[i+1]
		}
	}
}

func phase(ph corev1.PodPhase) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Status.Phase = ph }
}

func terminating(p *corev1.Pod) { p.DeletionTimestamp = &metav1.Time{Time: time.Now()} }

func withEmptyDir(p *corev1.Pod) {
	p.Spec.Volumes = append(p.Spec.Volumes,
		corev1.Volume{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}},
		corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
}

func TestJudge(t *testing.T) {
	mirror := annotated(corev1.MirrorPodAnnotationKey, "abc")
	daemonSet := ownedBy(owner("apps/v1", "DaemonSet"))
	bare := ownedBy()
	// An owner that is not the controller does not recreate the pod.
	nonController := ownedBy(metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "c", UID: "c"})
	protected := []string{"example.com/keep", "example.com/tier=gold"}

	tests := []struct {
		name string
		pod  *corev1.Pod
		opts Options
		want Verdict
	}{
		{"replicated pod", pod(), Options{}, Verdict{Action: Evict}},
		{"mirror pod", pod(mirror), Options{}, Verdict{Skip, "mirror pod of a static pod"}},
		{"mirror pod even when unreplicated and everything may be evicted", pod(mirror, bare),
			Options{EvictDaemonSetPods: true, EvictUnreplicatedPods: true}, Verdict{Skip, "mirror pod of a static pod"}},
		{"succeeded", pod(phase(corev1.PodSucceeded)), Options{}, Verdict{Skip, "finished (Succeeded)"}},
		{"failed, even unreplicated", pod(phase(corev1.PodFailed), bare), Options{}, Verdict{Skip, "finished (Failed)"}},
		{"pending pod is evicted", pod(phase(corev1.PodPending)), Options{}, Verdict{Action: Evict}},
		{"DaemonSet pod", pod(daemonSet), Options{}, Verdict{Skip, "DaemonSet pod (evictDaemonSetPods is false)"}},
		{"DaemonSet pod with evictDaemonSetPods", pod(daemonSet), Options{EvictDaemonSetPods: true}, Verdict{Action: Evict}},
		{"a DaemonSet of another group is no DaemonSet", pod(ownedBy(owner("example.com/v1", "DaemonSet"))), Options{}, Verdict{Action: Evict}},
		{"terminating pod is waited for", pod(terminating), Options{}, Verdict{Action: Wait}},
		{"terminating pod is waited for even if it would block", pod(terminating, bare, withEmptyDir, annotated("example.com/keep", "")),
			Options{ProtectedPodAnnotations: protected}, Verdict{Action: Wait}},
		{"terminating DaemonSet pod is skipped", pod(terminating, daemonSet), Options{}, Verdict{Skip, "DaemonSet pod (evictDaemonSetPods is false)"}},
		{"emptyDir blocks", pod(withEmptyDir), Options{},
			Verdict{Block, `uses emptyDir volume "scratch" (evictEmptyDirPods is false)`}},
		{"emptyDir with evictEmptyDirPods", pod(withEmptyDir), Options{EvictEmptyDirPods: true}, Verdict{Action: Evict}},
		{"unreplicated blocks", pod(bare), Options{},
			Verdict{Block, "has no controller to recreate it (evictUnreplicatedPods is false)"}},
		{"owner that is not a controller is unreplicated", pod(nonController), Options{},
			Verdict{Block, "has no controller to recreate it (evictUnreplicatedPods is false)"}},
		{"unreplicated with evictUnreplicatedPods", pod(bare), Options{EvictUnreplicatedPods: true}, Verdict{Action: Evict}},
		{"protected by key, any value", pod(annotated("example.com/keep", "")), Options{ProtectedPodAnnotations: protected},
			Verdict{Block, "protected by annotation example.com/keep"}},
		{"protected by key=value", pod(annotated("example.com/tier", "gold")), Options{ProtectedPodAnnotations: protected},
			Verdict{Block, "protected by annotation example.com/tier=gold"}},
		{"key=value with another value does not protect", pod(annotated("example.com/tier", "bronze")), Options{ProtectedPodAnnotations: protected},
			Verdict{Action: Evict}},
		{"protected even when everything may be evicted", pod(annotated("example.com/keep", "yes")),
			Options{EvictDaemonSetPods: true, EvictEmptyDirPods: true, EvictUnreplicatedPods: true, ProtectedPodAnnotations: protected},
			Verdict{Block, "protected by annotation example.com/keep"}},
		{"do-not-disrupt is protected when honored", pod(annotated("karpenter.sh/do-not-disrupt", "true")), Options{HonorDisruptionAnnotations: true},
			Verdict{Block, "protected by annotation karpenter.sh/do-not-disrupt=true (honorDisruptionAnnotations is true)"}},
		{"safe-to-evict=false is protected when honored", pod(annotated("cluster-autoscaler.kubernetes.io/safe-to-evict", "false")), Options{HonorDisruptionAnnotations: true},
			Verdict{Block, "protected by annotation cluster-autoscaler.kubernetes.io/safe-to-evict=false (honorDisruptionAnnotations is true)"}},
		{"safe-to-evict=true is not protected", pod(annotated("cluster-autoscaler.kubernetes.io/safe-to-evict", "true")), Options{HonorDisruptionAnnotations: true},
			Verdict{Action: Evict}},
		{"do-not-disrupt is evicted when not honored", pod(annotated("karpenter.sh/do-not-disrupt", "true")), Options{},
			Verdict{Action: Evict}},
		{"every reason to block is named", pod(bare, withEmptyDir, annotated("example.com/keep", "")), Options{ProtectedPodAnnotations: protected},
			Verdict{Block, `protected by annotation example.com/keep, uses emptyDir volume "scratch" (evictEmptyDirPods is false), has no controller to recreate it (evictUnreplicatedPods is false)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Judge(tt.pod, tt.opts); got != tt.want {
				t.Errorf("Judge = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPlanDrainGroupsPods(t *testing.T) {
	named := func(name string) func(*corev1.Pod) { return func(p *corev1.Pod) { p.Name = name } }
	pods := []corev1.Pod{
		*pod(named("web")),
		*pod(named("going"), terminating),
		*pod(named("agent"), ownedBy(owner("apps/v1", "DaemonSet"))),
		*pod(named("bare"), ownedBy()),
	}
	pl := planDrain(pods, Options{})
	if len(pl.evict) != 1 || pl.evict[0].Name != "web" {
		t.Errorf("evict = %v, want [web]", pl.evict)
	}
	if len(pl.wait) != 1 || pl.wait[0].Name != "going" {
		t.Errorf("wait = %v, want [going]", pl.wait)
	}
	if got := describe(pl.skipped); got != "ns/agent (DaemonSet pod (evictDaemonSetPods is false))" {
		t.Errorf("skipped = %s", got)
	}
	if got := describe(pl.blocked); got != "ns/bare (has no controller to recreate it (evictUnreplicatedPods is false))" {
		t.Errorf("blocked = %s", got)
	}
}

func TestGracePeriod(t *testing.T) {
	own := func(s int64) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = &s }
	}
	const far = time.Hour
	tests := []struct {
		name  string
		pod   *corev1.Pod
		limit *int64
		left  time.Duration
		want  *int64
	}{
		{"no limit leaves the pod's own", pod(own(600)), nil, far, nil},
		{"limit shortens a longer period", pod(own(600)), ptr.To[int64](60), far, ptr.To[int64](60)},
		{"limit keeps a shorter period", pod(own(10)), ptr.To[int64](60), far, ptr.To[int64](10)},
		{"unset period is the default 30s", pod(), ptr.To[int64](60), far, ptr.To[int64](30)},
		{"limit 0 kills at once", pod(own(600)), ptr.To[int64](0), far, ptr.To[int64](0)},
		{"a period that ends by the deadline stays the pod's own", pod(own(20)), nil, 20 * time.Second, nil},
		{"the deadline shortens the pod's own", pod(own(300)), nil, 20 * time.Second, ptr.To[int64](20)},
		{"to whole seconds, rounded down", pod(own(300)), nil, 19900 * time.Millisecond, ptr.To[int64](19)},
		{"the deadline shortens a limit", pod(own(600)), ptr.To[int64](60), 30 * time.Second, ptr.To[int64](30)},
		{"not below the floor", pod(own(300)), nil, time.Second, ptr.To[int64](5)},
		{"not below the floor once the deadline passed", pod(own(300)), nil, -time.Minute, ptr.To[int64](5)},
		{"a shorter own period is not raised to the floor", pod(own(3)), nil, time.Second, nil},
		{"a limit below the floor is kept", pod(own(300)), ptr.To[int64](2), time.Second, ptr.To[int64](2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := gracePeriod(tt.pod, tt.limit, tt.left)
			if (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
				t.Errorf("gracePeriod = %v, want %v", show(got), show(tt.want))
			}
		})
	}
}

func show(p *int64) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

func TestOptionsFrom(t *testing.T) {
	// A spec the API server did not default: emptyDir pods are evicted, as
	// the CRD's default says.
	got := OptionsFrom(v1alpha1.DrainSpec{}).withDefaults()
	if !got.EvictEmptyDirPods || got.EvictUnreplicatedPods || got.EvictDaemonSetPods ||
		got.Parallelism != DefaultParallelism || got.GracePeriodSeconds != nil || !got.HonorDisruptionAnnotations {
		t.Errorf("OptionsFrom(empty spec) = %+v", got)
	}
	got = OptionsFrom(v1alpha1.DrainSpec{
		GracePeriodSeconds:         ptr.To[int64](5),
		EvictDaemonSetPods:         true,
		EvictEmptyDirPods:          ptr.To(false),
		EvictUnreplicatedPods:      true,
		ProtectedPodAnnotations:    []string{"k"},
		HonorDisruptionAnnotations: ptr.To(false),
	})
	if *got.GracePeriodSeconds != 5 || !got.EvictDaemonSetPods || got.EvictEmptyDirPods ||
		!got.EvictUnreplicatedPods || len(got.ProtectedPodAnnotations) != 1 || got.HonorDisruptionAnnotations {
		t.Errorf("OptionsFrom(full spec) = %+v", got)
	}
}

func TestMessagesStayShort(t *testing.T) {
	var refs []PodRef
	for i := range 8 {
		refs = append(refs, PodRef{Namespace: "ns", Name: fmt.Sprintf("p%d", i)})
	}
	if got, want := describe(refs), "ns/p0, ns/p1, ns/p2, ns/p3, ns/p4, and 3 more"; got != want {
		t.Errorf("describe = %q, want %q", got, want)
	}

	// What a PDB that allows nothing leaves: long reasons, as many pods as fit.
	refs = nil
	for i := range 8 {
		refs = append(refs, PodRef{Namespace: "shop", Name: fmt.Sprintf("web-785c4fdc7c-%05d", i),
			Reason: "eviction refused: The disruption budget web needs 10 healthy pods and has 10 currently"})
	}
	got := describe(refs)
	if len(got) > maxDescription || !strings.HasPrefix(got, refs[0].String()+", "+refs[1].String()) || !strings.HasSuffix(got, " more") {
		t.Errorf("describe = %q (%d bytes), want the first pods and a count of the others in at most %d bytes", got, len(got), maxDescription)
	}

	huge := []PodRef{{Namespace: "ns", Name: "p", Reason: "webhook said:\n" + strings.Repeat("é", 400)}}
	got = describe(huge)
	if len(got) > maxDescription || strings.Contains(got, "\n") || !utf8.ValidString(got) || !strings.HasPrefix(got, "ns/p (webhook said: é") {
		t.Errorf("describe = %q (%d bytes), want one valid line of at most %d bytes", got, len(got), maxDescription)
	}
}

func TestReasonIsThePDBCause(t *testing.T) {
	err := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0)
	err.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: policyv1.DisruptionBudgetCause, Message: "The disruption budget web needs 3 healthy pods and has 3 currently"}}
	if got, want := reason(err), "The disruption budget web needs 3 healthy pods and has 3 currently"; got != want {
		t.Errorf("reason = %q, want %q", got, want)
	}
	invalid := apierrors.NewInvalid(schema.GroupKind{Kind: "Eviction"}, "p", field.ErrorList{field.Invalid(field.NewPath("deleteOptions"), 1, "bad")})
	if got := reason(invalid); !strings.HasPrefix(got, invalid.ErrStatus.Message+" ") {
		t.Errorf("reason(invalid) = %q, want the message and its causes", got)
	}
	if got := reason(errors.New("boom")); got != "boom" {
		t.Errorf("reason(plain error) = %q", got)
	}
}

func TestMultiplePDBRefusal(t *testing.T) {
	// As the API server sends it: a Status with code 500 and no reason.
	multiple := apierrors.FromObject(&metav1.Status{Status: metav1.StatusFailure, Code: http.StatusInternalServerError,
		Message: "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."})
	tests := []struct {
		err  error
		want bool
	}{
		{multiple, true},
		{apierrors.NewInternalError(errors.New("etcd is down")), false},
		{apierrors.NewTooManyRequests("more than one PodDisruptionBudget", 0), false},
		{errors.New("This pod has more than one PodDisruptionBudget"), false},
	}
	for _, tt := range tests {
		if got := isMultiplePDBRefusal(tt.err); got != tt.want {
			t.Errorf("isMultiplePDBRefusal(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
