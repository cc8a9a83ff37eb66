// Package sqlite opens bawwab's embedded default store: a SQLite file through
// the pure-Go modernc.org/sqlite driver, in WAL mode with a busy timeout and
// immediate write transactions, so that concurrent writers queue instead of
// failing.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/bawwab/bawwab/internal/storage/sqlstore"
)

// Dialect is SQLite's sqlstore.Dialect.
var Dialect = sqlstore.Dialect{
	Name: "sqlite",
	IsUniqueViolation: func(err error) bool {
		var e *sqlite.Error
		if !errors.As(err, &e) {
			return false
		}
		return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	},
	// Pruning frees pages; up to 16 MiB of them go back to the file system
	// per call, so that the file shrinks without a long exclusive VACUUM.
	Vacuum:        "PRAGMA incremental_vacuum(4096)",
	IsUnavailable: IsUnavailable,
}

// IsUnavailable reports whether err is a SQLite result that means the
// database cannot serve for now rather than a bug: the disk is full
// (SQLITE_FULL), the file cannot be written or opened (SQLITE_READONLY,
// SQLITE_IOERR, SQLITE_CANTOPEN, for instance out of file descriptors),
// memory ran out (SQLITE_NOMEM), or another process held the lock past the
// busy timeout (SQLITE_BUSY, SQLITE_LOCKED). Extended codes count by their
// primary code.
func IsUnavailable(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN,
		sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return true
	}
	return false
}

// Open opens (creating if needed) the SQLite database at path and migrates it.
//
// Writes go through one connection: concurrent writers then wait their turn
// in database/sql's pool, in order, instead of sleeping and retrying on
// SQLite's lock. Reads use a pool of their own and, in WAL mode, never wait
// for writes. The read pool is query-only (PRAGMA query_only), so that a
// write sent to it by mistake fails instead of competing for the lock.
func Open(ctx context.Context, path string) (*sqlstore.Store, error) {
	writer, err := open(ctx, path, false)
	if err != nil {
		return nil, err
	}
	writer.SetMaxOpenConns(1)
	if err := incrementalVacuum(ctx, writer); err != nil {
		writer.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	s, err := sqlstore.New(ctx, writer, Dialect)
	if err != nil {
		writer.Close()
		return nil, err
	}
	reader, err := open(ctx, path, true)
	if err != nil {
		s.Close()
		return nil, err
	}
	// The pool is fixed and opened now, and its connections never retire:
	// under load the store needs no new file descriptor.
	n := max(4, runtime.GOMAXPROCS(0))
	reader.SetMaxOpenConns(n)
	reader.SetMaxIdleConns(n)
	if err := warm(ctx, reader, n); err != nil {
		reader.Close()
		s.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s.SetReader(reader)
	return s, nil
}

// MaxConns is how many connections (each holding the database, WAL and
// shared-memory files open) a store from Open uses at most.
func MaxConns() int { return 1 + max(4, runtime.GOMAXPROCS(0)) }

// incrementalVacuum makes the database give freed pages back to the file
// system when asked (PRAGMA incremental_vacuum, run after pruning). The
// mode takes effect on a new database at once; an existing one is rebuilt
// once with VACUUM, which needs free disk space about the size of the
// file.
func incrementalVacuum(ctx context.Context, db *sql.DB) error {
	var mode int
	if err := db.QueryRowContext(ctx, "PRAGMA auto_vacuum").Scan(&mode); err != nil {
		return err
	}
	const incremental = 2
	if mode == incremental {
		return nil
	}
	if _, err := db.ExecContext(ctx, "PRAGMA auto_vacuum = INCREMENTAL"); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "VACUUM"); err != nil {
		return fmt.Errorf("switch to incremental auto-vacuum: %w", err)
	}
	return nil
}

// warm opens n connections of db at once, so that the pool holds them.
func warm(ctx context.Context, db *sql.DB, n int) error {
	conns := make([]*sql.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := db.Conn(ctx)
		if err != nil {
			return err
		}
		if err := c.PingContext(ctx); err != nil {
			return err
		}
		conns = append(conns, c)
	}
	return nil
}

func open(ctx context.Context, path string, queryOnly bool) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	if queryOnly {
		q.Add("_pragma", "query_only(1)")
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return db, nil
}
