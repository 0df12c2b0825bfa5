package e2e_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// lagProxy stands between a client and the API server and delays every
// watch stream by a fixed lag, so that the client's informer cache lags the
// API server (as it does on a loaded or distant control plane) while its
// own requests (list, get, patch) are answered at once. Events keep their
// order. It authenticates to the API server as the cluster's admin; the
// client reaches it with the kubeconfig it writes, over TLS without
// verification.
type lagProxy struct {
	kubeconfig string
}

func (e *env) newLagProxy(t testing.TB, lag time.Duration) *lagProxy {
	t.Helper()
	target, err := url.Parse(e.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	transport, err := rest.TransportFor(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = target.Host
		},
		Transport:     transport,
		FlushInterval: -1, // watch events go out as soon as their lag is over
		ModifyResponse: func(resp *http.Response) error {
			if q := resp.Request.URL.Query().Get("watch"); q == "true" || q == "1" {
				resp.Body = newLagBody(resp.Body, lag)
			}
			return nil
		},
	}
	srv := httptest.NewUnstartedServer(rp)
	srv.StartTLS()
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	kubeconfig := filepath.Join(t.TempDir(), "lagging.kubeconfig")
	config := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: lagging
  cluster: {server: %q, insecure-skip-tls-verify: true}
users:
- name: lagging
  user: {}
contexts:
- name: lagging
  context: {cluster: lagging, user: lagging}
current-context: lagging
`, srv.URL)
	if err := os.WriteFile(kubeconfig, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return &lagProxy{kubeconfig: kubeconfig}
}

// lagBody hands out what src gives lag after src gave it.
type lagBody struct {
	src    io.ReadCloser
	chunks chan lagChunk
	lag    time.Duration
	cur    []byte
	err    error
	once   sync.Once
	closed chan struct{}
}

type lagChunk struct {
	data []byte
	at   time.Time
	err  error
}

func newLagBody(src io.ReadCloser, lag time.Duration) *lagBody {
	b := &lagBody{src: src, chunks: make(chan lagChunk, 1024), lag: lag, closed: make(chan struct{})}
	go func() {
		defer close(b.chunks)
		for {
			buf := make([]byte, 32*1024)
			n, err := src.Read(buf)
			select {
			case b.chunks <- lagChunk{data: buf[:n], at: time.Now().Add(lag), err: err}:
			case <-b.closed:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return b
}

func (b *lagBody) Read(p []byte) (int, error) {
	for len(b.cur) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		var c lagChunk
		var ok bool
		select {
		case c, ok = <-b.chunks:
		case <-b.closed:
			return 0, io.ErrClosedPipe
		}
		if !ok {
			return 0, io.EOF
		}
		select {
		case <-time.After(time.Until(c.at)): // the lag is the point of this proxy
		case <-b.closed:
			return 0, io.ErrClosedPipe
		}
		b.cur, b.err = c.data, c.err
	}
	n := copy(p, b.cur)
	b.cur = b.cur[n:]
	return n, nil
}

func (b *lagBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return b.src.Close()
}
