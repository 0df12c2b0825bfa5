package healthcheck

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
	"unicode/utf8"
)

func FuzzParseMountinfoLine(f *testing.F) {
	for _, s := range []string{
		"36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue",
		"98 22 259:3 / /var/lib/kubelet rw,relatime - ext4 /dev/nvme1n1 ro",
		"98 22 259:3 / /var/lib/kubelet rw shared:1 master:2 propagate_from:3 - ext4 /dev/nvme1n1 ro",
		`40 1 8:2 /a\040b /mnt/my\040disk ro - ext4 /dev/my\040disk rw`,
		"41 1 0:50 / /data rw - tmpfs  ro",
		`1 0 8:1 / /a\0 rw - x y ro`,
		"3 1 259:4 / /var/lib/kubelet rw shared:1 ext4 /dev/sdc ro",
		"/dev/root / ext4 rw,relatime 0 0",
		"", "- - - - - - - - - -",
	} {
		f.Add(s, "/mnt/my disk/x")
	}
	f.Fuzz(func(t *testing.T, line, p string) {
		m, ok := parseMountinfoLine(line)
		if !ok {
			if m != (mount{}) {
				t.Fatalf("rejected line gave %+v", m)
			}
			return
		}
		if !strings.HasPrefix(m.point, "/") {
			t.Fatalf("mount point %q not absolute", m.point)
		}
		if len(m.point)+len(m.device)+len(m.fstype) > len(line) {
			t.Fatalf("unescaping grew %q: %+v", line, m)
		}
		if got, found := mountFor([]mount{m}, p); found && !contains(got.point, p) {
			t.Fatalf("mountFor(%q) = %q", p, got.point)
		}
		// The line as a whole mountinfo: a path it contains is on it, and
		// reported read-only exactly when the super options say so.
		if strings.Contains(line, "\n") || !contains(m.point, p) {
			return
		}
		res := StorageReady(fstest.MapFS{pathMountinfo: file(line)}, nil, []string{p})
		if want := map[bool]string{true: ReasonFilesystemIsReadOnly, false: ReasonStorageReady}[m.readOnly]; res.Reason != want {
			t.Fatalf("StorageReady(%q, %q) = %s (%q), want %s", line, p, res.Reason, res.Message, want)
		}
	})
}

func FuzzParseLoadavg(f *testing.F) {
	for _, s := range []string{"0.00 0.01 0.05 1/123 4567\n", "1 2 3 /", "1 2 3 4/x 5", "1 2 3 18446744073709551615/18446744073709551616 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, total, err := parseLoadavg(s)
		if err != nil && (r != 0 || total != 0) {
			t.Fatalf("values with error: %d %d %v", r, total, err)
		}
		fsys := base(map[string]*string{"proc/loadavg": &s})
		if res := KernelReady(fsys, nil); res.Status == "" || res.Reason == "" {
			t.Fatalf("empty result %+v", res)
		}
	})
}

func FuzzParseFlags(f *testing.F) {
	for _, s := range []string{"0x1003\n", "0x", "1003", "0xffffffffffffffffff", "0x-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := parseFlags(s); err == nil && fmt.Sprintf("%#x", v) == "" {
			t.Fatal("unreachable")
		}
		fsys := base(map[string]*string{"sys/class/net/eth0/flags": &s})
		if res := NetworkingReady(fsys); res.Status == "" || res.Reason == "" {
			t.Fatalf("empty result %+v", res)
		}
	})
}

func FuzzKmsg(f *testing.F) {
	for _, s := range readLines(f, "testdata/kmsg/problems.txt") {
		f.Add(s)
	}
	f.Add("1,2,3;")
	f.Add("[ ]")
	f.Fuzz(func(t *testing.T, line string) {
		k := classifyKmsg(line)
		if k < kmsgNone || k > kmsgIOError {
			t.Fatalf("kind %d", k)
		}
		txt := kmsgText(line)
		if len(txt) > len(line) {
			t.Fatalf("kmsgText grew %q to %q", line, txt)
		}
		res := StorageReady(base(nil), []string{line}, []string{"/"})
		if utf8.ValidString(line) && !utf8.ValidString(res.Message) && !strings.Contains(res.Message, "...") {
			t.Fatalf("invalid message %q", res.Message)
		}
		KernelReady(base(nil), []string{line})
	})
}

// realistic is a host tree with 50 interfaces (40 pod veths) and 40 mounts,
// and 1000 kmsg lines, mostly noise.
func realistic() (fstest.MapFS, []string) {
	f := base(nil)
	for i := 0; i < 40; i++ {
		name := fmt.Sprintf("eni%011x", i)
		f["sys/class/net/"+name+"/flags"] = file("0x1003\n")
		f["sys/class/net/"+name+"/operstate"] = file("up\n")
	}
	for i := 1; i < 8; i++ {
		name := fmt.Sprintf("ens%d", i)
		f["sys/class/net/"+name+"/flags"] = file("0x1003\n")
		f["sys/class/net/"+name+"/operstate"] = file("up\n")
		f["sys/class/net/"+name+"/carrier"] = file("1\n")
	}
	var mounts strings.Builder
	mounts.WriteString("22 1 259:1 / / rw,noatime shared:1 - xfs /dev/nvme0n1p1 rw,attr2,inode64,logbufs=8,logbsize=32k,noquota\n")
	mounts.WriteString("98 22 259:3 / /var/lib/kubelet rw,relatime shared:40 - ext4 /dev/nvme1n1 rw\n")
	for i := 0; i < 38; i++ {
		fmt.Fprintf(&mounts, "%d 98 0:%d / /var/lib/kubelet/pods/%08x-7b4d-4e8f-9a61-0c2d5e8f1a3b/volumes/kubernetes.io~projected/kube-api-access-%05d "+
			"rw,relatime shared:%d - tmpfs tmpfs rw,size=262144k\n", 400+i, 60+i, i, i, 200+i)
	}
	f[pathMountinfo] = file(mounts.String())
	kmsg := make([]string, 1000)
	for i := range kmsg {
		kmsg[i] = fmt.Sprintf("6,%d,%d,-;IPv6: ADDRCONF(NETDEV_CHANGE): eni%011x: link becomes ready", i, i*1000, i%40)
	}
	kmsg[500] = "3,500,1,-;INFO: task containerd:4321 blocked for more than 120 seconds."
	return f, kmsg
}

func BenchmarkKernelReady(b *testing.B) {
	f, kmsg := realistic()
	for b.Loop() {
		KernelReady(f, kmsg)
	}
}

func BenchmarkNetworkingReady(b *testing.B) {
	f, _ := realistic()
	if n, _ := f.ReadDir(pathClassNet); len(n) != 50 {
		b.Fatalf("%d interfaces", len(n))
	}
	for b.Loop() {
		NetworkingReady(f)
	}
}

func BenchmarkStorageReady(b *testing.B) {
	f, kmsg := realistic()
	paths := []string{"/", "/var/lib/kubelet"}
	for b.Loop() {
		StorageReady(f, kmsg, paths)
	}
}
