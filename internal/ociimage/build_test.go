package ociimage

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestBuildIsReproducible builds the executables of this checkout for this
// machine twice, into two directories, and assembles an image from each:
// same digest. It also checks what only the real executables show: static
// (no ELF interpreter), stamped with the version, the CA roots in
// nodewarden only, and an SBOM that lists what they link. About 30 s on two
// busy cores once the build cache is warm (the first `go build -trimpath`
// of the dependencies takes minutes).
func TestBuildIsReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds nodewarden and nodewarden-agent twice; run without -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const repo = "../.."
	p := HostPlatform()
	meta := Metadata{Version: "v0.0.0-repro", Commit: "0123456789abcdef0123456789abcdef01234567", Created: testCreated}

	var imgs []v1.Image
	var builds [][]File
	dirs := []string{t.TempDir(), t.TempDir()}
	for _, dir := range dirs {
		start := time.Now()
		files, err := BuildBinaries(ctx, repo, p, meta.Version, meta.Commit, dir)
		if err != nil {
			t.Fatal(err)
		}
		img, err := Image(files, p, meta)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("built and assembled %s into %s in %.1fs: %s", p, dir, time.Since(start).Seconds(), digestOf(t, img))
		imgs = append(imgs, img)
		builds = append(builds, files)
	}
	for i := range builds[0] {
		if !bytes.Equal(builds[0][i].Data, builds[1][i].Data) {
			t.Errorf("%s differs between the two builds", builds[0][i].Path)
		}
	}
	if a, b := digestOf(t, imgs[0]), digestOf(t, imgs[1]); a != b {
		t.Fatalf("two builds of one commit: %s and %s", a, b)
	}

	for _, f := range builds[0] {
		e, err := elf.NewFile(bytes.NewReader(f.Data))
		if err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		for _, prog := range e.Progs {
			if prog.Type == elf.PT_INTERP {
				t.Errorf("%s has an ELF interpreter: it is not static", f.Path)
			}
		}
		if _, err := e.DynamicSymbols(); err == nil {
			t.Errorf("%s has dynamic symbols", f.Path)
		}
		info, err := buildinfo.Read(bytes.NewReader(f.Data))
		if err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		settings := map[string]string{}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
		if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" || settings["GOOS"] != "linux" || settings["GOARCH"] != runtime.GOARCH {
			t.Errorf("%s build settings %v: want static, -trimpath, linux/%s", f.Path, settings, runtime.GOARCH)
		}
		if _, ok := settings["vcs.revision"]; ok {
			t.Errorf("%s records VCS information: the image would depend on the checkout", f.Path)
		}
		fallback := false
		for _, d := range info.Deps {
			fallback = fallback || d.Path == "golang.org/x/crypto/x509roots/fallback"
		}
		// The controller calls TLS endpoints of its own (webhooks) and
		// finds no CA bundle in the image; the agent, on a tight memory
		// budget, talks only to the API server, with the cluster's CA.
		if want := f.Path == "/nodewarden"; fallback != want {
			t.Errorf("%s links x509roots/fallback: %v, want %v", f.Path, fallback, want)
		}
	}

	// The version is stamped: run this machine's nodewarden.
	out, err := exec.CommandContext(ctx, filepath.Join(dirs[0], "nodewarden"), "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "nodewarden v0.0.0-repro (commit "+meta.Commit) {
		t.Errorf("nodewarden version: %v\n%s", err, out)
	}
	cf, err := imgs[0].ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != User || cf.Config.User == "0" || strings.HasPrefix(cf.Config.User, "0:") {
		t.Errorf("user %q", cf.Config.User)
	}

	sbom, err := SBOM(imgs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"name": "nodewarden-agent"`,
		`"referenceLocator": "pkg:golang/k8s.io/apimachinery@`,
		`"referenceLocator": "pkg:golang/golang.org/x/crypto/x509roots/fallback@`,
		`"referenceLocator": "pkg:golang/github.com/nodewarden/nodewarden@v0.0.0-repro"`,
	} {
		if !strings.Contains(string(sbom), want) {
			t.Errorf("the SBOM of the real image lacks %s", want)
		}
	}
	again, err := SBOM(imgs[1])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sbom, again) {
		t.Error("the SBOMs of the two builds differ")
	}
}
