package healthcheck

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	corev1 "k8s.io/api/core/v1"
)

// base returns a healthy host tree; over replaces files (nil data deletes).
func base(over map[string]*string) fstest.MapFS {
	f := fstest.MapFS{
		"proc/sys/kernel/pid_max":                   file("4194304\n"),
		"proc/sys/kernel/threads-max":               file("126599\n"),
		"proc/loadavg":                              file("0.52 0.48 0.40 2/812 91234\n"),
		"proc/sys/net/netfilter/nf_conntrack_count": file("2100\n"),
		"proc/sys/net/netfilter/nf_conntrack_max":   file("262144\n"),
		"proc/self/mountinfo": file("22 1 259:1 / / rw,noatime shared:1 - xfs /dev/nvme0n1p1 rw,attr2,inode64\n" +
			"23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n" +
			"98 22 259:3 / /var/lib/kubelet rw,relatime shared:40 - ext4 /dev/nvme1n1 rw\n"),
		"sys/class/net/lo/flags":           file("0x9\n"),
		"sys/class/net/lo/operstate":       file("unknown\n"),
		"sys/class/net/eth0/flags":         file("0x1003\n"),
		"sys/class/net/eth0/operstate":     file("up\n"),
		"sys/class/net/eth0/carrier":       file("1\n"),
		"sys/class/net/veth1a2b/flags":     file("0x1003\n"),
		"sys/class/net/veth1a2b/operstate": file("down\n"),
	}
	for k, v := range over {
		if v == nil {
			delete(f, k)
			continue
		}
		f[k] = file(*v)
	}
	return f
}

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

func s(v string) *string { return &v }

type want struct {
	status corev1.ConditionStatus
	reason string
	msg    []string // substrings of the message
}

func check(t *testing.T, got Result, typ string, w want) {
	t.Helper()
	if got.Type != typ || got.Status != w.status || got.Reason != w.reason {
		t.Fatalf("got %s=%s/%s (%q), want %s=%s/%s", got.Type, got.Status, got.Reason, got.Message, typ, w.status, w.reason)
	}
	for _, m := range w.msg {
		if !strings.Contains(got.Message, m) {
			t.Errorf("message %q lacks %q", got.Message, m)
		}
	}
}

func TestKernelReady(t *testing.T) {
	for _, tc := range []struct {
		name string
		over map[string]*string
		kmsg []string
		want want
	}{
		{"healthy", nil, []string{"6,1,1,-;eth0: link up"}, want{corev1.ConditionTrue, ReasonKernelReady, []string{"812 tasks", "threads-max 126599", "0.6%"}}},
		{"pid_max nearly used", map[string]*string{"proc/sys/kernel/pid_max": s("32768"), "proc/loadavg": s("1.0 1.0 1.0 3/31200 99\n")}, nil,
			want{corev1.ConditionFalse, ReasonForkFailedOutOfPIDs, []string{"31200 tasks", "of pid_max 32768", "95.2%"}}},
		{"threads-max nearly used", map[string]*string{"proc/sys/kernel/threads-max": s("1000"), "proc/loadavg": s("1.0 1.0 1.0 3/990 99\n")}, nil,
			want{corev1.ConditionFalse, ReasonForkFailedOutOfPIDs, []string{"of threads-max 1000", "99.0%"}}},
		{"just below threshold", map[string]*string{"proc/sys/kernel/threads-max": s("1000"), "proc/loadavg": s("1.0 1.0 1.0 3/949 99\n")}, nil,
			want{corev1.ConditionTrue, ReasonKernelReady, []string{"94.9%"}}},
		{"fork failed in kubelet log", nil, []string{`E0101 kubelet: failed to start: fork/exec /usr/bin/runc: resource temporarily unavailable`},
			want{corev1.ConditionFalse, ReasonForkFailedOutOfPIDs, []string{"fork failed", "1 log line(s)", "runc"}}},
		{"go runtime thread failure", nil, []string{`runtime: failed to create new OS thread (have 9 already; errno=11)`},
			want{corev1.ConditionFalse, ReasonForkFailedOutOfPIDs, nil}},
		{"pod pids limit is not node exhaustion", nil, []string{"6,5,5,-;cgroup: fork rejected by pids controller in /kubepods/pod1"},
			want{corev1.ConditionTrue, ReasonKernelReady, nil}},
		{"soft lockup", nil, []string{"4,1201,912345678,-;watchdog: BUG: soft lockup - CPU#3 stuck for 23s! [kworker/3:1:1234]"},
			want{corev1.ConditionFalse, ReasonSoftLockup, []string{`"watchdog: BUG: soft lockup - CPU#3`}}},
		{"hung task", nil, []string{"[ 1.0] INFO: task containerd:4321 blocked for more than 120 seconds.", "[ 2.0] INFO: task jbd2/nvme0:99 blocked for more than 120 seconds."},
			want{corev1.ConditionFalse, ReasonAppBlocked, []string{"2 log line(s)", `"INFO: task containerd:4321`}}},
		{"kernel bug", nil, []string{"BUG: unable to handle page fault for address: ffff"},
			want{corev1.ConditionFalse, ReasonKernelBug, nil}},
		{"most severe wins, all listed", nil, []string{"INFO: task a:1 blocked for more than 120 seconds.", "watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [x:1]"},
			want{corev1.ConditionFalse, ReasonSoftLockup, []string{"soft lockup", "hung task"}}},
		{"missing pid_max", map[string]*string{"proc/sys/kernel/pid_max": nil}, nil,
			want{corev1.ConditionUnknown, ReasonUnreadable, []string{"proc/sys/kernel/pid_max: file does not exist"}}},
		{"garbled loadavg", map[string]*string{"proc/loadavg": s("0.1 0.2\n")}, nil,
			want{corev1.ConditionUnknown, ReasonUnreadable, []string{"proc/loadavg: want 5 fields"}}},
		{"zero limit", map[string]*string{"proc/sys/kernel/threads-max": s("0")}, nil,
			want{corev1.ConditionUnknown, ReasonUnreadable, nil}},
		{"evidence beats unreadable", map[string]*string{"proc/loadavg": nil}, []string{"watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [x:1]"},
			want{corev1.ConditionFalse, ReasonSoftLockup, nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, KernelReady(base(tc.over), tc.kmsg), TypeKernelReady, tc.want)
		})
	}
}

func TestNetworkingReady(t *testing.T) {
	for _, tc := range []struct {
		name string
		over map[string]*string
		want want
	}{
		{"healthy", nil, want{corev1.ConditionTrue, ReasonNetworkingReady, []string{"no interface up without link among eth0 (sys/class/net)", "1 virtual skipped", "conntrack 2100 of 262144"}}},
		{"missing loopback", map[string]*string{"sys/class/net/lo/flags": nil, "sys/class/net/lo/operstate": nil},
			want{corev1.ConditionFalse, ReasonMissingLoopbackInterface, []string{"sys/class/net"}}},
		{"loopback by flag under another name", map[string]*string{"sys/class/net/lo/flags": nil, "sys/class/net/lo/operstate": nil, "sys/class/net/lo0/flags": s("0x49")},
			want{corev1.ConditionTrue, ReasonNetworkingReady, nil}},
		{"loopback down", map[string]*string{"sys/class/net/lo/flags": s("0x8")},
			want{corev1.ConditionFalse, ReasonInterfaceNotUp, []string{`loopback "lo"`, "0x8"}}},
		{"link down", map[string]*string{"sys/class/net/eth0/flags": s("0x1003"), "sys/class/net/eth0/operstate": s("down"), "sys/class/net/eth0/carrier": s("0")},
			want{corev1.ConditionFalse, ReasonInterfaceNotUp, []string{`"eth0"`, "sys/class/net/eth0/operstate", "carrier 0"}}},
		{"not running", map[string]*string{"sys/class/net/eth0/flags": s("0x1003"), "sys/class/net/eth0/operstate": s("dormant")},
			want{corev1.ConditionFalse, ReasonInterfaceNotRunning, []string{`"eth0"`, `operstate "dormant"`}}},
		{"peer down", map[string]*string{"sys/class/net/eth0/operstate": s("lowerlayerdown"), "sys/class/net/eth0/carrier": s("0")},
			want{corev1.ConditionFalse, ReasonInterfaceNotRunning, []string{`"eth0"`, `"lowerlayerdown"`, "carrier 0"}}},
		// As sysfs shows a working link: no IFF_RUNNING (0x40) in flags.
		{"running without IFF_RUNNING in sysfs flags", map[string]*string{"sys/class/net/eth0/flags": s("0x1003"), "sys/class/net/eth0/operstate": s("up")},
			want{corev1.ConditionTrue, ReasonNetworkingReady, nil}},
		{"operstate unknown counts as running", map[string]*string{"sys/class/net/eth0/operstate": s("unknown")},
			want{corev1.ConditionTrue, ReasonNetworkingReady, nil}},
		{"operstate gone since the listing", map[string]*string{"sys/class/net/eth0/operstate": nil},
			want{corev1.ConditionTrue, ReasonNetworkingReady, nil}},
		{"admin down is intentional", map[string]*string{"sys/class/net/eth1/flags": s("0x1002"), "sys/class/net/eth1/operstate": s("down")},
			want{corev1.ConditionTrue, ReasonNetworkingReady, nil}},
		{"dummy device skipped", map[string]*string{"sys/class/net/dummy0/flags": s("0x81"), "sys/class/net/dummy0/operstate": s("down")},
			want{corev1.ConditionTrue, ReasonNetworkingReady, nil}},
		{"conntrack full", map[string]*string{"proc/sys/net/netfilter/nf_conntrack_count": s("262144")},
			want{corev1.ConditionFalse, ReasonConntrackExceededKernel, []string{"262144 >= ", "nf_conntrack_max"}}},
		{"no conntrack module", map[string]*string{"proc/sys/net/netfilter/nf_conntrack_count": nil, "proc/sys/net/netfilter/nf_conntrack_max": nil},
			want{corev1.ConditionTrue, ReasonNetworkingReady, nil}},
		{"conntrack count unreadable", map[string]*string{"proc/sys/net/netfilter/nf_conntrack_count": s("lots")},
			want{corev1.ConditionUnknown, ReasonUnreadable, []string{"nf_conntrack_count: not a number"}}},
		{"bad flags", map[string]*string{"sys/class/net/eth0/flags": s("1043")},
			want{corev1.ConditionUnknown, ReasonUnreadable, []string{"sys/class/net/eth0/flags"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, NetworkingReady(base(tc.over)), TypeNetworkingReady, tc.want)
		})
	}
	t.Run("no sysfs", func(t *testing.T) {
		check(t, NetworkingReady(fstest.MapFS{}), TypeNetworkingReady, want{corev1.ConditionUnknown, ReasonUnreadable, []string{"sys/class/net"}})
	})
}

func TestParseMountinfoLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		ok   bool
		want mount
	}{
		// proc(5)'s example.
		{"36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue", true,
			mount{device: "/dev/root", point: "/mnt2", fstype: "ext3"}},
		// 0, 1 and 3 optional fields.
		{"98 22 259:3 / /var/lib/kubelet rw,relatime - ext4 /dev/nvme1n1 ro", true,
			mount{device: "/dev/nvme1n1", point: "/var/lib/kubelet", fstype: "ext4", readOnly: true}},
		{"98 22 259:3 / /var/lib/kubelet rw,relatime shared:1 - ext4 /dev/nvme1n1 ro,errors=remount-ro", true,
			mount{device: "/dev/nvme1n1", point: "/var/lib/kubelet", fstype: "ext4", readOnly: true}},
		{"98 22 259:3 / /var/lib/kubelet rw shared:1 master:2 propagate_from:3 - ext4 /dev/nvme1n1 ro", true,
			mount{device: "/dev/nvme1n1", point: "/var/lib/kubelet", fstype: "ext4", readOnly: true}},
		// Read-only bind mount of a writable filesystem: not read-only.
		{"612 598 259:1 /var/log /host/var/log ro,relatime master:1 - xfs /dev/nvme0n1p1 rw,attr2,inode64", true,
			mount{device: "/dev/nvme0n1p1", point: "/host/var/log", fstype: "xfs"}},
		// "ro" only as exactly that option.
		{"1 0 8:1 / / rw - ext4 /dev/root rw,errors=remount-ro,nobarrier", true,
			mount{device: "/dev/root", point: "/", fstype: "ext4"}},
		{"1 0 8:1 / / rw - ext4 /dev/root rw,ro", true,
			mount{device: "/dev/root", point: "/", fstype: "ext4", readOnly: true}},
		// Escapes in root, mount point and source.
		{`40 1 8:2 /a\040b /mnt/my\040disk rw - ext4 /dev/disk/by-label/my\040disk ro`, true,
			mount{device: "/dev/disk/by-label/my disk", point: "/mnt/my disk", fstype: "ext4", readOnly: true}},
		// Empty mount source.
		{"41 1 0:50 / /data rw - tmpfs  ro", true, mount{device: "", point: "/data", fstype: "tmpfs", readOnly: true}},
		// Malformed.
		{"", false, mount{}},
		{"garbage", false, mount{}},
		{"/dev/sdb /var/lib/kubelet ext4 ro 0 0", false, mount{}},                     // proc/mounts format
		{"3 1 259:4 / /var/lib/kubelet rw shared:1 ext4 /dev/sdc ro", false, mount{}}, // no separator
		{"4 1 259:5 / /var/lib/kubelet rw - ext4 /dev/sdd", false, mount{}},           // no super options
		{"5 1 259:5 / /var/lib/kubelet - ext4 /dev/sdd ro x", false, mount{}},         // "-" as mount options
		{"6 1 259:5 / relative rw - ext4 /dev/sdd ro", false, mount{}},                // relative mount point
		{"7 1 259:5 / /var/lib/kubelet rw a b c d e - ext4", false, mount{}},          // fields after "-" missing
		{"8 1 259:5 / /var/lib/kubelet rw shared:1 - - - -", true, mount{device: "-", point: "/var/lib/kubelet", fstype: "-"}},
	} {
		got, ok := parseMountinfoLine(tc.line)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseMountinfoLine(%q) = %+v, %v; want %+v, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

func TestStorageReady(t *testing.T) {
	const mi = pathMountinfo
	paths := []string{"/", "/var/lib/kubelet"}
	for _, tc := range []struct {
		name  string
		over  map[string]*string
		kmsg  []string
		paths []string
		want  want
		exact string // the whole message, if set
	}{
		{"healthy", nil, []string{"6,1,1,-;EXT4-fs (nvme1n1): mounted filesystem"}, paths,
			want{corev1.ConditionTrue, ReasonStorageReady, []string{"/ on / (xfs /dev/nvme0n1p1)", "/var/lib/kubelet on /var/lib/kubelet (ext4 /dev/nvme1n1)"}}, ""},
		{"root filesystem read-only", map[string]*string{mi: s("1 0 8:1 / / rw,relatime shared:1 - ext4 /dev/root ro,errors=remount-ro\n" +
			"2 1 8:16 / /var/lib/kubelet rw shared:2 - ext4 /dev/sdb rw\n")}, nil, paths,
			want{corev1.ConditionFalse, ReasonFilesystemIsReadOnly, []string{"/ is on / (ext4 /dev/root), whose filesystem is read-only (proc/self/mountinfo)"}}, ""},
		{"kubelet filesystem read-only", map[string]*string{mi: s("22 1 259:1 / / rw,noatime shared:1 - xfs /dev/nvme0n1p1 rw,attr2\n" +
			"98 22 259:3 / /var/lib/kubelet rw,relatime shared:40 - ext4 /dev/nvme1n1 ro,errors=remount-ro\n")}, nil, paths,
			want{corev1.ConditionFalse, ReasonFilesystemIsReadOnly, nil},
			"/var/lib/kubelet is on /var/lib/kubelet (ext4 /dev/nvme1n1), whose filesystem is read-only (proc/self/mountinfo)"},
		{"kubelet dir on read-only root", map[string]*string{mi: s("1 0 8:1 / / ro - ext4 /dev/root ro\n2 1 8:16 / /data rw - ext4 /dev/sdb rw\n")}, nil, []string{"/var/lib/kubelet"},
			want{corev1.ConditionFalse, ReasonFilesystemIsReadOnly, []string{"/var/lib/kubelet is on / "}}, ""},
		{"bind mount read-only, filesystem writable", map[string]*string{mi: s("22 1 259:1 / / rw,noatime - xfs /dev/nvme0n1p1 rw\n" +
			"612 22 259:3 /var/lib/kubelet /var/lib/kubelet ro,relatime master:40 - ext4 /dev/nvme1n1 rw\n")}, nil, paths,
			want{corev1.ConditionTrue, ReasonStorageReady, nil},
			"writable: / on / (xfs /dev/nvme0n1p1), /var/lib/kubelet on /var/lib/kubelet (ext4 /dev/nvme1n1); " +
				"no read-only remount, XFS corruption or I/O error in 0 log line(s)"},
		{"filesystem read-only under writable mount options", map[string]*string{mi: s("22 1 259:1 / / rw,noatime - xfs /dev/nvme0n1p1 rw\n" +
			"98 22 259:3 / /var/lib/kubelet rw,relatime shared:40 - ext4 /dev/nvme1n1 ro\n")}, nil, paths,
			want{corev1.ConditionFalse, ReasonFilesystemIsReadOnly, []string{"/dev/nvme1n1), whose filesystem is read-only"}}, ""},
		{"0 optional fields", map[string]*string{mi: s("1 0 8:1 / / rw - ext4 /dev/root rw\n2 1 8:16 / /var/lib/kubelet rw - ext4 /dev/sdb ro\n")}, nil, paths,
			want{corev1.ConditionFalse, ReasonFilesystemIsReadOnly, []string{"/var/lib/kubelet is on /var/lib/kubelet (ext4 /dev/sdb)"}}, ""},
		{"1 optional field", map[string]*string{mi: s("1 0 8:1 / / rw shared:1 - ext4 /dev/root rw\n2 1 8:16 / /var/lib/kubelet rw shared:2 - ext4 /dev/sdb ro\n")}, nil, paths,
			want{corev1.ConditionFalse, ReasonFilesystemIsReadOnly, []string{"/var/lib/kubelet is on /var/lib/kubelet (ext4 /dev/sdb)"}}, ""},
		{"3 optional fields", map[string]*string{mi: s("1 0 8:1 / / rw shared:1 - ext4 /dev/root rw\n" +
			"2 1 8:16 / /var/lib/kubelet rw shared:1 master:2 propagate_from:3 - ext4 /dev/sdb ro\n")}, nil, paths,
			want{corev1.ConditionFalse, ReasonFilesystemIsReadOnly, []string{"/var/lib/kubelet is on /var/lib/kubelet (ext4 /dev/sdb)"}}, ""},
		{"malformed lines skipped", map[string]*string{mi: s("1 0 8:1 / / rw - ext4 /dev/root rw\n" +
			"3 1 259:4 / /var/lib/kubelet rw shared:1 ext4 /dev/sdc ro\n" + // no separator
			"4 1 259:5 / /var/lib/kubelet rw - ext4 /dev/sdd\n" + // no super options
			"/dev/sde /var/lib/kubelet ext4 ro 0 0\n" + // proc/mounts format
			"garbage\n\n")}, nil, paths,
			want{corev1.ConditionTrue, ReasonStorageReady, []string{"/var/lib/kubelet on / (ext4 /dev/root)"}}, ""},
		{"over-mount wins", map[string]*string{mi: s("1 0 8:1 / / rw - ext4 /dev/root rw\n2 1 8:2 / /var/lib/kubelet rw - ext4 /dev/a rw\n" +
			"3 2 8:3 / /var/lib/kubelet rw - ext4 /dev/b ro\n")}, nil, paths,
			want{corev1.ConditionFalse, ReasonFilesystemIsReadOnly, []string{"/dev/b"}}, ""},
		{"over-mount hides read-only filesystem", map[string]*string{mi: s("1 0 8:1 / / rw - ext4 /dev/root rw\n2 1 8:2 / /var/lib/kubelet rw - ext4 /dev/a ro\n" +
			"3 2 8:3 / /var/lib/kubelet rw - ext4 /dev/b rw\n")}, nil, paths,
			want{corev1.ConditionTrue, ReasonStorageReady, []string{"/var/lib/kubelet on /var/lib/kubelet (ext4 /dev/b)"}}, ""},
		{"prefix is not containment", map[string]*string{mi: s("1 0 8:1 / / rw - ext4 /dev/root rw\n2 1 8:2 / /var/lib/kube rw - ext4 /dev/a ro\n")}, nil, paths,
			want{corev1.ConditionTrue, ReasonStorageReady, nil}, ""},
		{"escaped mount point", map[string]*string{mi: s("1 0 8:1 / / rw - ext4 /dev/root rw\n2 1 8:2 / /mnt/my\\040disk rw - ext4 /dev/a ro\n")}, nil, []string{"/mnt/my disk/x"},
			want{corev1.ConditionFalse, ReasonFilesystemIsReadOnly, []string{"/mnt/my disk/x is on /mnt/my disk (ext4 /dev/a)"}}, ""},
		{"remount read-only in kmsg", nil, []string{"3,1204,1,-;EXT4-fs (nvme1n1): Remounting filesystem read-only"}, paths,
			want{corev1.ConditionFalse, ReasonFilesystemIsReadOnly, []string{`"EXT4-fs (nvme1n1): Remounting`}}, ""},
		{"xfs corruption", nil, []string{"XFS (nvme0n1p1): Metadata corruption detected at xfs_da3_node_read_verify+0x1b/0x30 [xfs]"}, paths,
			want{corev1.ConditionFalse, ReasonXFSCorruption, nil}, ""},
		{"xfs in-memory corruption", nil, []string{"XFS (dm-0): Corruption of in-memory data detected.  Shutting down filesystem"}, paths,
			want{corev1.ConditionFalse, ReasonXFSCorruption, nil}, ""},
		{"block I/O error", nil, []string{"blk_update_request: I/O error, dev nvme1n1, sector 2048 op 0x1:(WRITE)"}, paths,
			want{corev1.ConditionFalse, ReasonIOError, []string{"nvme1n1"}}, ""},
		{"buffer I/O error", nil, []string{"Buffer I/O error on dev nvme1n1, logical block 256, lost async page write"}, paths,
			want{corev1.ConditionFalse, ReasonIOError, nil}, ""},
		{"no mountinfo file", map[string]*string{mi: nil}, nil, paths,
			want{corev1.ConditionUnknown, ReasonUnreadable, []string{"proc/self/mountinfo: file does not exist"}}, ""},
		{"proc/mounts is not read", map[string]*string{mi: nil, "proc/mounts": s("/dev/root / ext4 rw 0 0\n")}, nil, paths,
			want{corev1.ConditionUnknown, ReasonUnreadable, []string{"proc/self/mountinfo: file does not exist"}}, ""},
		{"path outside every mount", map[string]*string{mi: s("23 22 0:21 / /proc rw,nosuid shared:12 - proc proc rw\n")}, nil, paths,
			want{corev1.ConditionUnknown, ReasonUnreadable, []string{`no mount contains "/"`}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := StorageReady(base(tc.over), tc.kmsg, tc.paths)
			check(t, got, TypeStorageReady, tc.want)
			if tc.exact != "" && got.Message != tc.exact {
				t.Errorf("message %q, want %q", got.Message, tc.exact)
			}
		})
	}
}

// TestTestdataTrees runs the detectors over on-disk fixture trees through
// os.DirFS, as the agent will over the host root.
func TestTestdataTrees(t *testing.T) {
	fsys := os.DirFS("testdata/healthy")
	check(t, KernelReady(fsys, nil), TypeKernelReady, want{corev1.ConditionTrue, ReasonKernelReady, []string{"812 tasks"}})
	check(t, NetworkingReady(fsys), TypeNetworkingReady, want{corev1.ConditionTrue, ReasonNetworkingReady, []string{"1 virtual skipped"}})
	check(t, StorageReady(fsys, nil, []string{"/", "/var/lib/kubelet", "/mnt/shared/x"}), TypeStorageReady, want{corev1.ConditionTrue, ReasonStorageReady,
		[]string{"/var/lib/kubelet on /var/lib/kubelet (ext4 /dev/nvme1n1)", "/mnt/shared/x on /mnt/shared (ext4 /dev/nvme1n1)"}})
	check(t, StorageReady(fsys, nil, []string{"/mnt/ro/data"}), TypeStorageReady, want{corev1.ConditionFalse, ReasonFilesystemIsReadOnly,
		[]string{"/mnt/ro/data is on /mnt/ro (ext4 /dev/nvme2n1), whose filesystem is read-only"}})

	kmsg := readLines(t, "testdata/kmsg/problems.txt")
	check(t, KernelReady(fsys, kmsg), TypeKernelReady, want{corev1.ConditionFalse, ReasonForkFailedOutOfPIDs,
		[]string{"soft lockup", "hung task", "kernel BUG"}})
	check(t, StorageReady(fsys, kmsg, []string{"/"}), TypeStorageReady, want{corev1.ConditionFalse, ReasonFilesystemIsReadOnly,
		[]string{"XFS corruption", "I/O error: 2 log line(s)"}})
}

func readLines(t testing.TB, name string) []string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

func TestMessageBounded(t *testing.T) {
	over := map[string]*string{}
	for i := 0; i < 20; i++ {
		over[fmt.Sprintf("sys/class/net/eth%d/flags", i)] = s("0x1003")
		over[fmt.Sprintf("sys/class/net/eth%d/operstate", i)] = s("down")
	}
	got := NetworkingReady(base(over))
	check(t, got, TypeNetworkingReady, want{corev1.ConditionFalse, ReasonInterfaceNotUp, []string{"and 15 more"}})
}

// A healthy message names the interfaces it checked, up to a bound.
func TestNetworkingReadyNamesInterfaces(t *testing.T) {
	over := map[string]*string{}
	for i := 1; i <= 10; i++ {
		over[fmt.Sprintf("sys/class/net/ens%02d/flags", i)] = s("0x1003")
		over[fmt.Sprintf("sys/class/net/ens%02d/operstate", i)] = s("up")
	}
	got := NetworkingReady(base(over))
	check(t, got, TypeNetworkingReady, want{corev1.ConditionTrue, ReasonNetworkingReady,
		[]string{"among ens01, ens02, ens03, ens04, ens05, ens06, ens07, ens08 and 3 more (sys/class/net)"}})
}

func TestHealthy(t *testing.T) {
	for _, tc := range []struct {
		typ    string
		status corev1.ConditionStatus
		want   bool
	}{
		{TypeKernelReady, corev1.ConditionTrue, true},
		{TypeKernelReady, corev1.ConditionFalse, false},
		{TypeKernelDeadlock, corev1.ConditionFalse, true},
		{TypeKernelDeadlock, corev1.ConditionTrue, false},
		{TypeFrequentKubeletRestart, corev1.ConditionUnknown, false},
	} {
		if got := Healthy(Result{Type: tc.typ, Status: tc.status}); got != tc.want {
			t.Errorf("Healthy(%s=%s) = %v, want %v", tc.typ, tc.status, got, tc.want)
		}
	}
}
