// Package postgres opens bawwab's multi-node store: PostgreSQL (or a
// PostgreSQL-compatible database) through a pgx connection pool. Several
// bawwab nodes may share one database; migrations run once under an
// advisory lock, and single-use rules hold across nodes because they are
// enforced by conditional UPDATEs in the database.
package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/bawwab/bawwab/internal/storage/sqlstore"
)

// migrationLock is the advisory lock key that serializes migrations.
const migrationLock = 0x6261_7777_6162 // "bawwab"

// Dialect is PostgreSQL's sqlstore.Dialect.
var Dialect = sqlstore.Dialect{
	Name:           "postgres",
	LockMigrations: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", migrationLock),
	IsUniqueViolation: func(err error) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && e.Code == "23505"
	},
}

// Options tune Open.
type Options struct {
	// SearchPath, when set, is the schema search path of every connection
	// (tests use a schema of their own).
	SearchPath string
	// MaxConns caps the pool; zero keeps pgxpool's default.
	MaxConns int32
}

// Open connects to the database at dsn (a postgres:// URL or key=value
// string) and migrates it.
func Open(ctx context.Context, dsn string, opts Options) (*sqlstore.Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: bad DSN: %w", err)
	}
	if opts.SearchPath != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = opts.SearchPath
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	s, err := sqlstore.New(ctx, db, Dialect, pool.Close)
	if err != nil {
		db.Close()
		pool.Close()
		return nil, err
	}
	return s, nil
}
