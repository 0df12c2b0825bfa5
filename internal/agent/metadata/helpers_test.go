package metadata

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/agent/condition"
	"github.com/nodewarden/nodewarden/internal/agent/nodeevent"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// fixture returns a file of testdata/ (copied from shared/fixtures/metadata).
func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// bootTime is long before every fixture's time, so that no event counts as
// done by a reboot unless a test says so.
var bootTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// testConfig is a defaulted AgentConfig with the host event log off and the
// given provider reading endpoint, polling every 20 ms with a 100 ms timeout.
func testConfig(p v1alpha1.MetadataProvider, endpoint string, mutate func(*v1alpha1.MetadataConfig)) *v1alpha1.AgentConfig {
	c := &v1alpha1.AgentConfig{}
	c.Default()
	c.HostEventLog.Path = ptr.To("")
	m := &c.Metadata
	m.Provider = p
	fast := func(e *v1alpha1.MetadataEndpointConfig) {
		e.Endpoint = endpoint
		e.PollInterval.Duration = 20 * time.Millisecond
		e.Timeout.Duration = 100 * time.Millisecond
	}
	fast(&m.Alibaba.MetadataEndpointConfig)
	fast(&m.AWS.MetadataEndpointConfig)
	fast(&m.Azure.MetadataEndpointConfig)
	fast(&m.GCP.MetadataEndpointConfig)
	m.Alibaba.SpotPollInterval.Duration = 20 * time.Millisecond
	m.AWS.SpotPollInterval.Duration = 20 * time.Millisecond
	if mutate != nil {
		mutate(m)
	}
	return c
}

// start builds the source of cfg and runs it until the test ends.
func start(t *testing.T, cfg *v1alpha1.AgentConfig, opts Options) (*Source, *sink) {
	t.Helper()
	if opts.BootTime.IsZero() {
		opts.BootTime = bootTime
	}
	if opts.DeclareAfter == 0 {
		opts.DeclareAfter = 10 * time.Second
	}
	opts.Log = testr.NewWithOptions(t, testr.Options{Verbosity: 1})
	s, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if s == nil {
		t.Fatal("New returned no source")
	}
	out := newSink()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx, out) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, out
}

// sink records what a source publishes.
type sink struct {
	mu     sync.Mutex
	calls  [][]condition.Want
	cur    map[string]condition.Want
	events []nodeevent.Event
}

func newSink() *sink { return &sink{cur: map[string]condition.Want{}} }

func (s *sink) SetConditions(wants ...condition.Want) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, wants)
	for _, w := range wants {
		s.cur[string(w.Type)] = w
	}
}

func (s *sink) Record(e nodeevent.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
}

func (s *sink) get(typ string) (condition.Want, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.cur[typ]
	return w, ok
}

// mark is the number of publications so far.
func (s *sink) mark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// since returns what was published after mark.
func (s *sink) since(mark int) [][]condition.Want {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]condition.Want(nil), s.calls[mark:]...)
}

// eventsWithReason returns the recorded Events with reason.
func (s *sink) eventsWithReason(reason string) []nodeevent.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []nodeevent.Event
	for _, e := range s.events {
		if e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

// wait waits until condition typ has status and reason, and message if not
// empty, and returns it.
func (s *sink) wait(t *testing.T, typ string, status corev1.ConditionStatus, reason, message string) condition.Want {
	t.Helper()
	var got condition.Want
	cluster.Eventually(t, 5*time.Second, func() error {
		w, ok := s.get(typ)
		if !ok {
			return fmt.Errorf("condition %s not published", typ)
		}
		if w.Status != status || w.Reason != reason || (message != "" && w.Message != message) {
			return fmt.Errorf("%s=%s reason %q message %q; want %s %q %q", typ, w.Status, w.Reason, w.Message, status, reason, message)
		}
		got = w
		return nil
	})
	return got
}

func counterValue(c *prometheus.CounterVec, labels ...string) float64 {
	var m dto.Metric
	if err := c.WithLabelValues(labels...).Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func (s *Source) errorCount(endpoint, reason string) float64 {
	return counterValue(s.metrics.Errors, string(s.provider), endpoint, reason)
}

func (s *Source) pollCount(endpoint string) float64 {
	return counterValue(s.metrics.Polls, string(s.provider), endpoint)
}

// waitPolls waits for n more successful reads of endpoint.
func (s *Source) waitPolls(t *testing.T, endpoint string, n int) {
	t.Helper()
	want := s.pollCount(endpoint) + float64(n)
	cluster.Eventually(t, 5*time.Second, func() error {
		if got := s.pollCount(endpoint); got < want {
			return fmt.Errorf("%s: %v successful reads, want %v", endpoint, got, want)
		}
		return nil
	})
}

// failureCase is a way an endpoint misbehaves, and the reason it is counted under.
type failureCase struct {
	name   string
	route  route
	reason string
}

func failureCases(goodBody string) []failureCase {
	return []failureCase{
		{"404", route{status: http.StatusNotFound, body: "not found"}, "http_404"},
		{"503", route{status: http.StatusServiceUnavailable, body: "busy"}, "http_503"},
		{"garbage", route{status: http.StatusOK, body: "<html><body>captive portal</body></html>"}, "bad_response"},
		{"truncated", route{status: http.StatusOK, body: goodBody[:len(goodBody)/2]}, "bad_response"},
		{"slow", route{status: http.StatusOK, body: goodBody, delay: time.Second}, "timeout"},
	}
}

// checkFailures serves each failure case on path in turn and checks that the
// source counts it and publishes nothing: the last known state stays.
func checkFailures(t *testing.T, f *fake, s *Source, out *sink, path, endpoint string, cases []failureCase) {
	t.Helper()
	for _, fc := range cases {
		mark := out.mark()
		before := s.errorCount(endpoint, fc.reason)
		f.set(path, fc.route)
		cluster.Eventually(t, 5*time.Second, func() error {
			if got := s.errorCount(endpoint, fc.reason); got < before+2 {
				return fmt.Errorf("%s: nodewarden_agent_metadata_errors_total{endpoint=%q,reason=%q} = %v, want >= %v",
					fc.name, endpoint, fc.reason, got, before+2)
			}
			return nil
		})
		if got := out.since(mark); len(got) > 0 {
			t.Errorf("%s: conditions changed while the endpoint failed (a flap): %+v", fc.name, got)
		}
	}
}

// route is what the fake serves on a path.
type route struct {
	status int
	body   string
	delay  time.Duration
}

// fake is a metadata server. Each provider's test installs its checks
// (headers, session tokens): a request that fails them is rejected and
// counted, so a test can assert the source never sent one.
type fake struct {
	t   *testing.T
	srv *httptest.Server
	URL string

	mu       sync.Mutex
	routes   map[string]route
	hits     map[string]int // "METHOD path"
	queries  []string       // raw queries of GETs, in order
	rejected []string       // why requests were rejected
	changed  chan struct{}  // closed on every set: wakes long polls

	// check vets a request; a non-zero status rejects it.
	check func(r *http.Request) (status int, why string)
	// special handles a request itself (token PUT, acknowledgement POST)
	// and reports whether it did.
	special func(w http.ResponseWriter, r *http.Request) bool
	// header is added to every response.
	header http.Header
	// longPoll enables wait_for_change / last_etag / timeout_sec (GCP).
	longPoll bool
}

func newFake(t *testing.T) *fake {
	f := &fake{t: t, routes: map[string]route{}, hits: map[string]int{}, changed: make(chan struct{}), header: http.Header{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	f.URL = f.srv.URL
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) set(path string, r route) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.status == 0 {
		r.status = http.StatusOK
	}
	f.routes[path] = r
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fake) del(path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.routes, path)
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fake) hitCount(method, path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[method+" "+path]
}

func (f *fake) rejections() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.rejected...)
}

func (f *fake) reject(w http.ResponseWriter, r *http.Request, status int, why string) {
	f.mu.Lock()
	f.rejected = append(f.rejected, r.Method+" "+r.URL.Path+": "+why)
	f.mu.Unlock()
	http.Error(w, why, status)
}

func etagOf(r route) string {
	sum := sha256.Sum256([]byte(strconv.Itoa(r.status) + "\x00" + r.body))
	return hex.EncodeToString(sum[:8])
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.hits[r.Method+" "+r.URL.Path]++
	if r.Method == http.MethodGet {
		f.queries = append(f.queries, r.URL.Path+"?"+r.URL.RawQuery)
	}
	f.mu.Unlock()
	for k, vs := range f.header {
		w.Header()[k] = vs
	}
	if f.special != nil && f.special(w, r) {
		return
	}
	if f.check != nil {
		if status, why := f.check(r); status != 0 {
			f.reject(w, r, status, why)
			return
		}
	}
	if r.Method != http.MethodGet {
		f.reject(w, r, http.StatusMethodNotAllowed, "method "+r.Method)
		return
	}
	f.mu.Lock()
	rt, ok := f.routes[r.URL.Path]
	changed := f.changed
	f.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if f.longPoll && r.URL.Query().Get("wait_for_change") == "true" && r.URL.Query().Get("last_etag") == etagOf(rt) {
		secs, err := strconv.Atoi(r.URL.Query().Get("timeout_sec"))
		if err != nil || secs <= 0 {
			secs = 60
		}
		for {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Duration(secs) * time.Second):
			case <-changed:
			}
			f.mu.Lock()
			rt, ok = f.routes[r.URL.Path]
			changed = f.changed
			f.mu.Unlock()
			if !ok || etagOf(rt) != r.URL.Query().Get("last_etag") {
				break
			}
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
	}
	if rt.delay > 0 {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(rt.delay):
		}
	}
	if f.longPoll {
		w.Header().Set("ETag", etagOf(rt))
	}
	w.WriteHeader(rt.status)
	_, _ = w.Write([]byte(rt.body))
}

// tokens adds an IMDSv2-style session token flow to f: PUT tokenPath with a
// TTL header (1 to 21600 s) issues a token; every other request must carry
// a valid one, or it is rejected with 401.
type tokens struct {
	f                   *fake
	path, ttlHeader, hd string
	mu                  sync.Mutex
	issued              map[string]bool
	n                   int
	failPut             int // status to answer PUTs with, 0: issue
}

func withTokens(f *fake, path, ttlHeader, header string) *tokens {
	tk := &tokens{f: f, path: path, ttlHeader: ttlHeader, hd: header, issued: map[string]bool{}}
	f.special = func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != path {
			return false
		}
		if r.Method != http.MethodPut {
			f.reject(w, r, http.StatusMethodNotAllowed, "token: method "+r.Method)
			return true
		}
		ttl, err := strconv.Atoi(r.Header.Get(ttlHeader))
		if err != nil || ttl < 1 || ttl > 21600 {
			f.reject(w, r, http.StatusBadRequest, "token: missing or bad "+ttlHeader)
			return true
		}
		tk.mu.Lock()
		defer tk.mu.Unlock()
		if tk.failPut != 0 {
			http.Error(w, "no token", tk.failPut)
			return true
		}
		tk.n++
		tok := "token-" + strconv.Itoa(tk.n)
		tk.issued[tok] = true
		_, _ = w.Write([]byte(tok))
		return true
	}
	prev := f.check
	f.check = func(r *http.Request) (int, string) {
		tk.mu.Lock()
		ok := tk.issued[r.Header.Get(header)]
		tk.mu.Unlock()
		if !ok {
			return http.StatusUnauthorized, "no valid " + header
		}
		if prev != nil {
			return prev(r)
		}
		return 0, ""
	}
	return tk
}

// revoke invalidates every token, as an instance restart or expiry would.
func (tk *tokens) revoke() {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	clear(tk.issued)
}

func (tk *tokens) setFailPut(status int) {
	tk.mu.Lock()
	defer tk.mu.Unlock()
	tk.failPut = status
}

// noRejections fails the test if the fake rejected a request except those
// the test provoked on purpose (whose why contains one of allowed).
func noRejections(t *testing.T, f *fake, allowed ...string) {
	t.Helper()
next:
	for _, r := range f.rejections() {
		for _, a := range allowed {
			if strings.Contains(r, a) {
				continue next
			}
		}
		t.Errorf("the fake rejected a request the source should not have sent: %s", r)
	}
}
