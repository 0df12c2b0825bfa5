package controller

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodewarden/nodewarden/test/bench"
)

var (
	churnNodes   = flag.Int("churn.nodes", 5000, "BenchmarkControllerChurnCPU: kwok nodes")
	churnLevel   = flag.Int("churn.level", 2, "BenchmarkControllerChurnCPU: 2 = kwok nodes on a full control plane; 1 = etcd + kube-apiserver and plain Node objects")
	churnRate    = flag.Int("churn.rate", 50, "BenchmarkControllerChurnCPU: Node patches per second of the unrelated annotation")
	churnFor     = flag.Duration("churn.for", time.Minute, "BenchmarkControllerChurnCPU: how long the annotation is rewritten (rate × this many patches)")
	churnIdle    = flag.Duration("churn.idle", 20*time.Second, "BenchmarkControllerChurnCPU: idle time measured before the churn, for comparison")
	churnInProc  = flag.Bool("churn.inprocess", false, "BenchmarkControllerChurnCPU: run the controller in the benchmark process (for -churn.cpuprofile) instead of bin/nodewarden")
	churnBins    = flag.String("churn.bins", "", "BenchmarkControllerChurnCPU: comma-separated controller binaries to compare on the same cluster (default $NODEWARDEN_BIN, else bin/nodewarden)")
	churnRounds  = flag.Int("churn.rounds", 1, "BenchmarkControllerChurnCPU: how many times each binary is measured, alternating")
	churnProfile = flag.String("churn.cpuprofile", "", "BenchmarkControllerChurnCPU with -churn.inprocess: write a CPU profile of the churn phase here; the controller's samples carry the label nodewarden=controller")
)

// churnAnnotation is someone else's annotation: nothing nodewarden decides on.
const churnAnnotation = "example.com/churn"

// BenchmarkControllerChurnCPU measures the CPU time of the real controller
// process (utime+stime from /proc) on -churn.nodes nodes, idle and while
// another client rewrites an unrelated annotation on -churn.rate Nodes per
// second, spread over all nodes, for -churn.for: what kube-controller-
// manager's TTL controller, cloud controllers and labelers do in real
// clusters. One policy selects every node; no node is triggered, so no pass
// of the controller has anything to do. Reported as percent of one core.
//
// -churn.bins compares builds on one cluster (its set-up takes minutes at
// 5 000 nodes, and the machine's load drifts meanwhile): each of
// -churn.rounds rounds measures every binary in turn, each in a fresh
// process with a fresh policy.
//
// With -churn.inprocess the controller runs in the benchmark process, wired
// as the binary wires it, and -churn.cpuprofile profiles the churn phase:
// the process's CPU then includes the benchmark's own watch and patches, so
// read the controller's share with -tagfocus nodewarden=controller.
func BenchmarkControllerChurnCPU(b *testing.B) {
	requireOptIn(b)
	if *churnProfile != "" && !*churnInProc {
		b.Fatal("-churn.cpuprofile needs -churn.inprocess (the binary has no profiling endpoint)")
	}
	n := *churnNodes
	e := newEnv(b, *churnLevel >= 2)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	// kube-controller-manager rewrites every node's TTL annotation as the
	// cluster crosses sizes (minutes at 5 000 nodes); that is churn too, but
	// not the one measured.
	w, names := e.settledNodes(b, ctx, "churn", n, 10*time.Minute, 10*time.Second, 20*time.Minute)

	type run struct{ label, bin string }
	var runs []run
	switch {
	case *churnInProc:
		runs = []run{{"inprocess", ""}}
	case *churnBins != "":
		for _, p := range strings.Split(*churnBins, ",") {
			runs = append(runs, run{filepath.Base(p), bench.CopyBinary(b, p)})
		}
	default:
		runs = []run{{"nodewarden", bench.BinaryUnderTest(b, "nodewarden")}}
	}
	c := &churner{env: e, w: w, names: names}
	for round := range *churnRounds {
		for _, r := range runs {
			b.Run(fmt.Sprintf("%s/round=%d", r.label, round), func(b *testing.B) { c.measure(b, ctx, r.bin) })
		}
	}
}

// churner is the cluster BenchmarkControllerChurnCPU measures on.
type churner struct {
	*env
	w     *nodeWatcher
	names []string
	runs  int
	// seq numbers the patches across runs: a patch that writes the value
	// the annotation already has is no write at all.
	seq int
}

// measure starts the controller (the binary bin, or in-process when bin is
// empty), waits until it synced, and measures it idle then under churn.
func (c *churner) measure(b *testing.B, ctx context.Context, bin string) {
	c.runs++
	logPath := filepath.Join(b.TempDir(), "controller.log")
	if p := os.Getenv("NODEWARDEN_BENCH_CONTROLLER_LOG"); p != "" {
		logPath = fmt.Sprintf("%s.churn%d", p, c.runs)
	}
	started := time.Now()
	pid := 0
	if bin == "" {
		startInProcess(b, c.c.Config, 50, logPath)
		pid = os.Getpid()
	} else {
		p := startController(b, bin, c.c.Kubeconfig, logPath)
		pid = p.Pid()
		// Stopped before the next run starts: measured one at a time.
		defer p.Stop()
		defer alive(b, p)
	}
	name := fmt.Sprintf("churn-%d", c.runs)
	rp := policy(name, 5, true)
	if err := c.c.Client.Create(ctx, rp); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = c.c.Client.Delete(context.Background(), rp) }()
	if err := c.waitPolicySynced(ctx, name, len(c.names), 5*time.Minute); err != nil {
		b.Fatal(err)
	}
	b.Logf("controller pid %d synced after %.1fs, output in %s", pid, time.Since(started).Seconds(), logPath)

	apiPID := apiServerPID(c.c.Config.Host)
	load0 := loadavg()
	c.w.mu.Lock()
	idleEvents := c.w.events
	c.w.mu.Unlock()
	idle := cpuOver(pid, func() { time.Sleep(*churnIdle) })
	idleFor := *churnIdle
	c.w.mu.Lock()
	idleEvents = c.w.events - idleEvents
	c.w.mu.Unlock()

	var f *os.File
	if *churnProfile != "" {
		var err error
		if f, err = os.Create(*churnProfile); err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
	}
	c.w.mu.Lock()
	events0 := c.w.events
	c.w.mu.Unlock()
	var (
		sent int
		took time.Duration
		err  error
	)
	b.ResetTimer()
	var busy time.Duration
	// The API server's CPU is there for what the controller's choices cost
	// it (such as compressing the controller's watch); it also serves the
	// churn itself and the benchmark's watch, which do not change between
	// builds.
	apiBusy := cpuOver(apiPID, func() {
		busy = cpuOver(pid, func() {
			t0 := time.Now()
			sent, err = c.churn(ctx, *churnRate, *churnFor)
			took = time.Since(t0)
		})
	})
	b.StopTimer()
	if f != nil {
		pprof.StopCPUProfile()
		f.Close()
	}
	if err != nil {
		b.Fatal(err)
	}
	load1 := loadavg()
	c.w.mu.Lock()
	seen := c.w.events - events0
	c.w.mu.Unlock()

	pct := func(cpu, wall time.Duration) float64 { return 100 * cpu.Seconds() / wall.Seconds() }
	b.Logf("%d nodes: controller CPU idle %s in %s (%.2f%% of a core, %d Node events); under churn %s in %s (%.2f%% of a core), %d patches (%.1f/s), %d Node events seen by the benchmark's watch; kube-apiserver (pid %d) CPU under churn %.1f%%; load %.2f→%.2f",
		len(c.names), idle, idleFor, pct(idle, idleFor), idleEvents, busy, took.Round(time.Millisecond), pct(busy, took), sent, float64(sent)/took.Seconds(), seen, apiPID, pct(apiBusy, took), load0, load1)
	b.ReportMetric(pct(idle, idleFor), "idle-cpu-%")
	b.ReportMetric(pct(busy, took), "churn-cpu-%")
	b.ReportMetric(float64(sent)/took.Seconds(), "patches/s")
	if apiPID != 0 {
		b.ReportMetric(pct(apiBusy, took), "apiserver-cpu-%")
	}
	b.ReportMetric(1000*bench.Millis(busy)/float64(sent), "ctrl-cpu-µs/patch")
	b.ReportMetric(max(load0, load1), "load1")
}

// cpuOver is the CPU time pid used while f ran.
func cpuOver(pid int, f func()) time.Duration {
	c0 := cpuTime(pid)
	f()
	return cpuTime(pid) - c0
}

// churn rewrites churnAnnotation on names[k % len(names)] for the k-th
// patch (k counted across runs), rate patches a second for d (rate × d patches in all), from a
// ticker so that a slow API server makes the phase longer, not the rate
// higher. It returns how many patches were sent.
func (c *churner) churn(ctx context.Context, rate int, d time.Duration) (int, error) {
	names := c.names
	total := int(float64(rate) * d.Seconds())
	if rate < 1 || total < 1 {
		return 0, fmt.Errorf("churn: rate %d for %s is no patch", rate, d)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*d+time.Minute)
	defer cancel()
	work := make(chan int)
	var (
		wg    sync.WaitGroup
		sent  atomic.Int64
		first atomic.Pointer[error]
	)
	for range 8 {
		wg.Go(func() {
			for k := range work {
				patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"%d"}}}`, churnAnnotation, k)
				if _, err := c.cs.CoreV1().Nodes().Patch(ctx, names[k%len(names)], types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
					first.CompareAndSwap(nil, &err)
					continue
				}
				sent.Add(1)
			}
		})
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for k := 0; k < total && ctx.Err() == nil && first.Load() == nil; k++ {
		<-tick.C
		work <- c.seq
		c.seq++
	}
	close(work)
	wg.Wait()
	if err := first.Load(); err != nil {
		return int(sent.Load()), *err
	}
	return int(sent.Load()), ctx.Err()
}
