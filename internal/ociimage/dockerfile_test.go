package ociimage

import (
	"archive/tar"
	"encoding/json"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction: "COPY", "--from=build /out/a /".
type instruction struct {
	cmd  string
	args string
}

// parseDockerfile splits a Dockerfile into stages of instructions, joining
// continuation lines and dropping comments: enough for the Dockerfile of
// this repository, which the test checks uses nothing else.
func parseDockerfile(t *testing.T, file string) [][]instruction {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]instruction
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("%s: %s before FROM", file, in.cmd)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	return stages
}

// TestDockerfileMatchesTheGoBuilder keeps the Dockerfile and Image in step:
// the final stage must be FROM scratch, copy exactly the files Image puts in
// the layer (the same executables, and rootfs/ as it is), and set the same
// user, entrypoint, working directory, environment and labels; the build
// stage must build with the flags of BuildBinaries.
func TestDockerfileMatchesTheGoBuilder(t *testing.T) {
	const repo = "../.."
	stages := parseDockerfile(t, filepath.Join(repo, "Dockerfile"))
	if len(stages) != 2 {
		t.Fatalf("%d stages, want build and final", len(stages))
	}
	build, final := stages[0], stages[1]
	if got := final[0].args; got != "scratch" {
		t.Errorf("final stage FROM %s, want scratch (Image has no base)", got)
	}
	if !strings.HasSuffix(build[0].args, " AS build") {
		t.Errorf("first stage %q is not named build", build[0].args)
	}

	// The files of the final stage.
	var copied []string
	buildOutputs := map[string]bool{}
	for _, e := range executables {
		buildOutputs["/out/"+e] = true
	}
	cmdsSeen := map[string][]string{}
	for _, in := range final[1:] {
		cmdsSeen[in.cmd] = append(cmdsSeen[in.cmd], in.args)
		switch in.cmd {
		case "COPY":
			fields := strings.Fields(in.args)
			var from string
			for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
				if v, ok := strings.CutPrefix(fields[0], "--from="); ok {
					from = v
				} else {
					t.Errorf("COPY %s: flag %s would change owners or modes", in.args, fields[0])
				}
				fields = fields[1:]
			}
			if len(fields) < 2 {
				t.Fatalf("COPY %s: want sources and a destination", in.args)
			}
			srcs, dest := fields[:len(fields)-1], fields[len(fields)-1]
			if dest != "/" {
				t.Errorf("COPY %s: destination %s, want /", in.args, dest)
			}
			for _, src := range srcs {
				switch {
				case from == "build":
					if !buildOutputs[src] {
						t.Errorf("COPY --from=build %s: not an executable the build stage writes", src)
					}
					copied = append(copied, "/"+path.Base(src))
				case from != "":
					t.Errorf("COPY --from=%s: only the build stage is allowed", from)
				default:
					// From the build context: a directory's contents land in dest.
					err := filepath.WalkDir(filepath.Join(repo, src), func(p string, d fs.DirEntry, err error) error {
						if err != nil || d.IsDir() {
							return err
						}
						info, err := d.Info()
						if err != nil {
							return err
						}
						if info.Mode().Perm()&0o111 != 0 {
							t.Errorf("%s is executable in the tree; Image makes it 0644", p)
						}
						rel, err := filepath.Rel(filepath.Join(repo, src), p)
						if err != nil {
							return err
						}
						copied = append(copied, path.Join(dest, filepath.ToSlash(rel)))
						return nil
					})
					if err != nil {
						t.Fatalf("COPY %s: %v", src, err)
					}
				}
			}
		case "ENV", "WORKDIR", "USER", "ENTRYPOINT", "ARG", "LABEL":
		default:
			t.Errorf("final stage: %s %s is not something Image does", in.cmd, in.args)
		}
	}
	sort.Strings(copied)
	var inImage []string
	for n, e := range layerFiles(t, mustImage(t, fakeExecutables("1"), amd64, testMeta)) {
		if e.typ == tar.TypeReg {
			inImage = append(inImage, "/"+n)
		}
	}
	sort.Strings(inImage)
	if !reflect.DeepEqual(copied, inImage) {
		t.Errorf("the Dockerfile copies %q\nImage holds %q", copied, inImage)
	}

	// The config.
	one := func(cmd string) string {
		if len(cmdsSeen[cmd]) != 1 {
			t.Errorf("%d %s instructions in the final stage, want 1", len(cmdsSeen[cmd]), cmd)
			return ""
		}
		return cmdsSeen[cmd][0]
	}
	if got := one("USER"); got != User {
		t.Errorf("USER %s, want %s", got, User)
	}
	var ep []string
	if err := json.Unmarshal([]byte(one("ENTRYPOINT")), &ep); err != nil || !reflect.DeepEqual(ep, entrypoint) {
		t.Errorf("ENTRYPOINT %s (%v), want the exec form of %q", one("ENTRYPOINT"), err, entrypoint)
	}
	if got := one("WORKDIR"); got != workingDir {
		t.Errorf("WORKDIR %s, want %s", got, workingDir)
	}
	if got := one("ENV"); got != pathEnv {
		t.Errorf("ENV %s, want %s", got, pathEnv)
	}
	labels := map[string]string{}
	for _, m := range regexp.MustCompile(`([a-z.]+)="([^"]*)"`).FindAllStringSubmatch(one("LABEL"), -1) {
		labels[m[1]] = m[2]
	}
	want := Metadata{Version: "${VERSION}", Commit: "${COMMIT}"}.Labels()
	want["org.opencontainers.image.created"] = "${CREATED}" // the Go builder formats a time
	if !reflect.DeepEqual(labels, want) {
		t.Errorf("LABEL %v\nwant %v", labels, want)
	}

	// The build.
	var run string
	for _, in := range build {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			run = in.args
		}
	}
	words := strings.Fields(run)
	has := map[string]bool{}
	for _, w := range words {
		has[w] = true
	}
	envs := map[string]bool{"GOOS=${TARGETOS}": true, "GOARCH=${TARGETARCH}": true}
	for _, p := range DefaultPlatforms() {
		for _, e := range p.goEnv() {
			if !strings.HasPrefix(e, "GOOS=") && !strings.HasPrefix(e, "GOARCH=") {
				envs[e] = true
			}
		}
	}
	for e := range envs {
		if !has[e] {
			t.Errorf("the build RUN does not set %s (Platform.goEnv does): %s", e, run)
		}
	}
	flags := goBuildFlags("${VERSION}", "${COMMIT}")
	wantBuild := "go build " + strings.Join(flags[:len(flags)-1], " ") + ` "` + flags[len(flags)-1] + `" -o /out/`
	for _, e := range executables {
		wantBuild += " ./cmd/" + e
	}
	if !strings.Contains(strings.Join(words, " "), wantBuild) {
		t.Errorf("the build RUN is\n  %s\nwant it to contain\n  %s", run, wantBuild)
	}
}
