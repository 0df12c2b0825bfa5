package healthcheck

import (
	"fmt"
	"io/fs"
	"strings"
)

const pathMountinfo = "proc/self/mountinfo"

// mount is one line of proc/self/mountinfo.
type mount struct {
	device, point, fstype string
	// readOnly is the filesystem's (superblock's) read-only flag, from the
	// super options: set by the kernel when it remounts a filesystem
	// read-only after errors. The mount's own "ro" (e.g. a read-only bind
	// mount of a host directory) is deliberately not kept.
	readOnly bool
}

// parseMountinfoLine parses one proc/self/mountinfo line (proc(5)):
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// mount ID, parent ID, major:minor, root, mount point, mount options, zero
// or more optional fields terminated by "-", then fs type, mount source and
// super options. Fields are separated by single spaces (the kernel escapes
// spaces in paths as \040, undone here); splitting on each space keeps an
// empty mount source in place. A line with missing fields, no "-"
// separator or a relative mount point is rejected.
func parseMountinfoLine(line string) (mount, bool) {
	f := strings.Split(line, " ")
	// 6 fixed fields, the separator, then 3 more.
	if len(f) < 10 {
		return mount{}, false
	}
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if sep < 0 || len(f) < sep+4 {
		return mount{}, false
	}
	m := mount{point: unescapeMount(f[4]), fstype: unescapeMount(f[sep+1]), device: unescapeMount(f[sep+2])}
	if !strings.HasPrefix(m.point, "/") {
		return mount{}, false
	}
	for _, o := range strings.Split(f[sep+3], ",") {
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
// or I/O errors. Writable means the filesystem's own read-only flag (the
// super options of proc/self/mountinfo) is clear; a read-only mount of a
// writable filesystem (a hostPath volume with readOnly: true) is not an
// issue.
func StorageReady(fsys fs.FS, kmsg []string, paths []string) Result {
	r := &report{typ: TypeStorageReady, okReason: ReasonStorageReady}
	c := countKmsg(kmsg)

	b, err := fs.ReadFile(fsys, pathMountinfo)
	if err != nil {
		r.fail(pathMountinfo, err)
	} else {
		var mounts []mount
		for _, line := range strings.Split(string(b), "\n") {
			if m, ok := parseMountinfoLine(line); ok {
				mounts = append(mounts, m)
			}
		}
		var ok []string
		for _, p := range paths {
			m, found := mountFor(mounts, p)
			switch {
			case !found:
				r.fail(pathMountinfo, fmt.Errorf("no mount contains %q (%d mounts)", p, len(mounts)))
			case m.readOnly:
				r.add(0, ReasonFilesystemIsReadOnly, fmt.Sprintf("%s is on %s (%s %s), whose filesystem is read-only (%s)",
					p, m.point, m.fstype, m.device, pathMountinfo))
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
