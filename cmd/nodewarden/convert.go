package main

import (
	"github.com/spf13/cobra"
)

func newConvertCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "convert",
		Short: "Print the nodewarden configuration equivalent to an NPD config or a Draino command line",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "npd FILE...",
		Short: "Convert node-problem-detector monitor JSON files to an AgentConfig",
		Args:  cobra.MinimumNArgs(1),
		RunE:  func(*cobra.Command, []string) error { return errNotImplemented },
	}, &cobra.Command{
		Use:   "draino -- ARGS...",
		Short: "Convert a Draino command line to a RemediationPolicy",
		RunE:  func(*cobra.Command, []string) error { return errNotImplemented },
	})
	return cmd
}
