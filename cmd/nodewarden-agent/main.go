// Command nodewarden-agent is `nodewarden agent` alone: the same command,
// flags and behaviour, in an executable that links only what the agent uses.
// The DaemonSet runs it, because an agent runs on every node and the full
// binary's start-up (every Kubernetes API group registered for the
// controller) would cost each of them about 10 MiB more (docs/performance.md).
package main

import (
	"os"

	"github.com/nodewarden/nodewarden/internal/agent/agentcmd"
)

func main() {
	os.Exit(agentcmd.Main("nodewarden-agent", os.Args[1:]))
}
