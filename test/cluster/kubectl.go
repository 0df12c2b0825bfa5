package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Kubectl runs bin/kubectl as the cluster's admin, with a discovery cache of
// its own so that no earlier run's cache hides a CRD, and returns its
// standard output; the error carries its standard error.
func (c *Cluster) Kubectl(t testing.TB, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	args = append([]string{"--kubeconfig=" + c.Kubeconfig, "--cache-dir=" + t.TempDir()}, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(BinDir(), "kubectl"), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}
