// Command localcluster runs the level-2 test control plane (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, kwok) with a few
// simulated nodes until interrupted, and prints how to reach it.
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
	"syscall"

	"github.com/nodewarden/nodewarden/test/cluster"
)

func main() {
	nodes := flag.Int("nodes", 3, "number of kwok nodes to create")
	kubeconfigOut := flag.String("kubeconfig-out", filepath.Join(os.TempDir(), "nodewarden-local.kubeconfig"), "where to copy the admin kubeconfig")
	flag.Parse()

	if err := run(*nodes, *kubeconfigOut); err != nil {
		fmt.Fprintln(os.Stderr, "localcluster:", err)
		os.Exit(1)
	}
}

func run(nodes int, kubeconfigOut string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	c, err := cluster.New(cluster.Options{Full: true})
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
	fmt.Printf("Local control plane is up with %d kwok nodes.\n\n  export KUBECONFIG=%s\n  bin/kubectl get nodes\n\nPress ^C to stop it.\n", nodes, kubeconfigOut)
	<-ctx.Done()
	fmt.Println("stopping")
	return nil
}
