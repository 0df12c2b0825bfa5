package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/nodewarden/nodewarden/internal/convert/draino"
	npdconvert "github.com/nodewarden/nodewarden/internal/convert/npd"
)

func newConvertCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "convert",
		Short: "Print the nodewarden configuration equivalent to an NPD config or a Draino command line",
	}
	var builtinHostEvents bool
	npdCmd := &cobra.Command{
		Use:   "npd FILE...",
		Short: "Convert node-problem-detector monitor JSON files to an AgentConfig",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, warnings, err := npdconvert.Convert(args, npdconvert.Options{BuiltinHostEvents: builtinHostEvents})
			if err != nil {
				return err
			}
			out, err := npdconvert.Render(cfg, args)
			if err != nil {
				return err
			}
			return printResult(cmd, out, warnings)
		},
	}
	npdCmd.Flags().BoolVar(&builtinHostEvents, "builtin-host-events", false,
		"replace a host_event.json filelog monitor by the agent's built-in host event source (different semantics; see docs/migrate-npd.md)")
	cmd.AddCommand(npdCmd, &cobra.Command{
		Use:   "draino -- ARGS...",
		Short: "Convert a Draino command line to a RemediationPolicy",
		Long: `Prints the RemediationPolicy equivalent to a Draino command line on stdout.
Whatever cannot be expressed is reported on stderr, one line per flag.

Example:
  nodewarden convert draino -- --node-label=draino-enabled=true --evict-emptydir-pods KernelDeadlock=True,10m`,
		// Draino's flags are its own: everything after -- is passed through.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			policy, warnings, err := draino.Convert(args, draino.Options{})
			if err != nil {
				return err
			}
			out, err := draino.Render(policy)
			if err != nil {
				return err
			}
			return printResult(cmd, out, warnings)
		},
	})
	return cmd
}

// printResult prints a conversion: what could not be converted on stderr,
// one warning a line, and the result on stdout, so that it can be piped.
func printResult(cmd *cobra.Command, out []byte, warnings []string) error {
	for _, w := range warnings {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
	}
	_, err := cmd.OutOrStdout().Write(out)
	return err
}
