package runtimestatus

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodewarden/nodewarden/internal/agent/healthcheck"
)

// The decoders are held to cri-api's generated code: whatever it reads,
// they read the same; what it rejects, they may read or reject, but never
// panic on.

// wantConditions is what Query made of a StatusResponse when it used the
// generated code.
func wantConditions(st *runtimeapi.StatusResponse) []healthcheck.RuntimeCondition {
	var conds []healthcheck.RuntimeCondition
	for _, c := range st.GetStatus().GetConditions() {
		conds = append(conds, healthcheck.RuntimeCondition{
			Type: c.GetType(), Status: c.GetStatus(), Reason: c.GetReason(), Message: c.GetMessage(),
		})
	}
	return conds
}

// wantRunningPods is what Query made of a ListContainersResponse when it
// used the generated code.
func wantRunningPods(list *runtimeapi.ListContainersResponse) map[string]int {
	pods := map[string]int{}
	for _, c := range list.GetContainers() {
		if c.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		if uid := c.GetLabels()[podUIDLabel]; uid != "" {
			pods[uid]++
		}
	}
	return pods
}

func statusSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, m := range []*runtimeapi.StatusResponse{
		{},
		{Status: &runtimeapi.RuntimeStatus{}},
		{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
			{Type: "RuntimeReady", Status: true},
			{Type: "NetworkReady", Status: false, Reason: "NetworkPluginNotReady", Message: "cni plugin not initialized"},
			{},
		}}},
		// Every field of the answer, as containerd gives them with verbose.
		{
			Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{{Type: "RuntimeReady", Status: true, Reason: "r", Message: "ü"}}},
			Info:   map[string]string{"config": `{"a":1}`, "golang": "go1.26"},
			RuntimeHandlers: []*runtimeapi.RuntimeHandler{
				{Name: "runc", Features: &runtimeapi.RuntimeHandlerFeatures{RecursiveReadOnlyMounts: true, UserNamespaces: true}},
				{Name: ""},
			},
			Features: &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true},
		},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	// status twice: the generated code merges them.
	seeds = append(seeds, append(append([]byte(nil), seeds[2]...), seeds[3]...))
	// status with the wrong wire type (a varint): an unknown field.
	seeds = append(seeds, []byte{0x08, 0x01})
	// A group around the conditions' field numbers.
	seeds = append(seeds, []byte{0x0b, 0x0a, 0x00, 0x0c, 0x0a, 0x00})
	return seeds
}

func containersSeeds(t testing.TB) [][]byte {
	full := &runtimeapi.Container{
		Id: "c1", PodSandboxId: "s1",
		Metadata:    &runtimeapi.ContainerMetadata{Name: "app", Attempt: 2},
		Image:       &runtimeapi.ImageSpec{Image: "registry.k8s.io/pause:3.10", Annotations: map[string]string{"a": "b"}},
		ImageRef:    "sha256:abc",
		State:       runtimeapi.ContainerState_CONTAINER_RUNNING,
		CreatedAt:   time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC).UnixNano(),
		Labels:      map[string]string{podUIDLabel: "uid-a", "io.kubernetes.pod.name": "p", "io.kubernetes.container.name": "app"},
		Annotations: map[string]string{"io.kubernetes.container.hash": "1234"},
		ImageId:     "sha256:def",
	}
	var seeds [][]byte
	for _, m := range []*runtimeapi.ListContainersResponse{
		{},
		{Containers: []*runtimeapi.Container{full}},
		{Containers: []*runtimeapi.Container{
			full,
			{State: runtimeapi.ContainerState_CONTAINER_RUNNING, Labels: map[string]string{podUIDLabel: "uid-a"}},
			{State: runtimeapi.ContainerState_CONTAINER_RUNNING, Labels: map[string]string{podUIDLabel: "uid-b"}},
			{State: runtimeapi.ContainerState_CONTAINER_EXITED, Labels: map[string]string{podUIDLabel: "uid-c"}},
			{State: runtimeapi.ContainerState_CONTAINER_CREATED, Labels: map[string]string{podUIDLabel: "uid-d"}},
			{State: runtimeapi.ContainerState_CONTAINER_RUNNING, Labels: map[string]string{podUIDLabel: ""}},
			{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
			{},
		}},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	// A container whose state and pod UID label come twice: the last wins.
	var c []byte
	c = protowire.AppendTag(c, fieldContainerState, protowire.VarintType)
	c = protowire.AppendVarint(c, 2)
	c = protowire.AppendTag(c, fieldContainerState, protowire.VarintType)
	c = protowire.AppendVarint(c, 1<<32|1) // read as int32: 1
	for _, uid := range []string{"first", "second"} {
		var entry []byte
		entry = protowire.AppendTag(entry, fieldMapEntryKey, protowire.BytesType)
		entry = protowire.AppendString(entry, podUIDLabel)
		entry = protowire.AppendTag(entry, fieldMapEntryValue, protowire.BytesType)
		entry = protowire.AppendString(entry, uid)
		c = protowire.AppendTag(c, fieldContainerLabels, protowire.BytesType)
		c = protowire.AppendBytes(c, entry)
	}
	list := protowire.AppendTag(nil, fieldListContainersResponseContainers, protowire.BytesType)
	seeds = append(seeds, protowire.AppendBytes(list, c))
	return seeds
}

func FuzzDecodeStatus(f *testing.F) {
	for _, b := range statusSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeStatus(b)
		var want runtimeapi.StatusResponse
		if proto.Unmarshal(b, &want) != nil {
			return
		}
		if want.GetStatus() == nil {
			if err == nil {
				t.Fatalf("decodeStatus(%x) = %v, want an error for no status", b, got)
			}
			return
		}
		if err != nil {
			t.Fatalf("decodeStatus(%x): %v; the generated code reads %v", b, err, &want)
		}
		if diff := cmp.Diff(wantConditions(&want), got); diff != "" {
			t.Fatalf("decodeStatus(%x) (-generated code +got):\n%s", b, diff)
		}
	})
}

func FuzzDecodeContainers(f *testing.F) {
	for _, b := range containersSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeContainers(b)
		var want runtimeapi.ListContainersResponse
		if proto.Unmarshal(b, &want) != nil {
			return
		}
		if err != nil {
			t.Fatalf("decodeContainers(%x): %v; the generated code reads %v", b, err, &want)
		}
		if diff := cmp.Diff(wantRunningPods(&want), got); diff != "" {
			t.Fatalf("decodeContainers(%x) (-generated code +got):\n%s", b, diff)
		}
	})
}

// The seeds decode to what they say: the fuzz targets compare against
// something.
func TestDecodeSeeds(t *testing.T) {
	s := statusSeeds(t)
	conds, err := decodeStatus(s[2])
	if err != nil || len(conds) != 3 || conds[1].Reason != "NetworkPluginNotReady" {
		t.Errorf("decodeStatus(seed 2) = %v, %v", conds, err)
	}
	if _, err := decodeStatus(s[0]); err == nil || err.Error() != "the answer holds no status" {
		t.Errorf("decodeStatus(no status): %v", err)
	}
	if conds, err := decodeStatus(s[4]); err != nil || len(conds) != 4 {
		t.Errorf("decodeStatus(status twice) = %v, %v; want the 4 conditions of both", conds, err)
	}
	c := containersSeeds(t)
	for i, want := range []map[string]int{{}, {"uid-a": 1}, {"uid-a": 2, "uid-b": 1}, {"second": 1}} {
		got, err := decodeContainers(c[i])
		if err != nil || !cmp.Equal(got, want) {
			t.Errorf("decodeContainers(seed %d) = %v, %v; want %v", i, got, err, want)
		}
	}
}

func TestDecodeMalformed(t *testing.T) {
	for _, tc := range []struct {
		b                  []byte
		status, containers bool // which decoder must fail
	}{
		{[]byte{0x0a}, true, true},             // a tag without its length
		{[]byte{0x0a, 0x02, 0x0a}, true, true}, // a length past the end
		{[]byte{0x00, 0x00}, true, true},       // field number 0
		{[]byte{0x0c}, true, true},             // an end-group without its start
		{[]byte{0x0b, 0x0a, 0x00}, true, true}, // a group without its end
		{[]byte{0x0f}, true, true},             // wire type 7
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, true, true}, // an 11-byte varint
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x10, 0x00}, true, true},                               // field number 2^29, past the largest
		// A malformed condition in the status; for ListContainers, a
		// container's id, which it skips.
		{[]byte{0x0a, 0x03, 0x0a, 0x01, 0xff}, true, false},
		// A malformed label of a container; for Status, a field it skips.
		{[]byte{0x0a, 0x03, 0x42, 0x01, 0xff}, false, true},
		// A malformed map entry (the key's length past its end).
		{[]byte{0x0a, 0x04, 0x42, 0x02, 0x0a, 0x05}, false, true},
	} {
		if conds, err := decodeStatus(tc.b); tc.status && err == nil {
			t.Errorf("decodeStatus(%x) = %v, want an error", tc.b, conds)
		}
		if pods, err := decodeContainers(tc.b); tc.containers && err == nil {
			t.Errorf("decodeContainers(%x) = %v, want an error", tc.b, pods)
		}
	}
}

func TestRequests(t *testing.T) {
	var st runtimeapi.StatusRequest
	if err := proto.Unmarshal(statusRequest(), &st); err != nil || st.GetVerbose() {
		t.Errorf("statusRequest() reads as %v, %v", &st, err)
	}
	var list runtimeapi.ListContainersRequest
	want := &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
	}}
	if err := proto.Unmarshal(listContainersRequest(containerRunning), &list); err != nil || !proto.Equal(&list, want) {
		t.Errorf("listContainersRequest(running) reads as %v, %v; want %v", &list, err, want)
	}
}

func TestPercentDecode(t *testing.T) {
	for in, want := range map[string]string{
		"":                "",
		"plain":           "plain",
		"100%25":          "100%",
		"%E2%9C%97%0a":    "✗\n",
		"%":               "%",
		"%4":              "%4",
		"%41":             "A",
		"%zz%+1%4g":       "%zz%+1%4g",
		"a%2":             "a%2",
		"%%41":            "%A",
		"%c3%bcnicode %7": "ünicode %7",
	} {
		if got := percentDecode(in); got != want {
			t.Errorf("percentDecode(%q) = %q, want %q", in, got, want)
		}
	}
}
