package controller

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/test/bench"
	"github.com/nodewarden/nodewarden/test/cluster"
)

var (
	rssConfigs  = flag.String("rss.configs", "1000x0,5000x0,5000x30000,1000x30000", "BenchmarkControllerRSS: NODESxPODS cluster sizes, measured in this order (the cluster is grown or shrunk from one to the next; removing nodes is much faster than removing pods)")
	rssPodNodes = flag.Int("rss.pod-nodes", 1000, "BenchmarkControllerRSS: pods are spread over the first this many nodes (so nodes can be added and removed under them)")
	rssIdle     = flag.Duration("rss.idle", 30*time.Second, "BenchmarkControllerRSS: idle time after the controller synced, before RSS is read")
	rssRounds   = flag.Int("rss.rounds", 2, "BenchmarkControllerRSS: trigger rounds after the idle phase")
	rssTrigger  = flag.Int("rss.trigger", 5, "BenchmarkControllerRSS: nodes triggered per round (cordoned, drained, released)")
	rssAfter    = flag.Duration("rss.after", 15*time.Second, "BenchmarkControllerRSS: idle time after the rounds, before RSS is read again")
	rssSettle   = flag.Duration("rss.settle", 3*time.Minute, "BenchmarkControllerRSS: how long to wait for kwok to run every pod before measuring anyway")
)

const rssNamespace = "bench"

type rssConfig struct{ nodes, pods int }

func parseRSSConfigs(b *testing.B) []rssConfig {
	var out []rssConfig
	for _, f := range strings.Split(*rssConfigs, ",") {
		n, p, ok := strings.Cut(strings.TrimSpace(f), "x")
		nodes, err1 := strconv.Atoi(n)
		pods, err2 := strconv.Atoi(p)
		if !ok || err1 != nil || err2 != nil || nodes < 1 || pods < 0 {
			b.Fatalf("-rss.configs: %q is not NODESxPODS", f)
		}
		if pods > 0 && nodes < *rssPodNodes {
			b.Fatalf("-rss.configs: %q has pods on fewer nodes than -rss.pod-nodes=%d", f, *rssPodNodes)
		}
		out = append(out, rssConfig{nodes, pods})
	}
	return out
}

// rssEnv is the level-2 cluster shared by the sub-benchmarks, and what it
// holds now.
type rssEnv struct {
	*env
	w     *nodeWatcher
	bin   string
	nodes int // rss-00000 .. rss-(nodes-1)
	pods  int // pod-00000 .. pod-(pods-1), pod k on node k % rssPodNodes
	next  int // next node index to trigger
}

// BenchmarkControllerRSS runs the real binary (`make build` →
// bin/nodewarden) on a level-2 cluster (kwok nodes) for each -rss.configs
// size, and reads its VmRSS from /proc: after it synced and stayed idle for
// -rss.idle, and again -rss.after after -rss.rounds rounds in which
// -rss.trigger nodes that carry pods are triggered, cordoned, drained (their
// bare pods evicted) and released. Pods are created with spec.nodeName set,
// so the scheduler is not involved; kwok marks them Running. The target is
// memory flat in the pod count: the controller never caches Pods.
//
// It measures once per size whatever b.N is. The controller's output is in
// $NODEWARDEN_BENCH_CONTROLLER_LOG (one file per size, suffixed) if set;
// extra environment for it in $NODEWARDEN_BENCH_CONTROLLER_ENV.
func BenchmarkControllerRSS(b *testing.B) {
	requireOptIn(b)
	configs := parseRSSConfigs(b)
	e := newEnv(b, true)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	w, err := e.watchNodes(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rssNamespace}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	r := &rssEnv{env: e, w: w, bin: bench.BinaryUnderTest(b, "nodewarden")}
	for _, c := range configs {
		b.Run(fmt.Sprintf("nodes=%d,pods=%d", c.nodes, c.pods), func(b *testing.B) { r.measure(b, ctx, c) })
	}
}

func podName(k int) string { return fmt.Sprintf("pod-%05d", k) }

func (r *rssEnv) podNode(k int) string { return nodeName("rss", k%*rssPodNodes) }

// newPod is a bare pod bound to node, the size of a small real one.
func newPod(k int, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: podName(k), Namespace: rssNamespace,
			Labels:      map[string]string{"app": fmt.Sprintf("app-%02d", k%50), "tier": "backend", "bench": "rss"},
			Annotations: map[string]string{"example.com/owner": "team-" + strconv.Itoa(k%7)},
		},
		Spec: corev1.PodSpec{
			NodeName: node,
			Containers: []corev1.Container{{
				Name: "app", Image: fmt.Sprintf("registry.example.com/app-%02d:v1.2.3", k%50),
				Args:  []string{"--port=8080", "--log-level=info"},
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				Env:   []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi"),
				}},
			}},
			TerminationGracePeriodSeconds: ptr.To[int64](5),
		},
	}
}

func (r *rssEnv) createPods(ctx context.Context, ks []int) error {
	return parallel(len(ks), 32, func(i int) error {
		_, err := r.cs.CoreV1().Pods(rssNamespace).Create(ctx, newPod(ks[i], r.podNode(ks[i])), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	})
}

// resize grows or shrinks the cluster to c: nodes first, then pods.
func (r *rssEnv) resize(b *testing.B, ctx context.Context, c rssConfig) {
	start := time.Now()
	switch {
	case c.nodes > r.nodes:
		names := make([]string, 0, c.nodes-r.nodes)
		for i := r.nodes; i < c.nodes; i++ {
			names = append(names, nodeName("rss", i))
		}
		if err := r.createNodes(ctx, names); err != nil {
			b.Fatal(err)
		}
	case c.nodes < r.nodes:
		names := make([]string, 0, r.nodes-c.nodes)
		for i := c.nodes; i < r.nodes; i++ {
			names = append(names, nodeName("rss", i))
		}
		if err := r.deleteNodes(ctx, names); err != nil {
			b.Fatal(err)
		}
	}
	r.nodes = c.nodes
	if err := r.w.waitReady(c.nodes, 5*time.Minute); err != nil {
		b.Fatal(err)
	}
	events, err := r.w.waitQuiet(10*time.Second, 10*time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%d nodes, all Ready, no Node written for 10s (%d Node events meanwhile), %.1fs", c.nodes, events, time.Since(start).Seconds())

	start = time.Now()
	switch {
	case c.pods > r.pods:
		ks := make([]int, 0, c.pods-r.pods)
		for k := r.pods; k < c.pods; k++ {
			ks = append(ks, k)
		}
		if err := r.createPods(ctx, ks); err != nil {
			b.Fatal(err)
		}
		b.Logf("%d pods created in %.1fs (%.0f/s)", len(ks), time.Since(start).Seconds(), float64(len(ks))/time.Since(start).Seconds())
	case c.pods < r.pods:
		// One by one, 32 at a time: DeleteCollection is served by one worker.
		if err := parallel(r.pods-c.pods, 32, func(i int) error {
			err := r.cs.CoreV1().Pods(rssNamespace).Delete(ctx, podName(c.pods+i), metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
	r.pods = c.pods
	r.waitPods(b, ctx, c.pods)
	b.Logf("%d pods in the API server, settled in %.1fs", c.pods, time.Since(start).Seconds())
}

// waitPods waits until exactly n pods exist and all of them are Running, or
// -rss.settle passes (then it says so and goes on: the pods exist, which is
// what the measurement needs).
func (r *rssEnv) waitPods(b *testing.B, ctx context.Context, n int) {
	deadline := time.Now().Add(*rssSettle)
	for {
		total, running := 0, 0
		opts := metav1.ListOptions{Limit: 2000}
		for {
			l, err := r.cs.CoreV1().Pods(rssNamespace).List(ctx, opts)
			if err != nil {
				b.Fatal(err)
			}
			for i := range l.Items {
				total++
				if l.Items[i].Status.Phase == corev1.PodRunning && l.Items[i].DeletionTimestamp == nil {
					running++
				}
			}
			if l.Continue == "" {
				break
			}
			opts.Continue = l.Continue
		}
		if total == n && running == n {
			return
		}
		if time.Now().After(deadline) {
			if total != n {
				b.Fatalf("%d pods exist, want %d", total, n)
			}
			b.Logf("after %s kwok runs %d of %d pods; measuring anyway (they exist in the API server)", *rssSettle, running, n)
			return
		}
		time.Sleep(3 * time.Second)
	}
}

type rssSample struct {
	at              time.Duration
	rss, anon, file int64
}

// sample reads the controller's memory every second for d.
func sample(p *cluster.Process, d time.Duration) []rssSample {
	start := time.Now()
	var out []rssSample
	for {
		if st, err := bench.ProcStatus(p.Pid()); err == nil {
			out = append(out, rssSample{at: time.Since(start), rss: st["VmRSS"], anon: st["RssAnon"], file: st["RssFile"]})
		}
		if time.Since(start) >= d {
			return out
		}
		time.Sleep(time.Second)
	}
}

func timeline(s []rssSample) string {
	var sb strings.Builder
	next := time.Duration(0)
	for _, x := range s {
		if x.at >= next {
			fmt.Fprintf(&sb, " %ds:%.1f", int(x.at.Seconds()), bench.MiB(x.rss))
			next += 5 * time.Second
		}
	}
	return sb.String()
}

func (r *rssEnv) measure(b *testing.B, ctx context.Context, c rssConfig) {
	r.resize(b, ctx, c)

	logPath := filepath.Join(b.TempDir(), "controller.log")
	if p := os.Getenv("NODEWARDEN_BENCH_CONTROLLER_LOG"); p != "" {
		logPath = fmt.Sprintf("%s.%dx%d", p, c.nodes, c.pods)
	}
	load0 := loadavg()
	started := time.Now()
	p := startController(b, r.bin, r.c.Kubeconfig, logPath)
	name := fmt.Sprintf("rss-%d-%d", c.nodes, c.pods)
	if err := r.c.Client.Create(ctx, policy(name, *rssTrigger, true)); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.c.Client.Delete(context.Background(), policy(name, 1, true)) })
	if err := r.waitPolicySynced(ctx, name, c.nodes, 5*time.Minute); err != nil {
		alive(b, p)
		b.Fatal(err)
	}
	syncFor := time.Since(started)
	st0, _ := bench.ProcStatus(p.Pid())
	b.Logf("controller pid %d synced %d nodes in %.1fs: VmRSS %.1f MiB; output in %s", p.Pid(), c.nodes, syncFor.Seconds(), bench.MiB(st0["VmRSS"]), logPath)

	// Idle.
	cpu0 := cpuTime(p.Pid())
	idle := sample(p, *rssIdle)
	idleCPU := cpuTime(p.Pid()) - cpu0
	alive(b, p)
	idleLast := idle[len(idle)-1]
	var idleMax int64
	for _, x := range idle {
		idleMax = max(idleMax, x.rss)
	}
	b.Logf("idle VmRSS MiB:%s", timeline(idle))

	// Triggers: cordon, drain (evicting the node's pods), release.
	var cordon, drain []time.Duration
	evicted := 0
	for range *rssRounds {
		names := make([]string, *rssTrigger)
		idx := make([]int, *rssTrigger)
		for i := range names {
			idx[i] = r.next % min(c.nodes, *rssPodNodes)
			names[i] = nodeName("rss", idx[i])
			r.next++
		}
		r.w.mark(names...)
		t0 := map[string]time.Time{}
		for _, n := range names {
			if err := r.setTrigger(ctx, n, corev1.ConditionTrue); err != nil {
				b.Fatal(err)
			}
			t0[n] = time.Now()
		}
		cordoned, err := r.w.waitFirst(names, obs.cordoned, 2*time.Minute)
		if err != nil {
			alive(b, p)
			b.Fatalf("cordon: %v", err)
		}
		drained, err := r.w.waitFirst(names, func(o obs) bool { return o.state == string(v1alpha1.StateDrained) }, 5*time.Minute)
		if err != nil {
			alive(b, p)
			b.Fatalf("drain: %v", err)
		}
		for _, n := range names {
			cordon = append(cordon, cordoned[n].Sub(t0[n]))
			drain = append(drain, drained[n].Sub(cordoned[n]))
		}
		if err := r.releaseAll(ctx, r.w, names, 3*time.Minute); err != nil {
			b.Fatalf("release: %v", err)
		}
		// Put the evicted pods back, so every size keeps its pod count.
		var ks []int
		for _, i := range idx {
			for k := i; k < c.pods; k += *rssPodNodes {
				ks = append(ks, k)
			}
		}
		evicted += len(ks)
		if err := r.createPods(ctx, ks); err != nil {
			b.Fatal(err)
		}
	}

	// Idle again.
	after := sample(p, *rssAfter)
	alive(b, p)
	afterLast := after[len(after)-1]
	st, err := bench.ProcStatus(p.Pid())
	if err != nil {
		b.Fatal(err)
	}
	load1 := loadavg()
	b.Logf("after VmRSS MiB:%s", timeline(after))
	p.Stop()

	cs, ds := bench.SortedCopy(cordon), bench.SortedCopy(drain)
	b.Logf("%d nodes × %d pods: idle VmRSS %.1f MiB (anon %.1f, file %.1f); after %d triggers VmRSS %.1f MiB (anon %.1f); VmHWM %.1f MiB; "+
		"cordon p50 %s max %s; drain (%d pods evicted) p50 %s max %s; idle CPU %s in %s; load %.2f→%.2f",
		c.nodes, c.pods, bench.MiB(idleLast.rss), bench.MiB(idleLast.anon), bench.MiB(idleLast.file), len(cordon), bench.MiB(afterLast.rss), bench.MiB(afterLast.anon), bench.MiB(st["VmHWM"]),
		bench.Percentile(cs, 0.5), cs[len(cs)-1], evicted, bench.Percentile(ds, 0.5), ds[len(ds)-1], idleCPU, *rssIdle, load0, load1)
	b.ReportMetric(syncFor.Seconds(), "sync-s")
	b.ReportMetric(bench.MiB(idleLast.rss), "idle-MiB")
	b.ReportMetric(bench.MiB(idleLast.anon), "idle-anon-MiB")
	b.ReportMetric(bench.MiB(idleMax), "idle-max-MiB")
	b.ReportMetric(bench.MiB(afterLast.rss), "after-MiB")
	b.ReportMetric(bench.MiB(afterLast.anon), "after-anon-MiB")
	b.ReportMetric(bench.MiB(st["VmHWM"]), "hwm-MiB")
	b.ReportMetric(bench.Millis(bench.Percentile(cs, 0.5)), "cordon-p50-ms")
	b.ReportMetric(bench.Millis(cs[len(cs)-1]), "cordon-max-ms")
	b.ReportMetric(bench.Percentile(ds, 0.5).Seconds(), "drain-p50-s")
	b.ReportMetric(float64(evicted), "evicted")
	b.ReportMetric(100*idleCPU.Seconds()/rssIdle.Seconds(), "idle-cpu-%")
	b.ReportMetric(max(load0, load1), "load1")
}
