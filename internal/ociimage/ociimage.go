// Package ociimage assembles the nodewarden container image from built
// executables, without Docker: one layer on an empty base (FROM scratch),
// OCI media types, one image per platform and an OCI image index over them.
//
// The image holds
//
//	/nodewarden         0755 0:0  every subcommand (the controller runs `/nodewarden controller`)
//	/nodewarden-agent   0755 0:0  the agent alone, which the DaemonSet runs
//	/etc/passwd         0644 0:0  root, nobody and nonroot (65532), as distroless has
//	/etc/group          0644 0:0
//
// and nothing else: no shell, no libc (the executables are static), no CA
// bundle (`nodewarden` embeds Go's golang.org/x/crypto/x509roots/fallback;
// the agent calls no public TLS endpoint), no time zone data, no /tmp
// (both pods run with a read-only root file system). Its config runs
// /nodewarden as 65532:65532 (numeric, so that the kubelet can check
// runAsNonRoot), in /, with PATH as the only variable.
//
// Every byte is a function of the executables and [Metadata]: files are owned
// by 0:0 and dated Metadata.Created (the commit time, as SOURCE_DATE_EPOCH),
// the tar and gzip streams carry no other time or name, and the image's
// created time is Metadata.Created. The executables are built with -trimpath
// and -buildvcs=false ([BuildBinaries]), so the same commit built by the same
// Go toolchain gives the same digests.
//
// The Dockerfile at the repository root produces the same files and config
// for those who use Docker; a test keeps the two in step.
package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	// ModulePath is nodewarden's Go module.
	ModulePath = "github.com/nodewarden/nodewarden"
	// DefaultSource is the repository named by the org.opencontainers.image.source label.
	DefaultSource = "https://github.com/nodewarden/nodewarden"
	// DefaultRepository is where releases are pushed and what both installs
	// (charts/nodewarden, config/default) run.
	DefaultRepository = "ghcr.io/nodewarden/nodewarden"
	// User is the image's user and group: nonroot, numeric so that the
	// kubelet can verify runAsNonRoot without reading /etc/passwd.
	User = "65532:65532"
)

const (
	// pathEnv is the image's only environment variable, distroless's PATH:
	// nodewarden needs none, but NPD custom plugins named without a
	// directory, in images built FROM this one, are found through it.
	pathEnv    = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	workingDir = "/"
	title      = "nodewarden"
	describe   = "Node conditions from host events (cloud maintenance, kernel faults) and their remediation: cordon, drain through the Eviction API, undo on recovery."
)

// executables are the programs of the image, each built from ./cmd/NAME and
// installed as /NAME, in this order.
var executables = []string{"nodewarden", "nodewarden-agent"}

// clientTools are built by `make build` ([BuildClientTools]) from
// ./cmd/NAME but are not part of the image: they run on a user's machine
// (kubectl-nodewarden, the kubectl plugin).
var clientTools = []string{"kubectl-nodewarden"}

// entrypoint is the image's ENTRYPOINT; it has no CMD.
var entrypoint = []string{"/nodewarden"}

// rootfs holds the image's files other than the executables. The Dockerfile
// copies the same directory.
//
//go:embed rootfs
var rootfs embed.FS

// File is one regular file of the image, owned by 0:0.
type File struct {
	// Path is the absolute path in the image, e.g. "/nodewarden".
	Path string
	// Mode holds the permission bits, e.g. 0o755.
	Mode fs.FileMode
	// Data is the content.
	Data []byte
}

// Metadata is what the image says about itself, besides its files.
type Metadata struct {
	// Version is the org.opencontainers.image.version label (a tag, or
	// `git describe` output); "" means "dev", as internal/version says.
	Version string
	// Commit is the org.opencontainers.image.revision label; "" means "unknown".
	Commit string
	// Created is the commit time: the image's created time, the
	// org.opencontainers.image.created label and every file's mtime. The
	// zero time means 1970-01-01T00:00:00Z (SOURCE_DATE_EPOCH=0).
	Created time.Time
	// Source is the org.opencontainers.image.source label; "" means DefaultSource.
	Source string
}

func (m Metadata) withDefaults() (Metadata, error) {
	if m.Version == "" {
		m.Version = "dev"
	}
	if m.Commit == "" {
		m.Commit = "unknown"
	}
	if m.Source == "" {
		m.Source = DefaultSource
	}
	if m.Created.IsZero() {
		m.Created = time.Unix(0, 0)
	}
	m.Created = m.Created.UTC().Truncate(time.Second)
	if m.Created.Before(time.Unix(0, 0)) {
		return m, fmt.Errorf("created %s is before 1970", m.Created)
	}
	for what, v := range map[string]string{"version": m.Version, "commit": m.Commit} {
		if strings.ContainsAny(v, " \t\n'\"\\$") {
			return m, fmt.Errorf("%s %q: spaces, quotes, backslashes and $ are not allowed (it goes into -ldflags)", what, v)
		}
	}
	return m, nil
}

// Labels are the image config's labels, also the index's annotations.
func (m Metadata) Labels() map[string]string {
	m, _ = m.withDefaults()
	return map[string]string{
		"org.opencontainers.image.source":      m.Source,
		"org.opencontainers.image.revision":    m.Commit,
		"org.opencontainers.image.version":     m.Version,
		"org.opencontainers.image.created":     m.Created.Format(time.RFC3339),
		"org.opencontainers.image.title":       title,
		"org.opencontainers.image.description": describe,
	}
}

// Platform is an operating system and CPU architecture the image runs on.
type Platform struct {
	OS           string // "linux"
	Architecture string // GOARCH: "amd64", "arm64", ...
	Variant      string // "v8" for arm64, "v6" or "v7" for arm; "" otherwise
}

// HostPlatform is linux on this machine's architecture: what a node next to
// the tests runs.
func HostPlatform() Platform {
	p, _ := ParsePlatform("linux/" + runtime.GOARCH)
	return p
}

// DefaultPlatforms are the platforms of a release.
func DefaultPlatforms() []Platform {
	return []Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}}
}

// ParsePlatform parses "linux/ARCH" or "linux/ARCH/VARIANT". arm64 gets
// variant v8 (the only one), arm v7 unless given.
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return Platform{}, fmt.Errorf("platform %q: want OS/ARCH[/VARIANT], e.g. linux/arm64", s)
	}
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	if p.OS != "linux" {
		return Platform{}, fmt.Errorf("platform %q: nodewarden runs on linux nodes only", s)
	}
	switch p.Architecture {
	case "arm64":
		if p.Variant == "" {
			p.Variant = "v8"
		}
		if p.Variant != "v8" {
			return Platform{}, fmt.Errorf("platform %q: arm64 has only variant v8", s)
		}
	case "arm":
		if p.Variant == "" {
			p.Variant = "v7"
		}
		if p.Variant != "v6" && p.Variant != "v7" {
			return Platform{}, fmt.Errorf("platform %q: arm variants are v6 and v7", s)
		}
	case "amd64", "386", "ppc64le", "s390x", "riscv64", "loong64", "mips64le":
		if p.Variant != "" {
			return Platform{}, fmt.Errorf("platform %q: %s has no variants here", s, p.Architecture)
		}
	default:
		return Platform{}, fmt.Errorf("platform %q: unknown architecture %q", s, p.Architecture)
	}
	return p, nil
}

// ParsePlatforms parses a comma-separated list of platforms, e.g.
// "linux/amd64,linux/arm64". The result is sorted and has no duplicates.
func ParsePlatforms(s string) ([]Platform, error) {
	var ps []Platform
	seen := map[Platform]bool{}
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := ParsePlatform(f)
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return nil, errors.New("no platforms")
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].String() < ps[j].String() })
	return ps, nil
}

// String is OS/ARCH, with /VARIANT unless it is arm64's v8: "linux/arm64".
func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" && (p.Architecture != "arm64" || p.Variant != "v8") {
		s += "/" + p.Variant
	}
	return s
}

// goEnv is the environment that builds executables for p: static, and for the
// baseline of the architecture whatever the caller's GOAMD64 or GOARM64.
func (p Platform) goEnv() []string {
	env := []string{"CGO_ENABLED=0", "GOOS=" + p.OS, "GOARCH=" + p.Architecture, "GOFLAGS=", "GOEXPERIMENT="}
	switch p.Architecture {
	case "amd64":
		env = append(env, "GOAMD64=v1")
	case "arm64":
		env = append(env, "GOARM64=v8.0")
	case "arm":
		env = append(env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	}
	return env
}

// baseFiles are the files of rootfs/, as /etc/passwd etc.
func baseFiles() ([]File, error) {
	var files []File
	err := fs.WalkDir(rootfs, "rootfs", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := rootfs.ReadFile(name)
		if err != nil {
			return err
		}
		files = append(files, File{Path: strings.TrimPrefix(name, "rootfs"), Mode: 0o644, Data: data})
		return nil
	})
	return files, err
}

// Image assembles the image of one platform: files (the executables, as
// [BuildBinaries] returns them) and the base files (/etc/passwd,
// /etc/group) in one layer, and the config described in the package
// documentation.
func Image(files []File, p Platform, m Metadata) (v1.Image, error) {
	m, err := m.withDefaults()
	if err != nil {
		return nil, err
	}
	if p, err = ParsePlatform(p.String()); err != nil { // arm64 gets its v8
		return nil, err
	}
	base, err := baseFiles()
	if err != nil {
		return nil, err
	}
	layer, err := newLayer(append(base, files...), m.Created)
	if err != nil {
		return nil, err
	}
	cfg := &v1.ConfigFile{
		Architecture: p.Architecture,
		OS:           p.OS,
		Variant:      p.Variant,
		Created:      v1.Time{Time: m.Created},
		Config: v1.Config{
			User:       User,
			Entrypoint: entrypoint,
			Env:        []string{pathEnv},
			WorkingDir: workingDir,
			Labels:     m.Labels(),
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, f.Path)
	}
	sort.Strings(paths)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: m.Created},
			CreatedBy: "nodewarden internal/ociimage: " + strings.Join(paths, " ") + " and internal/ociimage/rootfs",
		},
	})
	if err != nil {
		return nil, err
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	return img, nil
}

// newLayer is a gzipped OCI layer of files, deterministic: entries sorted by
// path, with the directories they need (0755), everything owned by 0:0 and
// dated mtime, no user or group names, no gzip name or time.
func newLayer(files []File, mtime time.Time) (v1.Layer, error) {
	type entry struct {
		name string
		dir  bool
		mode fs.FileMode
		data []byte
	}
	entries := map[string]entry{}
	for _, f := range files {
		clean := path.Clean(f.Path)
		if !path.IsAbs(f.Path) || clean != f.Path || clean == "/" {
			return nil, fmt.Errorf("file %q: want a clean absolute path", f.Path)
		}
		if f.Mode&^fs.ModePerm != 0 {
			return nil, fmt.Errorf("file %s: mode %v has more than permission bits", f.Path, f.Mode)
		}
		name := strings.TrimPrefix(clean, "/")
		if e, ok := entries[name]; ok {
			if e.dir {
				return nil, fmt.Errorf("file %s is also a directory", f.Path)
			}
			return nil, fmt.Errorf("file %s given twice", f.Path)
		}
		entries[name] = entry{name: name, mode: f.Mode, data: f.Data}
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if e, ok := entries[dir]; ok && !e.dir {
				return nil, fmt.Errorf("file /%s is also a directory", dir)
			}
			entries[dir] = entry{name: dir, dir: true, mode: 0o755}
		}
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names) // a directory sorts before what is in it

	mtime = mtime.UTC().Truncate(time.Second)
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	for _, n := range names {
		e := entries[n]
		h := &tar.Header{
			Name:    e.name,
			Mode:    int64(e.mode),
			ModTime: mtime,
			Format:  tar.FormatUSTAR,
		}
		if e.dir {
			h.Typeflag = tar.TypeDir
			h.Name += "/"
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("tar %s: %w", h.Name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}

	var gzBuf bytes.Buffer
	gzBuf.Grow(tarBuf.Len() / 2)
	zw, err := gzip.NewWriterLevel(&gzBuf, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(zw, &tarBuf); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	compressed := gzBuf.Bytes()
	// Compressed once: LayerFromOpener keeps gzipped input as it is, so the
	// layout, the archive and a push all send these bytes.
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(compressed)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	return plainLayer{l}, nil
}

// noArtifactType keeps go-containerregistry from giving the image's
// descriptor in the index an artifactType (the config's media type): an
// image is no artifact, and docker and BuildKit write none.
type noArtifactType struct{ v1.Image }

func (noArtifactType) ArtifactType() (string, error) { return "", nil }

// plainLayer hides the tarball layer's Descriptor method, whose empty
// annotations map makes the in-memory manifest differ from the one parsed
// back from its bytes (the bytes are the same).
type plainLayer struct{ v1.Layer }

// Index is the OCI image index over images, one per platform (taken from
// each image's config), sorted by platform, annotated with m's labels.
func Index(m Metadata, images ...v1.Image) (v1.ImageIndex, error) {
	m, err := m.withDefaults()
	if err != nil {
		return nil, err
	}
	if len(images) == 0 {
		return nil, errors.New("no images")
	}
	type entry struct {
		p   Platform
		img v1.Image
	}
	var entries []entry
	seen := map[Platform]bool{}
	for _, img := range images {
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		p := Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
		if seen[p] {
			return nil, fmt.Errorf("two images for %s", p)
		}
		seen[p] = true
		entries = append(entries, entry{p, img})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].p.String() < entries[j].p.String() })
	adds := make([]mutate.IndexAddendum, 0, len(entries))
	for _, e := range entries {
		adds = append(adds, mutate.IndexAddendum{
			Add: noArtifactType{e.img},
			Descriptor: v1.Descriptor{
				MediaType: types.OCIManifestSchema1,
				Platform:  &v1.Platform{OS: e.p.OS, Architecture: e.p.Architecture, Variant: e.p.Variant},
			},
		})
	}
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
	annotated, ok := mutate.Annotations(idx, m.Labels()).(v1.ImageIndex)
	if !ok {
		return nil, errors.New("annotating the index did not give an index")
	}
	return annotated, nil
}
