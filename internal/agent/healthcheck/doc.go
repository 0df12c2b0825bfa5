// Package healthcheck holds the detectors of nodewarden's built-in node health
// checks. Each detector is a pure function, in the style of kubelet's
// pkg/kubelet/nodestatus setters (one small function per condition): it reads
// an fs.FS rooted at the host's root ("proc/...", "sys/...") and, where it
// needs them, kernel log lines, and returns one Result. Nothing here touches
// the API server, keeps state or starts goroutines; the agent wiring does.
//
// # Conditions and polarity
//
// The condition types and their polarity follow the EKS node monitoring agent
// (https://docs.aws.amazon.com/eks/latest/userguide/node-health-nma.html and
// its reason list, pkg/reasons in github.com/aws/eks-node-monitoring-agent):
// True means healthy; False means an issue was seen and the reason is the
// issue's name; Unknown means the detector could not read what it needs (the
// message says which path and why). Evidence of an issue wins over an
// unreadable input: a detector returns False if anything it could read shows
// a problem, Unknown only if nothing did and something was unreadable. When
// several issues are seen the reason is the most severe one (order below) and
// the message lists all of them.
//
// # KernelReady
//
// Reads proc/sys/kernel/pid_max, proc/sys/kernel/threads-max and proc/loadavg
// (4th field "runnable/total": total is the number of kernel tasks, i.e.
// threads, each of which holds a PID). fork fails when either limit is hit,
// so the usage is total / min(pid_max, threads-max) (the EKS agent uses the
// larger of the two and counts processes only, which is more lenient).
// Reasons, most severe first:
//   - ForkFailedOutOfPIDs (EKS, Fatal): task usage at or above
//     PIDUsageThreshold (95%), or a log line where a fork/exec failed with
//     EAGAIN ("fork/exec ... resource temporarily unavailable", Go's "failed
//     to create new OS thread ... errno=11"): the patterns the EKS agent
//     matches in the kubelet log; the caller may pass kubelet journal lines
//     with the kmsg lines. "cgroup: fork rejected by pids controller" is NOT
//     matched: it is a pod's pids limit, not the node running out.
//   - SoftLockup (EKS): "soft lockup - CPU#N stuck for Ns!".
//   - AppBlocked (EKS, the hung-task detector): "task NAME:PID blocked for
//     more than N seconds".
//   - KernelBug (EKS): any other "BUG: " line from the kernel.
//
// # NetworkingReady
//
// Reads sys/class/net/<iface>/{flags,operstate,carrier} and
// proc/sys/net/netfilter/nf_conntrack_{count,max}. Reasons, most severe first:
//   - MissingLoopbackInterface (EKS, Fatal): no interface named "lo" and none
//     with IFF_LOOPBACK in its flags.
//   - InterfaceNotUp (EKS, Fatal): an interface that is administratively up
//     (IFF_UP) has operstate "down" (no carrier, link down); or the loopback
//     interface is administratively down (it must always be up).
//   - InterfaceNotRunning (EKS, Fatal): an administratively up interface
//     whose operstate is neither "down" nor "up"/"unknown" (dormant,
//     lowerlayerdown (a veth whose peer is down), notpresent, testing).
//     This is the kernel's IFF_RUNNING, which sysfs's flags file never
//     shows (it is dev->flags; dev_get_flags adds IFF_RUNNING from the
//     operational state), so the operstate is read instead.
//   - ConntrackExceededKernel (EKS name; the EKS agent files it under
//     KernelReady from the kmsg line "nf_conntrack: table full", here it is
//     measured directly): nf_conntrack_count >= nf_conntrack_max. Missing
//     conntrack files mean the module is not loaded: no table, no issue.
//     (EKS's ConntrackExceeded is the ENA driver's conntrack_allowance_exceeded
//     counter from ethtool: not implemented.)
//
// Which interfaces count: an administratively down interface is taken as
// intentional and never reported (EKS reports it as InterfaceNotUp). Virtual,
// per-pod or per-runtime interfaces are skipped by name prefix (see
// skippedInterfacePrefixes: veth, cni, docker, cali, flannel, cilium_, lxc,
// eni (VPC CNI pod ends), vxlan, tunl, kube-ipvs, nodelocaldns, ...), and, as
// the EKS agent does, any non-loopback interface with neither IFF_BROADCAST
// nor IFF_MULTICAST (dummy devices). An interface that vanishes between the
// directory listing and the read (veth churn) is skipped.
//
// # StorageReady
//
// Reads proc/self/mountinfo: the mount table of the reading process, i.e. in
// a container the container's view, where a host directory mounted with
// hostPath readOnly: true is a read-only bind mount of a writable
// filesystem, and an emptyDir lives on the kubelet's filesystem (the one
// holding /var/lib/kubelet). The paths given are paths in that view (e.g.
// "/" and "/var/lib/kubelet", or where the host directories are mounted).
// For each, the mount containing it is the longest mount point that is a
// prefix of it, the last listed of equal mount points (mountinfo lists
// mounts in mount order, so that is the top of a stack of over-mounts).
//
// A mountinfo line (proc(5); the kernel's
// Documentation/filesystems/proc.rst) is
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// mount ID, parent ID, major:minor, root, mount point, the mount's own
// options, zero or more optional fields (tag[:value]) ended by "-", then fs
// type, mount source and super options (the filesystem's). A line with
// missing fields is skipped. Only the super options' "ro" counts: it is the
// superblock's read-only flag, which the kernel sets when it remounts a
// filesystem read-only after errors (ext4 errors=remount-ro) and which a
// filesystem mounted read-only as a whole also has. The mount's own "ro" (a
// read-only bind mount) says nothing about the filesystem and is ignored.
// proc/mounts is not used because it merges both flags into one "ro"
// option: every read-only hostPath volume would look like a read-only
// filesystem.
//
// Reasons, most severe first:
//   - FilesystemIsReadOnly (node-problem-detector's kernel-monitor.json
//     reason for its ReadonlyFilesystem condition; EKS has none): the
//     filesystem holding a path is read-only (super options "ro"), or kmsg
//     says "Remounting filesystem read-only".
//   - XFSCorruption (nodewarden's name; EKS and NPD have none): "XFS (dev):
//     ... Corruption ..." / "Metadata corruption detected" / "Corruption of
//     in-memory data detected".
//   - IOError (NPD kernel-monitor.json's reason): "Buffer I/O error" or
//     "I/O error, dev ..." (blk_update_request / end_request).
//
// # Cost
//
// Each detector reads a handful of small files and scans the kmsg lines once
// with substring pre-filters; see the package benchmarks (50 interfaces, 40
// mounts, 1000 kmsg lines), well under the 1 ms of CPU per run.
//
// # ContainerRuntimeReady and the AKS profile
//
// ContainerRuntimeReady (runtime.go) takes what the runner gathered: the
// CRI RuntimeService/Status answer or why there was none, the pods stuck
// terminating, and the unit restart counts. AKS (profile.go) maps the EKS
// results' findings onto AKS's node-problem-detector conditions, with NPD's
// polarity. Damping, the kernel log window and the I/O are the runner's
// (package nodehealth); docs/conditions.md lists every condition and reason.
package healthcheck
