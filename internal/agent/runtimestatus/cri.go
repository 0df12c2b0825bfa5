package runtimestatus

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/nodewarden/nodewarden/internal/agent/healthcheck"
)

// The CRI messages this package writes and reads, by their field numbers in
// k8s.io/cri-api/pkg/apis/runtime/v1/api.proto (runtime.v1). Only the fields
// a Snapshot needs are read; the rest are skipped.
const (
	// StatusResponse.status (RuntimeStatus status = 1).
	fieldStatusResponseStatus protowire.Number = 1
	// RuntimeStatus.conditions (repeated RuntimeCondition conditions = 1).
	fieldRuntimeStatusConditions protowire.Number = 1
	// RuntimeCondition: string type = 1; bool status = 2; string reason = 3;
	// string message = 4.
	fieldConditionType    protowire.Number = 1
	fieldConditionStatus  protowire.Number = 2
	fieldConditionReason  protowire.Number = 3
	fieldConditionMessage protowire.Number = 4

	// ListContainersRequest.filter (ContainerFilter filter = 1).
	fieldListContainersRequestFilter protowire.Number = 1
	// ContainerFilter.state (ContainerStateValue state = 2).
	fieldContainerFilterState protowire.Number = 2
	// ContainerStateValue.state (ContainerState state = 1).
	fieldContainerStateValueState protowire.Number = 1

	// ListContainersResponse.containers (repeated Container containers = 1).
	fieldListContainersResponseContainers protowire.Number = 1
	// Container: ContainerState state = 6; map<string, string> labels = 8.
	fieldContainerState  protowire.Number = 6
	fieldContainerLabels protowire.Number = 8
	// A map's entries are messages with the key in field 1, the value in 2.
	fieldMapEntryKey   protowire.Number = 1
	fieldMapEntryValue protowire.Number = 2

	// ContainerState.CONTAINER_RUNNING.
	containerRunning = 1
)

// statusRequest is StatusRequest{verbose: false}: the empty message, as
// proto3 leaves out fields at their zero value.
func statusRequest() []byte { return nil }

// listContainersRequest is ListContainersRequest{filter: {state: {state}}}.
func listContainersRequest(state int32) []byte {
	stateValue := protowire.AppendTag(nil, fieldContainerStateValueState, protowire.VarintType)
	stateValue = protowire.AppendVarint(stateValue, uint64(state))
	filter := protowire.AppendTag(nil, fieldContainerFilterState, protowire.BytesType)
	filter = protowire.AppendBytes(filter, stateValue)
	req := protowire.AppendTag(nil, fieldListContainersRequestFilter, protowire.BytesType)
	return protowire.AppendBytes(req, filter)
}

// decodeStatus reads a StatusResponse: the conditions of its status, in
// order. An answer without a status is an error.
//
// Like the generated code, it merges a message field that occurs more than
// once and lets the last occurrence of a scalar field win. Unlike it, it does
// not check that strings are UTF-8, nor anything in the fields it skips.
func decodeStatus(b []byte) ([]healthcheck.RuntimeCondition, error) {
	var conds []healthcheck.RuntimeCondition
	hasStatus := false
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num != fieldStatusResponseStatus || typ != protowire.BytesType {
			return nil
		}
		hasStatus = true
		return fields(bytesValue(v), func(num protowire.Number, typ protowire.Type, v []byte) error {
			if num != fieldRuntimeStatusConditions || typ != protowire.BytesType {
				return nil
			}
			c, err := decodeCondition(bytesValue(v))
			conds = append(conds, c)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("malformed StatusResponse: %w", err)
	}
	if !hasStatus {
		return nil, errors.New("the answer holds no status")
	}
	return conds, nil
}

func decodeCondition(b []byte) (healthcheck.RuntimeCondition, error) {
	var c healthcheck.RuntimeCondition
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == fieldConditionType && typ == protowire.BytesType:
			c.Type = string(bytesValue(v))
		case num == fieldConditionStatus && typ == protowire.VarintType:
			c.Status = varintValue(v) != 0
		case num == fieldConditionReason && typ == protowire.BytesType:
			c.Reason = string(bytesValue(v))
		case num == fieldConditionMessage && typ == protowire.BytesType:
			c.Message = string(bytesValue(v))
		}
		return nil
	})
	return c, err
}

// decodeContainers reads a ListContainersResponse: pod UID (the
// io.kubernetes.pod.uid label) -> number of its containers in state
// CONTAINER_RUNNING. Containers in another state, or without the label,
// are left out: the ListContainers filter is the runtime's to honour, and a
// runtime that ignores it must not make an exited container look running.
func decodeContainers(b []byte) (map[string]int, error) {
	pods := map[string]int{}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num != fieldListContainersResponseContainers || typ != protowire.BytesType {
			return nil
		}
		state, uid, err := decodeContainer(bytesValue(v))
		if err == nil && state == containerRunning && uid != "" {
			pods[uid]++
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("malformed ListContainersResponse: %w", err)
	}
	return pods, nil
}

// decodeContainer reads a Container's state and its pod UID label.
func decodeContainer(b []byte) (state int32, podUID string, err error) {
	err = fields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch {
		case num == fieldContainerState && typ == protowire.VarintType:
			// An enum is an int32 on the wire's 64 bits, as the generated
			// code reads it.
			state = int32(varintValue(v))
		case num == fieldContainerLabels && typ == protowire.BytesType:
			var key, value []byte
			err := fields(bytesValue(v), func(num protowire.Number, typ protowire.Type, v []byte) error {
				switch {
				case num == fieldMapEntryKey && typ == protowire.BytesType:
					key = bytesValue(v)
				case num == fieldMapEntryValue && typ == protowire.BytesType:
					value = bytesValue(v)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if string(key) == podUIDLabel {
				podUID = string(value)
			}
		}
		return nil
	})
	return state, podUID, err
}

// fields calls fn with each field of the encoded message b in order: its
// number, wire type and encoded value, which fields has checked to be whole
// and well-formed for the wire type (so that bytesValue and varintValue can
// read it), groups included. A field fn does not want it just ignores. It
// fails on a malformed message, or with fn's error.
func fields(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		if num > protowire.MaxValidNumber {
			return errors.New("invalid field number")
		}
		b = b[n:]
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		if err := fn(num, typ, b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// bytesValue is the content of a length-delimited value checked by fields.
func bytesValue(v []byte) []byte {
	b, _ := protowire.ConsumeBytes(v)
	return b
}

// varintValue is the value of a varint checked by fields.
func varintValue(v []byte) uint64 {
	x, _ := protowire.ConsumeVarint(v)
	return x
}
