// Command localcluster runs the test control plane (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kwok) with a few simulated nodes
// and, where the machine can run one (level 3: root, writable cgroups,
// containerd), a real kubelet node with a local registry, until interrupted,
// and prints how to reach it.
//
// The kubeconfig is written to -kubeconfig-out once every node is Ready, so
// a script can start it in the background and wait for that file. The
// cluster's files (etcd data, certificates, logs) live under $TMPDIR and are
// removed when it stops on SIGINT or SIGTERM; its components die with it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/nodewarden/nodewarden/test/cluster"
)

func main() {
	nodes := flag.Int("nodes", 3, "number of kwok nodes to create")
	realNode := flag.String("real-node", "auto", "run a real kubelet node too: auto (where the machine can), true, false")
	kubeconfigOut := flag.String("kubeconfig-out", filepath.Join(os.TempDir(), "nodewarden-local.kubeconfig"), "where to copy the admin kubeconfig")
	flag.Parse()

	if err := run(*nodes, *realNode, *kubeconfigOut); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
}

func run(nodes int, realNode, kubeconfigOut string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	opts := cluster.Options{Full: true}
	switch why := cluster.RealNodeUnavailable(); {
	case realNode == "false":
	case why == "":
		opts.RealNode = true
	case realNode == "true":
		return fmt.Errorf("-real-node=true: %s", why)
	default:
		fmt.Printf("No real node: %s\n", why)
	}
	c, err := cluster.New(opts)
	if err != nil {
		return err
	}
	defer c.Stop()
	for i := 1; i <= nodes; i++ {
		if _, err := c.AddNode(ctx, fmt.Sprintf("node-%d", i), cluster.NodeOptions{}); err != nil {
			return err
		}
	}
	kubeconfig, err := os.ReadFile(c.Kubeconfig)
	if err != nil {
		return err
	}
	// Written last and atomically: a script that waits for the file (hack/demo.sh)
	// sees it only once every node is Ready, and never half-written.
	tmp := kubeconfigOut + ".tmp"
	if err := os.WriteFile(tmp, kubeconfig, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, kubeconfigOut); err != nil {
		return err
	}
	fmt.Printf("Local control plane is up with %d kwok nodes.\n", nodes)
	if n := c.RealNode; n != nil {
		fmt.Printf("Real node %s (kubelet, containerd, runc) at %s; it pulls from the registry at %s:\n  go run ./hack/image -platforms linux/%s -push %s/nodewarden:dev -insecure\n",
			n.Name, n.IP, n.Registry.Host, runtime.GOARCH, n.Registry.Host)
	}
	fmt.Printf("\n  export KUBECONFIG=%s\n  bin/kubectl get nodes\n\nPress ^C to stop it.\n", kubeconfigOut)
	<-ctx.Done()
	fmt.Println("stopping")
	return nil
}
