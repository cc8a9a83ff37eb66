package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/postgres"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// openStore opens the configured store, explaining in a sentence what a
// driver's error means for the person at the terminal.
func openStore(ctx context.Context, cfg config.Config) (storage.Storage, error) {
	s, err := openBackend(ctx, cfg)
	if err != nil {
		return nil, explainStore(err, cfg)
	}
	return s, nil
}

// openBackend opens the store cfg names: PostgreSQL for a postgres:// DSN,
// otherwise the embedded SQLite file in the data directory. Only the
// command picks a backend; the server takes any storage.Storage.
func openBackend(ctx context.Context, cfg config.Config) (storage.Storage, error) {
	if cfg.Database != "" {
		return postgres.Open(ctx, cfg.Database, postgres.Options{MaxConns: cfg.DatabaseMaxConns})
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	return sqlite.Open(ctx, cfg.SQLitePath())
}

// storeFiles is how many file descriptors the store cfg names holds open
// at most (server.Options.StoreFiles): three per SQLite connection
// (database, WAL and shared-memory files); for PostgreSQL the server counts
// the pool.
func storeFiles(cfg config.Config) int {
	if cfg.Database != "" {
		return 0
	}
	return sqlite.MaxConns() * 3
}

// storeError keeps the driver's error (errors.Is and As still see it) and
// says first what it means.
type storeError struct {
	hint string
	err  error
}

func (e *storeError) Error() string { return e.hint + "\n  (" + e.err.Error() + ")" }
func (e *storeError) Unwrap() error { return e.err }

func explainStore(err error, cfg config.Config) error {
	where := "the database " + redactDSN(cfg.Database)
	if cfg.Database == "" {
		where = "the SQLite database " + cfg.SQLitePath()
	}
	var pg *pgconn.PgError
	hint := ""
	switch {
	case errors.As(err, &pg) && pg.Code == "28000":
		hint = "PostgreSQL does not know the user in the database URL: create the role (CREATE ROLE … LOGIN) or fix the user in database."
	case errors.As(err, &pg) && pg.Code == "28P01":
		hint = "PostgreSQL refused the password in the database URL."
	case errors.As(err, &pg) && pg.Code == "3D000":
		hint = "The database named in the URL does not exist: create it (createdb NAME) or fix its name in database."
	case errors.As(err, &pg) && pg.Code == "42501":
		hint = "The database user may not create bawwab's tables: grant it CREATE on the schema, or run bawwab migrate as its owner."
	case errors.Is(err, syscall.ECONNREFUSED):
		hint = "Nothing accepts connections at the database address: is PostgreSQL running, and on that host and port?"
	case errors.Is(err, context.DeadlineExceeded):
		hint = "The database did not answer in time: check the host, the port and the firewall."
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EROFS):
		hint = "bawwab may not write to data_dir " + cfg.DataDir + ": choose a directory it can write (--data-dir or BAWWAB_DATA_DIR)."
	default:
		hint = "bawwab could not open " + where + "."
	}
	return &storeError{hint: hint, err: err}
}

// emptyStoreHint tells the operator of a store with no user or no client
// how to add one.
func emptyStoreHint(ctx context.Context, out io.Writer, s storage.Storage, cfg config.Config) {
	users, err := s.ListUsers(ctx)
	if err != nil {
		return
	}
	clients, err := s.ListClients(ctx)
	if err != nil {
		return
	}
	where := "--data-dir " + cfg.DataDir
	if cfg.Database != "" {
		where = "(with the same database setting)"
	}
	if len(users) == 0 {
		fmt.Fprintf(out, "No user can sign in yet. Add one:\n  bawwab user add --username NAME --name \"Full Name\" --email you@example.com %s\n", where)
	}
	if len(clients) == 0 {
		fmt.Fprintf(out, "No app is registered yet. Add one:\n  bawwab client add --name \"My app\" --redirect-uri http://127.0.0.1:3000/callback %s\n", where)
	}
}
