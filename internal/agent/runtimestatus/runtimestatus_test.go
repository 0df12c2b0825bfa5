package runtimestatus_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodewarden/nodewarden/internal/agent/healthcheck"
	"github.com/nodewarden/nodewarden/internal/agent/runtimestatus"
)

// fakeRuntime answers Status and ListContainers as a runtime would; the
// rest of the CRI answers Unimplemented.
type fakeRuntime struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	conditions []*runtimeapi.RuntimeCondition
	containers []*runtimeapi.Container
	statusErr  error
	// hang makes every call block until its caller gives up.
	hang bool
	// filters are the ListContainers filters received.
	filters chan *runtimeapi.ContainerFilter
}

func (f *fakeRuntime) Status(ctx context.Context, _ *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	if f.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.statusErr != nil {
		return nil, f.statusErr
	}
	return &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: f.conditions}}, nil
}

func (f *fakeRuntime) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	if f.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.filters != nil {
		f.filters <- req.GetFilter()
	}
	var out []*runtimeapi.Container
	for _, c := range f.containers {
		if s := req.GetFilter().GetState(); s != nil && c.GetState() != s.GetState() {
			continue
		}
		out = append(out, c)
	}
	return &runtimeapi.ListContainersResponse{Containers: out}, nil
}

// serve runs f on a unix socket in a temporary directory and returns its
// endpoint.
func serve(t testing.TB, f runtimeapi.RuntimeServiceServer) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "cri.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	// Stop, not GracefulStop: a hanging handler would never return.
	t.Cleanup(srv.Stop)
	return "unix://" + sock
}

func container(podUID string, state runtimeapi.ContainerState) *runtimeapi.Container {
	return &runtimeapi.Container{Id: podUID + "-" + state.String(), State: state, Labels: map[string]string{"io.kubernetes.pod.uid": podUID}}
}

func TestQuery(t *testing.T) {
	f := &fakeRuntime{
		conditions: []*runtimeapi.RuntimeCondition{
			{Type: "RuntimeReady", Status: true},
			{Type: "NetworkReady", Status: false, Reason: "NetworkPluginNotReady", Message: "cni plugin not initialized"},
		},
		containers: []*runtimeapi.Container{
			container("uid-a", runtimeapi.ContainerState_CONTAINER_RUNNING),
			container("uid-a", runtimeapi.ContainerState_CONTAINER_RUNNING),
			container("uid-b", runtimeapi.ContainerState_CONTAINER_RUNNING),
			container("uid-c", runtimeapi.ContainerState_CONTAINER_EXITED),
			// Not the kubelet's: no pod to count it for.
			{Id: "ctr-run", State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		},
		filters: make(chan *runtimeapi.ContainerFilter, 1),
	}
	snap, err := runtimestatus.Query(t.Context(), serve(t, f), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := runtimestatus.Snapshot{
		Conditions: []healthcheck.RuntimeCondition{
			{Type: "RuntimeReady", Status: true},
			{Type: "NetworkReady", Status: false, Reason: "NetworkPluginNotReady", Message: "cni plugin not initialized"},
		},
		RunningPods: map[string]int{"uid-a": 2, "uid-b": 1},
	}
	if diff := cmp.Diff(want, snap); diff != "" {
		t.Errorf("snapshot (-want +got):\n%s", diff)
	}
	if got := (<-f.filters).GetState().GetState(); got != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("ListContainers asked for state %v, want CONTAINER_RUNNING", got)
	}
}

// A runtime that ignores the state filter still has its exited containers
// left out.
func TestQueryIgnoresExitedContainersUnfiltered(t *testing.T) {
	f := &fakeRuntime{containers: []*runtimeapi.Container{container("uid-c", runtimeapi.ContainerState_CONTAINER_EXITED)}}
	endpoint := serve(t, &unfiltered{f})
	snap, err := runtimestatus.Query(t.Context(), endpoint, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.RunningPods) != 0 {
		t.Errorf("RunningPods %v, want none", snap.RunningPods)
	}
}

type unfiltered struct{ *fakeRuntime }

func (u *unfiltered) ListContainers(ctx context.Context, _ *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	return u.fakeRuntime.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
}

func TestQueryErrors(t *testing.T) {
	t.Run("status-fails", func(t *testing.T) {
		endpoint := serve(t, &fakeRuntime{statusErr: errors.New("the runtime is broken")})
		_, err := runtimestatus.Query(t.Context(), endpoint, 5*time.Second)
		if err == nil || err.Error() != "RuntimeService.Status: the runtime is broken" {
			t.Errorf("error %v, want %q", err, "RuntimeService.Status: the runtime is broken")
		}
	})
	t.Run("unimplemented", func(t *testing.T) {
		// A runtime without CRI v1 at all: the call and gRPC's code say so.
		sock := filepath.Join(t.TempDir(), "cri.sock")
		lis, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer()
		go func() { _ = srv.Serve(lis) }()
		t.Cleanup(srv.Stop)
		_, err = runtimestatus.Query(t.Context(), "unix://"+sock, 5*time.Second)
		if err == nil || !strings.HasPrefix(err.Error(), "RuntimeService.Status: Unimplemented: ") {
			t.Errorf("error %v, want RuntimeService.Status: Unimplemented: ...", err)
		}
	})
	t.Run("no-socket", func(t *testing.T) {
		sock := filepath.Join(t.TempDir(), "missing.sock")
		start := time.Now()
		_, err := runtimestatus.Query(t.Context(), "unix://"+sock, time.Minute)
		want := "dial unix " + sock + ": connect: no such file or directory"
		if err == nil || err.Error() != want {
			t.Errorf("error %v, want %q", err, want)
		}
		// Far below the timeout: a missing socket is known at once.
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("Query took %v with no socket", d)
		}
	})
	t.Run("hangs", func(t *testing.T) {
		endpoint := serve(t, &fakeRuntime{hang: true})
		_, err := runtimestatus.Query(t.Context(), endpoint, 200*time.Millisecond)
		if err == nil || err.Error() != "RuntimeService.Status: no answer within 200ms" {
			t.Errorf("error %v, want %q", err, "RuntimeService.Status: no answer within 200ms")
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		endpoint := serve(t, &fakeRuntime{hang: true})
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err := runtimestatus.Query(ctx, endpoint, time.Minute)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	})
	t.Run("not-unix", func(t *testing.T) {
		_, err := runtimestatus.Query(t.Context(), "tcp://127.0.0.1:1234", time.Second)
		if err == nil || !strings.Contains(err.Error(), "want unix:///") {
			t.Errorf("error %v, want one naming the unix:/// form", err)
		}
	})
}

func TestStuckPods(t *testing.T) {
	now := time.Date(2026, 11, 24, 17, 0, 0, 0, time.UTC)
	pod := func(ns, name, uid string, deleted time.Duration) metav1.PartialObjectMetadata {
		p := metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID(uid)}}
		if deleted != 0 {
			p.DeletionTimestamp = &metav1.Time{Time: now.Add(-deleted)}
		}
		return p
	}
	snap := runtimestatus.Snapshot{RunningPods: map[string]int{"run-1": 1, "run-2": 2, "run-3": 1, "run-4": 1}}
	for _, tc := range []struct {
		name string
		pods []metav1.PartialObjectMetadata
		want []healthcheck.StuckPod
	}{{
		name: "deleted-long-enough-and-running",
		pods: []metav1.PartialObjectMetadata{pod("ns", "b", "run-1", 10*time.Minute), pod("ns", "a", "run-2", 5*time.Minute), pod("aa", "z", "run-3", time.Hour)},
		want: []healthcheck.StuckPod{{Namespace: "aa", Name: "z", For: time.Hour}, {Namespace: "ns", Name: "a", For: 5 * time.Minute}, {Namespace: "ns", Name: "b", For: 10 * time.Minute}},
	}, {
		name: "deleted-without-running-containers",
		pods: []metav1.PartialObjectMetadata{pod("ns", "finished", "gone", time.Hour)},
	}, {
		name: "deleted-recently",
		pods: []metav1.PartialObjectMetadata{pod("ns", "young", "run-1", 4*time.Minute)},
	}, {
		// Its grace period has not ended: the deletionTimestamp is ahead.
		name: "grace-period-running",
		pods: []metav1.PartialObjectMetadata{pod("ns", "graceful", "run-1", -30*time.Second)},
	}, {
		name: "not-deleted",
		pods: []metav1.PartialObjectMetadata{pod("ns", "alive", "run-4", 0)},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := runtimestatus.StuckPods(tc.pods, snap, now, 5*time.Minute)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("StuckPods (-want +got):\n%s", diff)
			}
		})
	}
}

// BenchmarkQuery is one ContainerRuntimeReady run's CRI cost against a
// runtime with 110 running containers (a full node's pods): dial, Status,
// ListContainers, close — the agent's side only is what the 1 ms budget
// is about, but the server's share runs in the same process here.
func BenchmarkQuery(b *testing.B) {
	f := &fakeRuntime{conditions: []*runtimeapi.RuntimeCondition{{Type: "RuntimeReady", Status: true}, {Type: "NetworkReady", Status: true}}}
	for i := range 110 {
		f.containers = append(f.containers, container(fmt.Sprintf("uid-%03d", i), runtimeapi.ContainerState_CONTAINER_RUNNING))
	}
	endpoint := serve(b, f)
	ctx := context.Background()
	for b.Loop() {
		if _, err := runtimestatus.Query(ctx, endpoint, 5*time.Second); err != nil {
			b.Fatal(err)
		}
	}
}
