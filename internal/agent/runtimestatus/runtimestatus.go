// Package runtimestatus asks the container runtime over the CRI for its
// status and the pods whose containers it runs, for the
// ContainerRuntimeReady check (healthcheck.ContainerRuntimeReady).
//
// The CRI is gRPC, but this package does not link google.golang.org/grpc
// (nor k8s.io/cri-api, whose generated code needs it): grpc-go added 79
// packages and 6 MB to the agent's executable and 3.8 MiB to its RSS on every
// node, which took the agent past its memory budget (peak RSS at --help 19.6
// MiB with it, 15.8 without; 514 packages against 435). It needs two unary
// calls, and a unary gRPC call is one HTTP/2 POST: grpc.go makes it with
// net/http, which the agent links anyway, and cri.go writes and reads the
// few protobuf fields it needs with google.golang.org/protobuf/encoding/protowire,
// which it links too.
//
// The tests hold that to the real thing: they answer with grpc-go's server
// and cri-api's generated code, the fuzz targets compare the decoders with
// cri-api's generated types on any input, and test/cluster's
// TestLevel3RealNode/runtimestatus asks a real containerd.
package runtimestatus

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
// kept connection would hold its reader goroutine and buffers on every node
// between queries, and one broken by a restart of the runtime would fail the
// next call instead of reaching the runtime as it is now.
func Query(ctx context.Context, endpoint string, timeout time.Duration) (Snapshot, error) {
	path, ok := strings.CutPrefix(endpoint, "unix://")
	if !ok || path == "" {
		return Snapshot{}, fmt.Errorf("CRI endpoint %q: want unix:///path/to/socket", endpoint)
	}
	c := newConn(path, timeout)
	defer c.close()

	msg, err := c.call(ctx, "Status", statusRequest())
	if err != nil {
		return Snapshot{}, err
	}
	var snap Snapshot
	if snap.Conditions, err = decodeStatus(msg); err != nil {
		return Snapshot{}, fmt.Errorf("RuntimeService.Status: %w", err)
	}

	msg, err = c.call(ctx, "ListContainers", listContainersRequest(containerRunning))
	if err != nil {
		return Snapshot{}, err
	}
	if snap.RunningPods, err = decodeContainers(msg); err != nil {
		return Snapshot{}, fmt.Errorf("RuntimeService.ListContainers: %w", err)
	}
	return snap, nil
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
