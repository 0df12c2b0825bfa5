package main

import (
	"flag"
	"fmt"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

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

// zapFlags adds controller-runtime's logging flags (--zap-log-level,
// --zap-encoder, ...) to a long-running command, so both the agent and the
// controller log the same way.
func zapFlags(cmd *cobra.Command) *zap.Options {
	opts := &zap.Options{}
	fs := flag.NewFlagSet("zap", flag.ContinueOnError)
	opts.BindFlags(fs)
	cmd.Flags().AddGoFlagSet(fs)
	return opts
}
