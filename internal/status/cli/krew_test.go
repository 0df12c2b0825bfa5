package cli_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/nodewarden/nodewarden/test/cluster"
)

// TestKrewManifest checks the shape of plugins/nodewarden.yaml: the name of
// its file, the four platforms, and that each installs kubectl-nodewarden.
func TestKrewManifest(t *testing.T) {
	path := filepath.Join(cluster.RepoRoot(), "plugins", "nodewarden.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec struct {
			Version          string `json:"version"`
			Homepage         string `json:"homepage"`
			ShortDescription string `json:"shortDescription"`
			Description      string `json:"description"`
			Caveats          string `json:"caveats"`
			Platforms        []struct {
				Selector struct {
					MatchLabels map[string]string `json:"matchLabels"`
				} `json:"selector"`
				URI    string `json:"uri"`
				SHA256 string `json:"sha256"`
				Bin    string `json:"bin"`
				Files  []struct {
					From string `json:"from"`
					To   string `json:"to"`
				} `json:"files"`
			} `json:"platforms"`
		} `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if m.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || m.Kind != "Plugin" || m.Metadata.Name != "nodewarden" {
		t.Errorf("%s: %s %s %s", path, m.APIVersion, m.Kind, m.Metadata.Name)
	}
	if !strings.HasPrefix(m.Spec.Version, "v") || m.Spec.ShortDescription == "" {
		t.Errorf("version %q, shortDescription %q", m.Spec.Version, m.Spec.ShortDescription)
	}
	var got []string
	for _, p := range m.Spec.Platforms {
		goos, arch := p.Selector.MatchLabels["os"], p.Selector.MatchLabels["arch"]
		got = append(got, goos+"/"+arch)
		if !strings.HasSuffix(p.URI, "/kubectl-nodewarden_"+goos+"_"+arch+".tar.gz") || p.SHA256 == "" || p.Bin != "kubectl-nodewarden" ||
			len(p.Files) != 1 || p.Files[0].From != "kubectl-nodewarden" {
			t.Errorf("%s/%s: %+v", goos, arch, p)
		}
	}
	slices.Sort(got)
	if want := []string{"darwin/amd64", "darwin/arm64", "linux/amd64", "linux/arm64"}; !slices.Equal(got, want) {
		t.Errorf("platforms %v, want %v", got, want)
	}
}
