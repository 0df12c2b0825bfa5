package main

import (
	"github.com/spf13/cobra"

	"github.com/nodewarden/nodewarden/internal/agent/agentcmd"
)

// newAgentCommand hands its arguments to agentcmd, which parses them itself:
// the same code is bin/nodewarden-agent, which links no cobra.
func newAgentCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "agent",
		Short:              agentcmd.Short,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return agentcmd.Run(cmd.Context(), "nodewarden agent", args, cmd.OutOrStdout())
		},
	}
}
