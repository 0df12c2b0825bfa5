package healthcheck

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
	"unicode/utf8"
)

func FuzzParseMountLine(f *testing.F) {
	for _, s := range []string{"/dev/root / ext4 rw,relatime 0 0", `/dev/a /mnt/my\040disk ext4 ro 0 0`, `x /a\0 y ro`, "", "a b c"} {
		f.Add(s, "/mnt/my disk/x")
	}
	f.Fuzz(func(t *testing.T, line, p string) {
		m, ok := parseMountLine(line)
		if !ok {
			return
		}
		if !strings.HasPrefix(m.point, "/") {
			t.Fatalf("mount point %q not absolute", m.point)
		}
		if len(m.point) > len(line) {
			t.Fatalf("unescaping grew %q", m.point)
		}
		if got, found := mountFor([]mount{m}, p); found && !contains(got.point, p) {
			t.Fatalf("mountFor(%q) = %q", p, got.point)
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
		f["sys/class/net/"+name+"/flags"] = file("0x1043\n")
		f["sys/class/net/"+name+"/operstate"] = file("up\n")
		f["sys/class/net/"+name+"/carrier"] = file("1\n")
	}
	var mounts strings.Builder
	mounts.WriteString("/dev/nvme0n1p1 / xfs rw,noatime,attr2,inode64 0 0\n")
	for i := 0; i < 38; i++ {
		fmt.Fprintf(&mounts, "tmpfs /var/lib/kubelet/pods/%08x-0000/volumes/kubernetes.io~projected/kube-api-access-%d tmpfs rw,relatime,size=1024k 0 0\n", i, i)
	}
	mounts.WriteString("/dev/nvme1n1 /var/lib/kubelet ext4 rw,relatime 0 0\n")
	f["proc/mounts"] = file(mounts.String())
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
