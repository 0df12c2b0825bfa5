package bench

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewarden/nodewarden/internal/agent/hostevent"
)

// BenchmarkAgentNoiseLine is the in-process agent's cost of one line that is
// not a host event (what fills the log of a busy host): b.N noise lines are
// appended, then one event line, and the clock stops when the event's
// condition arrives on a watch, so every noise line has been read and
// parsed. allocs/line and B/line count the whole process (agent and
// benchmark), which the noise dominates for large b.N; -memprofile shows
// where.
func BenchmarkAgentNoiseLine(b *testing.B) {
	e := setupLatency(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := e.c.Clientset.CoreV1().Nodes().Get(ctx, e.node, metav1.GetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	updates := watchNode(ctx, e.c, e.node, n.ResourceVersion)
	const batchLines = 1000
	batch := bytes.Repeat([]byte(noiseLine), batchLines)

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for written := 0; written < b.N; written += batchLines {
		k := min(batchLines, b.N-written)
		if _, err := e.log.Write(batch[:k*len(noiseLine)]); err != nil {
			b.Fatal(err)
		}
	}
	line := nextLine(e.seq)
	e.seq++
	ev, err := hostevent.Parse(line)
	if err != nil {
		b.Fatal(err)
	}
	e.tracker.Observe(ev)
	want := wantCondition(e.tracker)
	if _, err := e.log.Write(line); err != nil {
		b.Fatal(err)
	}
	if _, err := waitFor(updates, want, 60*time.Second); err != nil {
		b.Fatalf("event after %d noise lines: %v", b.N, err)
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N), "allocs/line")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N), "B/line")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
