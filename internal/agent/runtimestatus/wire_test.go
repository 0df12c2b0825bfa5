package runtimestatus_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodewarden/nodewarden/internal/agent/runtimestatus"
)

// serveHTTP runs h as an HTTP/2 server without TLS on a unix socket, as a
// runtime would speak gRPC, and returns its endpoint: for answers that
// grpc-go's server would not give.
func serveHTTP(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "cri.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "unix://" + sock
}

// frame is a gRPC length-prefixed message.
func frame(flags byte, msg []byte) []byte {
	b := make([]byte, 5, 5+len(msg))
	b[0] = flags
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestQueryAnswers: how Query reads answers and statuses of every shape,
// written by hand onto HTTP/2.
func TestQueryAnswers(t *testing.T) {
	statusOK := mustMarshal(t, &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{
		Conditions: []*runtimeapi.RuntimeCondition{{Type: "RuntimeReady", Status: true}},
	}})
	grpcHeaders := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/grpc")
	}
	// trailersOnly answers with the status alone, in the headers, which
	// end the stream.
	trailersOnly := func(code, msg string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			grpcHeaders(w)
			w.Header().Set("Grpc-Status", code)
			if msg != "" {
				w.Header().Set("Grpc-Message", msg)
			}
			w.WriteHeader(http.StatusOK)
		}
	}
	// answer sends the headers, body and then the trailers.
	answer := func(body []byte, trailers ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			grpcHeaders(w)
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(body)
			w.(http.Flusher).Flush()
			for i := 0; i+1 < len(trailers); i += 2 {
				w.Header().Set(http.TrailerPrefix+trailers[i], trailers[i+1])
			}
		}
	}
	for _, tc := range []struct {
		name    string
		h       http.HandlerFunc
		wantErr string // "" for success
	}{{
		name: "ok",
		h:    answer(frame(0, statusOK), "Grpc-Status", "0"),
	}, {
		name: "content-type-grpc+proto",
		h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/grpc+proto")
			w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
			_, _ = w.Write(frame(0, statusOK))
		},
	}, {
		name:    "trailers-only",
		h:       trailersOnly("14", "runtime%20not%20ready: %E2%9C%97 100%25 %zz"),
		wantErr: "RuntimeService.Status: Unavailable: runtime not ready: ✗ 100% %zz",
	}, {
		// grpc-go's server answers like this when a handler returns a
		// plain error: the message is the runtime's own.
		name:    "trailers-only-unknown",
		h:       trailersOnly("2", "the runtime is broken"),
		wantErr: "RuntimeService.Status: the runtime is broken",
	}, {
		name:    "trailers-only-unimplemented",
		h:       trailersOnly("12", "unknown service runtime.v1.RuntimeService"),
		wantErr: "RuntimeService.Status: Unimplemented: unknown service runtime.v1.RuntimeService",
	}, {
		name:    "trailers-only-code-not-known",
		h:       trailersOnly("42", "new"),
		wantErr: "RuntimeService.Status: Code(42): new",
	}, {
		name:    "trailers-only-deadline-exceeded",
		h:       trailersOnly("4", "context deadline exceeded"),
		wantErr: "RuntimeService.Status: no answer within 5s",
	}, {
		name:    "trailers-only-ok",
		h:       trailersOnly("0", ""),
		wantErr: "RuntimeService.Status: the answer holds no message",
	}, {
		name:    "trailers-only-malformed-status",
		h:       trailersOnly("fourteen", ""),
		wantErr: `RuntimeService.Status: the answer's grpc-status "fourteen" is not a status code`,
	}, {
		name:    "headers-then-error-trailers",
		h:       answer(nil, "Grpc-Status", "13", "Grpc-Message", "oops"),
		wantErr: "RuntimeService.Status: Internal: oops",
	}, {
		name:    "message-then-error",
		h:       answer(frame(0, statusOK), "Grpc-Status", "8", "Grpc-Message", "too much"),
		wantErr: "RuntimeService.Status: ResourceExhausted: too much",
	}, {
		name:    "truncated-then-error",
		h:       answer(frame(0, statusOK)[:7], "Grpc-Status", "14", "Grpc-Message", "gone"),
		wantErr: "RuntimeService.Status: Unavailable: gone",
	}, {
		name:    "no-grpc-status",
		h:       answer(frame(0, statusOK)),
		wantErr: "RuntimeService.Status: the answer ends without a grpc-status",
	}, {
		name:    "no-message",
		h:       answer(nil, "Grpc-Status", "0"),
		wantErr: "RuntimeService.Status: the answer holds no message",
	}, {
		name:    "truncated-prefix",
		h:       answer(frame(0, statusOK)[:3], "Grpc-Status", "0"),
		wantErr: "RuntimeService.Status: the answer ends inside a message's length prefix",
	}, {
		name:    "truncated-message",
		h:       answer(frame(0, statusOK)[:7], "Grpc-Status", "0"),
		wantErr: "RuntimeService.Status: the answer ends after 2 of its message's " + strconv.Itoa(len(statusOK)) + " bytes",
	}, {
		name:    "two-messages",
		h:       answer(append(frame(0, statusOK), frame(0, statusOK)...), "Grpc-Status", "0"),
		wantErr: "RuntimeService.Status: the answer holds more than one message",
	}, {
		name: "compressed",
		h: func(w http.ResponseWriter, r *http.Request) {
			grpcHeaders(w)
			w.Header().Set("Grpc-Encoding", "gzip")
			answer(frame(1, statusOK), "Grpc-Status", "0")(w, r)
		},
		wantErr: `RuntimeService.Status: the answer's message is compressed (grpc-encoding "gzip"), which this client does not offer`,
	}, {
		name:    "bad-flags",
		h:       answer(frame(0x80, statusOK), "Grpc-Status", "0"),
		wantErr: "RuntimeService.Status: the answer's message has flags 0x80, not 0 or 1",
	}, {
		name: "not-grpc",
		h: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte("hello"))
		},
		wantErr: `RuntimeService.Status: the answer's content-type is "text/plain", not application/grpc`,
	}, {
		name:    "http-404",
		h:       http.NotFound,
		wantErr: "RuntimeService.Status: the answer is HTTP 404 Not Found without a gRPC status",
	}, {
		name:    "malformed-message",
		h:       answer(frame(0, []byte{0x0a, 0x05, 0x0a}), "Grpc-Status", "0"),
		wantErr: "RuntimeService.Status: malformed StatusResponse: unexpected EOF",
	}, {
		name:    "no-status-field",
		h:       answer(frame(0, nil), "Grpc-Status", "0"),
		wantErr: "RuntimeService.Status: the answer holds no status",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			endpoint := serveHTTP(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/runtime.v1.RuntimeService/ListContainers" {
					// Past Status: an empty list.
					answer(frame(0, nil), "Grpc-Status", "0")(w, r)
					return
				}
				tc.h(w, r)
			})
			_, err := runtimestatus.Query(t.Context(), endpoint, 5*time.Second)
			if got := errString(err); got != tc.wantErr {
				t.Errorf("error %q, want %q", got, tc.wantErr)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestQueryRequest: what Query sends, as a gRPC server reads it.
func TestQueryRequest(t *testing.T) {
	type seen struct {
		path, contentType, te, proto string
		body                         []byte
	}
	var mu sync.Mutex
	var reqs []seen
	endpoint := serveHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		body := make([]byte, 1<<10)
		n, _ := r.Body.Read(body)
		mu.Lock()
		reqs = append(reqs, seen{r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Te"), r.Proto, body[:n]})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
		if strings.HasSuffix(r.URL.Path, "/Status") {
			_, _ = w.Write(frame(0, mustMarshal(t, &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{}})))
		} else {
			_, _ = w.Write(frame(0, nil))
		}
	})
	if _, err := runtimestatus.Query(t.Context(), endpoint, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	for i, want := range []struct {
		path string
		msg  proto.Message
	}{
		{"/runtime.v1.RuntimeService/Status", &runtimeapi.StatusRequest{}},
		{"/runtime.v1.RuntimeService/ListContainers", &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
			State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		}}},
	} {
		r := reqs[i]
		if r.path != want.path || r.contentType != "application/grpc" || r.te != "trailers" || r.proto != "HTTP/2.0" {
			t.Errorf("request %d: %s %s, content-type %q, te %q; want %s, application/grpc, trailers over HTTP/2.0", i, r.proto, r.path, r.contentType, r.te, want.path)
		}
		if len(r.body) < 5 || r.body[0] != 0 || int(binary.BigEndian.Uint32(r.body[1:5])) != len(r.body)-5 {
			t.Errorf("request %d: body %x is not one uncompressed length-prefixed message", i, r.body)
			continue
		}
		got := want.msg.ProtoReflect().New().Interface()
		if err := proto.Unmarshal(r.body[5:], got); err != nil || !proto.Equal(got, want.msg) {
			t.Errorf("request %d: %v (%v), want %v", i, got, err, want.msg)
		}
	}
}

// TestQueryStatusFromGRPC: grpc-go's own statuses, percent-encoding
// included, as its server writes them.
func TestQueryStatusFromGRPC(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{status.Error(codes.Unavailable, "containerd: ünïcode 100% down\n\tsee log"), "RuntimeService.Status: Unavailable: containerd: ünïcode 100% down\n\tsee log"},
		{status.Error(codes.PermissionDenied, ""), "RuntimeService.Status: PermissionDenied: "},
		{status.Error(codes.DeadlineExceeded, "slow"), "RuntimeService.Status: no answer within 5s"},
		{errors.New("plain"), "RuntimeService.Status: plain"},
	} {
		endpoint := serve(t, &fakeRuntime{statusErr: tc.err})
		_, err := runtimestatus.Query(t.Context(), endpoint, 5*time.Second)
		if got := errString(err); got != tc.want {
			t.Errorf("status %v: error %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestQueryAnswerSizeBound: an answer of up to 16 MiB is read, a larger one
// is not, from grpc-go's server or from one that only claims the size.
func TestQueryAnswerSizeBound(t *testing.T) {
	const limit = 16 << 20
	// big is a ListContainersResponse of size bytes: one running
	// container of pod "big", padded with a label.
	big := func(size int) *runtimeapi.ListContainersResponse {
		c := container("big", runtimeapi.ContainerState_CONTAINER_RUNNING)
		c.Labels["pad"] = ""
		resp := &runtimeapi.ListContainersResponse{Containers: []*runtimeapi.Container{c}}
		for n := proto.Size(resp); n != size; n = proto.Size(resp) {
			c.Labels["pad"] = strings.Repeat("x", len(c.Labels["pad"])+size-n)
		}
		return resp
	}
	for _, tc := range []struct {
		size    int
		wantErr string
	}{
		{limit, ""},
		{limit + 1, "RuntimeService.ListContainers: the answer's message of 16777217 bytes exceeds the limit of 16777216"},
	} {
		f := &fakeRuntime{}
		endpoint := serve(t, &bigList{f, big(tc.size)})
		snap, err := runtimestatus.Query(t.Context(), endpoint, 20*time.Second)
		if got := errString(err); got != tc.wantErr {
			t.Errorf("%d bytes: error %q, want %q", tc.size, got, tc.wantErr)
		}
		if err == nil && snap.RunningPods["big"] != 1 {
			t.Errorf("%d bytes: running pods %v, want big: 1", tc.size, snap.RunningPods)
		}
	}

	// A claim of 4 GiB is refused at once, without waiting for the bytes.
	endpoint := serveHTTP(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		if strings.HasSuffix(r.URL.Path, "/Status") {
			w.Header().Set(http.TrailerPrefix+"Grpc-Status", "0")
			_, _ = w.Write(frame(0, mustMarshal(t, &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{}})))
			return
		}
		_, _ = w.Write([]byte{0, 0xff, 0xff, 0xff, 0xff})
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	start := time.Now()
	_, err := runtimestatus.Query(t.Context(), endpoint, time.Minute)
	if want := "RuntimeService.ListContainers: the answer's message of 4294967295 bytes exceeds the limit of 16777216"; errString(err) != want {
		t.Errorf("error %q, want %q", errString(err), want)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("Query took %v", d)
	}
}

type bigList struct {
	*fakeRuntime
	resp *runtimeapi.ListContainersResponse
}

func (b *bigList) ListContainers(ctx context.Context, _ *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	return b.resp, nil
}

// TestQueryClosesConnection: the runtime sees the connection closed when
// Query returns, whether it succeeded or not.
func TestQueryClosesConnection(t *testing.T) {
	for _, f := range []*fakeRuntime{{}, {statusErr: errors.New("broken")}} {
		sock := filepath.Join(t.TempDir(), "cri.sock")
		lis, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		cl := &countingListener{Listener: lis}
		srv := grpc.NewServer()
		runtimeapi.RegisterRuntimeServiceServer(srv, f)
		go func() { _ = srv.Serve(cl) }()
		t.Cleanup(srv.Stop)
		for range 20 {
			_, _ = runtimestatus.Query(t.Context(), "unix://"+sock, 5*time.Second)
		}
		deadline := time.Now().Add(10 * time.Second)
		for cl.open.Load() != 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		// At least 20: net/http may dial a second connection for the
		// second call (see conn.close).
		if n, all := cl.open.Load(), cl.accepted.Load(); n != 0 || all < 20 {
			t.Errorf("statusErr %v: %d of %d connections open after 20 queries, want 0 of at least 20", f.statusErr, n, all)
		}
	}
}

type countingListener struct {
	net.Listener
	open, accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.open.Add(1)
	l.accepted.Add(1)
	return &countedConn{Conn: c, l: l}, nil
}

type countedConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}
