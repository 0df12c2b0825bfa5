// Package runtimestatus asks the container runtime over the CRI for its
// status and the pods whose containers it runs, for the
// ContainerRuntimeReady check (healthcheck.ContainerRuntimeReady).
package runtimestatus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodewarden/nodewarden/internal/agent/healthcheck"
)

// podUIDLabel is the label the kubelet puts on every container it creates
// (k8s.io/kubelet/pkg/types.KubernetesPodUIDLabel, not worth a module).
const podUIDLabel = "io.kubernetes.pod.uid"

// maxMsgSize is the kubelet's own limit for CRI answers: a node whose
// container list the kubelet can read, this package can read too.
const maxMsgSize = 16 << 20

// Snapshot is the runtime's answer.
type Snapshot struct {
	Conditions []healthcheck.RuntimeCondition
	// RunningPods: pod UID (the io.kubernetes.pod.uid label of running
	// containers) -> number of running containers.
	RunningPods map[string]int
}

// Query dials endpoint ("unix:///path"), calls RuntimeService.Status and
// ListContainers (state CONTAINER_RUNNING), and closes the connection. Each
// call, the dial included, is bounded by timeout.
//
// The connection lives for one Query, not for the agent's life: Query runs
// every 30 s and connecting to a unix socket costs next to nothing, while a
// kept connection would hold gRPC's goroutines and buffers on every node and,
// after the runtime restarts, answer from gRPC's reconnect backoff (up to
// two minutes of "Unavailable") rather than from the runtime as it is now.
func Query(ctx context.Context, endpoint string, timeout time.Duration) (Snapshot, error) {
	path, ok := strings.CutPrefix(endpoint, "unix://")
	if !ok || path == "" {
		return Snapshot{}, fmt.Errorf("CRI endpoint %q: want unix:///path/to/socket", endpoint)
	}
	d := &dialer{}
	// passthrough: the socket path goes to the dialer as it is, with no
	// resolver in between.
	conn, err := grpc.NewClient("passthrough:///"+path,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(d.dial),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize)),
		grpc.WithAuthority("localhost"),
	)
	if err != nil {
		return Snapshot{}, fmt.Errorf("CRI endpoint %s: %w", endpoint, err)
	}
	defer conn.Close()
	client := runtimeapi.NewRuntimeServiceClient(conn)

	callCtx, cancel := context.WithTimeout(ctx, timeout)
	st, err := client.Status(callCtx, &runtimeapi.StatusRequest{})
	cancel()
	if err != nil {
		return Snapshot{}, d.explain(ctx, "RuntimeService.Status", timeout, err)
	}
	if st.GetStatus() == nil {
		return Snapshot{}, errors.New("RuntimeService.Status: the answer holds no status")
	}
	var snap Snapshot
	for _, c := range st.GetStatus().GetConditions() {
		snap.Conditions = append(snap.Conditions, healthcheck.RuntimeCondition{
			Type: c.GetType(), Status: c.GetStatus(), Reason: c.GetReason(), Message: c.GetMessage(),
		})
	}

	callCtx, cancel = context.WithTimeout(ctx, timeout)
	list, err := client.ListContainers(callCtx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
	}})
	cancel()
	if err != nil {
		return Snapshot{}, d.explain(ctx, "RuntimeService.ListContainers", timeout, err)
	}
	snap.RunningPods = map[string]int{}
	for _, c := range list.GetContainers() {
		// The filter is the runtime's to honour; a runtime that ignores it
		// must not make an exited container look running.
		if c.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		if uid := c.GetLabels()[podUIDLabel]; uid != "" {
			snap.RunningPods[uid]++
		}
	}
	return snap, nil
}

// dialer remembers why connecting failed: gRPC reports it only inside an
// Unavailable status, wrapped in its own words.
type dialer struct {
	mu  sync.Mutex
	err error
}

func (d *dialer) dial(ctx context.Context, path string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, "unix", path)
	d.mu.Lock()
	d.err = err
	d.mu.Unlock()
	return conn, err
}

// explain turns a failed call's gRPC error into what went wrong: the dial
// error when the socket could not be reached, else the call and the
// runtime's message.
func (d *dialer) explain(ctx context.Context, call string, timeout time.Duration, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", call, context.Cause(ctx))
	}
	s, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", call, err)
	}
	d.mu.Lock()
	dialErr := d.err
	d.mu.Unlock()
	switch {
	case dialErr != nil && (s.Code() == codes.Unavailable || s.Code() == codes.DeadlineExceeded):
		return dialErr
	case s.Code() == codes.DeadlineExceeded:
		return fmt.Errorf("%s: no answer within %v", call, timeout)
	case s.Code() == codes.Unknown:
		// What the runtime's handler returned, as it said it.
		return fmt.Errorf("%s: %s", call, s.Message())
	default:
		return fmt.Errorf("%s: %s: %s", call, s.Code(), s.Message())
	}
}

// StuckPods are the pods deleted (deletionTimestamp set) whose
// deletionTimestamp is at least after in the past at now, and which still
// have running containers in snap, sorted by namespace/name. The API server
// sets a pod's deletionTimestamp to the end of its grace period, so
// StuckPod.For is how long past that the pod still runs. A deleted pod
// without running containers is not stuck: a finalizer holds a pod that has
// finished, and that is not the runtime's doing.
func StuckPods(pods []metav1.PartialObjectMetadata, snap Snapshot, now time.Time, after time.Duration) []healthcheck.StuckPod {
	var stuck []healthcheck.StuckPod
	for _, p := range pods {
		if p.DeletionTimestamp == nil || snap.RunningPods[string(p.UID)] == 0 {
			continue
		}
		if past := now.Sub(p.DeletionTimestamp.Time); past >= after {
			stuck = append(stuck, healthcheck.StuckPod{Namespace: p.Namespace, Name: p.Name, For: past})
		}
	}
	slices.SortFunc(stuck, func(a, b healthcheck.StuckPod) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return stuck
}
