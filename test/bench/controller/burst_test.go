package controller

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/test/bench"
)

var (
	burstSizes   = flag.String("burst.nodes", "100,1000", "BenchmarkBurst: node counts, measured in this order on one cluster that grows (ascending)")
	burstPercent = flag.Int("burst.max-concurrent", 10, "BenchmarkBurst: the policy's maxConcurrent, in percent of the nodes")
	burstLevel   = flag.Int("burst.level", 2, "BenchmarkBurst: 2 = kwok nodes on a full control plane; 1 = etcd + kube-apiserver and plain Node objects")
	burstInProc  = flag.Bool("burst.inprocess", false, "BenchmarkBurst: run the controller in the benchmark process (client QPS 50, as the binary's default) instead of bin/nodewarden")
	burstTimeout = flag.Duration("burst.timeout", 10*time.Minute, "BenchmarkBurst: give up on a wave after this long")
)

// budgetOf resolves a percentage of n as docs/policy.md does: rounded down,
// never below one node.
func budgetOf(percent, n int) int { return max(1, n*percent/100) }

func cordonedHeld(o obs) bool { return o.unsched && o.held() }

func drained(o obs) bool { return o.state == string(v1alpha1.StateDrained) }

// BenchmarkBurst triggers every node of one policy at once (maxConcurrent
// -burst.max-concurrent percent, drain enabled, maxUnhealthy 100%) and plays
// a rolling wave: as soon as a node is seen Drained (kwok nodes carry no pods,
// so drains finish at once) its trigger is cleared, the controller releases
// it and the freed slot goes to the next node. Everything is measured from a
// cluster-wide Node watch, not from the controller:
//
//	first-slots-ms    first trigger sent → the first maxConcurrent nodes seen cordoned
//	all-cordoned-ms   first trigger sent → every node seen cordoned once
//	all-released-ms   first trigger sent → every node given back
//	held-max          most nodes held (state present, not Waiting) at any
//	                  instant of the watch's history; above the budget the
//	                  benchmark fails
//
// Each b.N iteration is one wave; a wave ends with every node released, so
// the next starts from the same state.
func BenchmarkBurst(b *testing.B) {
	requireOptIn(b)
	var sizes []int
	for _, f := range strings.Split(*burstSizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || (len(sizes) > 0 && n < sizes[len(sizes)-1]) {
			b.Fatalf("-burst.nodes: %q is not an ascending list of node counts", *burstSizes)
		}
		sizes = append(sizes, n)
	}
	e := newEnv(b, *burstLevel >= 2)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	w, err := e.watchNodes(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var bin string
	if !*burstInProc {
		bin = bench.BinaryUnderTest(b, "nodewarden")
	}
	created := 0
	for _, n := range sizes {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			names := make([]string, n)
			for i := range names {
				names[i] = nodeName("burst", i)
			}
			started := time.Now()
			if err := e.createNodes(ctx, names[created:]); err != nil {
				b.Fatal(err)
			}
			created = n
			if err := w.waitReady(n, 5*time.Minute); err != nil {
				b.Fatal(err)
			}
			// kube-controller-manager rewrites every node's TTL annotation
			// when the cluster crosses a size; let that pass first.
			if _, err := w.waitQuiet(5*time.Second, 10*time.Minute); err != nil {
				b.Fatal(err)
			}
			b.Logf("%d nodes Ready and quiet after %.1fs", n, time.Since(started).Seconds())

			logPath := filepath.Join(b.TempDir(), "controller.log")
			if p := os.Getenv("NODEWARDEN_BENCH_CONTROLLER_LOG"); p != "" {
				logPath = fmt.Sprintf("%s.burst%d", p, n)
			}
			pid := 0
			if *burstInProc {
				startInProcess(b, e.c.Config, 50, logPath)
			} else {
				p := startController(b, bin, e.c.Kubeconfig, logPath)
				pid = p.Pid()
				b.Cleanup(func() { alive(b, p) })
			}
			name := fmt.Sprintf("burst-%d", n)
			rp := policy(name, 1, true)
			rp.Spec.MaxConcurrent = intstr.FromString(fmt.Sprintf("%d%%", *burstPercent))
			if err := e.c.Client.Create(ctx, rp); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = e.c.Client.Delete(context.Background(), rp) })
			if err := e.waitPolicySynced(ctx, name, n, 2*time.Minute); err != nil {
				b.Fatal(err)
			}
			e.burstWaves(b, ctx, w, names, budgetOf(*burstPercent, n), pid)
		})
	}
}

func (e *env) burstWaves(b *testing.B, ctx context.Context, w *nodeWatcher, names []string, budget, pid int) {
	var firstSlots, allCordoned, allReleased, issue, cpu time.Duration
	// Where a slot's time goes: cordon → Drained (the drain), Drained →
	// given back (the benchmark's clear, then the release).
	var toDrained, toReleased []time.Duration
	peak := 0
	load0 := loadavg()
	b.ResetTimer()
	for range b.N {
		cpu0 := cpuTime(pid)
		w.mark(names...)
		relists0 := w.resetHeld()
		start := time.Now()
		r := e.wave(ctx, w, names, start)
		if pid != 0 {
			cpu += cpuTime(pid) - cpu0
		}
		held, relists := w.heldPeak()
		if r.err != nil {
			b.Fatalf("wave: %v (most held so far %d, budget %d)", r.err, held, budget)
		}
		if relists != relists0 {
			b.Fatalf("the Node watch was relisted during the wave: the most-held count is not exact (%d)", held)
		}
		if held > budget {
			b.Fatalf("%d nodes held at once, maxConcurrent is %d", held, budget)
		}
		peak = max(peak, held)
		cordoned := slices.SortedFunc(maps.Values(r.cordoned), time.Time.Compare)
		firstSlots += cordoned[min(budget, len(cordoned))-1].Sub(start)
		allCordoned += cordoned[len(cordoned)-1].Sub(start)
		allReleased += r.lastReleased.Sub(start)
		for n, t := range r.cordoned {
			toDrained = append(toDrained, r.drained[n].Sub(t))
			toReleased = append(toReleased, r.released[n].Sub(r.drained[n]))
		}
		issue += r.issued
	}
	b.StopTimer()
	load1 := loadavg()
	per := func(d time.Duration) time.Duration { return d / time.Duration(b.N) }
	toDrained, toReleased = bench.SortedCopy(toDrained), bench.SortedCopy(toReleased)
	b.Logf("per node: cordon → Drained p50 %s max %s; Drained → given back p50 %s max %s",
		bench.Percentile(toDrained, 0.5), toDrained[len(toDrained)-1], bench.Percentile(toReleased, 0.5), toReleased[len(toReleased)-1])
	b.Logf("%d nodes, maxConcurrent %d: first %d cordoned after %s, all cordoned once after %s, all released after %s (triggers issued in %s); most held at once %d; controller CPU %s per wave; load %.2f→%.2f",
		len(names), budget, budget, per(firstSlots), per(allCordoned), per(allReleased), per(issue), peak, per(cpu), load0, load1)
	b.ReportMetric(bench.Millis(per(firstSlots)), "first-slots-ms")
	b.ReportMetric(bench.Millis(per(allCordoned)), "all-cordoned-ms")
	b.ReportMetric(bench.Millis(per(allReleased)), "all-released-ms")
	b.ReportMetric(bench.Millis(bench.Percentile(toDrained, 0.5)), "drain-p50-ms")
	b.ReportMetric(bench.Millis(bench.Percentile(toReleased, 0.5)), "release-p50-ms")
	b.ReportMetric(float64(peak), "held-max")
	b.ReportMetric(float64(budget), "max-concurrent")
	b.ReportMetric(float64(len(names))/per(allCordoned).Seconds(), "cordons/s")
	if pid != 0 {
		b.ReportMetric(bench.Millis(per(cpu)), "ctrl-cpu-ms/wave")
	}
	b.ReportMetric(max(load0, load1), "load1")
}

type waveResult struct {
	cordoned     map[string]time.Time // first seen cordoned
	drained      map[string]time.Time // first seen Drained after that
	released     map[string]time.Time // first seen given back after that
	lastReleased time.Time
	issued       time.Duration // to send every trigger
	err          error
}

// wave sets every trigger (16 writers), clears each node's trigger as soon as
// it is seen Drained (16 more), and returns once every node was seen
// released after its cordon.
func (e *env) wave(ctx context.Context, w *nodeWatcher, names []string, start time.Time) (r waveResult) {
	ctx, cancel := context.WithTimeout(ctx, *burstTimeout)
	defer cancel()
	errs := make(chan error, 1)
	report := func(err error) {
		select {
		case errs <- err:
		default: // the first error is enough
		}
	}
	triggered := make(chan time.Duration, 1)
	go func() {
		if err := parallel(len(names), 16, func(i int) error { return e.setTrigger(ctx, names[i], corev1.ConditionTrue) }); err != nil {
			report(fmt.Errorf("trigger: %w", err))
		}
		triggered <- time.Since(start)
	}()
	defer func() { r.issued = <-triggered }()
	clear := make(chan string, len(names))
	var clearers sync.WaitGroup
	for range 16 {
		clearers.Go(func() {
			for n := range clear {
				if err := e.setTrigger(ctx, n, corev1.ConditionFalse); err != nil {
					report(fmt.Errorf("clear %s: %w", n, err))
				}
			}
		})
	}
	defer func() { close(clear); clearers.Wait() }()

	queued := map[string]bool{}
	for {
		done, changed := w.seen(names, drained)
		for n := range done {
			if !queued[n] {
				queued[n] = true
				clear <- n
			}
		}
		released, _ := w.seen(names, cordonedHeld, obs.released)
		if len(released) == len(names) {
			r.cordoned, _ = w.seen(names, cordonedHeld)
			r.drained, _ = w.seen(names, cordonedHeld, drained)
			r.released = released
			for _, t := range released {
				if t.After(r.lastReleased) {
					r.lastReleased = t
				}
			}
			return r
		}
		select {
		case <-changed:
		case r.err = <-errs:
			return r
		case <-ctx.Done():
			cordoned, _ := w.seen(names, cordonedHeld)
			r.err = fmt.Errorf("after %s: %d of %d nodes cordoned once, %d drained, %d released", *burstTimeout, len(cordoned), len(names), len(done), len(released))
			return r
		}
	}
}
