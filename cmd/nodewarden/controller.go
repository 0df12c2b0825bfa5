package main

import (
	"github.com/spf13/cobra"
)

func newControllerCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run once per cluster: cordon, drain and restore nodes per RemediationPolicy",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return errNotImplemented
		},
	}
	zapFlags(cmd)
	return cmd
}
