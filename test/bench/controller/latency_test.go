package controller

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/test/bench"
)

var (
	cordonNodes  = flag.Int("cordon.nodes", 100, "BenchmarkConditionToCordon: nodes triggered per round (the percentiles are over them)")
	cordonLevel  = flag.Int("cordon.level", 2, "BenchmarkConditionToCordon: 2 = kwok nodes on a full control plane (controller-manager, scheduler, kwok); 1 = etcd + kube-apiserver and plain Node objects")
	cordonGap    = flag.Duration("cordon.gap", 300*time.Millisecond, "BenchmarkConditionToCordon/isolated: pause after a node is seen cordoned before the next trigger")
	cordonInProc = flag.Bool("cordon.inprocess", false, "BenchmarkConditionToCordon: run the controller in the benchmark process, wired as cmd/nodewarden wires it, instead of bin/nodewarden")
	cordonQPS    = flag.Float64("cordon.qps", 0, "BenchmarkConditionToCordon with -cordon.inprocess: the controller's client QPS; 0 is client-go's default (5/s, burst 10), what bin/nodewarden had before --kube-api-qps; 50 is its default now; -1 turns client-side limiting off")
)

type cordonMode int

const (
	// isolated: one trigger, wait for the cordon, pause -cordon.gap, next.
	// The latency of a condition that arrives on its own, as most do.
	isolated cordonMode = iota
	// backToBack: the next trigger as soon as the previous cordon is seen.
	backToBack
	// burst: every node's trigger at once (16 writers), as when a zone's
	// maintenance is announced.
	burst
)

// cordonedByPolicy is the controller's answer with drain disabled.
func cordonedByPolicy(o obs) bool {
	return o.unsched && o.state == string(v1alpha1.StateCordoned)
}

// BenchmarkConditionToCordon measures, per node, the time from the trigger
// condition's nodes/status patch returning to a cluster-wide watch
// delivering the Node with spec.unschedulable=true and nodewarden.io/state=
// Cordoned. One policy selects -cordon.nodes nodes, maxConcurrent = that
// count, maxUnhealthy 100%, drain disabled, so no budget ever defers a node.
// Each b.N iteration is one round over every node, followed (untimed) by
// clearing the conditions and waiting for the controller to release all of
// them. One round takes well over a second, so the default -benchtime runs
// one round per mode.
func BenchmarkConditionToCordon(b *testing.B) {
	requireOptIn(b)
	n := *cordonNodes
	e := newEnv(b, *cordonLevel >= 2)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)

	w, names := e.settledNodes(b, ctx, "cordon", n, 3*time.Minute, 5*time.Second, 3*time.Minute)

	logPath := os.Getenv("NODEWARDEN_BENCH_CONTROLLER_LOG")
	if logPath == "" {
		logPath = filepath.Join(b.TempDir(), "controller.log")
	}
	pid := 0
	if *cordonInProc {
		startInProcess(b, e.c.Config, *cordonQPS, logPath)
		b.Logf("controller in-process, client QPS %v", *cordonQPS)
	} else {
		p := startController(b, bench.BinaryUnderTest(b, "nodewarden"), e.c.Kubeconfig, logPath)
		pid = p.Pid()
		b.Logf("controller pid %d, output in %s", pid, logPath)
	}
	if err := e.c.Client.Create(ctx, policy("cordon-bench", n, false)); err != nil {
		b.Fatal(err)
	}
	if err := e.waitPolicySynced(ctx, "cordon-bench", n, time.Minute); err != nil {
		b.Fatal(err)
	}

	for _, m := range []struct {
		name string
		mode cordonMode
	}{{"isolated", isolated}, {"back-to-back", backToBack}, {"burst", burst}} {
		b.Run(m.name, func(b *testing.B) { e.cordonRounds(b, ctx, w, names, m.mode, pid) })
	}
}

func (e *env) cordonRounds(b *testing.B, ctx context.Context, w *nodeWatcher, names []string, mode cordonMode, pid int) {
	lat := make([]time.Duration, 0, b.N*len(names))
	var spans []time.Duration // burst: first trigger to last cordon
	var cpu time.Duration
	load0 := loadavg()
	b.ResetTimer()
	for range b.N {
		cpu0 := cpuTime(pid)
		switch mode {
		case isolated, backToBack:
			for _, name := range names {
				w.mark(name)
				if err := e.setTrigger(ctx, name, corev1.ConditionTrue); err != nil {
					b.Fatal(err)
				}
				t0 := time.Now()
				at, err := w.waitOne(name, cordonedByPolicy, 30*time.Second)
				if err != nil {
					b.Fatalf("node %s: %v", name, err)
				}
				lat = append(lat, at.Sub(t0))
				if mode == isolated {
					time.Sleep(*cordonGap)
				}
			}
		case burst:
			w.mark(names...)
			t0 := make([]time.Time, len(names))
			start := time.Now()
			if err := parallel(len(names), 16, func(i int) error {
				err := e.setTrigger(ctx, names[i], corev1.ConditionTrue)
				t0[i] = time.Now()
				return err
			}); err != nil {
				b.Fatal(err)
			}
			found, err := w.waitFirst(names, cordonedByPolicy, 3*time.Minute)
			if err != nil {
				b.Fatal(err)
			}
			var last time.Time
			for i, name := range names {
				lat = append(lat, found[name].Sub(t0[i]))
				if found[name].After(last) {
					last = found[name]
				}
			}
			spans = append(spans, last.Sub(start))
		}
		if pid != 0 {
			cpu += cpuTime(pid) - cpu0
		}
		b.StopTimer()
		if err := e.releaseAll(ctx, w, names, 3*time.Minute); err != nil {
			b.Fatalf("release: %v", err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	load1 := loadavg()

	s := bench.SortedCopy(lat)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	mean := sum / time.Duration(len(s))
	b.Logf("%d cordons: p50 %s p90 %s p99 %s max %s mean %s min %s; load %.2f→%.2f",
		len(s), bench.Percentile(s, 0.5), bench.Percentile(s, 0.9), bench.Percentile(s, 0.99), s[len(s)-1], mean, s[0], load0, load1)
	b.Logf("slowest ten: %v", s[max(0, len(s)-10):])
	b.ReportMetric(bench.Millis(bench.Percentile(s, 0.5)), "p50-ms")
	b.ReportMetric(bench.Millis(bench.Percentile(s, 0.9)), "p90-ms")
	b.ReportMetric(bench.Millis(bench.Percentile(s, 0.99)), "p99-ms")
	b.ReportMetric(bench.Millis(s[len(s)-1]), "max-ms")
	b.ReportMetric(bench.Millis(mean), "mean-ms")
	b.ReportMetric(float64(len(s)), "cordons")
	b.ReportMetric(max(load0, load1), "load1")
	if len(spans) > 0 {
		var total time.Duration
		for _, sp := range spans {
			total += sp
		}
		b.ReportMetric(bench.Millis(total/time.Duration(len(spans))), "all-cordoned-ms")
		b.ReportMetric(float64(len(names))/(total/time.Duration(len(spans))).Seconds(), "cordons/s")
	}
	if pid != 0 {
		b.ReportMetric(bench.Millis(cpu)/float64(len(s)), "ctrl-cpu-ms/cordon")
	}
}
