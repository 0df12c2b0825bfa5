package agent_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/controllers"
	"github.com/nodewarden/nodewarden/internal/agent"
	"github.com/nodewarden/nodewarden/internal/agent/nodeevent"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// fakeIMDSv2 is an EC2 instance metadata service that speaks IMDSv2 only:
// no GET without a token from PUT /latest/api/token.
type fakeIMDSv2 struct {
	mu        sync.Mutex
	tokens    map[string]bool
	scheduled string
	rejected  int
}

func (f *fakeIMDSv2) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path == "/latest/api/token" {
		ttl, err := strconv.Atoi(r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds"))
		if r.Method != http.MethodPut || err != nil || ttl < 1 || ttl > 21600 {
			f.rejected++
			http.Error(w, "bad token request", http.StatusBadRequest)
			return
		}
		tok := "t" + strconv.Itoa(len(f.tokens))
		f.tokens[tok] = true
		_, _ = io.WriteString(w, tok)
		return
	}
	if r.Method != http.MethodGet || !f.tokens[r.Header.Get("X-aws-ec2-metadata-token")] {
		f.rejected++
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if r.URL.Path == "/latest/meta-data/events/maintenance/scheduled" {
		_, _ = io.WriteString(w, f.scheduled)
		return
	}
	http.NotFound(w, r) // spot/instance-action: no interruption
}

// The whole path on a real control plane: an EC2 scheduled reboot read from
// a fake IMDSv2 endpoint becomes HostEventRebootAfter48=True on the Node, and
// the controller cordons and drains that node.
func TestMetadataAWSScheduledRebootDrainsNode(t *testing.T) {
	c := cluster.StartFull(t)
	ctrl.SetLogger(zap.New(zap.WriteTo(io.Discard))) // client-go's reflectors log through it
	ctx := t.Context()
	for _, n := range []string{"n1", "n2", "n3"} {
		if _, err := c.AddNode(ctx, n, cluster.NodeOptions{Labels: map[string]string{"pool": "web"}}); err != nil {
			t.Fatal(err)
		}
	}
	deployOnePodPerNode(t, c, 3)

	startRemediationController(t, c)
	policy := &v1alpha1.RemediationPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "cloud-maintenance"},
		Spec: v1alpha1.RemediationPolicySpec{
			NodeSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"pool": "web"}},
			Conditions:   []v1alpha1.ConditionRule{{Type: "HostEventRebootAfter48"}},
			Drain:        v1alpha1.DrainSpec{Timeout: metav1.Duration{Duration: 2 * time.Minute}},
		},
	}
	if err := c.Client.Create(ctx, policy); err != nil {
		t.Fatal(err)
	}

	// The agent of n1, with the metadata source reading the fake endpoint.
	scheduled, err := os.ReadFile("metadata/testdata/aws/scheduled.json")
	if err != nil {
		t.Fatal(err)
	}
	imds := &fakeIMDSv2{tokens: map[string]bool{}, scheduled: string(scheduled)}
	srv := httptest.NewServer(imds)
	t.Cleanup(srv.Close)
	cfg := &v1alpha1.AgentConfig{}
	cfg.Default()
	cfg.HostEventLog.Path = ptr.To("")
	cfg.Metadata.Provider = v1alpha1.MetadataProviderAWS
	cfg.Metadata.AWS.Endpoint = srv.URL
	cfg.Metadata.AWS.PollInterval.Duration = time.Second
	cfg.Metadata.AWS.SpotPollInterval.Duration = time.Second
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatal(errs.ToAggregate())
	}
	runMetadataAgent(t, c, "n1", cfg)

	cluster.Eventually(t, 30*time.Second, func() error {
		n, err := c.Clientset.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == "HostEventRebootAfter48" && cond.Status == corev1.ConditionTrue &&
				cond.Reason == "AWSSystemRebootScheduled" && cond.Message == "AWS.SystemReboot is Scheduled, not before 2019-01-21T09:00:43Z" {
				return nil
			}
		}
		return fmt.Errorf("node n1 has no HostEventRebootAfter48=True from the metadata endpoint: %+v", n.Status.Conditions)
	})
	cluster.Eventually(t, 2*time.Minute, func() error {
		n, err := c.Clientset.CoreV1().Nodes().Get(ctx, "n1", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got := n.Annotations[v1alpha1.AnnotationState]; got != string(v1alpha1.StateDrained) || !n.Spec.Unschedulable {
			return fmt.Errorf("node n1: state %q, unschedulable %v; want Drained and cordoned", got, n.Spec.Unschedulable)
		}
		if want := "HostEventRebootAfter48=True"; n.Annotations[v1alpha1.AnnotationTrigger] != want {
			return fmt.Errorf("node n1: trigger %q, want %q", n.Annotations[v1alpha1.AnnotationTrigger], want)
		}
		return nil
	})
	pods, err := c.Clientset.CoreV1().Pods("default").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=n1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			t.Errorf("pod %s still on the drained node n1", p.Name)
		}
	}
	for _, n := range []string{"n2", "n3"} {
		got, err := c.Clientset.CoreV1().Nodes().Get(ctx, n, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.Unschedulable || got.Annotations[v1alpha1.AnnotationState] != "" {
			t.Errorf("node %s, without a maintenance event, was taken", n)
		}
	}
	// The Warning Event about the maintenance, on the Node.
	evs, err := c.Clientset.CoreV1().Events(nodeevent.Namespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=n1,reason=AWSSystemRebootScheduled"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs.Items) != 1 || evs.Items[0].Type != corev1.EventTypeWarning {
		t.Errorf("Events AWSSystemRebootScheduled on n1: %+v, want one Warning", evs.Items)
	}
	imds.mu.Lock()
	defer imds.mu.Unlock()
	if imds.rejected != 0 {
		t.Errorf("the fake IMDSv2 rejected %d requests (no token, no TTL header)", imds.rejected)
	}
}

// runMetadataAgent runs the agent of node in-process with cfg.
func runMetadataAgent(t *testing.T, c *cluster.Cluster, node string, cfg *v1alpha1.AgentConfig) {
	t.Helper()
	a, err := agent.New(agent.Options{
		NodeName:  node,
		Namespace: "default", // for the Lease
		Client:    cluster.AgentClient(t, c.Config),
		Config:    cfg,
		BootTime:  time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), // before the fixture's event, which is then not taken as done
		Log:       testr.New(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// startRemediationController runs the reconciler in-process as `nodewarden
// controller` wires it.
func startRemediationController(t *testing.T, c *cluster.Cluster) {
	t.Helper()
	log := testr.New(t)
	mgr, err := ctrl.NewManager(c.Config, controllers.ManagerOptions(ctrl.Options{
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 log,
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if err := controllers.Setup(mgr, controllers.Options{
		Clientset: kubernetes.NewForConfigOrDie(c.Config), Registerer: prometheus.NewRegistry(), Log: log,
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// deployOnePodPerNode runs a Deployment of n replicas spread over the nodes
// and waits until every replica is available.
func deployOnePodPerNode(t *testing.T, c *cluster.Cluster, n int32) {
	t.Helper()
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(n),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "web", Image: "registry.k8s.io/pause:3.10"}},
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew: 1, TopologyKey: "kubernetes.io/hostname", WhenUnsatisfiable: corev1.DoNotSchedule,
						LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
					}},
				},
			},
		},
	}
	if _, err := c.Clientset.AppsV1().Deployments("default").Create(t.Context(), dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 90*time.Second, func() error {
		d, err := c.Clientset.AppsV1().Deployments("default").Get(t.Context(), "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if d.Status.AvailableReplicas != n {
			return fmt.Errorf("deployment web: %d/%d available", d.Status.AvailableReplicas, n)
		}
		return nil
	})
}
