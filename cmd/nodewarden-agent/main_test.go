package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksOnlyTheAgent keeps the agent's executable small: these packages
// cost it memory on every node (docs/performance.md) and it needs none of
// them. A change that links one in again fails here, naming the import path
// that brought it (see `go mod why -m` or `go list -deps`).
func TestLinksOnlyTheAgent(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	forbidden := []string{
		"k8s.io/client-go/kubernetes",         // the generated clientset: registers every API group at start
		"k8s.io/client-go/informers",          // 124 informer packages, for one Node
		"sigs.k8s.io/controller-runtime/pkg/", // the manager, clients and caches (pkg/log/zap is allowed)
		"github.com/spf13/cobra",
		"github.com/nodewarden/nodewarden/controllers",
		"github.com/nodewarden/nodewarden/internal/drain",
		"github.com/nodewarden/nodewarden/internal/convert",
		"golang.org/x/crypto/x509roots/fallback", // ~200 KiB of CA roots; the agent talks only to the API server, with the cluster's CA
		"google.golang.org/grpc",                 // +79 packages, +3.8 MiB RSS per node; runtimestatus speaks the CRI's unary gRPC over net/http
		"k8s.io/cri-api",                         // +79 packages, +3.8 MiB RSS per node; runtimestatus speaks the CRI's unary gRPC over net/http
	}
	for _, dep := range deps {
		for _, f := range forbidden {
			if (dep == strings.TrimSuffix(f, "/") || strings.HasPrefix(dep, f)) && !strings.HasPrefix(dep, "sigs.k8s.io/controller-runtime/pkg/log") {
				t.Errorf("nodewarden-agent links %s", dep)
			}
		}
	}
	if len(deps) > 450 {
		t.Errorf("nodewarden-agent links %d packages; it linked 420 when its memory was measured (docs/performance.md)", len(deps))
	}
}
