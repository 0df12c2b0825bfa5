package logfile

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

// BenchmarkFollowerThroughput measures lines per second from appends to a
// followed file to the callback, with fsnotify on, as in production. The
// writer appends batches of host-event-shaped lines.
func BenchmarkFollowerThroughput(b *testing.B) {
	line := []byte("2024-01-08 17:02:01 - WARNING - Ecs event type is: SystemMaintenance.Reboot,event status is: Scheduled,action ISO 8601 time is 2024-01-10T02:00:00Z\n")
	const batchLines = 256
	batch := bytes.Repeat(line, batchLines)

	path := filepath.Join(b.TempDir(), "host_event.log")
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()

	f := New(Options{Path: path}, logr.Discard())
	var got atomic.Int64
	replayed := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- f.Run(ctx, func(Line) { got.Add(1) }, func() { close(replayed) })
	}()
	<-replayed

	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	b.ResetTimer()
	for written := 0; written < b.N; written += batchLines {
		n := min(batchLines, b.N-written)
		if _, err := w.Write(batch[:n*len(line)]); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for got.Load() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("delivered %d of %d lines", got.Load(), b.N)
		}
		time.Sleep(50 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")

	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
