package cluster

import (
	"testing"
	"time"
)

// Eventually polls cond until it returns nil or timeout passes, then fails the
// test with cond's last error, which should say what state was seen, e.g.
// "node n1: HostEventRebootAfter48=False, want True".
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
