package bench

import (
	"bytes"
	"context"
	"runtime"
	"testing"
	"time"
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
	updates := e.watchNode(b, ctx)
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
	line, want := e.nextEvent(b)
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
