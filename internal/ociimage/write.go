package ociimage

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Annotations of index.json's descriptor that name the image for those who
// import the layout: containerd (`ctr images import`, `kind load
// image-archive`) takes the whole reference, skopeo and the OCI spec the tag.
const (
	annotationContainerdName = "io.containerd.image.name"
	annotationRefName        = "org.opencontainers.image.ref.name"
)

// WriteLayout writes idx as an OCI image layout in dir (created if needed;
// it must not hold a layout already): dir/oci-layout, dir/index.json with
// one descriptor, of idx, and every blob in dir/blobs/sha256. ref, if not
// "", names the image there (e.g. "ghcr.io/nodewarden/nodewarden:v0.1.0"):
// it becomes the descriptor's io.containerd.image.name and, for its tag,
// org.opencontainers.image.ref.name.
func WriteLayout(dir string, idx v1.ImageIndex, ref string) error {
	annotations := map[string]string{}
	if ref != "" {
		r, err := name.ParseReference(ref)
		if err != nil {
			return err
		}
		// containerd and the kubelet spell Docker Hub docker.io, go-containerregistry index.docker.io.
		registry := r.Context().RegistryStr()
		if registry == name.DefaultRegistry {
			registry = "docker.io"
		}
		full := registry + "/" + r.Context().RepositoryStr()
		switch r := r.(type) {
		case name.Tag:
			full += ":" + r.TagStr()
			annotations[annotationRefName] = r.TagStr()
		case name.Digest:
			full += "@" + r.DigestStr()
		}
		annotations[annotationContainerdName] = full
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err == nil {
		return fmt.Errorf("%s already holds an OCI layout", dir)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	var opts []layout.Option
	if len(annotations) > 0 {
		opts = append(opts, layout.WithAnnotations(annotations))
	}
	return p.AppendIndex(idx, opts...)
}

// WriteArchive writes the OCI layout in layoutDir (as [WriteLayout] writes
// it) as a tar file at path: an OCI archive, what `ctr images import`,
// `kind load image-archive` and `skopeo copy oci-archive:` read (`crane
// push` reads the layout directory itself). Entries are sorted, owned by 0:0 and dated 1970, so the same layout
// gives the same bytes.
func WriteArchive(path, layoutDir string) (err error) {
	if _, err := os.Stat(filepath.Join(layoutDir, "oci-layout")); err != nil {
		return fmt.Errorf("%s is not an OCI layout: %w", layoutDir, err)
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	root, err := os.OpenRoot(layoutDir)
	if err != nil {
		return err
	}
	defer root.Close()
	tw := tar.NewWriter(f)
	epoch := time.Unix(0, 0).UTC()
	err = filepath.WalkDir(layoutDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == layoutDir {
			return err
		}
		rel, err := filepath.Rel(layoutDir, p)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: epoch, Format: tar.FormatUSTAR}
		switch {
		case d.IsDir():
			h.Typeflag, h.Mode, h.Name = tar.TypeDir, 0o755, h.Name+"/"
			return tw.WriteHeader(h)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, info.Size()
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			src, err := root.Open(rel)
			if err != nil {
				return err
			}
			defer src.Close()
			_, err = io.Copy(tw, src)
			return err
		default:
			return fmt.Errorf("%s: not a regular file or directory", p)
		}
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Push pushes idx, its images and their blobs to ref (e.g.
// "ghcr.io/nodewarden/nodewarden:v0.1.0", or "127.0.0.1:5000/nodewarden:test"
// for a registry of a test), with the credentials of docker's and podman's
// config files and helpers (authn.DefaultKeychain). insecure allows plain HTTP
// (go-containerregistry already allows it for localhost and 127.0.0.1). It
// returns the pushed index by digest: REPOSITORY@sha256:....
func Push(ctx context.Context, idx v1.ImageIndex, ref string, insecure bool) (string, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return "", err
	}
	if err := remote.WriteIndex(r, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return "", err
	}
	return r.Context().Digest(d.String()).String(), nil
}

var errNoImages = errors.New("the index has no images")

// Images are the images of idx with their platforms, in index order.
func Images(idx v1.ImageIndex) ([]Platform, []v1.Image, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, nil, err
	}
	if len(m.Manifests) == 0 {
		return nil, nil, errNoImages
	}
	var ps []Platform
	var imgs []v1.Image
	for _, d := range m.Manifests {
		if d.Platform == nil {
			return nil, nil, fmt.Errorf("manifest %s has no platform", d.Digest)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, nil, err
		}
		ps = append(ps, Platform{OS: d.Platform.OS, Architecture: d.Platform.Architecture, Variant: d.Platform.Variant})
		imgs = append(imgs, img)
	}
	return ps, imgs, nil
}
