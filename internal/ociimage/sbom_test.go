package ociimage

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// synthetic executables: build information as `go version -m` prints it,
// with dependencies (a test binary records none), one of them replaced.
func syntheticExecutables(t *testing.T) []executable {
	t.Helper()
	var exes []executable
	for _, name := range []string{"nodewarden", "nodewarden-agent"} {
		info, err := debug.ParseBuildInfo(strings.Join([]string{
			"go\tgo1.26.8",
			"path\tgithub.com/nodewarden/nodewarden/cmd/" + name,
			"mod\tgithub.com/nodewarden/nodewarden\t(devel)\t",
			"dep\tgithub.com/docker/cli\tv29.7.2+incompatible\th1:Zm9v",
			"dep\tgithub.com/google/go-containerregistry\tv0.22.1\th1:YmFy",
			"dep\texample.com/old\tv1.0.0\th1:b2xk",
			"=>\texample.com/new\tv1.1.0\th1:bmV3",
			"build\t-buildmode=exe",
			"build\tCGO_ENABLED=0",
			"build\tGOARCH=amd64",
			"build\tGOOS=linux",
			"",
		}, "\n"))
		if err != nil {
			t.Fatal(err)
		}
		info.GoVersion = "go1.26.8" // ParseBuildInfo skips the go line
		exes = append(exes, executable{path: "/" + name, sum: sha256.Sum256([]byte(name)), info: info})
	}
	return exes
}

func syntheticSBOM(t *testing.T) ([]byte, v1.Hash) {
	t.Helper()
	img := mustImage(t, fakeExecutables("1"), amd64, testMeta)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	d := digestOf(t, img)
	sbom, err := spdxOf(cf, d, syntheticExecutables(t))
	if err != nil {
		t.Fatal(err)
	}
	return sbom, d
}

func TestSBOM(t *testing.T) {
	raw, digest := syntheticSBOM(t)
	var doc spdxDocument
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}

	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXID != "SPDXRef-DOCUMENT" {
		t.Errorf("header: %s %s %s", doc.SPDXVersion, doc.DataLicense, doc.SPDXID)
	}
	if want := "https://github.com/nodewarden/nodewarden/spdx/nodewarden-v0.1.0-linux-amd64-sha256-" + digest.Hex; doc.DocumentNamespace != want {
		t.Errorf("documentNamespace %s, want %s", doc.DocumentNamespace, want)
	}
	if doc.CreationInfo.Created != testCreated.Format(time.RFC3339) {
		t.Errorf("created %s, want the commit time %s", doc.CreationInfo.Created, testCreated.Format(time.RFC3339))
	}

	byID := map[string]spdxPackage{}
	byName := map[string]spdxPackage{}
	idPattern := regexp.MustCompile(`^SPDXRef-[A-Za-z0-9.-]+$`)
	for _, p := range doc.Packages {
		if !idPattern.MatchString(p.SPDXID) {
			t.Errorf("SPDXID %q", p.SPDXID)
		}
		if _, dup := byID[p.SPDXID]; dup {
			t.Errorf("SPDXID %s twice", p.SPDXID)
		}
		if p.Name == "" || p.DownloadLocation == "" || p.FilesAnalyzed {
			t.Errorf("package %+v: name and downloadLocation are required, filesAnalyzed must be false", p)
		}
		byID[p.SPDXID] = p
		if p.PrimaryPackagePurpose != "APPLICATION" {
			byName[p.Name] = p
		}
	}
	purl := func(p spdxPackage) string {
		for _, r := range p.ExternalRefs {
			if r.ReferenceType == "purl" && r.ReferenceCategory == "PACKAGE-MANAGER" {
				return r.ReferenceLocator
			}
		}
		return ""
	}

	image := byID["SPDXRef-Image"]
	if image.PrimaryPackagePurpose != "CONTAINER" || image.Checksums[0].ChecksumValue != digest.Hex ||
		purl(image) != "pkg:oci/nodewarden@sha256%3A"+digest.Hex+"?arch=amd64&os=linux" {
		t.Errorf("image package %+v", image)
	}
	for _, name := range []string{"nodewarden", "nodewarden-agent"} {
		sum := sha256.Sum256([]byte(name))
		p, ok := byID["SPDXRef-Executable-"+name]
		if !ok || p.Name != name || p.PrimaryPackagePurpose != "APPLICATION" || p.VersionInfo != "v0.1.0" ||
			len(p.Checksums) != 1 || p.Checksums[0] != (spdxChecksum{"SHA256", hex.EncodeToString(sum[:])}) {
			t.Errorf("executable %s: %+v", name, p)
		}
	}
	if p := byID["SPDXRef-Executable-nodewarden"]; !strings.Contains(p.Comment, "go1.26.8") || !strings.Contains(p.Comment, "CGO_ENABLED=0") {
		t.Errorf("executable comment %q: want the Go version and build settings", p.Comment)
	}

	main := byName[ModulePath]
	if main.VersionInfo != "v0.1.0" || purl(main) != "pkg:golang/github.com/nodewarden/nodewarden@v0.1.0" ||
		main.DownloadLocation != "git+https://github.com/nodewarden/nodewarden@"+testMeta.Commit {
		t.Errorf("main module %+v", main)
	}
	ggcr := byName["github.com/google/go-containerregistry"]
	if ggcr.VersionInfo != "v0.22.1" || purl(ggcr) != "pkg:golang/github.com/google/go-containerregistry@v0.22.1" ||
		!strings.HasPrefix(ggcr.Comment, "go.sum: h1:") {
		t.Errorf("go-containerregistry module %+v", ggcr)
	}
	std := byName["stdlib"]
	if std.VersionInfo != "go1.26.8" || purl(std) != "pkg:golang/stdlib@1.26.8" {
		t.Errorf("stdlib %+v", std)
	}
	if p := byName["github.com/docker/cli"]; purl(p) != "pkg:golang/github.com/docker/cli@v29.7.2%2Bincompatible" {
		t.Errorf("docker/cli %+v", p)
	}
	// A replaced module is the replacement, which is what was compiled.
	if _, ok := byName["example.com/old"]; ok {
		t.Error("the replaced module is in the SBOM")
	}
	if p := byName["example.com/new"]; p.VersionInfo != "v1.1.0" || purl(p) != "pkg:golang/example.com/new@v1.1.0" {
		t.Errorf("replacement %+v", p)
	}
	// The order is fixed: image, executables, nodewarden, stdlib, modules by path.
	var order []string
	for _, p := range doc.Packages {
		order = append(order, p.Name)
	}
	if want := []string{"nodewarden", "nodewarden", "nodewarden-agent", ModulePath, "stdlib", "example.com/new", "github.com/docker/cli", "github.com/google/go-containerregistry"}; !reflect.DeepEqual(order, want) {
		t.Errorf("packages %q\nwant %q", order, want)
	}

	// Relationships name existing elements; the document describes the
	// image, which contains both executables, which link the modules.
	rels := map[string]bool{}
	for _, r := range doc.Relationships {
		for _, id := range []string{r.SPDXElementID, r.RelatedSPDXElement} {
			if _, ok := byID[id]; !ok && id != "SPDXRef-DOCUMENT" {
				t.Errorf("relationship %+v names %s, which does not exist", r, id)
			}
		}
		rels[r.SPDXElementID+" "+r.RelationshipType+" "+r.RelatedSPDXElement] = true
	}
	for _, want := range []string{
		"SPDXRef-DOCUMENT DESCRIBES SPDXRef-Image",
		"SPDXRef-Image CONTAINS SPDXRef-Executable-nodewarden",
		"SPDXRef-Image CONTAINS SPDXRef-Executable-nodewarden-agent",
		"SPDXRef-Executable-nodewarden GENERATED_FROM " + main.SPDXID,
		"SPDXRef-Executable-nodewarden-agent STATIC_LINK " + ggcr.SPDXID,
		"SPDXRef-Executable-nodewarden STATIC_LINK " + std.SPDXID,
	} {
		if !rels[want] {
			t.Errorf("no relationship %s", want)
		}
	}
	// One package per module, shared by both executables.
	if n := strings.Count(string(raw), `"name": "github.com/google/go-containerregistry"`); n != 1 {
		t.Errorf("go-containerregistry is %d packages, want 1", n)
	}
}

func TestSBOMIsDeterministic(t *testing.T) {
	a, _ := syntheticSBOM(t)
	b, _ := syntheticSBOM(t)
	if !bytes.Equal(a, b) {
		t.Error("two SBOMs of the same image differ")
	}
}

// TestSBOMReadsTheImage finds the Go executables in an image's layer: this
// test binary (build information, but no dependencies: go test records
// none) and not a shell script. TestBuildIsReproducible checks the SBOM of
// the real image.
func TestSBOMReadsTheImage(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	img := mustImage(t, []File{
		{Path: "/nodewarden", Mode: 0o755, Data: data},
		{Path: "/usr/bin/not-go", Mode: 0o755, Data: []byte("#!/bin/sh\necho not go\n")},
	}, amd64, testMeta)
	exes, err := goExecutables(img)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if len(exes) != 1 || exes[0].path != "/nodewarden" || exes[0].sum != sum || exes[0].info.Main.Path != ModulePath {
		t.Fatalf("found %+v, want /nodewarden only", exes)
	}
	raw, err := SBOM(img)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(raw) || !bytes.Contains(raw, []byte(`"SPDXID": "SPDXRef-Executable-nodewarden"`)) || bytes.Contains(raw, []byte("not-go")) {
		t.Errorf("SBOM:\n%s", raw)
	}
	if _, err := SBOM(mustImage(t, fakeExecutables("1"), amd64, testMeta)); err == nil {
		t.Error("no error for an image without Go executables")
	}
}

func TestPURL(t *testing.T) {
	for in, want := range map[[2]string]string{
		{"github.com/docker/cli", "v29.7.2+incompatible"}: "pkg:golang/github.com/docker/cli@v29.7.2%2Bincompatible",
		{"github.com/Microsoft/go-winio", "v0.6.2"}:       "pkg:golang/github.com/Microsoft/go-winio@v0.6.2",
		{"gopkg.in/yaml.v3", "v3.0.1"}:                    "pkg:golang/gopkg.in/yaml.v3@v3.0.1",
		{"stdlib", "1.26.8"}:                              "pkg:golang/stdlib@1.26.8",
	} {
		if got := golangPURL(in[0], in[1]); got != want {
			t.Errorf("golangPURL(%q, %q) = %s, want %s", in[0], in[1], got, want)
		}
	}
	if got := spdxIDPart("github.com/foo_bar@v1+x"); got != "github.com-foo-bar-v1-x" {
		t.Errorf("spdxIDPart = %s", got)
	}
}
