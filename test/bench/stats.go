package bench

import (
	"sort"
	"time"
)

// SortedCopy is d sorted, d left as it is.
func SortedCopy(d []time.Duration) []time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

// Percentile is the nearest-rank percentile p (0..1] of sorted.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Millis is d in milliseconds, as benchmarks report it.
func Millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
