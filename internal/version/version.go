// Package version reports what binary is running. Version and Commit are set
// at link time by the Makefile (-ldflags -X); a plain `go build` says "dev".
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

var (
	// Version is the release, e.g. v0.1.0, or `git describe` output.
	Version = "dev"
	// Commit is the git commit the binary was built from.
	Commit = "unknown"
)

// String is the one-line form printed by `nodewarden version` and logged at start.
func String() string {
	commit := Commit
	if commit == "unknown" {
		if info, ok := debug.ReadBuildInfo(); ok {
			for _, s := range info.Settings {
				if s.Key == "vcs.revision" {
					commit = s.Value
				}
			}
		}
	}
	return fmt.Sprintf("nodewarden %s (commit %s, %s, %s/%s)", Version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
