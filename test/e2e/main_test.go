package e2e_test

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/nodewarden/nodewarden/test/cluster"
)

// nodewarden and nodewardenAgent are the executables under test, built by
// TestMain from this checkout, or NODEWARDEN_E2E_BINARY and
// NODEWARDEN_E2E_AGENT_BINARY (e.g. a release build).
var nodewarden, nodewardenAgent string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // every test skips: no control plane with -short
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "nodewarden-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	for _, b := range []struct {
		exe      *string
		env, pkg string
	}{
		{&nodewarden, "NODEWARDEN_E2E_BINARY", "./cmd/nodewarden"},
		{&nodewardenAgent, "NODEWARDEN_E2E_AGENT_BINARY", "./cmd/nodewarden-agent"},
	} {
		if *b.exe = os.Getenv(b.env); *b.exe != "" {
			continue
		}
		*b.exe = filepath.Join(dir, filepath.Base(b.pkg))
		if err := build(*b.exe, b.pkg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}

// build compiles pkg as `make build` does, into out.
func build(out, pkg string) error {
	// go test puts its own GOROOT/bin first on the PATH of test binaries.
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = cluster.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}
