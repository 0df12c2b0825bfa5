package bench

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/test/cluster"
)

var (
	rssIdle     = flag.Duration("rss.idle", 30*time.Second, "BenchmarkAgentRSS: how long the agent is left idle before the noise starts")
	rssLoad     = flag.Duration("rss.load", 30*time.Second, "BenchmarkAgentRSS: how long noise is appended")
	rssRate     = flag.Int("rss.rate", 10000, "BenchmarkAgentRSS: noise lines appended per second")
	rssInterval = flag.Duration("rss.sample", 250*time.Millisecond, "BenchmarkAgentRSS: how often VmRSS is sampled")
	rssArgs     = flag.String("rss.args", "", "BenchmarkAgentRSS: extra agent flags, space-separated (e.g. --health-checks=false to compare)")
)

// noiseLine is what other programs write to the same log: not a host event.
const noiseLine = "2024-01-09 06:14:44 - INFO - something else wrote here\n"

type rssSample struct {
	at              time.Duration // since the phase started
	rss, anon, file int64
}

// sampleRSS samples VmRSS every interval until stop is closed.
func sampleRSS(pid int, interval time.Duration, stop <-chan struct{}) []rssSample {
	start := time.Now()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var out []rssSample
	for {
		if st, err := ProcStatus(pid); err == nil {
			out = append(out, rssSample{at: time.Since(start), rss: st["VmRSS"], anon: st["RssAnon"], file: st["RssFile"]})
		}
		select {
		case <-stop:
			return out
		case <-tick.C:
		}
	}
}

func maxRSS(s []rssSample) int64 {
	var m int64
	for _, x := range s {
		m = max(m, x.rss)
	}
	return m
}

func maxAnon(s []rssSample) int64 {
	var m int64
	for _, x := range s {
		m = max(m, x.anon)
	}
	return m
}

// medianRSS is the median of the samples in the second half of the phase:
// the steady state, once the heap has grown to what the load needs.
func medianRSS(s []rssSample) int64 {
	if len(s) == 0 {
		return 0
	}
	half := s[len(s)/2:]
	v := make([]int64, len(half))
	for i, x := range half {
		v[i] = x.rss
	}
	for i := range v { // tiny n: insertion sort
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
	return v[len(v)/2]
}

// timeline renders every 5th second of samples, for the log.
func timeline(s []rssSample) string {
	var b strings.Builder
	next := time.Duration(0)
	for _, x := range s {
		if x.at >= next {
			fmt.Fprintf(&b, " %ds:%.1f(anon %.1f)", int(x.at.Seconds()), MiB(x.rss), MiB(x.anon))
			next += 5 * time.Second
		}
	}
	return b.String()
}

// appendNoise appends rate lines per second to path until stop is closed,
// in small batches every 10 ms, catching up if a batch was late. It returns
// the number of lines written.
func appendNoise(tb testing.TB, path string, rate int, stop <-chan struct{}) int {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		tb.Error(err)
		return 0
	}
	defer f.Close()
	buf := bytes.Repeat([]byte(noiseLine), max(1, rate/10)) // up to 100 ms worth in one write
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	written := 0
	for {
		select {
		case <-stop:
			return written
		case <-tick.C:
		}
		due := int(time.Since(start).Seconds() * float64(rate))
		for written < due {
			n := min(due-written, len(buf)/len(noiseLine))
			if _, err := f.Write(buf[:n*len(noiseLine)]); err != nil {
				tb.Error(err)
				return written
			}
			written += n
		}
	}
}

// BenchmarkAgentRSS runs the real binary the DaemonSet runs (`make build` →
// bin/nodewarden-agent) against the level-1 control plane and samples its VmRSS: idle for
// -rss.idle, then while -rss.rate noise lines per second are appended to its
// host event log for -rss.load. It then appends one event line and checks the
// agent turns it into a condition, so the agent did keep up with the noise.
//
// NODEWARDEN_BIN=bin/nodewarden measures `nodewarden agent` in the full
// binary instead, for comparison. It measures once whatever b.N is. Extra environment for the agent only
// (e.g. GODEBUG=gctrace=1 or GOMEMLIMIT=20MiB) goes in
// $NODEWARDEN_BENCH_AGENT_ENV, space-separated; the agent's output is kept
// in $NODEWARDEN_BENCH_AGENT_LOG if set.
func BenchmarkAgentRSS(b *testing.B) {
	c := sharedCluster(b)
	bin := BinaryUnderTest(b, "nodewarden-agent")
	node := fmt.Sprintf("bench-rss-%d", time.Now().UnixNano())
	createNode(b, c, node)
	logPath := filepath.Join(b.TempDir(), "host_event.log")
	if err := os.WriteFile(logPath, nil, 0o644); err != nil {
		b.Fatal(err)
	}

	outPath := os.Getenv("NODEWARDEN_BENCH_AGENT_LOG")
	if outPath == "" {
		outPath = filepath.Join(b.TempDir(), "agent.log")
	}
	out, err := os.Create(outPath)
	if err != nil {
		b.Fatal(err)
	}
	args := []string{"--node-name", node, "--kubeconfig", c.Kubeconfig, "--host-event-log", logPath,
		"--metrics-bind-address", "0", "--health-probe-bind-address", "0"}
	args = append(args, strings.Fields(*rssArgs)...)
	if filepath.Base(bin) == "nodewarden" {
		args = append([]string{"agent"}, args...)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), strings.Fields(os.Getenv("NODEWARDEN_BENCH_AGENT_ENV"))...)
	agent, err := cluster.StartCommand("agent", cmd, out)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		agent.Stop()
		if b.Failed() {
			tail, _ := os.ReadFile(outPath)
			b.Logf("agent output (%s):\n%s", outPath, tail[max(0, len(tail)-4000):])
		}
	}()
	pid := agent.Pid()

	started := time.Now()
	waitCondition(b, c, node, benchCondition, corev1.ConditionFalse, "NoHostEvent", 30*time.Second)
	b.Logf("agent pid %d synced its conditions %.1fs after start", pid, time.Since(started).Seconds())
	b.ResetTimer()

	// Idle.
	stop := make(chan struct{})
	time.AfterFunc(*rssIdle, func() { close(stop) })
	idle := sampleRSS(pid, *rssInterval, stop)

	// Noise.
	stop = make(chan struct{})
	cpu0, _ := CPUTime(pid)
	var wg sync.WaitGroup
	var written int
	wg.Go(func() { written = appendNoise(b, logPath, *rssRate, stop) })
	loadStart := time.Now()
	time.AfterFunc(*rssLoad, func() { close(stop) })
	load := sampleRSS(pid, *rssInterval, stop)
	wg.Wait()
	loadFor := time.Since(loadStart)
	cpu1, _ := CPUTime(pid)

	// Caught up? The event line comes after all the noise in the file.
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		b.Fatal(err)
	}
	line := nextLine(0)
	if _, err := f.Write(line); err != nil {
		b.Fatal(err)
	}
	f.Close()
	wrote := time.Now()
	waitCondition(b, c, node, benchCondition, corev1.ConditionTrue, "SystemMaintenanceRebootScheduled", 30*time.Second)
	catchUp := time.Since(wrote)
	b.StopTimer()

	st, err := ProcStatus(pid)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("idle RSS MiB:%s", timeline(idle))
	b.Logf("load RSS MiB:%s", timeline(load))
	b.Logf("after: VmRSS %.1f MiB (anon %.1f, file %.1f), VmHWM %.1f MiB; %d noise lines in %.1fs; event after the noise seen in %s",
		MiB(st["VmRSS"]), MiB(st["RssAnon"]), MiB(st["RssFile"]), MiB(st["VmHWM"]), written, loadFor.Seconds(), catchUp.Round(time.Millisecond))

	last := idle[len(idle)-1]
	b.ReportMetric(MiB(last.rss), "idle-MiB")
	b.ReportMetric(MiB(last.anon), "idle-anon-MiB")
	b.ReportMetric(MiB(last.file), "idle-file-MiB")
	b.ReportMetric(MiB(maxRSS(idle)), "idle-max-MiB")
	b.ReportMetric(MiB(medianRSS(load)), "load-steady-MiB")
	b.ReportMetric(MiB(maxRSS(load)), "load-max-MiB")
	b.ReportMetric(MiB(maxAnon(load)), "load-anon-max-MiB")
	b.ReportMetric(MiB(st["VmHWM"]), "hwm-MiB")
	b.ReportMetric(float64(written)/loadFor.Seconds(), "noise-lines/s")
	b.ReportMetric(100*(cpu1-cpu0).Seconds()/loadFor.Seconds(), "load-cpu-%")
	b.ReportMetric(Millis(catchUp), "catchup-ms")
}
