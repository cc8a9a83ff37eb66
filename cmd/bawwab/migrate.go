package main

import (
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlstore"
)

func (a *app) migrateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Bring the store's schema up to date (serve does it too; migrations are forward-only and run once across nodes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withStore(cmd.Context(), func(storage.Storage) error {
				where := a.cfg.SQLitePath()
				if a.cfg.Database != "" {
					where = redactDSN(a.cfg.Database)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s is at schema version %d\n", where, sqlstore.SchemaVersion())
				return nil
			})
		},
	}
}

// redactDSN hides the password of a database URL.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparseable DSN)"
	}
	return u.Redacted()
}
