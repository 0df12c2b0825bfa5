package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nodewarden/nodewarden/internal/version"
)

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "nodewarden",
		Short:         "Turn host events into Node conditions, and remediate nodes that have them",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.AddCommand(newVersionCommand(), newAgentCommand(), newControllerCommand(), newConvertCommand())
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), version.String())
		},
	}
}
