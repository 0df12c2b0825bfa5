package cluster

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	certutil "k8s.io/client-go/util/cert"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// RealNodeName is the name of the node that level 3 runs a real kubelet for.
const RealNodeName = "real-node"

// RealNodeEnv, set to "required", turns every reason to skip a real-node test
// into a failure: hack/test.sh sets it where the machine can run one (root on
// Linux), so CI never passes by skipping them.
const RealNodeEnv = "NODEWARDEN_REAL_NODE"

// Where Debian's packages put what the node runs (hack/node-deps.sh installs them).
var (
	cniBinDirs   = []string{"/usr/lib/cni", "/opt/cni/bin"}
	hostBinaries = []string{"containerd", "containerd-shim-runc-v2", "runc", "iptables"}
)

const (
	// The bridge and the pod range of the real node's CNI configuration;
	// kwok's nodes use 10.244.0.0/16.
	realNodeBridge  = "nwtest0"
	realNodePodCIDR = "10.88.0.0/16"
	// The API server's Service IP: envtest's --service-cluster-ip-range is
	// 10.0.0.0/24, and the first address is the "kubernetes" Service.
	apiServiceIP = "10.0.0.1"
)

// RealNode is a node run by a real kubelet on this machine, with containerd
// and runc, a CNI bridge and kube-proxy: pods on it really run, as the
// ServiceAccount they name, and reach the API server through its Service.
type RealNode struct {
	Name string
	// IP is the node's InternalIP, this machine's first non-loopback IPv4
	// address: the API server listens on it too, so that pods reach it.
	IP string
	// Registry is the registry containerd pulls from.
	Registry *Registry
	// PauseImage runs until it is stopped; it is also the pod sandbox image.
	PauseImage string
	// LogDir holds containerd's, the kubelet's and kube-proxy's logs.
	LogDir string

	dir    string
	socket string
	procs  []*Process
}

// CRIEndpoint is the node's containerd CRI socket, as the kubelet is given
// it: unix:///path.
func (n *RealNode) CRIEndpoint() string { return "unix://" + n.socket }

// RealNodeUnavailable says why this machine cannot run a real node, or "".
func RealNodeUnavailable() string {
	if runtime.GOOS != "linux" {
		return "a real node needs Linux (cgroups, network namespaces, overlay mounts)"
	}
	if os.Geteuid() != 0 {
		return "a real node needs root: containerd and the kubelet mount filesystems, create cgroups, network interfaces and iptables rules"
	}
	for _, b := range hostBinaries {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Sprintf("%s is not installed: run hack/node-deps.sh (it installs Debian's containerd, runc, containernetworking-plugins and iptables)", b)
		}
	}
	if cniBinDir() == "" {
		return fmt.Sprintf("no CNI bridge plugin in %s: run hack/node-deps.sh", strings.Join(cniBinDirs, " or "))
	}
	for _, b := range []string{"kubelet", "kube-proxy"} {
		if _, err := binary(b); err != nil {
			return err.Error()
		}
	}
	probe := fmt.Sprintf("/sys/fs/cgroup/pids/nodewarden-probe-%d", os.Getpid())
	if _, err := os.Stat("/sys/fs/cgroup/pids"); err != nil {
		probe = fmt.Sprintf("/sys/fs/cgroup/nodewarden-probe-%d", os.Getpid())
	}
	if err := os.Mkdir(probe, 0o755); err != nil {
		return fmt.Sprintf("cgroups are not writable here (mkdir %s: %v): the kubelet could not create pod cgroups", probe, err)
	}
	_ = os.Remove(probe)
	if _, err := nodeIP(); err != nil {
		return err.Error()
	}
	return ""
}

func cniBinDir() string {
	for _, d := range cniBinDirs {
		if _, err := os.Stat(filepath.Join(d, "bridge")); err == nil {
			return d
		}
	}
	return ""
}

// nodeIP is the first IPv4 address of an interface that is up and not the
// loopback nor a bridge of ours.
func nodeIP() (string, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 || iface.Flags&net.FlagLoopback != 0 || iface.Name == realNodeBridge || strings.HasPrefix(iface.Name, "cni") || strings.HasPrefix(iface.Name, "veth") {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String(), nil
			}
		}
	}
	return "", errors.New("no non-loopback IPv4 address: a real node needs one as its InternalIP, for pods to reach the API server and the API server to reach the kubelet")
}

// realNodeLock makes one real node run at a time on this machine: the
// kubelet's cgroups, kube-proxy's iptables chains and the bridge are
// machine-wide. A second cluster waits for the first.
func realNodeLock(ctx context.Context) (func(), error) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "nodewarden-real-node.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("another real node runs on this machine (a test or `make run-local` holds %s): %w", f.Name(), ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// realNodePKI are the certificates a real node adds to the control plane.
type realNodePKI struct {
	dir string
	// caFile signs the API server's serving certificate, which names the
	// Service IP and the node IP besides loopback, as pods and the kubelet
	// reach it there.
	caFile string
	// kubeletClientCA signs the API server's client certificate for the
	// kubelet's port (logs, exec): the kubelet trusts only it.
	kubeletClientCA                  string
	kubeletClientCert, kubeletClient string
}

func newRealNodePKI(dir, ip string) (*realNodePKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &realNodePKI{dir: dir}
	certs, key, err := certutil.GenerateSelfSignedCertKey("localhost",
		[]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(ip), net.ParseIP(apiServiceIP)},
		[]string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"})
	if err != nil {
		return nil, err
	}
	// The bundle is the serving certificate followed by its CA.
	_, rest := pem.Decode(certs)
	p.caFile = filepath.Join(dir, "ca.crt")
	for _, f := range []struct {
		path string
		data []byte
	}{{filepath.Join(dir, "apiserver.crt"), certs}, {filepath.Join(dir, "apiserver.key"), key}, {p.caFile, rest}} {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return nil, err
		}
	}

	// envtest writes its ServiceAccount signing key only with the serving
	// certificate it makes itself.
	saCert, saKey, err := newCert("nodewarden-test-service-accounts", nil, nil)
	if err != nil {
		return nil, err
	}
	caCert, caKey, err := newCert("nodewarden-test-kubelet-client-ca", nil, nil)
	if err != nil {
		return nil, err
	}
	clientCert, clientKey, err := newCert(kubeletClientUser, caCert, caKey)
	if err != nil {
		return nil, err
	}
	p.kubeletClientCA = filepath.Join(dir, "kubelet-client-ca.crt")
	p.kubeletClientCert = filepath.Join(dir, "kubelet-client.crt")
	p.kubeletClient = filepath.Join(dir, "kubelet-client.key")
	for _, f := range []struct {
		path string
		data []byte
	}{
		{filepath.Join(dir, "sa-signer.crt"), pemCert(saCert)}, {filepath.Join(dir, "sa-signer.key"), pemKey(saKey)},
		{p.kubeletClientCA, pemCert(caCert)}, {p.kubeletClientCert, pemCert(clientCert)}, {p.kubeletClient, pemKey(clientKey)},
	} {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// newCert makes a CA certificate (parent nil) or a client certificate signed
// by parent, valid for a day.
func newCert(commonName string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: commonName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
		parent, parentKey = tmpl, key
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func pemKey(k *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		panic(err) // only for curves Go does not know
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

// The user the API server is to the kubelet (bound to system:kubelet-api-admin).
const kubeletClientUser = "nodewarden-test-apiserver-kubelet-client"

// configureRealNodeAPIServer sets what the API server needs for a real node:
// a serving certificate pods can verify at the Service IP, listening on the
// node IP, the Node authorizer, ServiceAccount admission (envtest turns it
// off, and without it pods get no token), and credentials for the kubelet.
func configureRealNodeAPIServer(env *envtest.Environment, pki *realNodePKI, ip string) error {
	api := env.ControlPlane.GetAPIServer()
	api.CertDir = pki.dir
	ca, err := os.ReadFile(pki.caFile)
	if err != nil {
		return err
	}
	api.CA = ca
	args := api.Configure()
	args.Set("bind-address", "0.0.0.0")
	args.Set("advertise-address", ip)
	args.Set("authorization-mode", "Node,RBAC")
	args.Set("disable-admission-plugins", "")
	args.Set("enable-admission-plugins", "NodeRestriction")
	args.Set("allow-privileged", "true")
	args.Set("kubelet-preferred-address-types", "InternalIP")
	args.Set("kubelet-client-certificate", pki.kubeletClientCert)
	args.Set("kubelet-client-key", pki.kubeletClient)
	return nil
}

// startRealNode runs containerd, the kubelet and kube-proxy for RealNodeName
// and waits until the node is Ready.
func (c *Cluster) startRealNode(ctx context.Context, pki *realNodePKI, ip string) (err error) {
	n := &RealNode{Name: RealNodeName, IP: ip, dir: filepath.Join(c.Dir, "node"), LogDir: c.Dir}
	c.RealNode = n
	n.socket = filepath.Join(n.dir, "containerd", "containerd.sock")
	for _, d := range []string{"containerd/root", "containerd/state", "containerd/certs.d", "cni/net.d", "cni/ipam", "kubelet", "pods-logs"} {
		if err := os.MkdirAll(filepath.Join(n.dir, d), 0o755); err != nil {
			return err
		}
	}

	if n.Registry, err = startRegistry(); err != nil {
		return err
	}
	pause, err := pauseImage(c.Dir)
	if err != nil {
		return err
	}
	if n.PauseImage, err = n.Registry.Push(ctx, "pause:nodewarden", pause); err != nil {
		return fmt.Errorf("push the pause image: %w", err)
	}
	if err := n.writeContainerdConfig(); err != nil {
		return err
	}
	containerd, err := exec.LookPath("containerd")
	if err != nil {
		return err
	}
	p, err := StartProcess(c.Dir, "containerd", containerd, "--config", filepath.Join(n.dir, "containerd", "config.toml"))
	if err != nil {
		return err
	}
	n.procs = append(n.procs, p)
	if err := n.waitCRI(ctx, p); err != nil {
		return err
	}

	// Identities: the kubelet as the Node authorizer expects it, kube-proxy
	// as the user the default RBAC policy binds system:node-proxier to.
	nodeKubeconfig, err := c.userKubeconfig("kubelet", envtest.User{Name: "system:node:" + n.Name, Groups: []string{"system:nodes"}})
	if err != nil {
		return err
	}
	proxyKubeconfig, err := c.userKubeconfig("kube-proxy", envtest.User{Name: "system:kube-proxy"})
	if err != nil {
		return err
	}
	if err := c.Client.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "nodewarden-test-apiserver-kubelet-client"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:kubelet-api-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: kubeletClientUser}},
	}); err != nil {
		return err
	}

	kubeletConfig, err := n.writeKubeletConfig(pki)
	if err != nil {
		return err
	}
	kubelet, _ := binary("kubelet")
	p, err = StartProcess(c.Dir, "kubelet", kubelet,
		"--config="+kubeletConfig,
		"--kubeconfig="+nodeKubeconfig,
		"--root-dir="+filepath.Join(n.dir, "kubelet"),
		"--cert-dir="+filepath.Join(n.dir, "kubelet", "pki"),
		"--hostname-override="+n.Name,
		"--node-ip="+ip,
		"--node-labels=type=real",
		"--v=2",
	)
	if err != nil {
		return err
	}
	n.procs = append(n.procs, p)

	kubeProxy, _ := binary("kube-proxy")
	// A kube-proxy that died with a test leaves its chains; start clean.
	if out, err := exec.CommandContext(ctx, kubeProxy, "--cleanup").CombinedOutput(); err != nil {
		return fmt.Errorf("kube-proxy --cleanup: %w\n%s", err, out)
	}
	proxyHealth, err := freePort()
	if err != nil {
		return err
	}
	proxyMetrics, err := freePort()
	if err != nil {
		return err
	}
	p, err = StartProcess(c.Dir, "kube-proxy", kubeProxy,
		"--kubeconfig="+proxyKubeconfig,
		"--hostname-override="+n.Name,
		"--proxy-mode=iptables",
		"--cluster-cidr="+realNodePodCIDR,
		// The kernel's conntrack table size is not ours to set here (and
		// not writable without CAP_NET_ADMIN in the init namespace).
		"--conntrack-max-per-core=0",
		"--healthz-bind-address=127.0.0.1:"+strconv.Itoa(proxyHealth),
		"--metrics-bind-address=127.0.0.1:"+strconv.Itoa(proxyMetrics),
		"--v=2",
	)
	if err != nil {
		return err
	}
	n.procs = append(n.procs, p)
	if err := p.waitHealthy(ctx, fmt.Sprintf("http://127.0.0.1:%d/healthz", proxyHealth)); err != nil {
		return err
	}
	return n.waitReady(ctx, c)
}

func (c *Cluster) userKubeconfig(name string, user envtest.User) (string, error) {
	u, err := c.Env.AddUser(user, nil)
	if err != nil {
		return "", err
	}
	data, err := u.KubeConfig()
	if err != nil {
		return "", err
	}
	path := filepath.Join(c.Dir, name+".kubeconfig")
	return path, os.WriteFile(path, data, 0o600)
}

func (n *RealNode) writeContainerdConfig() error {
	dir := filepath.Join(n.dir, "containerd")
	hosts := filepath.Join(dir, "certs.d", n.Registry.Host)
	if err := os.MkdirAll(hosts, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(hosts, "hosts.toml"), fmt.Appendf(nil,
		"server = \"http://%[1]s\"\n\n[host.\"http://%[1]s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", n.Registry.Host), 0o644); err != nil {
		return err
	}
	cni := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "nodewarden-test",
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, realNodeBridge, realNodePodCIDR, filepath.Join(n.dir, "cni", "ipam"))
	if err := os.WriteFile(filepath.Join(n.dir, "cni", "net.d", "10-nodewarden-test.conflist"), []byte(cni), 0o644); err != nil {
		return err
	}
	// restrict_oom_score_adj: without CAP_SYS_RESOURCE (as here) runc cannot
	// lower a container's oom_score_adj below its own, and every sandbox
	// fails with "can't get final child's PID from pipe: EOF".
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  enable_selinux = false

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q

  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), n.socket, n.socket+".ttrpc", filepath.Join(dir, "opt"),
		n.PauseImage, cniBinDir(), filepath.Join(n.dir, "cni", "net.d"), filepath.Join(dir, "certs.d"))
	return os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o644)
}

func (n *RealNode) writeKubeletConfig(pki *realNodePKI) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	health, err := freePort()
	if err != nil {
		return "", err
	}
	// failCgroupV1: this machine has cgroup v1 (hybrid). Eviction thresholds
	// are low so that a busy CI disk does not evict the test's pods.
	config := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
failSwapOn: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://%s
port: %d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %d
podLogsDir: %q
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %q
authorization:
  mode: Webhook
registerNode: true
serializeImagePulls: false
resolvConf: /etc/resolv.conf
evictionHard:
  memory.available: 50Mi
  nodefs.available: "1%%"
  nodefs.inodesFree: "1%%"
  imagefs.available: "1%%"
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
nodeStatusUpdateFrequency: 5s
syncFrequency: 10s
fileCheckFrequency: 10s
`, n.socket, port, health, filepath.Join(n.dir, "pods-logs"), pki.kubeletClientCA)
	path := filepath.Join(n.dir, "kubelet.yaml")
	return path, os.WriteFile(path, []byte(config), 0o644)
}

func (n *RealNode) cri(ctx context.Context) (runtimeapi.RuntimeServiceClient, func(), error) {
	conn, err := grpc.NewClient("unix://"+n.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, err
	}
	return runtimeapi.NewRuntimeServiceClient(conn), func() { conn.Close() }, nil
}

func (n *RealNode) waitCRI(ctx context.Context, p *Process) error {
	client, closeConn, err := n.cri(ctx)
	if err != nil {
		return err
	}
	defer closeConn()
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("containerd exited (%w); see %s", p.Err(), p.LogPath)
		}
		callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := client.Version(callCtx, &runtimeapi.VersionRequest{})
		return err == nil, nil
	})
}

func (n *RealNode) waitReady(ctx context.Context, c *Cluster) error {
	var last *corev1.Node
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, p := range n.procs {
			if p.Exited() {
				return false, fmt.Errorf("%s exited (%w); see %s", p.Name, p.Err(), p.LogPath)
			}
		}
		node, err := c.Clientset.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = node
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				return cond.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
	if err != nil && last != nil {
		return fmt.Errorf("real node %s not Ready: %w (conditions %v); see %s/kubelet.log", n.Name, err, last.Status.Conditions, n.LogDir)
	}
	return err
}

// stop takes the node down without leaving anything on the machine: the
// kubelet first, then every pod sandbox through the CRI (so the CNI plugin
// releases addresses and iptables rules), containerd, any shim still left,
// the mounts under the node's directory and the bridge.
func (n *RealNode) stop() {
	for i := len(n.procs) - 1; i >= 1; i-- { // kube-proxy, kubelet
		n.procs[i].Stop()
	}
	if len(n.procs) > 0 {
		if client, closeConn, err := n.cri(context.Background()); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if sandboxes, err := client.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err == nil {
				for _, s := range sandboxes.Items {
					_, _ = client.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: s.Id})
					_, _ = client.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: s.Id})
				}
			}
			cancel()
			closeConn()
		}
		n.procs[0].Stop()
	}
	n.procs = nil
	if kubeProxy, err := binary("kube-proxy"); err == nil {
		_ = exec.Command(kubeProxy, "--cleanup").Run()
	}
	killShims(n.socket)
	unmountUnder(n.dir)
	_ = exec.Command("ip", "link", "delete", realNodeBridge).Run()
	if n.Registry != nil {
		n.Registry.stop()
	}
}

// killShims kills the runc shims started by the containerd at socket (they
// outlive containerd by design) and what runs under them.
func killShims(socket string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range procs {
		cmdline, err := os.ReadFile(f)
		if err != nil || !strings.Contains(string(cmdline), "containerd-shim") || !strings.Contains(string(cmdline), socket) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		if err == nil {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// unmountUnder lazily unmounts every mount below dir, deepest first: the
// kubelet's tmpfs volumes and containerd's rootfs overlays.
func unmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var mounts []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			mounts = append(mounts, fields[4])
		}
	}
	slices.SortFunc(mounts, func(a, b string) int { return len(b) - len(a) })
	for _, m := range mounts {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
}
