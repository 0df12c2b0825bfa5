package ociimage

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// The SPDX 2.3 JSON fields written here (https://spdx.github.io/spdx-spec/v2.3/).
type spdxDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	Name                  string            `json:"name"`
	SPDXID                string            `json:"SPDXID"`
	VersionInfo           string            `json:"versionInfo,omitempty"`
	DownloadLocation      string            `json:"downloadLocation"`
	FilesAnalyzed         bool              `json:"filesAnalyzed"`
	Checksums             []spdxChecksum    `json:"checksums,omitempty"`
	PrimaryPackagePurpose string            `json:"primaryPackagePurpose,omitempty"`
	ExternalRefs          []spdxExternalRef `json:"externalRefs,omitempty"`
	Comment               string            `json:"comment,omitempty"`
}

type spdxChecksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

type spdxExternalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	SPDXElementID      string `json:"spdxElementId"`
	RelationshipType   string `json:"relationshipType"`
	RelatedSPDXElement string `json:"relatedSpdxElement"`
}

// executable is a Go executable found in an image.
type executable struct {
	path string // in the image: "/nodewarden"
	sum  [sha256.Size]byte
	info *debug.BuildInfo
}

// SBOM is an SPDX 2.3 JSON document of img, from what img holds: the image
// (by manifest digest, with its platform and labels), each Go executable in
// it (by SHA-256, with its Go version and build settings), the module each
// was built from (GENERATED_FROM), and the Go standard library and every
// module linked into each (STATIC_LINK) with its version and package URL
// (pkg:golang/PATH@VERSION), as the executables' embedded build information
// (debug/buildinfo) records them. It is deterministic: created is the
// image's created time (the commit time), the documentNamespace is derived
// from the image digest, and the order is fixed, so the same image gives the
// same bytes.
func SBOM(img v1.Image) ([]byte, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	exes, err := goExecutables(img)
	if err != nil {
		return nil, err
	}
	return spdxOf(cf, digest, exes)
}

// spdxOf is the SBOM of the image with config cf and manifest digest
// digest, which holds exes.
func spdxOf(cf *v1.ConfigFile, digest v1.Hash, exes []executable) ([]byte, error) {
	if len(exes) == 0 {
		return nil, errors.New("the image holds no Go executable")
	}
	labels := cf.Config.Labels
	version := labels["org.opencontainers.image.version"]
	commit := labels["org.opencontainers.image.revision"]
	source := labels["org.opencontainers.image.source"]
	if source == "" {
		source = DefaultSource
	}
	p := Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	imageName := title + "-" + version + "-" + strings.ReplaceAll(p.String(), "/", "-")

	doc := spdxDocument{
		SPDXVersion:       "SPDX-2.3",
		DataLicense:       "CC0-1.0",
		SPDXID:            "SPDXRef-DOCUMENT",
		Name:              imageName,
		DocumentNamespace: strings.TrimSuffix(source, "/") + "/spdx/" + imageName + "-" + digest.Algorithm + "-" + digest.Hex,
		CreationInfo: spdxCreationInfo{
			Created:  cf.Created.UTC().Format(time.RFC3339),
			Creators: []string{"Organization: nodewarden", "Tool: nodewarden-ociimage-" + version},
		},
	}
	ids := map[string]bool{"SPDXRef-DOCUMENT": true}
	newID := func(parts ...string) string {
		id := "SPDXRef"
		for _, p := range parts {
			id += "-" + spdxIDPart(p)
		}
		base := id
		for n := 2; ids[id]; n++ {
			id = fmt.Sprintf("%s-%d", base, n)
		}
		ids[id] = true
		return id
	}
	relate := func(a, rel, b string) {
		doc.Relationships = append(doc.Relationships, spdxRelationship{SPDXElementID: a, RelationshipType: rel, RelatedSPDXElement: b})
	}

	imageID := newID("Image")
	arch := p.Architecture
	if p.Variant != "" {
		arch += p.Variant
	}
	doc.Packages = append(doc.Packages, spdxPackage{
		Name:                  title,
		SPDXID:                imageID,
		VersionInfo:           version,
		DownloadLocation:      "NOASSERTION",
		Checksums:             []spdxChecksum{{Algorithm: "SHA256", ChecksumValue: digest.Hex}},
		PrimaryPackagePurpose: "CONTAINER",
		ExternalRefs:          []spdxExternalRef{purlRef("pkg:oci/" + title + "@" + purlEscape(digest.String()) + "?arch=" + purlEscape(arch) + "&os=" + purlEscape(p.OS))},
		Comment:               fmt.Sprintf("The %s image of %s, commit %s; the manifest digest is %s.", p, source, commit, digest),
	})
	relate("SPDXRef-DOCUMENT", "DESCRIBES", imageID)

	// Modules are shared between the executables: one package per path@version.
	type modulePackage struct {
		key string // path@version, as in the build information
		pkg spdxPackage
	}
	moduleIDs := map[string]string{} // key -> SPDX id, assigned once all are known
	var modules []modulePackage
	module := func(m *debug.Module, versionOverride string) string {
		for m.Replace != nil {
			m = m.Replace
		}
		version := m.Version
		if versionOverride != "" && (version == "" || version == "(devel)") {
			version = versionOverride
		}
		key := m.Path + "@" + version
		if _, ok := moduleIDs[key]; ok {
			return key
		}
		pkg := spdxPackage{
			Name:                  m.Path,
			VersionInfo:           version,
			DownloadLocation:      "NOASSERTION",
			PrimaryPackagePurpose: "LIBRARY",
		}
		if m.Path == ModulePath {
			pkg.PrimaryPackagePurpose = "SOURCE"
			if commit != "" && commit != "unknown" {
				pkg.DownloadLocation = "git+" + strings.TrimSuffix(source, "/") + "@" + commit
			}
		}
		if version != "" && version != "(devel)" {
			pkg.ExternalRefs = []spdxExternalRef{purlRef(golangPURL(m.Path, version))}
		} else {
			pkg.VersionInfo = ""
		}
		if m.Sum != "" {
			pkg.Comment = "go.sum: " + m.Sum
		}
		modules = append(modules, modulePackage{key, pkg})
		moduleIDs[key] = ""
		return key
	}
	stdlib := func(goVersion string) string {
		v := "unknown"
		if f := strings.Fields(goVersion); len(f) > 0 {
			v = f[0] // "go1.26.8 X:nodwarf5" -> "go1.26.8"
		}
		key := "stdlib@" + v
		if _, ok := moduleIDs[key]; ok {
			return key
		}
		modules = append(modules, modulePackage{key, spdxPackage{
			Name:                  "stdlib",
			VersionInfo:           v,
			DownloadLocation:      "https://go.dev/dl/",
			PrimaryPackagePurpose: "LIBRARY",
			ExternalRefs:          []spdxExternalRef{purlRef(golangPURL("stdlib", strings.TrimPrefix(v, "go")))},
			Comment:               "The Go standard library and runtime of " + v + ".",
		}})
		moduleIDs[key] = ""
		return key
	}

	type link struct{ from, rel, to string } // to is a module key, resolved below
	var links []link
	for _, e := range exes {
		exeID := newID("Executable", path.Base(e.path))
		var settings []string
		for _, s := range e.info.Settings {
			settings = append(settings, s.Key+"="+s.Value)
		}
		doc.Packages = append(doc.Packages, spdxPackage{
			Name:                  path.Base(e.path),
			SPDXID:                exeID,
			VersionInfo:           version,
			DownloadLocation:      "NOASSERTION",
			Checksums:             []spdxChecksum{{Algorithm: "SHA256", ChecksumValue: hex.EncodeToString(e.sum[:])}},
			PrimaryPackagePurpose: "APPLICATION",
			Comment:               fmt.Sprintf("%s in the image: package %s built by %s with %s", e.path, e.info.Path, e.info.GoVersion, strings.Join(settings, " ")),
		})
		relate(imageID, "CONTAINS", exeID)
		links = append(links, link{exeID, "GENERATED_FROM", module(&e.info.Main, version)})
		links = append(links, link{exeID, "STATIC_LINK", stdlib(e.info.GoVersion)})
		for _, d := range e.info.Deps {
			links = append(links, link{exeID, "STATIC_LINK", module(d, "")})
		}
	}

	// Modules in a fixed order: nodewarden, the standard library, then by path and version.
	rank := func(p spdxPackage) int {
		switch p.Name {
		case ModulePath:
			return 0
		case "stdlib":
			return 1
		}
		return 2
	}
	sort.Slice(modules, func(i, j int) bool {
		a, b := modules[i].pkg, modules[j].pkg
		if rank(a) != rank(b) {
			return rank(a) < rank(b)
		}
		return modules[i].key < modules[j].key
	})
	for _, m := range modules {
		m.pkg.SPDXID = newID("Package", "go", m.pkg.Name, m.pkg.VersionInfo)
		moduleIDs[m.key] = m.pkg.SPDXID
		doc.Packages = append(doc.Packages, m.pkg)
	}
	for _, l := range links {
		id := moduleIDs[l.to]
		if id == "" {
			return nil, fmt.Errorf("internal error: no SPDX id for module %s", l.to)
		}
		relate(l.from, l.rel, id)
	}

	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false) // purls have & in them
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// goExecutables are the executable regular files of img that carry Go build
// information, in layer order.
func goExecutables(img v1.Image) ([]executable, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	var exes []executable
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, err
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rc.Close()
				return nil, err
			}
			if h.Typeflag != tar.TypeReg || h.Mode&0o111 == 0 {
				continue
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				rc.Close()
				return nil, err
			}
			info, err := buildinfo.Read(bytes.NewReader(data))
			if err != nil {
				continue // not a Go executable
			}
			exes = append(exes, executable{path: "/" + strings.TrimPrefix(h.Name, "/"), sum: sha256.Sum256(data), info: info})
		}
		if err := rc.Close(); err != nil {
			return nil, err
		}
	}
	return exes, nil
}

func purlRef(purl string) spdxExternalRef {
	return spdxExternalRef{ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl", ReferenceLocator: purl}
}

// golangPURL is pkg:golang/PATH@VERSION, each path segment and the version
// percent-encoded as the purl spec says (github.com/foo/bar@v1.0.0+incompatible
// -> pkg:golang/github.com/foo/bar@v1.0.0%2Bincompatible).
func golangPURL(modPath, version string) string {
	segs := strings.Split(modPath, "/")
	for i, s := range segs {
		segs[i] = purlEscape(s)
	}
	return "pkg:golang/" + strings.Join(segs, "/") + "@" + purlEscape(version)
}

// purlEscape percent-encodes all but ASCII letters, digits and ".-_~".
func purlEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".-_~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// spdxIDPart keeps what an SPDX identifier allows (letters, digits, "." and
// "-") and turns the rest into "-".
func spdxIDPart(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '-'
	}, s)
}
