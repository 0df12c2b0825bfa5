// Package boottime reads when the node booted. The agent reads it once and
// hands it to every source: an event due before the boot has happened.
package boottime

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Read returns the `btime` line (seconds since the epoch) of a /proc/stat
// file. Inside a container /proc/stat still shows the host's boot time.
func Read(path string) (time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return time.Time{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("btime "))
		if !ok {
			continue
		}
		secs, err := strconv.ParseInt(string(bytes.TrimSpace(rest)), 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("%s: bad btime line: %w", path, err)
		}
		return time.Unix(secs, 0).UTC(), nil
	}
	if err := sc.Err(); err != nil {
		return time.Time{}, err
	}
	return time.Time{}, fmt.Errorf("%s: no btime line", path)
}
