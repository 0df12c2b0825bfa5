package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nodewarden/nodewarden/internal/ociimage"
)

// Registry is an OCI registry served from the test process on loopback over
// plain HTTP (go-containerregistry's registry, blobs in memory): the real
// node's containerd pulls from it, so nothing comes from the internet.
type Registry struct {
	// Host is host:port, the first part of every image reference in it.
	Host   string
	server *http.Server
}

func startRegistry() (*Registry, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Registry{
		Host:   l.Addr().String(),
		server: &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0))), ReadHeaderTimeout: 10 * time.Second},
	}
	go func() { _ = r.server.Serve(l) }()
	return r, nil
}

func (r *Registry) stop() { _ = r.server.Close() }

// Ref is the full reference of repo:tag in this registry.
func (r *Registry) Ref(repoTag string) string { return r.Host + "/" + repoTag }

// Push writes an image or an image index as repoTag ("nodewarden:dev") and
// returns its reference by digest, which is what a test should give a pod so
// that it runs exactly what was pushed.
func (r *Registry) Push(ctx context.Context, repoTag string, image remote.Taggable) (string, error) {
	ref, err := name.NewTag(r.Ref(repoTag), name.Insecure)
	if err != nil {
		return "", err
	}
	var digest v1.Hash
	switch img := image.(type) {
	case v1.ImageIndex:
		err = remote.WriteIndex(ref, img, remote.WithContext(ctx))
		if err == nil {
			digest, err = img.Digest()
		}
	case v1.Image:
		err = remote.Write(ref, img, remote.WithContext(ctx))
		if err == nil {
			digest, err = img.Digest()
		}
	default:
		err = fmt.Errorf("push %s: %T is neither an image nor an index", repoTag, image)
	}
	if err != nil {
		return "", err
	}
	return ref.Context().Digest(digest.String()).String(), nil
}

// pauseImage builds test/cluster/cmd/pause for this machine and wraps it in
// a one-layer image whose entrypoint it is.
func pauseImage(dir string) (v1.Image, error) {
	bin := filepath.Join(dir, "pause")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./test/cluster/cmd/pause")
	cmd.Dir = RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the pause image's binary: %w\n%s", err, out)
	}
	content, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	// The project's own image builder; only the entrypoint and the user
	// (the sandbox's, 65535, as upstream's pause image) differ.
	img, err := ociimage.Image([]ociimage.File{{Path: "/pause", Mode: 0o755, Data: content}}, ociimage.HostPlatform(), ociimage.Metadata{Version: "pause"})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Config.Entrypoint = []string{"/pause"}
	cfg.Config.User = "65535:65535"
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, errors.Join(errors.New("pause image config"), err)
	}
	return img, nil
}
