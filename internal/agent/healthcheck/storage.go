package healthcheck

import (
	"fmt"
	"io/fs"
	"strings"
)

const pathMounts = "proc/mounts"

// mount is one line of proc/mounts.
type mount struct {
	device, point, fstype string
	readOnly              bool
}

// parseMountLine parses one proc/mounts line ("dev point type opts 0 0"),
// undoing the kernel's octal escapes (\040 for a space, ...).
func parseMountLine(line string) (mount, bool) {
	f := strings.Fields(line)
	if len(f) < 4 {
		return mount{}, false
	}
	m := mount{device: unescapeMount(f[0]), point: unescapeMount(f[1]), fstype: f[2]}
	if !strings.HasPrefix(m.point, "/") {
		return mount{}, false
	}
	for _, o := range strings.Split(f[3], ",") {
		if o == "ro" {
			m.readOnly = true
		}
	}
	return m, true
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// contains reports whether mount point mp contains path p.
func contains(mp, p string) bool {
	if mp == "/" {
		return strings.HasPrefix(p, "/")
	}
	return p == mp || strings.HasPrefix(p, mp) && p[len(mp)] == '/'
}

// mountFor returns the mount containing p: the longest mount point that is
// a prefix of p, the last listed on ties (the top of a stack of over-mounts).
func mountFor(mounts []mount, p string) (mount, bool) {
	best, found := mount{}, false
	for _, m := range mounts {
		if contains(m.point, p) && (!found || len(m.point) >= len(best.point)) {
			best, found = m, true
		}
	}
	return best, found
}

// StorageReady reports whether the filesystems holding paths (e.g. "/" and
// "/var/lib/kubelet") are writable and kmsg shows no filesystem corruption
// or I/O errors.
func StorageReady(fsys fs.FS, kmsg []string, paths []string) Result {
	r := &report{typ: TypeStorageReady, okReason: ReasonStorageReady}
	c := countKmsg(kmsg)

	b, err := fs.ReadFile(fsys, pathMounts)
	if err != nil {
		r.fail(pathMounts, err)
	} else {
		var mounts []mount
		for _, line := range strings.Split(string(b), "\n") {
			if m, ok := parseMountLine(line); ok {
				mounts = append(mounts, m)
			}
		}
		var ok []string
		for _, p := range paths {
			m, found := mountFor(mounts, p)
			switch {
			case !found:
				r.fail(pathMounts, fmt.Errorf("no mount contains %q (%d mounts)", p, len(mounts)))
			case m.readOnly:
				r.add(0, ReasonFilesystemIsReadOnly, fmt.Sprintf("%s is on %s (%s %s) mounted read-only (%s)",
					p, m.point, m.fstype, m.device, pathMounts))
			default:
				ok = append(ok, fmt.Sprintf("%s on %s (%s %s)", p, m.point, m.fstype, m.device))
			}
		}
		r.okMsg = "writable: " + strings.Join(ok, ", ")
	}

	c.report(r, []kmsgFinding{
		{kmsgReadOnly, ReasonFilesystemIsReadOnly, "filesystem remounted read-only"},
		{kmsgXFSCorruption, ReasonXFSCorruption, "XFS corruption"},
		{kmsgIOError, ReasonIOError, "I/O error"},
	})
	r.okMsg += fmt.Sprintf("; no read-only remount, XFS corruption or I/O error in %d log line(s)", len(kmsg))
	return r.result()
}
