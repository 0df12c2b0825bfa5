package cli_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/nodewarden/nodewarden/internal/status/cli"
	"github.com/nodewarden/nodewarden/internal/status/statustest"
	"github.com/nodewarden/nodewarden/test/cluster"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with what the commands print")

// TestGolden runs `kubectl nodewarden` in-process against a real API
// server holding statustest's cluster, and compares what it prints to
// testdata/NAME.golden (go test ./internal/status/cli -update rewrites them).
func TestGolden(t *testing.T) {
	c := cluster.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := statustest.New()
	for i := range f.Policies {
		if err := c.Client.Create(ctx, &f.Policies[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range f.Nodes {
		n := f.Nodes[i].DeepCopy()
		if err := c.Client.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
		n.Status = f.Nodes[i].Status
		if err := c.Client.Status().Update(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	for i := range f.Records {
		if err := c.Client.Create(ctx, &f.Records[i]); err != nil {
			t.Fatal(err)
		}
	}

	t.Setenv("NO_COLOR", "1")
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"status", []string{"status"}},
		{"status-json", []string{"status", "-o", "json"}},
		{"history", []string{"history"}},
		{"history-node-c", []string{"history", "node-c"}},
		{"history-node-c-yaml", []string{"history", "node-c", "-o", "yaml"}},
		{"explain-node-b", []string{"explain", "node-b"}},
		{"explain-node-e", []string{"explain", "node-e"}},
		{"explain-node-d-json", []string{"explain", "node-d", "-o", "json"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			cmd := cli.NewRootCommand()
			var out, errOut bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&errOut)
			cmd.SetArgs(append([]string{"--kubeconfig", c.Kubeconfig, "--now", statustest.Now.Format(time.RFC3339)}, tc.args...))
			if err := cmd.ExecuteContext(ctx); err != nil {
				t.Fatalf("%v: %v\n%s", tc.args, err, errOut.String())
			}
			path := filepath.Join("testdata", tc.golden+".golden")
			if *update {
				if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if d := cmp.Diff(string(want), out.String()); d != "" {
				t.Errorf("kubectl nodewarden %v (-%s +got):\n%s", tc.args, path, d)
			}
		})
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"status", "-o", "wide", "--kubeconfig", "/nonexistent"},
		{"status", "--color", "sometimes", "--kubeconfig", "/nonexistent"},
		{"status", "--now", "yesterday"},
		{"explain"},
	} {
		cmd := cli.NewRootCommand()
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		cmd.SetArgs(args)
		if err := cmd.Execute(); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
