// Command image builds the nodewarden container image from source, without
// Docker (`make image`, `make image-push`), and the executables of `make
// build`. See internal/ociimage for what the image holds and
// docs/development.md, "Building the image".
//
//	go run ./hack/image [-platforms linux/amd64,linux/arm64] [-out bin/image] [-name REF] [-push REF [-insecure]]
//	go run ./hack/image -binaries bin      # bin/nodewarden, bin/nodewarden-agent and bin/kubectl-nodewarden for this machine
//
// It writes, in -out:
//
//	oci/                        the OCI image layout, index.json naming the image index (-name): crane push, skopeo oci:
//	nodewarden-oci.tar          the same layout as one tar: ctr images import, kind load image-archive
//	sbom-linux-amd64.spdx.json  an SPDX 2.3 SBOM per image
//
// and prints the digest of the index and of each image. -version and
// -commit default to `git describe --tags --always --dirty` and `git
// rev-parse HEAD`; the image's created time (and every file's mtime) is
// $SOURCE_DATE_EPOCH, else the commit time of HEAD: the same commit gives
// the same digests.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nodewarden/nodewarden/internal/ociimage"
)

const archiveName = "nodewarden-oci.tar"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "comma-separated `platforms` of the image index")
	out := fs.String("out", "bin/image", "output `directory`: oci/ (OCI layout), "+archiveName+", sbom-*.spdx.json; replaced")
	ref := fs.String("name", "", "`reference` that names the image in the layout and archive (default ghcr.io/nodewarden/nodewarden:VERSION, or -push)")
	push := fs.String("push", "", "push the index to this `reference` (registry/repository:tag), with docker's credentials")
	insecure := fs.Bool("insecure", false, "push over plain HTTP")
	version := fs.String("version", "", "org.opencontainers.image.version and internal/version.Version (default `git describe --tags --always --dirty`)")
	commit := fs.String("commit", "", "org.opencontainers.image.revision and internal/version.Commit (default `git rev-parse HEAD`)")
	created := fs.String("created", "", "image creation time, RFC 3339 or Unix seconds (default $SOURCE_DATE_EPOCH, else the commit time of HEAD)")
	binaries := fs.String("binaries", "", "only build nodewarden, nodewarden-agent and kubectl-nodewarden (the kubectl plugin, not in the image) for this machine into this `directory` (make build)")
	root := fs.String("C", ".", "the nodewarden checkout to build")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *version == "" {
		*version = git(*root, "dev", "describe", "--tags", "--always", "--dirty")
	}
	if *commit == "" {
		*commit = git(*root, "unknown", "rev-parse", "HEAD")
	}

	if *binaries != "" {
		host := ociimage.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
		if p, err := ociimage.ParsePlatform(host.String()); err == nil {
			host = p
		}
		if _, err := ociimage.BuildBinaries(ctx, *root, host, *version, *commit, *binaries); err != nil {
			return err
		}
		return ociimage.BuildClientTools(ctx, *root, host, *version, *commit, *binaries)
	}

	ps, err := ociimage.ParsePlatforms(*platforms)
	if err != nil {
		return err
	}
	when, err := createdTime(*root, *created, os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return err
	}
	name := *ref
	if name == "" {
		name = *push
	}
	if name == "" {
		name = ociimage.DefaultRepository + ":" + *version
	}
	if err := prepareOut(*out); err != nil {
		return err
	}

	start := time.Now()
	fmt.Printf("building nodewarden %s (commit %s, created %s) for %s\n", *version, *commit, when.UTC().Format(time.RFC3339), *platforms)
	idx, err := ociimage.Build(ctx, ociimage.Options{
		RepoRoot:  *root,
		Platforms: ps,
		Version:   *version,
		Commit:    *commit,
		Created:   when,
		Log:       os.Stdout,
	})
	if err != nil {
		return err
	}
	layoutDir := filepath.Join(*out, "oci")
	if err := ociimage.WriteLayout(layoutDir, idx, name); err != nil {
		return err
	}
	archive := filepath.Join(*out, archiveName)
	if err := ociimage.WriteArchive(archive, layoutDir); err != nil {
		return err
	}
	written := []string{layoutDir + " (OCI layout)", archive}
	platformsOf, images, err := ociimage.Images(idx)
	if err != nil {
		return err
	}
	var lines []string
	for i, img := range images {
		d, err := img.Digest()
		if err != nil {
			return err
		}
		sbom, err := ociimage.SBOM(img)
		if err != nil {
			return fmt.Errorf("SBOM of %s: %w", platformsOf[i], err)
		}
		file := filepath.Join(*out, "sbom-"+strings.ReplaceAll(platformsOf[i].String(), "/", "-")+".spdx.json")
		if err := os.WriteFile(file, sbom, 0o644); err != nil { //nolint:gosec // G306: the SBOMs are published with the image
			return err
		}
		written = append(written, file)
		lines = append(lines, fmt.Sprintf("  %-12s %s", platformsOf[i], d))
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s, built in %.1fs:\n  %-12s %s\n%s\n", name, time.Since(start).Seconds(), "index", d, strings.Join(lines, "\n"))
	fmt.Printf("wrote %s\n", strings.Join(written, ", "))

	if *push != "" {
		pushed, err := ociimage.Push(ctx, idx, *push, *insecure)
		if err != nil {
			return err
		}
		fmt.Printf("pushed %s\n", pushed)
	}
	return nil
}

// prepareOut empties dir of what an earlier run wrote there, and refuses a
// directory that holds anything else.
func prepareOut(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return os.MkdirAll(dir, 0o750)
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		n := e.Name()
		ours := n == "oci" || n == archiveName || n == archiveName+".tmp" ||
			strings.HasPrefix(n, "sbom-") && strings.HasSuffix(n, ".spdx.json")
		if !ours {
			return fmt.Errorf("%s holds %s, which this command did not write; choose another -out", dir, n)
		}
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// createdTime is -created, else $SOURCE_DATE_EPOCH, else the commit time of
// HEAD, else 1970.
func createdTime(root, flagValue, sourceDateEpoch string) (time.Time, error) {
	for _, v := range []string{flagValue, sourceDateEpoch} {
		if v == "" {
			continue
		}
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
			return time.Unix(secs, 0).UTC(), nil
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return time.Time{}, fmt.Errorf("created time %q: want Unix seconds or RFC 3339", v)
		}
		return t.UTC(), nil
	}
	if secs, err := strconv.ParseInt(git(root, "", "log", "-1", "--format=%ct", "HEAD"), 10, 64); err == nil {
		return time.Unix(secs, 0).UTC(), nil
	}
	fmt.Fprintln(os.Stderr, "image: no git commit time and no SOURCE_DATE_EPOCH: the image is dated 1970-01-01")
	return time.Unix(0, 0).UTC(), nil
}

// git runs git in dir and returns its trimmed output, or fallback if it fails.
func git(dir, fallback string, args ...string) string {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		return fallback
	}
	return strings.TrimSpace(string(out))
}
