package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/agent"
	"github.com/nodewarden/nodewarden/internal/agent/hostevent"
	"github.com/nodewarden/nodewarden/internal/agent/metrics"
	"github.com/nodewarden/nodewarden/test/cluster"
	"github.com/nodewarden/nodewarden/test/e2e"
)

const (
	benchCondition = "HostEventRebootAfter48"
	// bootTime is before every action time the benchmarks write, so the
	// boot-time rule never ends an event: only its log lines do.
	benchBootTime = "2024-01-01T00:00:00Z"
)

// latencyEnv is one in-process agent on one Node, shared by every call of
// BenchmarkLineToCondition in this test binary.
type latencyEnv struct {
	c       *cluster.Cluster
	node    string
	log     *os.File // the host event log, opened for appending
	tracker *hostevent.Tracker
	seq     int // lines written so far
}

var latency struct {
	once sync.Once
	env  *latencyEnv
	err  error
}

func setupLatency(b *testing.B) *latencyEnv {
	b.Helper()
	c := sharedCluster(b)
	latency.once.Do(func() { latency.env, latency.err = startLatencyEnv(b, c) })
	if latency.err != nil {
		b.Fatal(latency.err)
	}
	return latency.env
}

// startLatencyEnv creates the Node and runs the agent as `nodewarden agent`
// would, with the default configuration (poll interval 1 s: fsnotify is what
// delivers lines sooner), a zap logger that formats but discards, and its
// metrics registered.
func startLatencyEnv(b *testing.B, c *cluster.Cluster) (*latencyEnv, error) {
	dir, err := os.MkdirTemp("", "nodewarden-bench-")
	if err != nil {
		return nil, err
	}
	onExit(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "host_event.log")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	onExit(func() { _ = f.Close() })

	node := "bench-latency"
	createNode(b, c, node)

	conf := &v1alpha1.AgentConfig{}
	conf.Default()
	conf.HostEventLog.Path = ptr.To(path)
	boot, _ := time.Parse(time.RFC3339, benchBootTime)
	a, err := agent.New(agent.Options{
		NodeName: node, Namespace: agentNamespace, Client: cluster.AgentClient(b, c.Config), Config: conf,
		BootTime: boot, Metrics: metrics.New(prometheus.NewRegistry()),
		Log: zap.New(zap.WriteTo(io.Discard)),
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	onExit(func() { cancel(); <-done })

	// The agent declares its conditions at start; from then on it is following the log.
	waitCondition(b, c, node, benchCondition, corev1.ConditionFalse, hostevent.ReasonNoHostEvent, 30*time.Second)
	mapping, err := hostevent.MappingFor(conf.HostEventLog.Conditions)
	if err != nil {
		return nil, err
	}
	return &latencyEnv{c: c, node: node, log: f, tracker: hostevent.NewTracker(mapping)}, nil
}

// nextLine is the seq-th line: even lines schedule a reboot at a new action
// time, odd lines mark that one Executed. Every line is a new event status
// and flips the condition.
func nextLine(seq int) []byte {
	base := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	action := base.Add(time.Duration(seq/2) * time.Hour)
	logged := time.Date(2024, 1, 9, 6, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Second)
	status := hostevent.StatusScheduled
	if seq%2 == 1 {
		status = hostevent.StatusExecuted
	}
	return []byte(e2e.HostEventLine(logged, "SystemMaintenance.Reboot", string(status), action))
}

// observed is a Node as the watch delivered it, stamped on receipt.
type observed struct {
	at   time.Time
	node *corev1.Node
}

// watchNode delivers every version of the env's Node from now on,
// re-opening the watch if the API server closes it.
func (e *latencyEnv) watchNode(b *testing.B, ctx context.Context) <-chan observed {
	b.Helper()
	n, err := e.c.Clientset.CoreV1().Nodes().Get(ctx, e.node, metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	rv := n.ResourceVersion
	out := make(chan observed, 64)
	go func() {
		defer close(out)
		for ctx.Err() == nil {
			w, err := e.c.Clientset.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{
				FieldSelector: fields.OneTermEqualSelector("metadata.name", e.node).String(), ResourceVersion: rv,
			})
			if err != nil {
				time.Sleep(10 * time.Millisecond) // pacing the retry, not synchronisation
				continue
			}
			for ev := range w.ResultChan() {
				at := time.Now()
				if n, ok := ev.Object.(*corev1.Node); ok {
					rv = n.ResourceVersion
					select {
					case out <- observed{at: at, node: n}:
					case <-ctx.Done():
					}
				}
			}
			w.Stop()
		}
	}()
	return out
}

// BenchmarkLineToCondition measures, for b.N host event lines, the time from
// the append returning to a watch on the Node delivering the condition the
// line causes (status, reason and message all as expected). Use at least
// -benchtime 200x: the percentiles are over the b.N lines of one run.
func BenchmarkLineToCondition(b *testing.B) {
	e := setupLatency(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	updates := e.watchNode(b, ctx)

	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		line, want := e.nextEvent(b)

		if _, err := e.log.Write(line); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		at, err := waitFor(updates, want, 10*time.Second)
		if err != nil {
			b.Fatalf("line %d %q: condition %s=%s %q never seen: %v", e.seq, line, want.Type, want.Status, want.Message, err)
		}
		lat = append(lat, at.Sub(start))
	}
	b.StopTimer()

	s := SortedCopy(lat)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	b.ReportMetric(Millis(Percentile(s, 0.50)), "p50-ms")
	b.ReportMetric(Millis(Percentile(s, 0.99)), "p99-ms")
	b.ReportMetric(Millis(s[len(s)-1]), "max-ms")
	b.ReportMetric(Millis(sum/time.Duration(len(s))), "mean-ms")
	if b.N > 1 && b.N < 200 {
		b.Logf("only %d events: run with -benchtime 200x or more for meaningful percentiles", b.N)
	}
}

// nextEvent is the next line to append and the condition the agent must
// show once it has read every line so far.
func (e *latencyEnv) nextEvent(b *testing.B) ([]byte, hostevent.Condition) {
	b.Helper()
	line := nextLine(e.seq)
	e.seq++
	ev, err := hostevent.Parse(line)
	if err != nil {
		b.Fatalf("benchmark line does not parse: %v: %q", err, line)
	}
	e.tracker.Observe(ev)
	boot, _ := time.Parse(time.RFC3339, benchBootTime)
	for _, c := range e.tracker.Conditions(boot) {
		if c.Type == benchCondition {
			return line, c
		}
	}
	panic("no " + benchCondition + " in the default mapping")
}

// waitFor returns when the watch delivered the Node with want.
func waitFor(updates <-chan observed, want hostevent.Condition, timeout time.Duration) (time.Time, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	last := "nothing"
	for {
		select {
		case o, ok := <-updates:
			if !ok {
				return time.Time{}, fmt.Errorf("watch closed; last seen %s", last)
			}
			c := findCondition(o.node, want.Type)
			if c == nil {
				last = "no condition"
				continue
			}
			if c.Status == want.Status && c.Reason == want.Reason && c.Message == want.Message {
				return o.at, nil
			}
			last = fmt.Sprintf("%s %s %q", c.Status, c.Reason, c.Message)
		case <-deadline.C:
			return time.Time{}, fmt.Errorf("%w after %s; last seen %s", errTimeout, timeout, last)
		}
	}
}
