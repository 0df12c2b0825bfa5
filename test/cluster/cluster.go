// Package cluster starts a real Kubernetes control plane on loopback for tests,
// from the binaries `make k8s-bins` builds into bin/.
//
// Level 1 (Start): etcd + kube-apiserver via envtest, nodewarden's CRDs
// installed. Enough for anything the API server itself enforces: validation,
// RBAC, admission policies, patch semantics, conflicts.
//
// Level 2 (StartFull): plus kube-controller-manager, kube-scheduler and kwok,
// so Deployments get pods, pods get scheduled onto simulated nodes and run,
// PodDisruptionBudgets get their status from the real disruption controller,
// and evictions are refused with 429 when a PDB says so.
//
// Level 3 (Options.RealNode): plus one real node, RealNodeName, run by a
// kubelet built from source with Debian's containerd and runc, a CNI bridge
// and kube-proxy, pulling from a registry in the test process: pods on it
// really run, as their ServiceAccount, and reach the API server through its
// Service. It needs root; RealNodeUnavailable says why a machine cannot run
// it, and the test is skipped with that reason (failed when RealNodeEnv is
// "required", as hack/test.sh sets it on machines that can). One real node
// runs on a machine at a time; a second waits for it.
//
// Every process is stopped by t.Cleanup, and is killed by the kernel if the
// test binary dies first. Ports are picked free, so packages run in parallel.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	nodewardenv1alpha1 "github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/agent/apiclient"
)

// KwokNodeAnnotation marks the nodes kwok simulates a kubelet for.
const KwokNodeAnnotation = "kwok.x-k8s.io/node"

// KwokDisregardAnnotation set to "true" on a Node or a Pod makes kwok leave
// it alone (kwok's --disregard-status-with-annotation-selector): no status
// updates, and a deleted pod is never finished, as with a kubelet that is
// gone. (kwok also stops acting for a node whose Lease someone else holds,
// but for pods only when its node controller happened to start before its
// pod controller: kwok v0.8.0 starts them in map order.)
const KwokDisregardAnnotation = "nodewarden.test/kwok-disregard"

// Options tune a cluster. The zero value is a level-1 cluster with the CRDs
// from config/crd/bases.
type Options struct {
	// Full adds kube-controller-manager, kube-scheduler and kwok (level 2).
	Full bool
	// CRDDirectories to install; default config/crd/bases.
	CRDDirectories []string
	// APIServerFlags are extra kube-apiserver flags, e.g. {"feature-gates": "..."}.
	APIServerFlags map[string]string
	// ControllerManagerFlags are extra kube-controller-manager flags
	// ("--name=value"), given after the defaults, so they override them:
	// e.g. "--node-monitor-grace-period=30s" for a test that needs the node
	// lifecycle controller to mark a node whose heartbeats stopped NotReady
	// (the default here, 1h, keeps that out of the way of other tests).
	ControllerManagerFlags []string
	// RealNode adds a real kubelet node (level 3; implies Full).
	RealNode bool
}

// Cluster is a running control plane.
type Cluster struct {
	// Config is an admin (system:masters) client configuration.
	Config *rest.Config
	// Client is a controller-runtime client that knows nodewarden's types.
	Client client.Client
	// Clientset is a typed client-go client.
	Clientset kubernetes.Interface
	// Kubeconfig is an admin kubeconfig file, for processes (kubectl, bin/nodewarden).
	Kubeconfig string
	// Dir holds the kubeconfig and the components' logs.
	Dir string
	// Env is the envtest environment behind level 1.
	Env *envtest.Environment
	// RealNode is the level-3 node, nil below level 3.
	RealNode *RealNode

	procs          []*Process
	unlockRealNode func()
}

// Scheme is the scheme of Cluster.Client: client-go's types and nodewarden's.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := nodewardenv1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// Start runs a level-1 cluster (etcd + kube-apiserver) for the test.
func Start(t testing.TB) *Cluster { return StartWith(t, Options{}) }

// StartFull runs a level-2 cluster (adds controller-manager, scheduler, kwok).
func StartFull(t testing.TB) *Cluster { return StartWith(t, Options{Full: true}) }

// StartWith runs a cluster with the given options and stops it when the test ends.
//
// Under `go test -short` the test is skipped: -short means "no control plane".
func StartWith(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a control plane; skipped with -short")
	}
	if opts.RealNode {
		if why := RealNodeUnavailable(); why != "" {
			if os.Getenv(RealNodeEnv) == "required" {
				t.Fatalf("%s=required, but this machine cannot run a real node: %s", RealNodeEnv, why)
			}
			t.Skipf("needs a real node, which this machine cannot run: %s", why)
		}
	}
	c, err := New(opts)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}

// New starts a cluster outside of a test (e.g. `make run-local`); the caller
// must call Stop.
func New(opts Options) (c *Cluster, err error) {
	dir, err := os.MkdirTemp("", "nodewarden-cluster-")
	if err != nil {
		return nil, err
	}
	started := &Cluster{Dir: dir}
	c = started
	defer func() {
		// Not c: `return nil, err` has cleared it by now, and what was
		// started must still be stopped.
		if err != nil {
			started.Stop()
		}
	}()
	var pki *realNodePKI
	var ip string
	if opts.RealNode {
		opts.Full = true
		if why := RealNodeUnavailable(); why != "" {
			return nil, errors.New(why)
		}
		lockCtx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		unlock, err := realNodeLock(lockCtx)
		cancel()
		if err != nil {
			return nil, err
		}
		c.unlockRealNode = unlock
		if ip, err = nodeIP(); err != nil {
			return nil, err
		}
		if pki, err = newRealNodePKI(filepath.Join(dir, "pki"), ip); err != nil {
			return nil, err
		}
		// Publishes the kube-root-ca.crt ConfigMap that every pod's
		// ServiceAccount volume holds.
		opts.ControllerManagerFlags = append([]string{"--root-ca-file=" + pki.caFile}, opts.ControllerManagerFlags...)
	}
	if err := c.startAPIServer(opts, pki, ip); err != nil {
		return nil, err
	}
	if opts.Full {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := c.startControllers(ctx, opts); err != nil {
			return nil, err
		}
	}
	if opts.RealNode {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
		defer cancel()
		if err := c.startRealNode(ctx, pki, ip); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Cluster) startAPIServer(opts Options, pki *realNodePKI, ip string) error {
	assets, err := c.wrapBinaries("etcd", "kube-apiserver", "kubectl")
	if err != nil {
		return err
	}
	crds := opts.CRDDirectories
	if crds == nil {
		crds = []string{filepath.Join(RepoRoot(), "config", "crd", "bases")}
	}
	scheme := Scheme()
	c.Env = &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     crds,
		ErrorIfCRDPathMissing: false,
		Scheme:                scheme,
		// envtest's 20 s is too short for kube-apiserver on two loaded
		// cores (seen in make test while benchmarks ran): it then retries
		// five times and fails a test that has nothing wrong with it.
		ControlPlaneStartTimeout: 2 * time.Minute,
	}
	api := c.Env.ControlPlane.GetAPIServer()
	if pki != nil {
		if err := configureRealNodeAPIServer(c.Env, pki, ip); err != nil {
			return err
		}
	}
	for k, v := range opts.APIServerFlags {
		api.Configure().Set(k, v)
	}
	cfg, err := c.Env.Start()
	if err != nil {
		return fmt.Errorf("envtest: %w", err)
	}
	c.Config = cfg

	admin, err := c.Env.AddUser(envtest.User{Name: "nodewarden-test-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return err
	}
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, kubeconfig, 0o600); err != nil {
		return err
	}
	if c.Client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	c.Clientset, err = kubernetes.NewForConfig(cfg)
	return err
}

// wrapBinaries gives envtest launchers that make the kernel kill etcd and
// kube-apiserver when the test binary dies: envtest starts them in their own
// process group, so a -timeout panic or ^C would otherwise leave them running.
func (c *Cluster) wrapBinaries(names ...string) (string, error) {
	dir := filepath.Join(c.Dir, "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	launcher := "#!/bin/sh\nexec setpriv --pdeathsig KILL %q \"$@\"\n"
	if _, err := os.Stat("/usr/bin/setpriv"); err != nil {
		launcher = "#!/bin/sh\nexec %q \"$@\"\n"
	}
	for _, name := range names {
		real, err := binary(name)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, name), fmt.Appendf(nil, launcher, real), 0o755); err != nil {
			return "", err
		}
	}
	return dir, nil
}

func (c *Cluster) startControllers(ctx context.Context, opts Options) error {
	certDir := c.Env.ControlPlane.APIServer.CertDir
	kubeconfigFlags := []string{
		"--kubeconfig=" + c.Kubeconfig,
		"--authentication-kubeconfig=" + c.Kubeconfig,
		"--authorization-kubeconfig=" + c.Kubeconfig,
		"--bind-address=127.0.0.1",
		"--leader-elect=false",
	}

	kcmPort, err := freePort()
	if err != nil {
		return err
	}
	kcmFlags := append(slices.Clone(kubeconfigFlags),
		"--secure-port="+portString(kcmPort),
		// Signs the ServiceAccount tokens the tokens controller would need;
		// the same key envtest gave the API server.
		"--service-account-private-key-file="+filepath.Join(certDir, "sa-signer.key"),
		"--use-service-account-credentials=false",
		"--controllers=*",
		// Simulated nodes never go away on their own; keep eviction of
		// pods from NotReady nodes out of the way of the tests.
		"--node-monitor-grace-period=1h",
		"--concurrent-deployment-syncs=10",
		"--concurrent-replicaset-syncs=10",
	)
	kcmFlags = append(kcmFlags, opts.ControllerManagerFlags...) // later flags win
	if _, err := c.start(ctx, "kube-controller-manager", fmt.Sprintf("https://127.0.0.1:%d/healthz", kcmPort), kcmFlags...); err != nil {
		return err
	}

	schedPort, err := freePort()
	if err != nil {
		return err
	}
	if _, err := c.start(ctx, "kube-scheduler", fmt.Sprintf("https://127.0.0.1:%d/healthz", schedPort),
		append(kubeconfigFlags, "--secure-port="+portString(schedPort))...); err != nil {
		return err
	}

	kwokPort, err := freePort()
	if err != nil {
		return err
	}
	stages, err := binary("kwok-stages")
	if err != nil {
		return err
	}
	_, err = c.start(ctx, "kwok", fmt.Sprintf("http://127.0.0.1:%d/healthz", kwokPort),
		"--kubeconfig="+c.Kubeconfig,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+KwokNodeAnnotation+"=fake",
		"--disregard-status-with-annotation-selector="+KwokDisregardAnnotation+"=true",
		"--node-ip=10.244.0.1",
		"--cidr=10.244.0.0/16",
		"--node-lease-duration-seconds=40",
		"--server-address=127.0.0.1:"+portString(kwokPort),
		"--config="+filepath.Join(stages, "node-fast.yaml"),
		"--config="+filepath.Join(stages, "pod-fast.yaml"),
	)
	return err
}

func (c *Cluster) start(ctx context.Context, name, healthURL string, args ...string) (*Process, error) {
	path, err := binary(name)
	if err != nil {
		return nil, err
	}
	p, err := StartProcess(c.Dir, name, path, args...)
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, p)
	return p, p.waitHealthy(ctx, healthURL)
}

// Stop stops every component, newest first, and removes the cluster's files.
func (c *Cluster) Stop() {
	if c.RealNode != nil {
		c.RealNode.stop()
		c.RealNode = nil
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].Stop()
	}
	c.procs = nil
	if c.Env != nil {
		_ = c.Env.Stop()
		c.Env = nil
	}
	if c.Dir != "" && os.Getenv("NODEWARDEN_KEEP_CLUSTER_DIR") == "" {
		_ = os.RemoveAll(c.Dir)
	}
	if c.unlockRealNode != nil {
		c.unlockRealNode()
		c.unlockRealNode = nil
	}
}

// NodeOptions shape a simulated node.
type NodeOptions struct {
	Labels map[string]string
	// Unschedulable creates the node already cordoned (as a human would have).
	Unschedulable bool
}

// AddNode creates a node that kwok runs (level 2 only) and waits until it is Ready.
func (c *Cluster) AddNode(ctx context.Context, name string, opts NodeOptions) (*corev1.Node, error) {
	labels := map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok"}
	for k, v := range opts.Labels {
		labels[k] = v
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Labels:      labels,
			Annotations: map[string]string{KwokNodeAnnotation: "fake"},
		},
		Spec: corev1.NodeSpec{Unschedulable: opts.Unschedulable},
		Status: corev1.NodeStatus{
			Capacity:    capacity,
			Allocatable: capacity,
		},
	}
	created, err := c.Clientset.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		n, err := c.Clientset.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		created = n
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("node %s never became Ready (is kwok running? this needs StartFull): %w", name, err)
	}
	return created, nil
}

// AgentClient is the agent's own API client (internal/agent/apiclient) for
// cfg, so a test runs the agent's parts with the credentials it chooses.
func AgentClient(t testing.TB, cfg *rest.Config) *apiclient.Client {
	t.Helper()
	client, err := apiclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return client
}
