package ociimage

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// goBuildFlags are the flags of every build of nodewarden's executables:
// `make build` (through hack/image -binaries), `make image` and the
// Dockerfile, whose RUN line a test compares with these.
func goBuildFlags(version, commit string) []string {
	return []string{"-trimpath", "-buildvcs=false", "-ldflags", ldflags(version, commit)}
}

// ldflags strip the symbol table and DWARF and stamp internal/version.
func ldflags(version, commit string) string {
	return "-s -w -X " + ModulePath + "/internal/version.Version=" + version +
		" -X " + ModulePath + "/internal/version.Commit=" + commit
}

// BuildBinaries builds /nodewarden and /nodewarden-agent for p from the
// checkout at repoRoot (`go build` of ./cmd/nodewarden and
// ./cmd/nodewarden-agent, static, -trimpath, -buildvcs=false, -ldflags "-s
// -w -X .../internal/version.Version=VERSION -X ...Commit=COMMIT"), writes
// them into outDir and returns them as the files of an [Image]. It uses the
// `go` on PATH and the caller's environment, except that CGO_ENABLED,
// GOOS, GOARCH, GOFLAGS, GOEXPERIMENT and the architecture level (GOAMD64=v1,
// GOARM64=v8.0, GOARM) are fixed, so that the result runs on any node of
// the platform and does not depend on the caller's settings. p may be a
// non-linux platform here (for `make build` on a workstation); [Image]
// takes only linux.
func BuildBinaries(ctx context.Context, repoRoot string, p Platform, version, commit, outDir string) ([]File, error) {
	m, err := Metadata{Version: version, Commit: commit}.withDefaults()
	if err != nil {
		return nil, err
	}
	if p.OS == "" || p.Architecture == "" {
		return nil, fmt.Errorf("platform %+v: OS and Architecture are required", p)
	}
	if err := os.MkdirAll(outDir, 0o750); err != nil {
		return nil, err
	}
	outDir, err = filepath.Abs(outDir)
	if err != nil {
		return nil, err
	}
	args := append([]string{"build"}, goBuildFlags(m.Version, m.Commit)...)
	args = append(args, "-o", outDir+string(filepath.Separator))
	for _, e := range executables {
		args = append(args, "./cmd/"+e)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), p.goEnv()...) // later entries win
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s go %s: %w\n%s", strings.Join(p.goEnv(), " "), strings.Join(args, " "), err, out)
	}
	files := make([]File, 0, len(executables))
	for _, e := range executables {
		data, err := os.ReadFile(filepath.Join(outDir, e))
		if err != nil {
			return nil, err
		}
		files = append(files, File{Path: "/" + e, Mode: 0o755, Data: data})
	}
	return files, nil
}

// BuildClientTools builds the executables that are not part of the image
// (kubectl-nodewarden) for p into outDir, with the flags and environment of
// [BuildBinaries].
func BuildClientTools(ctx context.Context, repoRoot string, p Platform, version, commit, outDir string) error {
	m, err := Metadata{Version: version, Commit: commit}.withDefaults()
	if err != nil {
		return err
	}
	if p.OS == "" || p.Architecture == "" {
		return fmt.Errorf("platform %+v: OS and Architecture are required", p)
	}
	if err := os.MkdirAll(outDir, 0o750); err != nil {
		return err
	}
	outDir, err = filepath.Abs(outDir)
	if err != nil {
		return err
	}
	args := append([]string{"build"}, goBuildFlags(m.Version, m.Commit)...)
	args = append(args, "-o", outDir+string(filepath.Separator))
	for _, e := range clientTools {
		args = append(args, "./cmd/"+e)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), p.goEnv()...) // later entries win
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s go %s: %w\n%s", strings.Join(p.goEnv(), " "), strings.Join(args, " "), err, out)
	}
	return nil
}

// Options say what [Build] builds.
type Options struct {
	// RepoRoot is the nodewarden checkout to build from (where go.mod is);
	// "" means the current directory.
	RepoRoot string
	// Platforms default to []Platform{HostPlatform()}.
	Platforms []Platform
	// Version, Commit, Created and Source are the image's [Metadata].
	Version string
	Commit  string
	Created time.Time
	Source  string
	// Log, if set, gets one line per platform built.
	Log io.Writer
}

// Build builds the executables for every platform of o (into a temporary
// directory it removes) and returns the image index over their images: what
// `make image` writes and pushes. A test that wants the image on a real node
// builds o.Platforms = []Platform{HostPlatform()} and pushes the result to a
// registry ([Push]) or writes it for `ctr images import` ([WriteLayout],
// [WriteArchive]).
func Build(ctx context.Context, o Options) (v1.ImageIndex, error) {
	m, err := Metadata{Version: o.Version, Commit: o.Commit, Created: o.Created, Source: o.Source}.withDefaults()
	if err != nil {
		return nil, err
	}
	root := o.RepoRoot
	if root == "" {
		root = "."
	}
	platforms := o.Platforms
	if len(platforms) == 0 {
		platforms = []Platform{HostPlatform()}
	}
	tmp, err := os.MkdirTemp("", "nodewarden-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	images := make([]v1.Image, 0, len(platforms))
	for _, p := range platforms {
		start := time.Now()
		files, err := BuildBinaries(ctx, root, p, m.Version, m.Commit, filepath.Join(tmp, p.OS+"-"+p.Architecture+p.Variant))
		if err != nil {
			return nil, err
		}
		img, err := Image(files, p, m)
		if err != nil {
			return nil, err
		}
		if o.Log != nil {
			d, err := img.Digest()
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(o.Log, "built %s in %.1fs: %s\n", p, time.Since(start).Seconds(), d)
		}
		images = append(images, img)
	}
	return Index(m, images...)
}
