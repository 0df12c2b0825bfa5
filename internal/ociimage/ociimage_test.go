package ociimage

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

var (
	testCreated = time.Date(2026, 12, 5, 17, 12, 55, 0, time.UTC)
	testMeta    = Metadata{Version: "v0.1.0", Commit: "124893994050da58bb21e4b79116ae62f5715ccc", Created: testCreated}
	amd64       = Platform{OS: "linux", Architecture: "amd64"}
	arm64       = Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
)

// fakeExecutables stand in for the real ones where only the assembly is tested.
func fakeExecutables(tag string) []File {
	return []File{
		{Path: "/nodewarden", Mode: 0o755, Data: []byte("nodewarden " + tag)},
		{Path: "/nodewarden-agent", Mode: 0o755, Data: []byte("nodewarden-agent " + tag)},
	}
}

func mustImage(t *testing.T, files []File, p Platform, m Metadata) v1.Image {
	t.Helper()
	img, err := Image(files, p, m)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t *testing.T, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestImageIsDeterministic(t *testing.T) {
	a := digestOf(t, mustImage(t, fakeExecutables("1"), amd64, testMeta))
	b := digestOf(t, mustImage(t, fakeExecutables("1"), amd64, testMeta))
	if a != b {
		t.Fatalf("same inputs, two digests: %s, %s", a, b)
	}
	// Each input changes the digest.
	later := testMeta
	later.Created = testCreated.Add(time.Second)
	otherCommit := testMeta
	otherCommit.Commit = "0000000000000000000000000000000000000000"
	for what, d := range map[string]v1.Hash{
		"another executable": digestOf(t, mustImage(t, fakeExecutables("2"), amd64, testMeta)),
		"another platform":   digestOf(t, mustImage(t, fakeExecutables("1"), arm64, testMeta)),
		"another time":       digestOf(t, mustImage(t, fakeExecutables("1"), amd64, later)),
		"another commit":     digestOf(t, mustImage(t, fakeExecutables("1"), amd64, otherCommit)),
	} {
		if d == a {
			t.Errorf("%s: same digest %s", what, d)
		}
	}
	// The order the executables are given in does not matter.
	files := fakeExecutables("1")
	files[0], files[1] = files[1], files[0]
	if d := digestOf(t, mustImage(t, files, amd64, testMeta)); d != a {
		t.Errorf("executables in another order: digest %s, want %s", d, a)
	}
}

func TestImageConfig(t *testing.T) {
	img := mustImage(t, fakeExecutables("1"), arm64, testMeta)
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" {
		t.Errorf("User = %q, want 65532:65532", c.User)
	}
	if !reflect.DeepEqual(c.Entrypoint, []string{"/nodewarden"}) || c.Cmd != nil {
		t.Errorf("Entrypoint %q, Cmd %q; want [/nodewarden] and no Cmd", c.Entrypoint, c.Cmd)
	}
	if c.WorkingDir != "/" {
		t.Errorf("WorkingDir = %q", c.WorkingDir)
	}
	if !reflect.DeepEqual(c.Env, []string{pathEnv}) {
		t.Errorf("Env = %q, want only PATH", c.Env)
	}
	if c.Shell != nil || c.Healthcheck != nil || len(c.ExposedPorts) != 0 || len(c.Volumes) != 0 || c.StopSignal != "" {
		t.Errorf("config has more than user, entrypoint, env, working dir and labels: %+v", c)
	}
	if cf.OS != "linux" || cf.Architecture != "arm64" || cf.Variant != "v8" {
		t.Errorf("platform %s/%s/%s, want linux/arm64/v8", cf.OS, cf.Architecture, cf.Variant)
	}
	if !cf.Created.Equal(testCreated) {
		t.Errorf("created %s, want the commit time %s", cf.Created, testCreated)
	}
	want := map[string]string{
		"org.opencontainers.image.source":      "https://github.com/nodewarden/nodewarden",
		"org.opencontainers.image.revision":    testMeta.Commit,
		"org.opencontainers.image.version":     "v0.1.0",
		"org.opencontainers.image.created":     "2026-12-05T17:12:55Z",
		"org.opencontainers.image.title":       "nodewarden",
		"org.opencontainers.image.description": describe,
	}
	if !reflect.DeepEqual(c.Labels, want) {
		t.Errorf("labels %v\nwant %v", c.Labels, want)
	}
	if len(cf.History) != 1 || !cf.History[0].Created.Equal(testCreated) {
		t.Errorf("history %+v: want one entry dated %s", cf.History, testCreated)
	}

	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("manifest %s, config %s: want OCI media types", m.MediaType, m.Config.MediaType)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != types.OCILayer {
		t.Errorf("layers %+v: want one %s", m.Layers, types.OCILayer)
	}
}

func TestImageRunsAsNonRoot(t *testing.T) {
	img := mustImage(t, fakeExecutables("1"), amd64, testMeta)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	uid, gid, ok := strings.Cut(cf.Config.User, ":")
	if !ok || uid == "" || uid == "0" || uid == "root" || gid == "0" || gid == "root" {
		t.Fatalf("User %q: want a numeric non-root user and group", cf.Config.User)
	}
	// The user is the nonroot of /etc/passwd, as in distroless.
	files := layerFiles(t, img)
	if !strings.Contains(string(files["etc/passwd"].data), "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no nonroot 65532:\n%s", files["etc/passwd"].data)
	}
	if !strings.Contains(string(files["etc/group"].data), "nonroot:x:65532:") {
		t.Errorf("/etc/group has no nonroot 65532:\n%s", files["etc/group"].data)
	}
}

type tarEntry struct {
	typ  byte
	mode int64
	uid  int
	gid  int
	mod  time.Time
	data []byte
}

// layerFiles reads the image's one layer.
func layerFiles(t *testing.T, img v1.Image) map[string]tarEntry {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]tarEntry{}
	tr := tar.NewReader(rc)
	var order []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := files[h.Name]; dup {
			t.Errorf("%s twice in the layer", h.Name)
		}
		if h.Uname != "" || h.Gname != "" || h.Linkname != "" || len(h.PAXRecords) != 0 {
			t.Errorf("%s: uname %q gname %q link %q pax %v: want none", h.Name, h.Uname, h.Gname, h.Linkname, h.PAXRecords)
		}
		files[h.Name] = tarEntry{typ: h.Typeflag, mode: h.Mode, uid: h.Uid, gid: h.Gid, mod: h.ModTime, data: data}
		order = append(order, h.Name)
	}
	if !sort.StringsAreSorted(order) {
		t.Errorf("layer entries not sorted: %q", order)
	}
	return files
}

func TestLayerHoldsExactlyTheFiles(t *testing.T) {
	exes := fakeExecutables("1")
	files := layerFiles(t, mustImage(t, exes, amd64, testMeta))
	passwd, err := os.ReadFile("rootfs/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	group, err := os.ReadFile("rootfs/etc/group")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]tarEntry{
		"etc/":             {typ: tar.TypeDir, mode: 0o755},
		"etc/group":        {typ: tar.TypeReg, mode: 0o644, data: group},
		"etc/passwd":       {typ: tar.TypeReg, mode: 0o644, data: passwd},
		"nodewarden":       {typ: tar.TypeReg, mode: 0o755, data: exes[0].Data},
		"nodewarden-agent": {typ: tar.TypeReg, mode: 0o755, data: exes[1].Data},
	}
	for n, w := range want {
		w.mod = testCreated
		if w.data == nil {
			w.data = []byte{}
		}
		got, ok := files[n]
		if !ok {
			t.Errorf("%s missing from the layer", n)
			continue
		}
		if !got.mod.Equal(w.mod) {
			t.Errorf("%s: mtime %s, want %s", n, got.mod, w.mod)
		}
		got.mod, w.mod = time.Time{}, time.Time{}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s: %+v\nwant %+v", n, got, w)
		}
	}
	for n := range files {
		if _, ok := want[n]; !ok {
			t.Errorf("%s in the layer, not expected", n)
		}
	}
}

func TestImageRejectsBadFiles(t *testing.T) {
	for name, files := range map[string][]File{
		"relative":     {{Path: "nodewarden", Mode: 0o755}},
		"unclean":      {{Path: "/a/../nodewarden", Mode: 0o755}},
		"twice":        {{Path: "/x", Mode: 0o755}, {Path: "/x", Mode: 0o755}},
		"over base":    {{Path: "/etc/passwd", Mode: 0o644}},
		"dir and file": {{Path: "/etc", Mode: 0o644}},
		"setuid":       {{Path: "/x", Mode: 0o755 | fs.ModeSetuid}},
	} {
		if _, err := Image(files, amd64, testMeta); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := Image(nil, Platform{OS: "windows", Architecture: "amd64"}, testMeta); err == nil {
		t.Error("windows: no error")
	}
	if _, err := Image(nil, amd64, Metadata{Version: "v1 evil"}); err == nil {
		t.Error("version with a space: no error")
	}
	// arm64 without its variant gets v8.
	img := mustImage(t, nil, Platform{OS: "linux", Architecture: "arm64"}, testMeta)
	if cf, err := img.ConfigFile(); err != nil || cf.Variant != "v8" {
		t.Errorf("arm64 without variant: variant %q, %v; want v8", cf.Variant, err)
	}
}

func TestIndex(t *testing.T) {
	imgArm := mustImage(t, fakeExecutables("arm"), arm64, testMeta)
	imgAmd := mustImage(t, fakeExecutables("amd"), amd64, testMeta)
	idx, err := Index(testMeta, imgArm, imgAmd)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("validate.Index: %v", err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIImageIndex {
		t.Errorf("index media type %s", m.MediaType)
	}
	var got []string
	for _, d := range m.Manifests {
		if d.MediaType != types.OCIManifestSchema1 || d.Platform == nil || d.ArtifactType != "" {
			t.Fatalf("descriptor %+v: want an OCI manifest with a platform and no artifactType", d)
		}
		got = append(got, d.Platform.OS+"/"+d.Platform.Architecture+"/"+d.Platform.Variant)
	}
	if want := []string{"linux/amd64/", "linux/arm64/v8"}; !reflect.DeepEqual(got, want) {
		t.Errorf("platforms %q, want %q (sorted)", got, want)
	}
	if m.Manifests[0].Digest != digestOf(t, imgAmd) || m.Manifests[1].Digest != digestOf(t, imgArm) {
		t.Error("descriptors do not point at the images")
	}
	if !reflect.DeepEqual(m.Annotations, testMeta.Labels()) {
		t.Errorf("annotations %v, want the labels %v", m.Annotations, testMeta.Labels())
	}
	// The order of the arguments does not matter.
	again, err := Index(testMeta, imgAmd, imgArm)
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, again) != digestOf(t, idx) {
		t.Error("index digest depends on the order of the images")
	}
	if _, err := Index(testMeta, imgAmd, imgAmd); err == nil {
		t.Error("two images of one platform: no error")
	}
	ps, imgs, err := Images(idx)
	if err != nil || len(imgs) != 2 || ps[0] != amd64 || ps[1] != arm64 {
		t.Errorf("Images: %v %d %v", ps, len(imgs), err)
	}
}

func TestParsePlatforms(t *testing.T) {
	ps, err := ParsePlatforms("linux/arm64, linux/amd64,linux/arm64/v8")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ps, []Platform{amd64, arm64}) {
		t.Errorf("got %+v", ps)
	}
	if ps[1].String() != "linux/arm64" {
		t.Errorf("arm64 String() = %q", ps[1].String())
	}
	if p, err := ParsePlatform("linux/arm/v6"); err != nil || p.String() != "linux/arm/v6" {
		t.Errorf("linux/arm/v6: %v %v", p, err)
	}
	for _, bad := range []string{"", "linux", "darwin/arm64", "linux/arm64/v9", "linux/amd64/v3", "linux/sparc", "linux/amd64/x/y"} {
		if _, err := ParsePlatforms(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if !reflect.DeepEqual(DefaultPlatforms(), []Platform{amd64, arm64}) {
		t.Errorf("DefaultPlatforms() = %v", DefaultPlatforms())
	}
}

func testIndex(t *testing.T) v1.ImageIndex {
	t.Helper()
	idx, err := Index(testMeta, mustImage(t, fakeExecutables("amd"), amd64, testMeta), mustImage(t, fakeExecutables("arm"), arm64, testMeta))
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

func TestWriteLayoutAndArchive(t *testing.T) {
	idx := testIndex(t)
	dir := t.TempDir()
	lay := filepath.Join(dir, "oci")
	if err := WriteLayout(lay, idx, "ghcr.io/nodewarden/nodewarden:v0.1.0"); err != nil {
		t.Fatal(err)
	}
	if err := WriteLayout(lay, idx, ""); err == nil {
		t.Error("a second WriteLayout into the same directory: no error")
	}
	// index.json points at the index, named for containerd and by tag.
	p, err := layout.FromPath(lay)
	if err != nil {
		t.Fatal(err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(tm.Manifests) != 1 || tm.Manifests[0].Digest != digestOf(t, idx) || tm.Manifests[0].MediaType != types.OCIImageIndex {
		t.Fatalf("index.json: %+v, want one descriptor of the index %s", tm.Manifests, digestOf(t, idx))
	}
	wantAnn := map[string]string{annotationContainerdName: "ghcr.io/nodewarden/nodewarden:v0.1.0", annotationRefName: "v0.1.0"}
	if !reflect.DeepEqual(tm.Manifests[0].Annotations, wantAnn) {
		t.Errorf("annotations %v, want %v", tm.Manifests[0].Annotations, wantAnn)
	}
	read, err := top.ImageIndex(digestOf(t, idx))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(read); err != nil {
		t.Errorf("the index read back from the layout: %v", err)
	}

	// The archive is the layout, byte for byte the same each time.
	a1, a2 := filepath.Join(dir, "a1.tar"), filepath.Join(dir, "a2.tar")
	for _, a := range []string{a1, a2} {
		if err := WriteArchive(a, lay); err != nil {
			t.Fatal(err)
		}
	}
	b1, err := os.ReadFile(a1)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := os.ReadFile(a2)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(b1) != sha256.Sum256(b2) {
		t.Error("two archives of one layout differ")
	}
	tr := tar.NewReader(bytes.NewReader(b1))
	inArchive := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		inArchive[h.Name] = true
	}
	err = filepath.WalkDir(lay, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(lay, path)
		if !inArchive[filepath.ToSlash(rel)] {
			t.Errorf("%s not in the archive", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !inArchive["oci-layout"] || !inArchive["index.json"] {
		t.Errorf("archive lacks oci-layout or index.json: %v", inArchive)
	}
}

func TestWriteLayoutNamesDockerHubAsContainerdDoes(t *testing.T) {
	lay := filepath.Join(t.TempDir(), "oci")
	if err := WriteLayout(lay, testIndex(t), "nodewarden:dev"); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(lay, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m v1.IndexManifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if got := m.Manifests[0].Annotations[annotationContainerdName]; got != "docker.io/library/nodewarden:dev" {
		t.Errorf("containerd name %q, want docker.io/library/nodewarden:dev", got)
	}
}

func TestPushToARegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	idx := testIndex(t)
	ref := host + "/nodewarden/nodewarden:test"
	pushed, err := Push(context.Background(), idx, ref, true)
	if err != nil {
		t.Fatal(err)
	}
	if want := host + "/nodewarden/nodewarden@" + digestOf(t, idx).String(); pushed != want {
		t.Errorf("Push returned %s, want %s", pushed, want)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	if digestOf(t, got) != digestOf(t, idx) {
		t.Errorf("pulled %s, pushed %s", digestOf(t, got), digestOf(t, idx))
	}
	if err := validate.Index(got); err != nil {
		t.Errorf("the pulled index: %v", err)
	}
}
