package agentcmd_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodewarden/nodewarden/internal/agent/agentcmd"
	"github.com/nodewarden/nodewarden/test/cluster"
)

func TestRunRejectsBadCommandLines(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"--kubeconfig", kubeconfig, "--node-name", "n1", "--host-event-log", ""}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--nodename", "n1"}, "unknown flag: --nodename"},
		{"positional argument", append(base, "n1"), `unexpected arguments ["n1"]`},
		{"bad boot time", append(base, "--boot-time", "yesterday"), "--boot-time"},
		{"no client configuration", []string{"--kubeconfig", filepath.Join(t.TempDir(), "missing")}, "no Kubernetes client configuration"},
		{"metrics port taken", append(base, "--metrics-bind-address", busy.Addr().String(), "--health-probe-bind-address", "0"), "metrics endpoint"},
		{"probe port taken", append(base, "--metrics-bind-address", "0", "--health-probe-bind-address", busy.Addr().String()), "probes endpoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			err := agentcmd.Run(ctx, "nodewarden-agent", tc.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run(%q) = %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}

func TestHelpPrintsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	if err := agentcmd.Run(t.Context(), "nodewarden agent", []string{"--help"}, &out); err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"nodewarden agent [flags]", "--node-name", "--config", "--host-event-log", "--npd-config",
		"--kubeconfig", "--metrics-bind-address", "--health-probe-bind-address", "--zap-log-level", "--kube-api-qps"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := agentcmd.Run(t.Context(), "nodewarden-agent", []string{"--version"}, &out); err != nil {
		t.Fatalf("--version: %v", err)
	}
	if !strings.HasPrefix(out.String(), "nodewarden ") || !strings.Contains(out.String(), "go1.") {
		t.Errorf("--version printed %q, want what `nodewarden version` prints", out.String())
	}
}

// TestEndpoints runs the command against a real API server: /readyz says 503
// until the agent has written its conditions to its Node (which does not
// exist yet), then 200; /metrics has the agent's metrics and the process's;
// cancelling the context (what SIGTERM does) stops it without an error.
func TestEndpoints(t *testing.T) {
	c := cluster.Start(t)
	metricsAddr, probeAddr := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- agentcmd.Run(ctx, "nodewarden-agent", []string{
			"--node-name", "endpoints-1", "--kubeconfig", c.Kubeconfig, "--host-event-log", filepath.Join(t.TempDir(), "host_event.log"),
			"--metrics-bind-address", metricsAddr, "--health-probe-bind-address", probeAddr,
		}, io.Discard)
	}()

	cluster.Eventually(t, 10*time.Second, func() error {
		return expect(probeAddr+"/healthz", http.StatusOK, "ok")
	})
	if err := expect(probeAddr+"/readyz", http.StatusServiceUnavailable, "conditions not yet written"); err != nil {
		t.Errorf("before the Node exists: %v", err)
	}
	if _, err := c.Clientset.CoreV1().Nodes().Create(t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "endpoints-1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 30*time.Second, func() error {
		return expect(probeAddr+"/readyz", http.StatusOK, "ok")
	})
	for _, want := range []string{
		`nodewarden_agent_condition_transitions_total{status="False",type="HostEventRebootAfter48"} 1`,
		"process_resident_memory_bytes", "go_goroutines",
	} {
		if err := expect(metricsAddr+"/metrics", http.StatusOK, want); err != nil {
			t.Error(err)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func expect(addr string, code int, body string) error {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + addr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != code || !strings.Contains(string(b), body) {
		return fmt.Errorf("GET %s: %s %q, want %d containing %q", addr, resp.Status, b, code, body)
	}
	return nil
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
