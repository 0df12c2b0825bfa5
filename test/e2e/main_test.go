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

// nodewarden is the binary under test: built by TestMain from this
// checkout, or NODEWARDEN_E2E_BINARY (e.g. a release build).
var nodewarden string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // every test skips: no control plane with -short
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if nodewarden = os.Getenv("NODEWARDEN_E2E_BINARY"); nodewarden == "" {
		dir, err := os.MkdirTemp("", "nodewarden-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		nodewarden = filepath.Join(dir, "nodewarden")
		if err := build(nodewarden); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}

// build compiles ./cmd/nodewarden as `make build` does, into out.
func build(out string) error {
	// go test puts its own GOROOT/bin first on the PATH of test binaries.
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./cmd/nodewarden")
	cmd.Dir = cluster.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/nodewarden: %w\n%s", err, b)
	}
	return nil
}
