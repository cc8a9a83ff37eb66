// Command bawwab is an OAuth 2.0 and OpenID Connect authorization server.
//
//	bawwab serve                 run the server
//	bawwab demo                  run the server, a resource server and a sample app
//	bawwab user add …            add a local user
//	bawwab user factors|reset-mfa|disable|enable|resend-verification|unlock
//	bawwab client add|list|delete
//	bawwab grant list|revoke     what users granted clients
//	bawwab scope list
//	bawwab keys list|rotate      signing keys
//
// The admin commands work on the store (--data-dir or --database, or the
// config file), or with --server on a running server's admin API;
// --output json prints JSON. Server settings are flags of serve, migrate
// and config check only.
//
//	bawwab audit list            read the audit log
//	bawwab config check          validate and explain the configuration
//	bawwab migrate               bring the store's schema up to date
//	bawwab export / import       users (with their factors) and clients as JSON (backups, migrations)
//	bawwab device-login          sign in from a device without a browser (RFC 8628)
//	bawwab bench                 load-test a server over HTTP
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/bawwab/bawwab/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "bawwab:", err)
		os.Exit(1)
	}
}

// app carries what every command needs: the loaded configuration.
type app struct {
	configFile string
	cfg        config.Config
	log        *slog.Logger
	// loadErr is the configuration error that `config check` explains.
	loadErr error
	// server is the admin API the admin commands talk to; empty means the
	// configured store, directly.
	server string
	// output is table or json.
	output string
	// noAdmin is --force of the commands that may take the last enabled
	// admin away: allowed on the store directly only (adminapi.API.NoAdminOK).
	noAdmin bool
}

func newRoot() *cobra.Command {
	a := &app{cfg: config.Default()}
	root := &cobra.Command{
		Use:           "bawwab",
		Short:         "bawwab is an OAuth 2.0 and OpenID Connect authorization server",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if a.output != "table" && a.output != "json" {
				return fmt.Errorf("--output must be table or json, not %q", a.output)
			}
			err := a.load(cmd)
			if err != nil && cmd.Annotations["explain-config"] == "1" {
				a.loadErr, err = err, nil
			}
			return err
		},
	}
	a.output = "table"
	root.PersistentFlags().StringVar(&a.configFile, "config", "", "YAML configuration file (env BAWWAB_CONFIG)")
	root.SetFlagErrorFunc(didYouMean)
	serve, migrate, demo, bench := a.serveCmd(), a.migrateCmd(), a.demoCmd(), a.benchCmd()
	addFields(serve.Flags(), allFields)
	addFields(migrate.Flags(), fieldsNamed("data_dir", "database", "log_format", "log_level"))
	addFields(demo.Flags(), fieldsNamed("log_format", "log_level"))
	addFields(bench.Flags(), fieldsNamed("database", "log_format", "log_level"))
	deviceLogin := a.deviceLoginCmd()
	for _, c := range []*cobra.Command{bench, deviceLogin} {
		c.Flags().StringVarP(&a.output, "output", "o", "table", "table or json")
	}
	root.AddCommand(serve, demo, a.configCmd(), migrate, bench, deviceLogin)
	for _, admin := range []*cobra.Command{a.userCmd(), a.clientCmd(), a.upstreamCmd(), a.registrationCmd(), a.keysCmd(), a.grantCmd(), a.scopeCmd(), a.auditCmd(), a.exportCmd(), a.importCmd()} {
		root.AddCommand(a.adminFlags(admin))
	}
	for _, c := range root.Commands() {
		suggestSubcommands(c)
	}
	return root
}

// suggestSubcommands makes c, and each command group under it, refuse an
// unknown subcommand naming the nearest ones, as the root does, instead of
// printing its help and succeeding.
func suggestSubcommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		suggestSubcommands(sub)
	}
	if !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.SuggestionsMinimumDistance = 2
	c.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if near := cmd.SuggestionsFor(args[0]); len(near) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(near, "\n\t")
		}
		return errors.New(msg)
	}
	c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
}

// load builds the configuration: defaults, then the YAML file, then
// BAWWAB_* variables, then flags given on the command line.
func (a *app) load(cmd *cobra.Command) error {
	if a.configFile == "" {
		a.configFile = os.Getenv("BAWWAB_CONFIG")
	}
	if a.configFile != "" {
		if err := config.LoadFile(&a.cfg, a.configFile); err != nil {
			return err
		}
	}
	if err := config.LoadEnv(&a.cfg, os.Getenv); err != nil {
		return err
	}
	for _, f := range config.Fields {
		if fl := cmd.Flags().Lookup(f.Flag()); fl != nil && fl.Changed {
			if err := f.Set(&a.cfg, fl.Value.String()); err != nil {
				return err
			}
		}
	}
	level := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}[a.cfg.LogLevel]
	opts := &slog.HandlerOptions{Level: level}
	if a.cfg.LogFormat == "json" {
		a.log = slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), opts))
	} else {
		a.log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), opts))
	}
	return a.cfg.Validate()
}
