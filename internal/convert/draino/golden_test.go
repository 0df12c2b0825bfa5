package draino

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestGolden converts each testdata/NAME.args (one argument per line, as a
// container's command lists them) and compares the rendered policy with
// NAME.yaml and the warnings with NAME.warnings.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.args")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.args")
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".args")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			args := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
			p, warnings, err := Convert(args, Options{})
			if err != nil {
				t.Fatalf("Convert: %v", err)
			}
			out, err := Render(p)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			warnText := strings.Join(warnings, "\n") + "\n"
			golden(t, "testdata/"+name+".yaml", string(out))
			golden(t, "testdata/"+name+".warnings", warnText)

			checkRoundTrip(t, p)
		})
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", path, diff)
	}
}
