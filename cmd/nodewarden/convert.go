package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nodewarden/nodewarden/internal/convert/draino"
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
		RunE:  func(*cobra.Command, []string) error { return errors.New("convert npd: not implemented yet") },
	}, &cobra.Command{
		Use:   "draino -- ARGS...",
		Short: "Convert a Draino command line to a RemediationPolicy",
		Long: `Prints the RemediationPolicy equivalent to a Draino command line on stdout.
Whatever cannot be expressed is reported on stderr, one line per flag.

Example:
  nodewarden convert draino -- --node-label=draino-enabled=true --evict-emptydir-pods KernelDeadlock=True,10m`,
		// Draino's flags are its own: everything after -- is passed through.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			policy, warnings, err := draino.Convert(args)
			if err != nil {
				return err
			}
			out, err := draino.Render(policy)
			if err != nil {
				return err
			}
			for _, w := range warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	})
	return cmd
}
