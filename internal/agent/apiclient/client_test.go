package apiclient_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/nodewarden/nodewarden/internal/agent/apiclient"
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
