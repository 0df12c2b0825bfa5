package repair

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/internal/remediation"
)

// received is what a test server saw of one request.
type received struct {
	body           []byte
	idempotencyKey string
	contentType    string
}

// hookServer answers the i-th request with answer(i, w, r) and keeps what
// it received.
type hookServer struct {
	*httptest.Server
	mu  sync.Mutex
	got []received
}

func newHookServer(t *testing.T, answer func(i int, w http.ResponseWriter, r *http.Request)) *hookServer {
	t.Helper()
	s := &hookServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		i := len(s.got)
		s.got = append(s.got, received{body: body, idempotencyKey: r.Header.Get("Idempotency-Key"), contentType: r.Header.Get("Content-Type")})
		s.mu.Unlock()
		answer(i, w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *hookServer) requests() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.got...)
}

func testRequest() Request {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-2", UID: "uid-2", Labels: map[string]string{"pool": "a"}},
		Spec:       corev1.NodeSpec{ProviderID: "aws:///eu-west-1a/i-0abc"},
	}
	return NewRequest(node, "host-maintenance", remediation.RepairOrder{
		Step:    1,
		Started: time.Date(2026, 11, 24, 17, 34, 49, 0, time.UTC),
		Action:  v1alpha1.RepairWebhook,
		Trigger: remediation.Trigger{Type: "KernelDeadlock", Status: corev1.ConditionTrue},
		Reason:  "DockerHung",
		Message: "task docker:7 blocked for more than 120 seconds",
	})
}

// TestNewRequestBody: the body is the documented RepairRequest, field for
// field (docs/policy.md).
func TestNewRequestBody(t *testing.T) {
	deadline := time.Date(2026, 11, 26, 17, 34, 49, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		deadline time.Time
		want     string
	}{{
		name: "no deadline",
		want: `{"apiVersion":"nodewarden.io/v1alpha1","kind":"RepairRequest","idempotencyKey":"node-2/1/2026-11-24T17:34:49Z",
			"node":{"name":"node-2","uid":"uid-2","providerID":"aws:///eu-west-1a/i-0abc","labels":{"pool":"a"}},
			"policy":"host-maintenance","step":1,"action":"Webhook",
			"trigger":{"type":"KernelDeadlock","status":"True","reason":"DockerHung","message":"task docker:7 blocked for more than 120 seconds","deadline":null},
			"started":"2026-11-24T17:34:49Z"}`,
	}, {
		name:     "a deadline",
		deadline: deadline,
		want: `{"apiVersion":"nodewarden.io/v1alpha1","kind":"RepairRequest","idempotencyKey":"node-2/1/2026-11-24T17:34:49Z",
			"node":{"name":"node-2","uid":"uid-2","providerID":"aws:///eu-west-1a/i-0abc","labels":{"pool":"a"}},
			"policy":"host-maintenance","step":1,"action":"Webhook",
			"trigger":{"type":"KernelDeadlock","status":"True","reason":"DockerHung","message":"task docker:7 blocked for more than 120 seconds","deadline":"2026-11-26T17:34:49Z"},
			"started":"2026-11-24T17:34:49Z"}`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			req := testRequest()
			req.Trigger.Deadline = metav1.NewTime(tc.deadline)
			got, err := json.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			var gotV, wantV any
			if err := json.Unmarshal(got, &gotV); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tc.want), &wantV); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(wantV, gotV); diff != "" {
				t.Errorf("RepairRequest (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWebhookFailsTimesOutThenSucceeds: a 500, then no answer within the
// timeout, then a 200: the step succeeds on the third attempt, after the
// backoff (1s, then 2s), and every attempt carried the same body and key.
func TestWebhookFailsTimesOutThenSucceeds(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	s := newHookServer(t, func(i int, w http.ResponseWriter, r *http.Request) {
		switch i {
		case 0:
			http.Error(w, "database down", http.StatusInternalServerError)
		case 1:
			// Past the client's timeout: held until the client gives up
			// (which closes the connection), at most 10s.
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	})
	spec := v1alpha1.WebhookRepair{URL: s.URL + "/repair", Timeout: &metav1.Duration{Duration: timeout}, Retries: ptr.To[int32](3)}
	req := testRequest()

	start := time.Now()
	if err := Webhook(context.Background(), s.Client(), spec, req); err != nil {
		t.Fatalf("Webhook: %v, want success on the third attempt", err)
	}
	if elapsed, least := time.Since(start), Backoff(0)+Backoff(1)+timeout; elapsed < least {
		t.Errorf("took %s, want at least %s (two backoffs and one timeout)", elapsed, least)
	}

	got := s.requests()
	if len(got) != 3 {
		t.Fatalf("server saw %d requests, want 3", len(got))
	}
	want, _ := json.Marshal(req)
	for i, r := range got {
		if string(r.body) != string(want) {
			t.Errorf("request %d: body %s, want %s", i+1, r.body, want)
		}
		if r.idempotencyKey != "node-2/1/2026-11-24T17:34:49Z" {
			t.Errorf("request %d: Idempotency-Key %q", i+1, r.idempotencyKey)
		}
		if r.contentType != "application/json" {
			t.Errorf("request %d: Content-Type %q", i+1, r.contentType)
		}
	}
}

// TestWebhookGivesUp: a server that never answers 2xx gets 1+retries
// requests, and the error says how the last one failed, without the URL's
// path (where tokens live).
func TestWebhookGivesUp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		retries int32
		answer  func(w http.ResponseWriter, r *http.Request)
		want    []string
	}{{
		name:    "500 with a body, no retries",
		retries: 0,
		answer: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "node pool\nis locked", http.StatusInternalServerError)
		},
		want: []string{"1 attempt(s) failed", "answered 500 Internal Server Error: node pool is locked"},
	}, {
		name:    "404, two retries",
		retries: 2,
		answer:  func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) },
		want:    []string{"3 attempt(s) failed", "answered 404 Not Found"},
	}, {
		name:    "a long body is cut",
		retries: 0,
		answer: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, strings.Repeat("x", 10000), http.StatusBadGateway)
		},
		want: []string{"answered 502 Bad Gateway: " + strings.Repeat("x", maxBodyExcerpt-3) + "..."},
	}, {
		name:    "a redirect is not followed",
		retries: 1,
		answer: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		},
		want: []string{"2 attempt(s) failed", "answered 302 Found"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newHookServer(t, func(_ int, w http.ResponseWriter, r *http.Request) { tc.answer(w, r) })
			spec := v1alpha1.WebhookRepair{URL: s.URL + "/hooks/secret-token?sig=secret-sig", Retries: ptr.To(tc.retries)}
			err := Webhook(context.Background(), s.Client(), spec, testRequest())
			if err == nil {
				t.Fatal("Webhook succeeded, want an error")
			}
			if n := len(s.requests()); n != int(tc.retries)+1 {
				t.Errorf("server saw %d requests, want %d", n, tc.retries+1)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q shows the URL's path or query", err)
			}
		})
	}
}

// TestWebhookRefusesBadURLs: a URL no attempt can reach fails at once,
// without retries (the policy's validation refuses them; an old policy
// could still have one).
func TestWebhookRefusesBadURLs(t *testing.T) {
	for _, u := range []string{"ftp://example.com/x", "example.com/repair", "http://", "://bad"} {
		start := time.Now()
		err := Webhook(context.Background(), nil, v1alpha1.WebhookRepair{URL: u}, testRequest())
		if err == nil || !strings.Contains(err.Error(), "must be http:// or https://") {
			t.Errorf("Webhook(%q): %v, want a refusal of the URL", u, err)
		}
		if elapsed := time.Since(start); elapsed >= firstBackoff {
			t.Errorf("Webhook(%q) took %s: it retried", u, elapsed)
		}
	}
}

// TestWebhookStopsWithItsContext: a context that ends during the backoff
// ends the step at once, without another attempt.
func TestWebhookStopsWithItsContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newHookServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		cancel() // the node was released while the request was in flight
		http.Error(w, "busy", http.StatusServiceUnavailable)
	})
	spec := v1alpha1.WebhookRepair{URL: s.URL, Retries: ptr.To[int32](10)}
	err := Webhook(ctx, s.Client(), spec, testRequest())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Webhook: %v, want context.Canceled", err)
	}
	if n := len(s.requests()); n != 1 {
		t.Errorf("server saw %d requests, want 1", n)
	}
}

func TestBackoff(t *testing.T) {
	for n, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second} {
		if got := Backoff(n); got != want {
			t.Errorf("Backoff(%d) = %s, want %s", n, got, want)
		}
	}
	if got := Backoff(1000); got != maxBackoff {
		t.Errorf("Backoff(1000) = %s, want %s", got, maxBackoff)
	}
}

func TestWebhookBudget(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec v1alpha1.WebhookRepair
		want time.Duration
	}{
		{"defaults: 4 attempts of 10s, waits 1+2+4s", v1alpha1.WebhookRepair{}, 47 * time.Second},
		{"no retries", v1alpha1.WebhookRepair{Timeout: &metav1.Duration{Duration: 5 * time.Second}, Retries: ptr.To[int32](0)}, 5 * time.Second},
		{"ten retries: waits capped at 30s", v1alpha1.WebhookRepair{Timeout: &metav1.Duration{Duration: time.Second}, Retries: ptr.To[int32](10)},
			11*time.Second + (1+2+4+8+16+30*5)*time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := WebhookBudget(tc.spec); got != tc.want {
				t.Errorf("WebhookBudget = %s, want %s", got, tc.want)
			}
		})
	}
}
