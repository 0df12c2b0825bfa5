package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func results() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "notifications_total"}, []string{"receiver", "result"})
}

// start runs q's worker until the test ends.
func start(t *testing.T, q *Notifier) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = q.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func note(i int) Notification {
	return Notification{Receiver: "hook", Node: fmt.Sprintf("n%d", i), Policy: "p", Reason: "Cordoned", Type: "Normal", Time: when}
}

// A receiver that fails (500) and then succeeds gets the notification
// exactly once.
func TestRetryAfterServerErrorDeliversOnce(t *testing.T) {
	var calls atomic.Int32
	var mu sync.Mutex
	var delivered []WebhookPayload
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		var p WebhookPayload
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			t.Error(err)
		}
		mu.Lock()
		delivered = append(delivered, p)
		mu.Unlock()
	}))
	defer srv.Close()
	res := results()
	q := New(Options{Receivers: StaticReceivers{"hook": {TypeWebhook, srv.URL}}, Results: res, Log: testr.New(t), Backoff: 10 * time.Millisecond})
	start(t, q)
	q.Enqueue(note(1))
	eventually(t, "sent", func() bool { return testutil.ToFloat64(res.WithLabelValues("hook", ResultSent)) == 1 })
	time.Sleep(50 * time.Millisecond) // room for a wrong second delivery
	mu.Lock()
	defer mu.Unlock()
	if len(delivered) != 1 || delivered[0].Node != "n1" || delivered[0].Reason != "Cordoned" {
		t.Errorf("delivered %+v, want n1's Cordoned once", delivered)
	}
	if c := calls.Load(); c != 2 {
		t.Errorf("%d requests, want 2 (a 500, then a success)", c)
	}
	if f := testutil.ToFloat64(res.WithLabelValues("hook", ResultFailed)); f != 0 {
		t.Errorf("failed = %v, want 0", f)
	}
}

// A receiver that does not answer within the timeout is retried.
func TestTimeoutIsRetried(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			select { // hang past the client's timeout
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
	}))
	defer srv.Close()
	defer close(release)
	res := results()
	q := New(Options{Receivers: StaticReceivers{"hook": {TypeSlack, srv.URL}}, Results: res, Log: testr.New(t),
		Backoff: 10 * time.Millisecond, Timeout: 100 * time.Millisecond})
	start(t, q)
	q.Enqueue(note(1))
	eventually(t, "sent", func() bool { return testutil.ToFloat64(res.WithLabelValues("hook", ResultSent)) == 1 })
	if c := calls.Load(); c != 2 {
		t.Errorf("%d requests, want 2 (one timed out, one answered)", c)
	}
}

// A receiver that hangs never holds up Enqueue: the worker is stuck on the
// first notification, the rest queue up to the bound, and the oldest are
// dropped and counted.
func TestHangingReceiverNeverBlocksEnqueue(t *testing.T) {
	got := make(chan string, 10)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p WebhookPayload
		_ = json.NewDecoder(r.Body).Decode(&p)
		got <- p.Node
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release) // before srv.Close, which waits for handlers
	res := results()
	q := New(Options{Receivers: StaticReceivers{"hook": {TypeWebhook, srv.URL}}, Results: res, Log: testr.New(t),
		QueueSize: 3, Timeout: time.Hour})
	start(t, q)
	q.Enqueue(note(0))
	if n := <-got; n != "n0" {
		t.Fatalf("receiver got %s first, want n0", n)
	}
	// The worker now waits on the receiver for an hour.
	for i := 1; i <= 5; i++ {
		q.Enqueue(note(i))
	}
	if l := q.Len(); l != 3 {
		t.Errorf("queue holds %d, want 3 (its bound)", l)
	}
	q.mu.Lock()
	var nodes []string
	for _, n := range q.queue {
		nodes = append(nodes, n.Node)
	}
	q.mu.Unlock()
	if fmt.Sprint(nodes) != "[n3 n4 n5]" {
		t.Errorf("queue holds %v, want the newest: [n3 n4 n5]", nodes)
	}
	if d := testutil.ToFloat64(res.WithLabelValues("hook", ResultDropped)); d != 2 {
		t.Errorf("dropped = %v, want 2", d)
	}
}

// Overflow drops the oldest and counts it by its receiver.
func TestOverflowDropsOldest(t *testing.T) {
	res := results()
	q := New(Options{Receivers: StaticReceivers{}, Results: res, Log: testr.New(t), QueueSize: 2}) // no worker
	a, b := note(1), note(2)
	a.Receiver, b.Receiver = "slack", "teams"
	q.Enqueue(a)
	q.Enqueue(b)
	q.Enqueue(note(3))
	q.Enqueue(note(4))
	if l := q.Len(); l != 2 {
		t.Errorf("queue holds %d, want 2", l)
	}
	if n, _ := q.next(); n.Node != "n3" {
		t.Errorf("oldest left is %s, want n3", n.Node)
	}
	for _, r := range []string{"slack", "teams"} {
		if d := testutil.ToFloat64(res.WithLabelValues(r, ResultDropped)); d != 1 {
			t.Errorf("dropped{receiver=%s} = %v, want 1", r, d)
		}
	}
}

// A receiver that keeps failing is given up after Attempts; a 4xx other
// than 408 or 429 at once, and so is a receiver the Secret lacks.
func TestGivesUp(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		receivers func(url string) Receivers
		wantCalls int32
	}{
		{"500 every time", http.StatusInternalServerError, nil, 4},
		{"429 is retried", http.StatusTooManyRequests, nil, 4},
		{"400 is not retried", http.StatusBadRequest, nil, 1},
		{"404 is not retried", http.StatusNotFound, nil, 1},
		{"unknown receiver", http.StatusOK, func(string) Receivers { return StaticReceivers{} }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				w.WriteHeader(tc.status)
			}))
			defer srv.Close()
			var recv Receivers = StaticReceivers{"hook": {TypeTeams, srv.URL}}
			if tc.receivers != nil {
				recv = tc.receivers(srv.URL)
			}
			res := results()
			q := New(Options{Receivers: recv, Results: res, Log: testr.New(t), Attempts: 4, Backoff: time.Millisecond})
			start(t, q)
			q.Enqueue(note(1))
			eventually(t, "failed", func() bool { return testutil.ToFloat64(res.WithLabelValues("hook", ResultFailed)) == 1 })
			if c := calls.Load(); c != tc.wantCalls {
				t.Errorf("%d requests, want %d", c, tc.wantCalls)
			}
		})
	}
}

// A failed request's error never carries the receiver's URL (a credential).
func TestErrorsHideTheURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	url := srv.URL + "/services/SECRET-TOKEN"
	srv.Close() // connection refused from now on
	q := New(Options{Receivers: StaticReceivers{"hook": {TypeSlack, url}}})
	retry, err := q.send(context.Background(), note(1))
	if err == nil || !retry {
		t.Fatalf("send to a closed server: retry %v, err %v; want a retryable error", retry, err)
	}
	if msg := err.Error(); strings.Contains(msg, "SECRET-TOKEN") || strings.Contains(msg, srv.URL) {
		t.Errorf("error shows the URL: %s", msg)
	}
}

func TestSecretReceivers(t *testing.T) {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "nodewarden-notifications", Namespace: "nodewarden-system"},
		Data: map[string][]byte{
			"ops-slack": []byte("type: slack\nurl: https://hooks.example.com/services/T/B/X\n"),
			"broken":    []byte("type: pager\nurl: https://example.com\n"),
		},
	}
	client := fake.NewClientset(secret)
	var gets atomic.Int32
	client.PrependReactor("get", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		gets.Add(1)
		return false, nil, nil
	})
	now := when
	s := &SecretReceivers{Client: client, Namespace: "nodewarden-system", Name: "nodewarden-notifications", TTL: time.Minute, Now: func() time.Time { return now }}
	ctx := context.Background()
	r, err := s.Receiver(ctx, "ops-slack")
	if err != nil || r != (Receiver{TypeSlack, "https://hooks.example.com/services/T/B/X"}) {
		t.Fatalf("ops-slack: %+v, %v", r, err)
	}
	if _, err := s.Receiver(ctx, "broken"); err == nil {
		t.Error("broken: no error")
	}
	_, err = s.Receiver(ctx, "missing")
	var tmp TemporaryError
	if err == nil || errors.As(err, &tmp) {
		t.Errorf("missing: %v, want a permanent error", err)
	}
	if g := gets.Load(); g != 1 {
		t.Errorf("%d GETs within the TTL, want 1", g)
	}
	now = now.Add(time.Minute)
	_ = client.CoreV1().Secrets("nodewarden-system").Delete(ctx, "nodewarden-notifications", metav1.DeleteOptions{})
	_, err = s.Receiver(ctx, "ops-slack")
	if err == nil || errors.As(err, &tmp) {
		t.Errorf("after the Secret was deleted: %v, want a permanent error", err)
	}
	if g := gets.Load(); g != 2 {
		t.Errorf("%d GETs after the TTL, want 2", g)
	}
	client.PrependReactor("get", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	})
	now = now.Add(time.Minute)
	if _, err = s.Receiver(ctx, "ops-slack"); !errors.As(err, &tmp) {
		t.Errorf("API server down: %v, want a temporary error", err)
	}
}
