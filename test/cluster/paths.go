package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
)

var (
	rootOnce sync.Once
	root     string
)

// RepoRoot is the directory holding the project's go.mod, found from this
// source file so that tests work from any package directory.
func RepoRoot() string {
	rootOnce.Do(func() {
		_, file, _, ok := runtime.Caller(0)
		if ok {
			root = filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
		}
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
			wd, _ := os.Getwd()
			root = wd
		}
	})
	return root
}

// BinDir is where `make k8s-bins` puts etcd, kube-apiserver and friends.
// KUBEBUILDER_ASSETS overrides it, as it does for envtest.
func BinDir() string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	return filepath.Join(RepoRoot(), "bin")
}

// binary returns the path of a tool in BinDir, or an error telling the user
// how to get it.
func binary(name string) (string, error) {
	p := filepath.Join(BinDir(), name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not found in %s: run `make k8s-bins` first", name, BinDir())
	}
	return p, nil
}
