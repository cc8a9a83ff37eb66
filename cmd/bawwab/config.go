package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bawwab/bawwab/internal/config"
)

func (a *app) configCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check and show the configuration"}
	check := &cobra.Command{
		Use:   "check",
		Short: "Validate the configuration (file, BAWWAB_* variables, flags), explain mistakes and unwise settings, and print the result",
		Args:  cobra.NoArgs,
		// load records its error instead of failing, so that check can
		// explain it.
		Annotations: map[string]string{"explain-config": "1"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if a.loadErr != nil {
				fmt.Fprintf(out, "error: %v\n", a.loadErr)
				return fmt.Errorf("the configuration is not valid")
			}
			for _, w := range a.cfg.Warnings() {
				fmt.Fprintf(out, "warning: %s\n", w)
			}
			fmt.Fprintln(out, "configuration is valid:")
			for _, f := range config.Fields {
				v := f.Get(&a.cfg)
				switch {
				case f.Key == "database" && v != "":
					v = redactDSN(v)
				case (f.Key == "admin_token" || f.Key == "registration_token") && v != "":
					v = "(set)"
				}
				fmt.Fprintf(out, "  %-20s %s\n", f.Key, v)
			}
			return nil
		},
	}
	cmd.AddCommand(check)
	return cmd
}
