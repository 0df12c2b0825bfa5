package controllers_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewarden/nodewarden/api/v1alpha1"
	"github.com/nodewarden/nodewarden/controllers"
	"github.com/nodewarden/nodewarden/internal/notify"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// receiver is a local webhook receiver that records what it got.
type receiver struct {
	mu  sync.Mutex
	got []notify.WebhookPayload
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var p notify.WebhookPayload
	if err := json.NewDecoder(req.Body).Decode(&p); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.got = append(r.got, p)
	r.mu.Unlock()
}

// reasons are the reasons received for node, in order.
func (r *receiver) reasons(node string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, p := range r.got {
		if p.Node == node {
			out = append(out, p.Reason)
		}
	}
	return out
}

func createNotificationsSecret(t *testing.T, c *cluster.Cluster, receivers map[string]string) {
	t.Helper()
	data := map[string][]byte{}
	for name, url := range receivers {
		data[name] = fmt.Appendf(nil, "type: webhook\nurl: %s\n", url)
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "nodewarden-notifications", Namespace: "default"}, Data: data}
	if _, err := c.Clientset.CoreV1().Secrets("default").Create(t.Context(), sec, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func notifyingController(t *testing.T, c *cluster.Cluster) {
	t.Helper()
	startControllerOpts(t, c, controllers.Options{
		Namespace: "default", NotificationsSecret: "nodewarden-notifications", ClusterName: "test",
		Notify: notify.Options{Backoff: 100 * time.Millisecond},
	})
}

// A policy's steps reach its receiver, each once, with the documented body.
func TestNotificationsSentForEachStep(t *testing.T) {
	c := cluster.StartFull(t)
	addNodes(t, c, "n1", "n2")
	hook := &receiver{}
	srv := httptest.NewServer(hook)
	t.Cleanup(srv.Close)
	createNotificationsSecret(t, c, map[string]string{"hook": srv.URL})
	notifyingController(t, c)
	createPolicy(t, c, "maintenance", func(rp *v1alpha1.RemediationPolicy) {
		rp.Spec.Notifications = []v1alpha1.NotificationRule{{Receiver: "hook"}}
	})

	setTrigger(t, c, "n1", corev1.ConditionTrue, time.Now().Add(47*time.Hour))
	waitState(t, c, "n1", "Drained", 2*time.Minute)
	want := []string{"Cordoned", "DrainStarted", "DrainSucceeded"}
	cluster.Eventually(t, 30*time.Second, func() error {
		if got := hook.reasons("n1"); !slices.Equal(got, want) {
			return fmt.Errorf("n1's notifications: %v, want %v", got, want)
		}
		return nil
	})
	setTrigger(t, c, "n1", corev1.ConditionFalse, time.Time{})
	waitState(t, c, "n1", "", time.Minute)
	want = append(want, "Uncordoned")
	cluster.Eventually(t, 30*time.Second, func() error {
		if got := hook.reasons("n1"); !slices.Equal(got, want) {
			return fmt.Errorf("n1's notifications: %v, want %v", got, want)
		}
		return nil
	})
	time.Sleep(2 * time.Second) // room for a duplicate
	if got := hook.reasons("n1"); !slices.Equal(got, want) {
		t.Errorf("n1's notifications: %v, want each of %v once", got, want)
	}
	if got := hook.reasons("n2"); len(got) != 0 {
		t.Errorf("untriggered n2 notified: %v", got)
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	for _, p := range hook.got {
		if p.Cluster != "test" || p.Policy != "maintenance" || p.Type == "" || p.Message == "" || p.Time == "" {
			t.Errorf("incomplete notification: %+v", p)
		}
		if _, err := time.Parse(time.RFC3339, p.Time); err != nil {
			t.Errorf("time %q: %v", p.Time, err)
		}
	}
}

// A receiver that hangs holds up no drain: the node is drained while the
// notifier is still waiting for the receiver to answer its first request.
func TestHangingReceiverDoesNotDelayDrain(t *testing.T) {
	c := cluster.StartFull(t)
	addNodes(t, c, "n1")
	requests := make(chan string, 100)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p notify.WebhookPayload
		_ = json.NewDecoder(r.Body).Decode(&p)
		requests <- p.Reason
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	createNotificationsSecret(t, c, map[string]string{"dead": srv.URL})
	startControllerOpts(t, c, controllers.Options{
		Namespace: "default", NotificationsSecret: "nodewarden-notifications",
		Notify: notify.Options{Timeout: time.Hour}, // stuck on the first request for the whole test
	})
	createPolicy(t, c, "maintenance", func(rp *v1alpha1.RemediationPolicy) {
		rp.Spec.Notifications = []v1alpha1.NotificationRule{{Receiver: "dead"}}
	})
	setTrigger(t, c, "n1", corev1.ConditionTrue, time.Now().Add(47*time.Hour))
	waitState(t, c, "n1", "Drained", 2*time.Minute)
	select {
	case r := <-requests:
		if r != "Cordoned" {
			t.Errorf("first request: %s, want Cordoned", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver got no request")
	}
	if len(requests) != 0 {
		t.Errorf("%d more requests while the first hangs: want the one worker stuck on it", len(requests))
	}
}
