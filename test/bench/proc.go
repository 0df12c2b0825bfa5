package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodewarden/nodewarden/test/cluster"
)

// BinaryUnderTest is a copy of the binary to measure: $NODEWARDEN_BIN, else
// bin/<name> (`make build`), under the same base name. A copy, so that a `make build` running
// meanwhile cannot swap it; evicted from the page cache, so that its text is
// read on demand as on a node that has just pulled its image. A file that
// was just written may sit in the page cache in large folios, which a kernel
// with large-folio support (6.x, ext4/xfs) maps 2 MiB at a time: that alone
// added ~8 MiB of VmRSS here.
func BinaryUnderTest(tb testing.TB, name string) string {
	tb.Helper()
	p := os.Getenv("NODEWARDEN_BIN")
	if p == "" {
		p = filepath.Join(cluster.RepoRoot(), "bin", name)
	}
	return CopyBinary(tb, p)
}

// CopyBinary is BinaryUnderTest for the binary at p, for benchmarks that
// compare several builds on one cluster.
func CopyBinary(tb testing.TB, p string) string {
	tb.Helper()
	src, err := os.ReadFile(p)
	if err != nil {
		tb.Fatalf("%v: run `make build` first (or set NODEWARDEN_BIN)", err)
	}
	cp := filepath.Join(tb.TempDir(), filepath.Base(p))
	if err := os.WriteFile(cp, src, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := dropPageCache(cp); err != nil {
		tb.Fatal(err)
	}
	return cp
}

func dropPageCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return err
	}
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

// ProcStatus reads VmRSS, VmHWM, RssAnon and RssFile of pid, in bytes.
func ProcStatus(pid int) (map[string]int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch k {
		case "VmRSS", "VmHWM", "RssAnon", "RssFile":
			fields := strings.Fields(v)
			if len(fields) == 2 && fields[1] == "kB" {
				if n, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
					out[k] = n << 10
				}
			}
		}
	}
	return out, sc.Err()
}

// CPUTime is the process's user+system CPU time, from /proc/pid/stat.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; the fields we want follow its ')'.
	i := bytes.LastIndexByte(b, ')')
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	ut, err1 := strconv.ParseInt(fields[11], 10, 64)
	st, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clkTck, nil
}

// MiB is n bytes in MiB.
func MiB(n int64) float64 { return float64(n) / (1 << 20) }
