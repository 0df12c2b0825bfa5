package nodehealth

import (
	"context"
	"syscall"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
)

// BenchmarkCheckThisHost is one run of each default check (kernel,
// networking, storage) over this machine's real /proc and /sys: the
// detectors' cost plus the syscalls of reading them, as the agent pays it
// every interval.
func BenchmarkCheckThisHost(b *testing.B) {
	off := ptr.To(false)
	for _, tc := range []struct {
		name string
		edit func(*v1alpha1.HealthChecksConfig)
	}{
		{"KernelReady", func(c *v1alpha1.HealthChecksConfig) { c.Networking.Enabled, c.Storage.Enabled = off, off }},
		{"NetworkingReady", func(c *v1alpha1.HealthChecksConfig) { c.Kernel.Enabled, c.Storage.Enabled = off, off }},
		{"StorageReady", func(c *v1alpha1.HealthChecksConfig) { c.Kernel.Enabled, c.Networking.Enabled = off, off }},
		{"all three", func(*v1alpha1.HealthChecksConfig) {}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := v1alpha1.HealthChecksConfig{KernelLog: v1alpha1.KernelLogConfig{Path: ptr.To("")},
				Storage: v1alpha1.StorageCheckConfig{Paths: []string{"/", "/var/log"}}}
			tc.edit(&c)
			c.Default()
			s := New(Options{Config: c})
			ctx := context.Background()
			before := cpuTime(b)
			for b.Loop() {
				s.check(ctx, nil)
			}
			// CPU, not wall time: the budget is 1 ms of CPU per check, and
			// on a busy machine the wall time includes waiting for a core.
			b.ReportMetric(float64((cpuTime(b)-before).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// cpuTime is the user and system CPU this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
