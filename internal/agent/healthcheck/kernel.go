package healthcheck

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// PIDUsageThreshold is the share of min(pid_max, threads-max) in use at
// which KernelReady turns False with ForkFailedOutOfPIDs.
const PIDUsageThreshold = 0.95

const (
	pathPIDMax     = "proc/sys/kernel/pid_max"
	pathThreadsMax = "proc/sys/kernel/threads-max"
	pathLoadavg    = "proc/loadavg"
)

// kmsgKind is what a kernel log line is evidence of.
type kmsgKind int

const (
	kmsgNone kmsgKind = iota
	kmsgForkFailed
	kmsgSoftLockup
	kmsgHungTask
	kmsgKernelBug
	kmsgReadOnly
	kmsgXFSCorruption
	kmsgIOError
)

// classifyKmsg says which issue, if any, a kernel (or kubelet) log line shows.
// Cheap substring tests only: it runs on every line of every check.
func classifyKmsg(line string) kmsgKind {
	switch {
	case strings.Contains(line, "soft lockup - CPU#"):
		return kmsgSoftLockup
	case strings.Contains(line, " blocked for more than ") && strings.Contains(line, "task "):
		return kmsgHungTask
	case strings.Contains(line, "fork/exec") && strings.Contains(line, "resource temporarily unavailable"),
		strings.Contains(line, "failed to create new OS thread") && strings.Contains(line, "errno=11"):
		return kmsgForkFailed
	case strings.Contains(line, "Remounting filesystem read-only"):
		return kmsgReadOnly
	case strings.Contains(line, "XFS (") && strings.Contains(line, "orruption"):
		// "XFS (sda1): Corruption detected...", "Metadata corruption detected at ...",
		// "Corruption of in-memory data detected. Shutting down filesystem".
		return kmsgXFSCorruption
	case strings.Contains(line, "Buffer I/O error"), strings.Contains(line, "I/O error, dev "):
		return kmsgIOError
	case strings.Contains(line, "BUG: "):
		return kmsgKernelBug
	}
	return kmsgNone
}

// kmsgCounts tallies the kmsg lines of each kind, keeping the first of each.
type kmsgCounts struct {
	n     [kmsgIOError + 1]int
	first [kmsgIOError + 1]string
}

func countKmsg(lines []string) *kmsgCounts {
	c := &kmsgCounts{}
	for _, l := range lines {
		k := classifyKmsg(l)
		if k == kmsgNone {
			continue
		}
		if c.n[k] == 0 {
			c.first[k] = truncate(kmsgText(l), 200)
		}
		c.n[k]++
	}
	return c
}

// describe returns "N kmsg line(s) like <first>" for kind k.
// kmsgFinding is what a kind of kernel log line means for a check.
type kmsgFinding struct {
	kind   kmsgKind
	reason string
	what   string
}

// report adds a finding for each kind seen, ranked by its order in
// findings (the first is the most severe).
func (c *kmsgCounts) report(r *report, findings []kmsgFinding) {
	for rank, f := range findings {
		if c.n[f.kind] > 0 {
			r.add(rank, f.reason, c.describe(f.what, f.kind))
		}
	}
}

func (c *kmsgCounts) describe(what string, k kmsgKind) string {
	return fmt.Sprintf("%s: %d log line(s), first %q", what, c.n[k], c.first[k])
}

// parseLoadavg returns the total number of tasks from proc/loadavg
// ("0.00 0.01 0.05 1/123 4567": the 4th field is runnable/total).
func parseLoadavg(s string) (running, total uint64, err error) {
	f := strings.Fields(s)
	if len(f) < 4 {
		return 0, 0, fmt.Errorf("want 5 fields, got %d", len(f))
	}
	r, t, ok := strings.Cut(f[3], "/")
	if !ok {
		return 0, 0, fmt.Errorf("4th field %q is not running/total", truncate(f[3], 32))
	}
	if running, err = parseUint(r); err != nil {
		return 0, 0, err
	}
	if total, err = parseUint(t); err != nil {
		return 0, 0, err
	}
	return running, total, nil
}

// KernelReady reports whether the kernel can keep creating tasks and is not
// locking up: PID/thread usage from proc and fork failures, soft lockups,
// hung tasks and kernel BUGs in kmsg (which may include kubelet log lines).
func KernelReady(fsys fs.FS, kmsg []string) Result {
	r := &report{typ: TypeKernelReady, okReason: ReasonKernelReady}
	c := countKmsg(kmsg)

	pidMax, errP := readUint(fsys, pathPIDMax)
	if errP != nil {
		r.fail(pathPIDMax, errP)
	}
	threadsMax, errT := readUint(fsys, pathThreadsMax)
	if errT != nil {
		r.fail(pathThreadsMax, errT)
	}
	var tasks uint64
	b, errL := fs.ReadFile(fsys, pathLoadavg)
	if errL == nil {
		_, tasks, errL = parseLoadavg(string(b))
	}
	if errL != nil {
		r.fail(pathLoadavg, errL)
	}
	if errP == nil && errT == nil && errL == nil {
		limit, limitName := pidMax, "pid_max"
		if threadsMax < limit {
			limit, limitName = threadsMax, "threads-max"
		}
		if limit == 0 {
			r.fail(pathPIDMax, errors.New("pid_max or threads-max is 0"))
		} else {
			usage := float64(tasks) / float64(limit)
			msg := fmt.Sprintf("%d tasks (%s) of %s %d (%.1f%%; %s %d, %s %d)",
				tasks, pathLoadavg, limitName, limit, usage*100, pathPIDMax, pidMax, pathThreadsMax, threadsMax)
			if usage >= PIDUsageThreshold {
				r.add(0, ReasonForkFailedOutOfPIDs, msg+fmt.Sprintf(", at or above %.0f%%", PIDUsageThreshold*100))
			} else {
				r.okMsg = msg
			}
		}
	}

	c.report(r, []kmsgFinding{
		{kmsgForkFailed, ReasonForkFailedOutOfPIDs, "fork failed for lack of PIDs"},
		{kmsgSoftLockup, ReasonSoftLockup, "soft lockup"},
		{kmsgHungTask, ReasonAppBlocked, "hung task"},
		{kmsgKernelBug, ReasonKernelBug, "kernel BUG"},
	})
	if r.okMsg != "" {
		r.okMsg += fmt.Sprintf("; no fork failure, soft lockup, hung task or BUG in %d log line(s)", len(kmsg))
	}
	return r.result()
}
