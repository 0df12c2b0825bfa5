package npd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/nodewarden/nodewarden/internal/agent/condition"
	"github.com/nodewarden/nodewarden/internal/agent/nodeevent"
	"github.com/nodewarden/nodewarden/internal/agent/source"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// fakeSink records what a source publishes, as the agent's writer and
// recorder would see it (the same key is recorded once).
type fakeSink struct {
	mu     sync.Mutex
	conds  map[string]condition.Want
	sets   int
	events []nodeevent.Event
	keys   map[string]bool
}

func newFakeSink() *fakeSink {
	return &fakeSink{conds: map[string]condition.Want{}, keys: map[string]bool{}}
}

func (f *fakeSink) SetConditions(wants ...condition.Want) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets++
	for _, w := range wants {
		f.conds[string(w.Type)] = w
	}
}

func (f *fakeSink) Record(e nodeevent.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.keys[e.Key] {
		return
	}
	f.keys[e.Key] = true
	f.events = append(f.events, e)
}

// ev is an Event without its key, for comparisons.
type ev struct{ Type, Reason, Message string }

func (f *fakeSink) eventList() []ev {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ev
	for _, e := range f.events {
		out = append(out, ev{e.Type, e.Reason, e.Message})
	}
	return out
}

// cond is a condition without its type, for comparisons.
type cond struct{ Status, Reason, Message string }

func (f *fakeSink) condMap() map[string]cond {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]cond{}
	for t, w := range f.conds {
		out[t] = cond{string(w.Status), w.Reason, w.Message}
	}
	return out
}

// runSource runs s until the test ends.
func runSource(t *testing.T, s source.Source, out source.Sink) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx, out) }()
	t.Cleanup(func() { cancel(); <-done })
}

// fixture returns testdata/name with fields of its JSON replaced (top-level
// keys; "pluginConfig.x" style paths one level down), written to a temp dir.
func fixture(t *testing.T, name string, set map[string]any) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		if parent, child, ok := strings.Cut(k, "."); ok {
			sub, _ := m[parent].(map[string]any)
			if sub == nil {
				sub = map[string]any{}
			}
			sub[child] = v
			m[parent] = sub
			continue
		}
		m[k] = v
	}
	out, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// testOptions are Options for a source under test: boot an hour ago, UTC.
func testOptions(t *testing.T) Options {
	return Options{
		BootTime:     time.Now().Add(-time.Hour).Truncate(time.Second),
		Log:          testr.New(t),
		Location:     time.UTC,
		PollInterval: 50 * time.Millisecond,
	}
}

// newTestSource loads path and returns its source.
func newTestSource(t *testing.T, path string, opts Options) source.Source {
	t.Helper()
	srcs, err := NewSources([]string{path}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return srcs[0]
}

// problemLines returns the lines of testdata/problems/name.
func problemLines(t *testing.T, name string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "problems", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(data), "\n"), "\n")
}

// kmsgRecords turns kernel log lines into /dev/kmsg records, one second
// apart from at (time since boot), numbered from seq.
func kmsgRecords(lines []string, seq uint64, at time.Duration) string {
	var b strings.Builder
	for i, l := range lines {
		fmt.Fprintf(&b, "6,%d,%d,-;%s\n", seq+uint64(i), (at + time.Duration(i)*time.Second).Microseconds(), l)
	}
	return b.String()
}

// syslogLines turns kernel log lines into rsyslog kern.log lines at t.
func syslogLines(lines []string, t time.Time) string {
	var b strings.Builder
	for i, l := range lines {
		fmt.Fprintf(&b, "%s node-1 kernel: [%6d.%06d] %s\n", t.UTC().Format(time.Stamp), 3600+i, 0, l)
	}
	return b.String()
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

func sortedEvents(es []ev) []ev {
	out := slices.Clone(es)
	slices.SortStableFunc(out, func(a, b ev) int {
		return strings.Compare(a.Reason+"\x00"+a.Message, b.Reason+"\x00"+b.Message)
	})
	return out
}

// runOnAPIServer runs the sources of the NPD configs at paths as the agent
// does, writing node's conditions and Events through the API server of c,
// and returns a function that stops them (also called at cleanup).
func runOnAPIServer(t *testing.T, c *cluster.Cluster, node string, paths []string, opts Options) (stop func()) {
	t.Helper()
	srcs, err := NewSources(paths, opts)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	log := testr.New(t)
	sink := source.APISink{
		Writer:   condition.NewWriter(cluster.AgentClient(t, c.Config), node, log, nil),
		Recorder: nodeevent.NewRecorder(cluster.AgentClient(t, c.Config), node, log, nil),
	}
	var wg sync.WaitGroup
	wg.Go(func() { sink.Writer.Run(runCtx) })
	wg.Go(func() { sink.Recorder.Run(runCtx) })
	for _, s := range srcs {
		wg.Go(func() { s.Run(runCtx, sink) })
	}
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}
