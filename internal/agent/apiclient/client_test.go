package apiclient_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/nodewarden/nodewarden/internal/agent/apiclient"
	"github.com/nodewarden/nodewarden/test/cluster"
)

// The API server's audit log names the agent, not "Go-http-client" or the
// executable's file name.
func TestUserAgent(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.UserAgent()
		http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`, http.StatusNotFound)
	}))
	defer srv.Close()
	client, err := apiclient.New(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = client.GetLease(t.Context(), "ns", "lease")
	if ua := <-got; ua != apiclient.UserAgent() || !strings.HasPrefix(ua, "nodewarden-agent/") {
		t.Errorf("User-Agent %q, want %q", ua, apiclient.UserAgent())
	}
}

// ListNodePodsMetadata returns the node's pods only, from every namespace,
// a deleted one with its deletionTimestamp, and the API server sends their
// metadata only.
func TestListNodePodsMetadata(t *testing.T) {
	c := cluster.Start(t)
	ctx := t.Context()
	if _, err := c.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const finalizer = "nodewarden.test/hold"
	create := func(ns, name, node string, finalizers ...string) {
		t.Helper()
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Finalizers: finalizers},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
		}
		if _, err := c.Clientset.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	create("default", "alive", "node-a")
	create("other", "deleted", "node-a", finalizer)
	create("default", "elsewhere", "node-b")
	// A pod bound to a node is deleted gracefully: it stays, with its
	// deletionTimestamp, until its kubelet (here, the test) lets it go.
	if err := c.Clientset.CoreV1().Pods("other").Delete(ctx, "deleted", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The cluster goes with the test; this only keeps the pod from
		// outliving it should the cluster be kept (NODEWARDEN_KEEP_CLUSTER_DIR).
		patch := []byte(`{"metadata":{"finalizers":null}}`)
		_, _ = c.Clientset.CoreV1().Pods("other").Patch(t.Context(), "deleted", "application/merge-patch+json", patch, metav1.PatchOptions{})
	})

	var bodies bodyLog
	cfg := rest.CopyConfig(c.Config)
	cfg.WrapTransport = bodies.wrap
	client := cluster.AgentClient(t, cfg)
	var pods []metav1.PartialObjectMetadata
	// The list is read from the watch cache, which may lag the writes above.
	cluster.Eventually(t, 30*time.Second, func() error {
		var err error
		if pods, err = client.ListNodePodsMetadata(ctx, "node-a"); err != nil {
			return err
		}
		var got []string
		for _, p := range pods {
			got = append(got, fmt.Sprintf("%s/%s deleted=%t", p.Namespace, p.Name, p.DeletionTimestamp != nil))
		}
		slices.Sort(got)
		if want := []string{"default/alive deleted=false", "other/deleted deleted=true"}; !slices.Equal(got, want) {
			return fmt.Errorf("pods %v, want %v", got, want)
		}
		return nil
	})
	for _, p := range pods {
		if p.UID == "" {
			t.Errorf("pod %s/%s has no UID", p.Namespace, p.Name)
		}
	}
	body := bodies.last()
	if !bytes.Contains(body, []byte(`"kind":"PartialObjectMetadataList"`)) || bytes.Contains(body, []byte(`"spec"`)) {
		t.Errorf("the API server answered more than metadata: %.500s", body)
	}
}

// bodyLog keeps the last response body to a pod list.
type bodyLog struct {
	mu   sync.Mutex
	body []byte
}

func (b *bodyLog) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(r)
		if err != nil || r.URL.Path != "/api/v1/pods" {
			return resp, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		b.mu.Lock()
		b.body = body
		b.mu.Unlock()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return resp, nil
	})
}

func (b *bodyLog) last() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.body
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
