// Command kubectl-nodewarden is the kubectl plugin `kubectl nodewarden`:
// status, history and explain of nodewarden's remediations, over the
// user's kubeconfig. See docs/operations.md, "kubectl nodewarden".
package main

import (
	"os"

	"github.com/nodewarden/nodewarden/internal/status/cli"
)

func main() {
	if err := cli.NewRootCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
