// Package journaltest writes real systemd journal files for tests, with
// Debian's systemd-journal-remote (hack/node-deps.sh installs it; hack/test.sh
// runs that as root, so CI runs the tests that need it). Tests read journal
// files that systemd's own code wrote, never ones made by the reader's
// author.
package journaltest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// Remote is systemd-journal-remote's path on Debian.
const Remote = "/lib/systemd/systemd-journal-remote"

// Entry is one journal entry to write.
type Entry struct {
	Realtime  time.Time
	Monotonic time.Duration
	BootID    [16]byte
	// Fields are written in name order. A value with a newline or another
	// control character is written in the export format's binary form.
	Fields map[string]string
}

// Export renders entries in the journal export format.
func Export(entries ...Entry) []byte {
	var b bytes.Buffer
	for _, e := range entries {
		fmt.Fprintf(&b, "__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=%x\n",
			e.Realtime.UnixMicro(), e.Monotonic.Microseconds(), e.BootID[:])
		names := make([]string, 0, len(e.Fields))
		for k := range e.Fields {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			v := e.Fields[k]
			if !isText(v) {
				b.WriteString(k + "\n")
				_ = binary.Write(&b, binary.LittleEndian, uint64(len(v)))
				b.WriteString(v + "\n")
				continue
			}
			fmt.Fprintf(&b, "%s=%s\n", k, v)
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}

func isText(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// Write appends entries to the journal file out (created if missing) with
// systemd-journal-remote; args and env are passed to it (e.g.
// --compress=no, SYSTEMD_JOURNAL_COMPACT=0). A test without the tool is
// skipped, saying why.
func Write(t testing.TB, out string, args, env []string, entries ...Entry) {
	t.Helper()
	if _, err := os.Stat(Remote); err != nil {
		t.Skipf("skipped: %s is missing (Debian package systemd-journal-remote; hack/node-deps.sh installs it as root): %v", Remote, err)
	}
	cmd := exec.Command(Remote, append(slices.Clone(args), "--output="+out, "-")...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = bytes.NewReader(Export(entries...))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", Remote, err, b)
	}
}
