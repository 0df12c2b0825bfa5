// Package e2e tests nodewarden end to end: the real bin/nodewarden agent and
// controller run as separate processes against a level-2 control plane
// (test/cluster), and the tests drive them the way a cloud and an operator
// would — by appending lines to each node's host event log and by editing
// policies and PodDisruptionBudgets — and check the cluster's real state.
//
// The non-test files hold what the demo (cmd/demo, `make demo`) and the
// benchmarks (test/bench) share with the tests.
package e2e

import (
	"fmt"
	"os"
	"time"
)

// HostEventLine is one line of Alibaba Cloud's ecs-tool-event log, logged
// at logged (host time) for an event of eventType with status whose action
// time is action, newline included.
func HostEventLine(logged time.Time, eventType, status string, action time.Time) string {
	return fmt.Sprintf("%s - WARNING - Ecs event type is: %s,event status is: %s,action ISO 8601 time is %s\n",
		logged.Format(time.DateTime), eventType, status, action.UTC().Format(time.RFC3339))
}

// AppendHostEvent appends one line to the host event log at path, creating
// it if needed, as the cloud's plugin does, and returns the line.
func AppendHostEvent(path, eventType, status string, action time.Time) (string, error) {
	line := HostEventLine(time.Now(), eventType, status, action)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return "", err
	}
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return "", err
	}
	return line, f.Close()
}
