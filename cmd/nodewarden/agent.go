package main

import (
	"github.com/spf13/cobra"
)

func newAgentCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run on a node: read host events and keep the node's conditions true",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return errNotImplemented
		},
	}
	zapFlags(cmd)
	return cmd
}
