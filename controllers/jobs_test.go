package controllers

import (
	"context"
	"testing"
	"time"
)

// isRunning says whether node has a job in progress.
func (j *nodeJobs[K, R]) isRunning(node string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	_, ok := j.running[node]
	return ok
}

// testReport is a test job's report: the key of the job that made it.
type testReport struct{ key int }

// testJobs is a nodeJobs whose jobs are controlled by the test: each job
// announces itself on started, then waits for its release (and reports) or
// for its cancellation (and reports nothing, as Drains and Repairs do).
type testJobs struct {
	*nodeJobs[int, testReport]
	started chan int // the key of each job that starts
}

func newTestJobs(t *testing.T, supersede bool) (*testJobs, func()) {
	t.Helper()
	j := &testJobs{nodeJobs: newNodeJobs(func(r testReport) int { return r.key }), started: make(chan int, 10)}
	if supersede {
		j.superseded = func(string, int) {}
	}
	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = j.stop(ctx); close(stopped) }()
	stopAndWait := func() { stop(); <-stopped }
	t.Cleanup(stopAndWait)
	return j, stopAndWait
}

// ensure starts job key on node; it runs until release is closed and
// reports. When it is cancelled it ends at once with nothing to report, or,
// given windDown, ends only when windDown is closed and reports all the
// same (as a repair step that did its work before it saw the cancellation).
func (j *testJobs) ensure(node string, key int, release, windDown chan struct{}) {
	j.nodeJobs.ensure(node, key, func(ctx context.Context) (testReport, bool) {
		j.started <- key
		select {
		case <-release:
			return testReport{key}, true
		case <-ctx.Done():
			if windDown != nil {
				<-windDown
				return testReport{key}, true
			}
			return testReport{}, false
		}
	})
}

// receive waits up to within for a value from ch.
func receive[T any](ch <-chan T, within time.Duration) (T, bool) {
	select {
	case v := <-ch:
		return v, true
	case <-time.After(within):
		var zero T
		return zero, false
	}
}

func (j *testJobs) waitStarted(t *testing.T, want int) {
	t.Helper()
	if got, ok := receive(j.started, 10*time.Second); !ok || got != want {
		t.Fatalf("job %d started (%v), want %d", got, ok, want)
	}
}

func (j *testJobs) noneStarted(t *testing.T) {
	t.Helper()
	if got, ok := receive(j.started, 20*time.Millisecond); ok {
		t.Fatalf("job %d started", got)
	}
}

// waitDone waits for the Done event of node.
func (j *testJobs) waitDone(t *testing.T, node string) {
	t.Helper()
	e, ok := receive(j.done, 10*time.Second)
	if !ok {
		t.Fatalf("no Done for %s", node)
	}
	if e.Object.GetName() != node {
		t.Fatalf("Done delivered %s, want %s", e.Object.GetName(), node)
	}
}

// noDone checks that no Done is pending or comes soon.
func (j *testJobs) noDone(t *testing.T) {
	t.Helper()
	if e, ok := receive(j.done, 20*time.Millisecond); ok {
		t.Errorf("an unexpected Done for %s", e.Object.GetName())
	}
}

// TestNodeJobsEnsure: ensuring the job that runs, or whose report waits,
// starts nothing (every reconcile pass ensures it); another key drops the
// older report and starts the new job.
func TestNodeJobsEnsure(t *testing.T) {
	j, _ := newTestJobs(t, false)
	release := make(chan struct{})
	j.ensure("n", 1, release, nil)
	j.waitStarted(t, 1)
	for range 3 {
		j.ensure("n", 1, release, nil)
	}
	j.noneStarted(t)

	close(release)
	j.waitDone(t, "n")
	if got := j.unrecorded(); len(got) != 1 || got["n"].key != 1 {
		t.Fatalf("reports %v, want job 1's", got)
	}
	j.ensure("n", 1, release, nil)
	j.noneStarted(t)

	release2 := make(chan struct{})
	j.ensure("n", 2, release2, nil)
	j.waitStarted(t, 2)
	if got := j.unrecorded(); len(got) != 0 {
		t.Errorf("job 1's report kept after job 2 started: %v", got)
	}
	close(release2)
	j.waitDone(t, "n")
	j.recorded("n")
	if got := j.unrecorded(); len(got) != 0 {
		t.Errorf("recorded kept the report: %v", got)
	}
}

// TestNodeJobsSupersede: without a superseded hook a running job stays
// whatever key is ensured; with one, the running job is cancelled, reports
// nothing, and the new one runs.
func TestNodeJobsSupersede(t *testing.T) {
	t.Run("kept", func(t *testing.T) {
		j, _ := newTestJobs(t, false)
		release := make(chan struct{})
		j.ensure("n", 1, release, nil)
		j.waitStarted(t, 1)
		j.ensure("n", 2, release, nil)
		j.noneStarted(t)
		close(release)
		j.waitDone(t, "n")
		if got := j.unrecorded()["n"]; got.key != 1 {
			t.Errorf("report of job %d, want 1", got.key)
		}
	})
	t.Run("superseded", func(t *testing.T) {
		j, _ := newTestJobs(t, true)
		var old []int
		j.superseded = func(node string, key int) { old = append(old, key) }
		j.ensure("n", 1, make(chan struct{}), nil)
		j.waitStarted(t, 1)
		release := make(chan struct{})
		j.ensure("n", 2, release, nil)
		j.waitStarted(t, 2)
		if len(old) != 1 || old[0] != 1 {
			t.Errorf("superseded told of %v, want [1]", old)
		}
		close(release)
		j.waitDone(t, "n")
		if got := j.unrecorded(); len(got) != 1 || got["n"].key != 2 {
			t.Errorf("reports %v, want job 2's alone", got)
		}
	})
}

// TestNodeJobsCancelledJobLeavesItsSuccessor: a job cancelled (or
// superseded) that winds down only after its successor started must not,
// when it ends, remove the successor from running (the next pass would start
// a third job beside it), nor leave a report or wake the reconciler, even if
// it says it ended: its outcome is nobody's.
func TestNodeJobsCancelledJobLeavesItsSuccessor(t *testing.T) {
	for _, supersede := range []bool{false, true} {
		name := "cancelled"
		if supersede {
			name = "superseded"
		}
		t.Run(name, func(t *testing.T) {
			j, _ := newTestJobs(t, supersede)
			windDown := make(chan struct{})
			j.ensure("n", 1, make(chan struct{}), windDown)
			j.waitStarted(t, 1)
			if !supersede {
				j.cancel("n")
			}
			release := make(chan struct{})
			j.ensure("n", 2, release, nil)
			j.waitStarted(t, 2)

			close(windDown) // job 1 ends now, after job 2 started
			// Every pass ensures the node's job meanwhile.
			for range 20 {
				j.ensure("n", 2, release, nil)
				time.Sleep(2 * time.Millisecond)
			}
			j.noneStarted(t)
			if !j.isRunning("n") {
				t.Fatal("the cancelled job removed its successor from running")
			}
			if got := j.unrecorded(); len(got) != 0 {
				t.Fatalf("the cancelled job left a report: %v", got)
			}
			close(release)
			j.waitDone(t, "n")
			if got := j.unrecorded(); len(got) != 1 || got["n"].key != 2 {
				t.Errorf("reports %v, want job 2's alone", got)
			}
			j.noDone(t)
		})
	}
}

// TestNodeJobsCancel: a cancelled job reports nothing and wakes nobody; a
// waiting report is dropped too.
func TestNodeJobsCancel(t *testing.T) {
	j, _ := newTestJobs(t, false)
	j.ensure("n", 1, make(chan struct{}), nil)
	j.waitStarted(t, 1)
	j.cancel("n")
	if j.isRunning("n") {
		t.Error("cancel kept the job in running")
	}

	release := make(chan struct{})
	close(release)
	j.ensure("m", 1, release, nil)
	j.waitDone(t, "m")
	j.cancel("m")
	if got := j.unrecorded(); len(got) != 0 {
		t.Errorf("reports after cancel: %v", got)
	}
	j.noDone(t)
}

// TestNodeJobsRetain: the jobs of nodes that are gone are cancelled and
// their reports dropped; the others' are kept.
func TestNodeJobsRetain(t *testing.T) {
	j, _ := newTestJobs(t, false)
	var gone []string
	j.gone = func(node string) { gone = append(gone, node) }
	ended := make(chan struct{})
	close(ended)
	for _, node := range []string{"a-reported", "b-reported"} {
		j.ensure(node, 1, ended, nil)
		j.waitStarted(t, 1)
		j.waitDone(t, node)
	}
	for _, node := range []string{"a-running", "b-running"} {
		j.ensure(node, 1, make(chan struct{}), nil)
		j.waitStarted(t, 1)
	}

	j.retain(func(node string) bool { return node[0] == 'b' })
	if len(gone) != 1 || gone[0] != "a-running" {
		t.Errorf("gone told of %v, want [a-running]", gone)
	}
	if j.isRunning("a-running") || !j.isRunning("b-running") {
		t.Errorf("running after retain: a %v, b %v; want b alone", j.isRunning("a-running"), j.isRunning("b-running"))
	}
	if got := j.unrecorded(); len(got) != 1 || got["b-reported"] != (testReport{1}) {
		t.Errorf("reports after retain: %v, want b-reported's alone", got)
	}
}

// TestNodeJobsStop: stopping cancels every job and waits for it; nothing
// starts afterwards.
func TestNodeJobsStop(t *testing.T) {
	j, stop := newTestJobs(t, false)
	windDown := make(chan struct{})
	j.ensure("n", 1, make(chan struct{}), windDown) // ends only once windDown is closed
	j.waitStarted(t, 1)
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("stop returned before the job ended")
	case <-time.After(20 * time.Millisecond):
	}
	close(windDown)
	<-stopped
	j.ensure("m", 1, make(chan struct{}), nil)
	j.noneStarted(t)
	if j.isRunning("m") {
		t.Error("a job was registered after stop")
	}
}
