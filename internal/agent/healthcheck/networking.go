package healthcheck

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// Interface flags (linux/if.h) as sysfs prints them in hex.
const (
	iffUp        = 0x1
	iffBroadcast = 0x2
	iffLoopback  = 0x8
	iffMulticast = 0x1000
)

const (
	pathClassNet       = "sys/class/net"
	pathConntrackCount = "proc/sys/net/netfilter/nf_conntrack_count"
	pathConntrackMax   = "proc/sys/net/netfilter/nf_conntrack_max"
)

// skippedInterfacePrefixes name virtual interfaces that belong to pods, CNI
// plugins or container runtimes, whose state is not the node's health.
var skippedInterfacePrefixes = []string{
	"veth", "cni", "docker", "br-", "cali", "flannel", "cilium_", "lxc",
	"eni", "vxlan", "tunl", "kube-ipvs", "kube-bridge", "nodelocaldns",
	"weave", "vethwe", "genev", "virbr", "tap", "nerdctl",
}

// maxListedInterfaces bounds the interfaces a healthy message names.
const maxListedInterfaces = 8

func skippedInterface(name string) bool {
	for _, p := range skippedInterfacePrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// parseFlags parses sys/class/net/<iface>/flags ("0x1003").
func parseFlags(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	h, ok := strings.CutPrefix(s, "0x")
	if !ok {
		return 0, fmt.Errorf("flags %q not 0x-prefixed hex", truncate(s, 32))
	}
	v, err := strconv.ParseUint(h, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("flags %q not hex", truncate(s, 32))
	}
	return v, nil
}

// NetworkingReady reports whether the loopback and the node's interfaces are
// up and running and the conntrack table has room.
func NetworkingReady(fsys fs.FS) Result {
	r := &report{typ: TypeNetworkingReady, okReason: ReasonNetworkingReady}

	entries, err := fs.ReadDir(fsys, pathClassNet)
	if err != nil {
		r.fail(pathClassNet, err)
	} else {
		checkInterfaces(fsys, entries, r)
	}

	count, errC := readUint(fsys, pathConntrackCount)
	maxC, errM := readUint(fsys, pathConntrackMax)
	switch {
	case errors.Is(errC, fs.ErrNotExist) && errors.Is(errM, fs.ErrNotExist):
		// nf_conntrack not loaded: no table to fill.
	case errC != nil:
		r.fail(pathConntrackCount, errC)
	case errM != nil:
		r.fail(pathConntrackMax, errM)
	case maxC > 0 && count >= maxC:
		r.add(3, ReasonConntrackExceededKernel, fmt.Sprintf("conntrack table full: %s %d >= %s %d",
			pathConntrackCount, count, pathConntrackMax, maxC))
	default:
		if r.okMsg != "" {
			r.okMsg += fmt.Sprintf("; conntrack %d of %d", count, maxC)
		}
	}
	return r.result()
}

func checkInterfaces(fsys fs.FS, entries []fs.DirEntry, r *report) {
	hasLoopback, skipped := false, 0
	var checked []string
	for _, e := range entries {
		name := e.Name()
		if name != "lo" && skippedInterface(name) {
			skipped++
			continue
		}
		dir := path.Join(pathClassNet, name)
		fp := path.Join(dir, "flags")
		b, err := fs.ReadFile(fsys, fp)
		if errors.Is(err, fs.ErrNotExist) {
			// Gone since the listing (or not an interface directory).
			if name == "lo" {
				hasLoopback = true
			}
			continue
		}
		if err == nil {
			var flags uint64
			if flags, err = parseFlags(string(b)); err == nil {
				if checkInterface(fsys, name, dir, flags, r) {
					hasLoopback = true
				} else {
					checked = append(checked, name)
				}
				continue
			}
		}
		r.fail(fp, err)
	}
	if !hasLoopback {
		r.add(0, ReasonMissingLoopbackInterface, fmt.Sprintf("no loopback interface in %s (%d entries)", pathClassNet, len(entries)))
		return
	}
	names := strings.Join(checked[:min(len(checked), maxListedInterfaces)], ", ")
	if extra := len(checked) - maxListedInterfaces; extra > 0 {
		names += fmt.Sprintf(" and %d more", extra)
	}
	if names == "" {
		names = "none"
	}
	r.okMsg = fmt.Sprintf("loopback up; no interface up without link among %s (%s); %d virtual skipped", names, pathClassNet, skipped)
}

// checkInterface adds what is wrong with one interface; it reports whether
// the interface is the loopback.
func checkInterface(fsys fs.FS, name, dir string, flags uint64, r *report) bool {
	loopback := name == "lo" || flags&iffLoopback != 0
	if loopback {
		if flags&iffUp == 0 {
			r.add(1, ReasonInterfaceNotUp, fmt.Sprintf("loopback %q is administratively down (%s/flags %#x)", name, dir, flags))
		}
		return true
	}
	if flags&iffUp == 0 || flags&(iffBroadcast|iffMulticast) == 0 {
		// Administratively down (intentional) or a dummy device.
		return false
	}
	b, err := fs.ReadFile(fsys, path.Join(dir, "operstate"))
	if errors.Is(err, fs.ErrNotExist) {
		return false // gone since the listing (veth churn)
	}
	if err != nil {
		r.fail(path.Join(dir, "operstate"), err)
		return false
	}
	oper := strings.TrimSpace(string(b))
	carrier := "unknown"
	if b, err := fs.ReadFile(fsys, path.Join(dir, "carrier")); err == nil {
		carrier = strings.TrimSpace(string(b))
	}
	// The sysfs flags are dev->flags, which never hold IFF_RUNNING: the
	// kernel derives it (dev_get_flags) from the operational state, up or
	// unknown, which is what is read here instead.
	switch oper {
	case "up", "unknown":
	case "down":
		r.add(1, ReasonInterfaceNotUp, fmt.Sprintf("interface %q is up but its link is down (%s/operstate %q, carrier %s, flags %#x)",
			name, dir, oper, carrier, flags))
	default: // lowerlayerdown, dormant, notpresent, testing
		r.add(2, ReasonInterfaceNotRunning, fmt.Sprintf("interface %q is up but not running (%s/operstate %q, carrier %s, flags %#x)",
			name, dir, oper, carrier, flags))
	}
	return false
}
