// Package postgres opens bawwab's multi-node store: PostgreSQL (or a
// PostgreSQL-compatible database) through pgx, pooled by database/sql so
// that each connection keeps its prepared statements. Several
// bawwab nodes may share one database; migrations run once under an
// advisory lock, and single-use rules hold across nodes because they are
// enforced by conditional UPDATEs in the database.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/bawwab/bawwab/internal/storage/sqlstore"
)

// migrationLock is the advisory lock key that serializes migrations.
const migrationLock = 0x6261_7777_6162 // "bawwab"

// adminsLock is the advisory lock key that serializes changes that may
// take the last enabled admin away (Store.KeepingAdmin).
const adminsLock = migrationLock + 1

// Dialect is PostgreSQL's sqlstore.Dialect.
var Dialect = sqlstore.Dialect{
	Name:           "postgres",
	LockMigrations: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", migrationLock),
	LockAdmins:     fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", adminsLock),
	IsUniqueViolation: func(err error) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && e.Code == "23505"
	},
	IsUnavailable: IsUnavailable,
	KeyShare:      " FOR KEY SHARE",
	WritableCTE:   true,
}

// IsUnavailable reports whether err means PostgreSQL is out of reach for
// now rather than a bug: a connection that could not be made
// (pgconn.ConnectError) or failed before the request was sent
// (pgconn.SafeToRetry), a connection that closed during the request
// (pgconn.ErrConnClosed: whether a commit took effect is then unknown), a
// timeout inside pgconn, or a server error of
// SQLSTATE class 08 (connection exception), 53 (insufficient resources:
// disk full, out of memory, too many connections) or 57P01–57P03 (admin
// shutdown, crash shutdown, cannot connect now). Serialization failures
// and deadlocks (class 40) are not outages and stay errors.
func IsUnavailable(err error) bool {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) || errors.Is(err, pgconn.ErrConnClosed) {
		return true
	}
	var e *pgconn.PgError
	if !errors.As(err, &e) {
		return false
	}
	switch {
	case strings.HasPrefix(e.Code, "08"), strings.HasPrefix(e.Code, "53"):
		return true
	}
	switch e.Code {
	case "57P01", "57P02", "57P03":
		return true
	}
	return false
}

// ConnectTimeout bounds each new connection unless the DSN sets
// connect_timeout. Dead connections are not kept: pgx reports them to
// database/sql as bad, which discards them and dials anew.
const ConnectTimeout = 3 * time.Second

// Options tune Open.
type Options struct {
	// SearchPath, when set, is the schema search path of every connection
	// (tests use a schema of their own).
	SearchPath string
	// MaxConns caps the pool; zero means four per CPU.
	MaxConns int
}

// Open connects to the database at dsn (a postgres:// URL or key=value
// string) and migrates it.
func Open(ctx context.Context, dsn string, opts Options) (*sqlstore.Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: bad DSN: %w", err)
	}
	// Fail fast when the server is out of reach, so that a request gets
	// 503 temporarily_unavailable at once rather than hanging: a DSN's
	// own connect_timeout wins.
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = ConnectTimeout
	}
	if opts.SearchPath != "" {
		cfg.RuntimeParams["search_path"] = opts.SearchPath
	}
	// database/sql pools the connections and keeps them idle between
	// requests, so a statement prepared on a connection stays prepared
	// (a pool-backed *sql.DB would reconnect its statements every time).
	db := stdlib.OpenDB(*cfg)
	n := opts.MaxConns
	if n <= 0 {
		n = 4 * runtime.GOMAXPROCS(0)
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	s, err := sqlstore.New(ctx, db, Dialect)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}
