package main

import (
	"errors"
	"fmt"
	"net"

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
			if a.loadErr == nil {
				a.loadErr = trialListen(a.cfg)
			}
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
	addFields(check.Flags(), allFields)
	cmd.AddCommand(check)
	return cmd
}

// trialListen reads the addresses serve will listen on as net.Listen will
// (host names resolved), so that check refuses what serve would.
func trialListen(cfg config.Config) error {
	addrs := map[string]string{"listen": cfg.Listen}
	if cfg.AdminToken != "" {
		addrs["admin_listen"] = cfg.AdminListen
	}
	if cfg.PprofListen != "" {
		addrs["pprof_listen"] = cfg.PprofListen
	}
	var errs []error
	for _, key := range []string{"listen", "admin_listen", "pprof_listen"} {
		addr, ok := addrs[key]
		if !ok {
			continue
		}
		if _, err := net.ResolveTCPAddr("tcp", addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q cannot be listened on: %v", key, addr, err))
		}
	}
	return errors.Join(errs...)
}
