package main

import (
	"fmt"
	"net"
	"net/http"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/bawwab/bawwab/internal/server"
)

func (a *app) serveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the authorization server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			store, err := openStore(ctx, a.cfg)
			if err != nil {
				return err
			}
			defer store.Close()
			emptyStoreHint(ctx, cmd.OutOrStdout(), store, a.cfg)
			srv, err := server.New(ctx, a.cfg, store, a.log, server.Options{StoreFiles: storeFiles(a.cfg)})
			if err != nil {
				return err
			}
			// Starting leaves garbage (migrations, pages parsed, on a new
			// store an RSA key generated) that the runtime would give back
			// to the system only minutes later: give it back now, so that
			// an idle server holds only what it uses.
			debug.FreeOSMemory()
			l, err := net.Listen("tcp", a.cfg.Listen)
			if err != nil {
				return err
			}
			if a.cfg.PprofListen != "" {
				pl, err := net.Listen("tcp", a.cfg.PprofListen)
				if err != nil {
					return err
				}
				defer pl.Close()
				go func() { _ = http.Serve(pl, server.Pprof()) }()
			}
			var al net.Listener
			if a.cfg.AdminToken != "" {
				al, err = net.Listen("tcp", a.cfg.AdminListen)
				if err != nil {
					return fmt.Errorf("admin API: %w", err)
				}
				scheme := "http"
				if a.cfg.AdminTLSCert != "" {
					scheme = "https"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "admin API on %s://%s (Bearer admin_token)\n", scheme, al.Addr())
			}
			fmt.Fprintf(cmd.OutOrStdout(), "bawwab serving %s on http://%s\n", a.cfg.Issuer, l.Addr())
			// On SIGTERM, Run stops accepting, lets requests finish, stops
			// the background jobs and waits for logout deliveries; the
			// deferred Close then closes the store, last.
			return srv.Run(ctx, l, al)
		},
	}
}
