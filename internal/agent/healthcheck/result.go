package healthcheck

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Condition types, as the EKS node monitoring agent names them.
const (
	TypeKernelReady     = "KernelReady"
	TypeNetworkingReady = "NetworkingReady"
	TypeStorageReady    = "StorageReady"
)

// Reasons. See the package documentation for where each name comes from.
const (
	ReasonKernelReady     = "KernelIsReady"
	ReasonNetworkingReady = "NetworkingIsReady"
	ReasonStorageReady    = "StorageIsReady"
	// ReasonUnreadable is the reason of an Unknown result.
	ReasonUnreadable = "HostStateUnreadable"

	ReasonForkFailedOutOfPIDs = "ForkFailedOutOfPIDs"
	ReasonSoftLockup          = "SoftLockup"
	ReasonAppBlocked          = "AppBlocked"
	ReasonKernelBug           = "KernelBug"

	ReasonMissingLoopbackInterface = "MissingLoopbackInterface"
	ReasonInterfaceNotUp           = "InterfaceNotUp"
	ReasonInterfaceNotRunning      = "InterfaceNotRunning"
	ReasonConntrackExceededKernel  = "ConntrackExceededKernel"

	ReasonFilesystemIsReadOnly = "FilesystemIsReadOnly"
	ReasonXFSCorruption        = "XFSCorruption"
	ReasonIOError              = "IOError"
)

// Result is what a detector saw: a node condition without timestamps.
type Result struct {
	Type    string
	Status  corev1.ConditionStatus
	Reason  string
	Message string
	// Findings are every issue seen, most severe first (Reason and the
	// start of Message are the first's). Profiles that split one EKS
	// condition into several (AKS) map each finding on its own.
	Findings []Finding
}

// Finding is one issue a detector saw.
type Finding struct {
	Reason  string
	Message string
}

// maxMessageIssues bounds how many issues a message lists.
const maxMessageIssues = 5

// finding is one issue a detector saw; rank orders severity (lower first).
type finding struct {
	rank   int
	reason string
	msg    string
}

// report gathers a detector's findings and read errors into its Result.
type report struct {
	typ      string
	okReason string
	okMsg    string
	found    []finding
	errs     []string
}

func (r *report) add(rank int, reason, msg string) {
	r.found = append(r.found, finding{rank: rank, reason: reason, msg: msg})
}

func (r *report) fail(path string, err error) {
	r.errs = append(r.errs, fmt.Sprintf("%s: %v", path, trimPathErr(err)))
}

func (r *report) result() Result {
	if len(r.found) > 0 {
		best := 0
		for i, f := range r.found {
			if f.rank < r.found[best].rank {
				best = i
			}
		}
		msgs := []string{r.found[best].msg}
		for i, f := range r.found {
			if i != best && len(msgs) < maxMessageIssues {
				msgs = append(msgs, f.msg)
			}
		}
		msg := strings.Join(msgs, "; ")
		if extra := len(r.found) - len(msgs); extra > 0 {
			msg += fmt.Sprintf("; and %d more", extra)
		}
		sorted := slices.Clone(r.found)
		slices.SortStableFunc(sorted, func(a, b finding) int { return a.rank - b.rank })
		findings := make([]Finding, len(sorted))
		for i, f := range sorted {
			findings[i] = Finding{Reason: f.reason, Message: f.msg}
		}
		return Result{Type: r.typ, Status: corev1.ConditionFalse, Reason: r.found[best].reason, Message: msg, Findings: findings}
	}
	if len(r.errs) > 0 {
		return Result{Type: r.typ, Status: corev1.ConditionUnknown, Reason: ReasonUnreadable,
			Message: "cannot read " + strings.Join(r.errs, "; ")}
	}
	return Result{Type: r.typ, Status: corev1.ConditionTrue, Reason: r.okReason, Message: r.okMsg}
}

// trimPathErr drops the path from a *fs.PathError, which the message already names.
func trimPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// readUint reads a file holding one unsigned decimal number (a sysctl).
func readUint(fsys fs.FS, path string) (uint64, error) {
	b, err := fs.ReadFile(fsys, path)
	if err != nil {
		return 0, err
	}
	return parseUint(string(b))
}

func parseUint(s string) (uint64, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not a number: %q", truncate(s, 32))
	}
	return v, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// kmsgText strips a /dev/kmsg record prefix ("6,1234,5678,-;") or a dmesg
// timestamp ("[  12.345678] ") so messages can be quoted without them.
func kmsgText(line string) string {
	if i := strings.IndexByte(line, ';'); i > 0 && i < 64 && isKmsgPrefix(line[:i]) {
		line = line[i+1:]
	}
	if strings.HasPrefix(line, "[") {
		if i := strings.IndexByte(line, ']'); i > 0 && i < 32 {
			line = strings.TrimLeft(line[i+1:], " ")
		}
	}
	return strings.TrimSpace(line)
}

func isKmsgPrefix(s string) bool {
	// priority,sequence,timestamp,flags[,...]
	if s == "" || s[0] < '0' || s[0] > '9' {
		return false
	}
	return strings.Count(s, ",") >= 3
}
